"""Effects: convolution reverbs with a dry path."""

import dataclasses

import jax
import jax.numpy as jnp
from flax import nnx

from ddsp_jax.core.filters import fft_convolve
from ddsp_jax.core.units import exp_sigmoid
from ddsp_jax.core.validation import check_positive_int, check_rank
from ddsp_jax.processors.base import Processor


def mask_dry_tap(impulse_response: jax.Array) -> jax.Array:
    """``impulse_response`` ``[..., ir_size]`` with its first tap set to 0: the dry path is
    added separately, so a reverb's IR never scales it (magenta's ``_mask_dry_ir``)."""
    return impulse_response.at[..., 0].set(0.0)


def apply_reverb(audio: jax.Array, impulse_response: jax.Array, add_dry: bool) -> jax.Array:
    """Linear convolution with an IR whose first tap is masked, plus the dry signal.

    Args:
        audio: Dry audio ``[batch, n_samples]``.
        impulse_response: ``[batch or 1, ir_size]``; tap 0 (the dry path) is set to 0.
        add_dry: Add the dry signal to the reverberated one.

    Returns:
        ``[batch, n_samples]``.
    """
    check_rank("audio", audio, (2,), "[batch, n_samples]")
    check_rank("impulse_response", impulse_response, (2,), "[batch, ir_size]")
    impulse_response = mask_dry_tap(impulse_response)
    wet = fft_convolve(audio, impulse_response, padding="same", delay_compensation=0)
    return wet + audio if add_dry else wet


@dataclasses.dataclass(frozen=True)
class ReverbConfig:
    """Convolution reverb settings.

    Attributes:
        reverb_length: IR length (samples), e.g. 48000 = 3 s at 16 kHz.
        add_dry: Add the dry signal to the output.
        trainable: Learn one IR (an ``nnx.Param``); otherwise read it from controls ``ir``.
    """

    reverb_length: int = 48000
    add_dry: bool = True
    trainable: bool = True

    def __post_init__(self) -> None:
        check_positive_int("reverb_length", self.reverb_length)


class ConvolutionReverb(Processor):
    """A reverb that convolves its input with an impulse response and adds the dry signal.

    Controls:
        audio: Dry audio ``[batch, n_samples]``, passed through.
        ir: The impulse response ``get_ir`` gives (``[batch or 1, reverb_length]``, tap 0
            zero).
    """

    config: "ReverbConfig | ExpDecayReverbConfig"

    def get_ir(self, ir: jax.Array | None = None) -> jax.Array:
        """The impulse response it convolves with, ``[batch or 1, reverb_length]``, its
        first tap (the dry path) zero."""
        raise NotImplementedError

    def get_controls(self, audio: jax.Array, ir: jax.Array | None = None) -> dict[str, jax.Array]:
        """``{"audio": audio, "ir": get_ir(ir)}``."""
        return {"audio": audio, "ir": self.get_ir(ir)}

    def get_signal(
        self, audio: jax.Array, ir: jax.Array, *, key: jax.Array | None = None
    ) -> jax.Array:
        """Reverberated audio ``[batch, n_samples]`` (``apply_reverb``)."""
        return apply_reverb(audio, ir, self.config.add_dry)


class Reverb(ConvolutionReverb):
    """FIR reverb: a learned (or given) impulse response, linear convolution, dry path.

    Raw controls:
        audio: Dry audio ``[batch, n_samples]``.
        ir: ``[batch, reverb_length]``, only when the reverb is not trainable.

    >>> reverb = Reverb(ReverbConfig(reverb_length=100), rngs=nnx.Rngs(0))
    >>> ir = reverb.get_ir()
    >>> ir.shape, float(ir[0, 0])
    ((1, 100), 0.0)
    """

    def __init__(self, config: ReverbConfig, *, rngs: nnx.Rngs) -> None:
        self.config = config
        self.control_names = ("audio",) if config.trainable else ("audio", "ir")
        if config.trainable:
            self.impulse_response = nnx.Param(
                1e-6 * jax.random.normal(rngs.params(), (config.reverb_length,))
            )

    def get_ir(self, ir: jax.Array | None = None) -> jax.Array:
        """The learned impulse response (trainable), or ``ir`` ``[batch, reverb_length]``
        (required when not trainable), with tap 0 masked: ``[batch or 1, reverb_length]``."""
        if self.config.trainable:
            ir = self.impulse_response[...][None, :]
        elif ir is None:
            raise ValueError("this Reverb is not trainable: pass its impulse response (ir).")
        check_rank("ir", ir, (2,), "[batch, reverb_length]")
        return mask_dry_tap(ir)


class DecayNoise(nnx.Variable):
    """A fixed (non-trainable) noise signal stored with the model."""


@dataclasses.dataclass(frozen=True)
class ExpDecayReverbConfig:
    """Exponentially decaying noise reverb settings.

    Attributes:
        reverb_length: IR length (samples).
        add_dry: Add the dry signal to the output.
        initial_gain: Raw gain at initialisation (scaled by ``exp_sigmoid``).
        initial_decay: Raw decay at initialisation; the envelope is
            ``exp(-(2 + exp(decay)) * t)`` with ``t`` from 0 to 1 over the IR.
    """

    reverb_length: int = 48000
    add_dry: bool = True
    initial_gain: float = 2.0
    initial_decay: float = 4.0

    def __post_init__(self) -> None:
        check_positive_int("reverb_length", self.reverb_length)


class ExpDecayReverb(ConvolutionReverb):
    """Reverb whose IR is ``exp_sigmoid(gain) * exp(-(2 + exp(decay)) t) * noise``.

    ``gain`` and ``decay`` are trainable scalars. The noise (uniform in [−1, 1]) is drawn
    once at construction and kept with the model, so the room is the same on every call
    (magenta redraws it per call).

    Raw controls:
        audio: Dry audio ``[batch, n_samples]``.
    """

    control_names = ("audio",)

    def __init__(self, config: ExpDecayReverbConfig, *, rngs: nnx.Rngs) -> None:
        self.config = config
        self.gain = nnx.Param(jnp.array(config.initial_gain, jnp.float32))
        self.decay = nnx.Param(jnp.array(config.initial_decay, jnp.float32))
        self.noise = DecayNoise(
            jax.random.uniform(rngs.params(), (config.reverb_length,), jnp.float32, -1.0, 1.0)
        )

    def get_ir(self, ir: jax.Array | None = None) -> jax.Array:
        """The current IR ``[1, reverb_length]`` from the gain, decay and noise, with tap 0
        masked (``ir`` must be None: the reverb makes its own)."""
        if ir is not None:
            raise ValueError("ExpDecayReverb makes its own impulse response: do not pass ir.")
        time = jnp.linspace(0.0, 1.0, self.config.reverb_length)
        envelope = jnp.exp(-(2.0 + jnp.exp(self.decay[...])) * time)
        return mask_dry_tap((exp_sigmoid(self.gain[...]) * envelope * self.noise[...])[None, :])
