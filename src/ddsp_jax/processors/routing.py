"""Processors that route signals inside a graph (magenta's ``Add``, ``Mix`` and ``Crop``)."""

import dataclasses
from typing import Literal

import jax
import jax.numpy as jnp

from ddsp_jax.core.resample import resample
from ddsp_jax.core.validation import check_positive_int, check_rank
from ddsp_jax.processors.base import Processor


def _check_same_shape(signal_one: jax.Array, signal_two: jax.Array) -> None:
    if signal_one.shape != signal_two.shape:
        raise ValueError(
            f"signal_one {signal_one.shape} and signal_two {signal_two.shape} must have the "
            "same shape."
        )


class Add(Processor):
    """The sum of two signals of one shape.

    >>> Add()({"signal_one": jnp.ones((1, 4)), "signal_two": jnp.ones((1, 4))})
    Array([[2., 2., 2., 2.]], dtype=float32)
    """

    control_names = ("signal_one", "signal_two")

    def get_controls(self, signal_one: jax.Array, signal_two: jax.Array) -> dict[str, jax.Array]:
        """The signals, unchanged (checked to have one shape)."""
        _check_same_shape(signal_one, signal_two)
        return {"signal_one": signal_one, "signal_two": signal_two}

    def get_signal(
        self, signal_one: jax.Array, signal_two: jax.Array, *, key: jax.Array | None = None
    ) -> jax.Array:
        """``signal_one + signal_two``."""
        return signal_one + signal_two


class Mix(Processor):
    """A crossfade between two signals ``[batch, n_samples]`` set by a control (magenta's
    ``Mix``): with ``m = sigmoid(mix_level)`` upsampled linearly to samples, the output is
    ``sqrt(m) · signal_one + (1 − sqrt(1 − m)) · signal_two``.

    Raw controls:
        signal_one, signal_two: ``[batch, n_samples]``.
        mix_level: ``[batch, n_frames, 1]``, before the sigmoid; large values give
            ``signal_one``, very negative ones ``signal_two``.

    >>> out = Mix()({"signal_one": jnp.ones((1, 4)), "signal_two": jnp.zeros((1, 4)),
    ...              "mix_level": jnp.full((1, 2, 1), 20.0)})
    >>> out.round(3)
    Array([[1., 1., 1., 1.]], dtype=float32)
    """

    control_names = ("signal_one", "signal_two", "mix_level")

    def get_controls(
        self, signal_one: jax.Array, signal_two: jax.Array, mix_level: jax.Array
    ) -> dict[str, jax.Array]:
        """The signals, and ``mix_level`` through a sigmoid, ``[batch, n_samples]``."""
        _check_same_shape(signal_one, signal_two)
        check_rank("signal_one", signal_one, (2,), "[batch, n_samples]")
        check_rank("mix_level", mix_level, (3,), "[batch, n_frames, 1]")
        level = resample(jax.nn.sigmoid(jnp.asarray(mix_level, jnp.float32)), signal_one.shape[1])
        return {"signal_one": signal_one, "signal_two": signal_two, "mix_level": level[..., 0]}

    def get_signal(
        self,
        signal_one: jax.Array,
        signal_two: jax.Array,
        mix_level: jax.Array,
        *,
        key: jax.Array | None = None,
    ) -> jax.Array:
        """The crossfade, ``[batch, n_samples]``, for ``mix_level`` in [0, 1]."""
        level_one = jnp.sqrt(jnp.abs(mix_level))
        level_two = 1.0 - jnp.sqrt(jnp.abs(mix_level - 1.0))
        return level_one * signal_one + level_two * signal_two


CropLocation = Literal["front", "center", "back"]


@dataclasses.dataclass(frozen=True)
class CropConfig:
    """What ``Crop`` removes.

    Attributes:
        frame_size: Samples removed, rounded down to an even number (magenta's).
        crop_location: ``front`` (the first samples), ``back`` (the last) or ``center``
            (half from each end).
    """

    frame_size: int = 64
    crop_location: CropLocation = "back"

    def __post_init__(self) -> None:
        check_positive_int("frame_size", self.frame_size)
        if self.crop_location not in ("front", "center", "back"):
            raise ValueError(
                f"crop_location must be front, center or back, got {self.crop_location!r}."
            )


class Crop(Processor):
    """Audio with the samples rendered from padding frames removed (magenta's ``Crop``).

    Raw controls:
        audio: ``[batch, n_samples]``.

    >>> Crop(CropConfig(frame_size=4, crop_location="center"))(
    ...     {"audio": jnp.arange(10.0)[None]})
    Array([[2., 3., 4., 5., 6., 7.]], dtype=float32)
    """

    control_names = ("audio",)

    def __init__(self, config: CropConfig) -> None:
        self.config = config

    def get_controls(self, audio: jax.Array) -> dict[str, jax.Array]:
        """The audio, checked to be longer than what is removed."""
        check_rank("audio", audio, (2,), "[batch, n_samples]")
        if audio.shape[1] <= self.config.frame_size // 2 * 2:
            raise ValueError(
                f"audio of {audio.shape[1]} samples is too short to crop {self.config.frame_size}."
            )
        return {"audio": audio}

    def get_signal(self, audio: jax.Array, *, key: jax.Array | None = None) -> jax.Array:
        """``[batch, n_samples − frame_size]`` (``frame_size`` rounded down to even)."""
        half = self.config.frame_size // 2
        n_samples = audio.shape[1]
        start = {"front": 2 * half, "center": half, "back": 0}[self.config.crop_location]
        return audio[:, start : start + n_samples - 2 * half]
