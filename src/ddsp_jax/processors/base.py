"""The processor calling convention shared by synths, effects and graphs.

A processor is a Flax NNX module built from a frozen config dataclass. As magenta's
``Processor``, it works in two steps:

- ``get_controls(*raw)``: raw network outputs (or user values) → physical controls (linear
  amplitudes, a harmonic distribution normalised below Nyquist, filter magnitudes, an impulse
  response with its dry tap masked), returned as a dict;
- ``get_signal(**controls, key=None)``: the DSP that renders those controls to audio
  ``[batch, n_samples]``.

Calling a processor with a dict of named raw controls (batch first) runs both. Plots, the
command line and a streaming engine call the steps separately: the scaling once, the DSP as
often as they need. Where a processor draws random numbers, it takes an explicit PRNG key.
"""

from collections.abc import Callable, Mapping
from typing import Literal

import jax
from flax import nnx

from ddsp_jax.core.units import exp_sigmoid

Controls = Mapping[str, jax.Array]
ScaleFn = Literal["exp_sigmoid", "none"]

SCALE_FNS: dict[str, Callable[[jax.Array], jax.Array]] = {
    "exp_sigmoid": exp_sigmoid,
    "none": lambda x: x,
}


def check_scale_fn(scale_fn: str) -> None:
    """Raise ValueError for an unknown scale function name."""
    if scale_fn not in SCALE_FNS:
        raise ValueError(f"scale_fn must be one of {sorted(SCALE_FNS)}, got {scale_fn!r}.")


class Processor(nnx.Module):
    """Base class: ``processor(controls, key=None) -> audio [batch, n_samples]``, which is
    ``get_signal(**get_controls(*raw controls named by control_names), key=key)``."""

    control_names: tuple[str, ...] = ()
    draws_noise: bool = False  # Whether ``get_signal`` needs a PRNG key.

    def read_controls(self, controls: Controls) -> tuple[jax.Array, ...]:
        """The raw controls this processor needs, in ``control_names`` order.

        Raises:
            ValueError: If any is missing, naming it and what was given.
        """
        missing = [name for name in self.control_names if name not in controls]
        if missing:
            raise ValueError(
                f"{type(self).__name__} needs controls {list(self.control_names)}; missing "
                f"{missing} (given: {sorted(controls)})."
            )
        return tuple(controls[name] for name in self.control_names)

    def get_controls(self, *raw: jax.Array) -> dict[str, jax.Array]:
        """Raw controls (in ``control_names`` order) → the physical controls of
        ``get_signal``."""
        raise NotImplementedError

    def get_signal(self, *args: jax.Array, key: jax.Array | None = None) -> jax.Array:
        """Audio ``[batch, n_samples]`` from physical controls."""
        raise NotImplementedError

    def __call__(self, controls: Controls, *, key: jax.Array | None = None) -> jax.Array:
        """Audio ``[batch, n_samples]`` from a dict of raw controls."""
        return self.get_signal(**self.get_controls(*self.read_controls(controls)), key=key)
