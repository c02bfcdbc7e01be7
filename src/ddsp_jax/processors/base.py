"""The processor calling convention shared by synths, effects and graphs.

A processor is a Flax NNX module built from a frozen config dataclass. It is called with a
dict of named controls (network outputs or user values, batch first) and, where it draws
random numbers, an explicit PRNG key; it returns audio ``[batch, n_samples]`` (a graph
returns a dict of signals). Scaling of raw network outputs (``exp_sigmoid``) happens inside
the processor, as in magenta/ddsp, so decoders emit unconstrained values.
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
    """Base class: ``processor(controls, key=None) -> audio [batch, n_samples]``."""

    control_names: tuple[str, ...] = ()

    def read_controls(self, controls: Controls) -> tuple[jax.Array, ...]:
        """The controls this processor needs, in ``control_names`` order.

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

    def __call__(self, controls: Controls, *, key: jax.Array | None = None) -> jax.Array:
        raise NotImplementedError
