"""Which code path the hot spots take: the fast one, or the plain reference it must equal.

The harmonic oscillator's sum over harmonics, the GRU recurrence and the decoder's
LayerNorm → LeakyReLU each have a fast path (hand-written backward passes, fusion-friendly
forms) and a reference path (the same mathematics written plainly, differentiated by JAX).
Both stay available so tests can check they agree and benchmarks can measure the ratio in
one run (``ddsp bench ... --impl reference``).

The choice is read when a function is traced, and ``jax.jit`` reuses a trace for the same
function and arguments: switch before building new jitted functions (a new ``Trainer``), or
pass the choice to a jitted function as a static argument, as the benchmarks do.

``cpu_fusion_barrier`` marks the fast path's fusion choices that help XLA's CPU back end only.
"""

import contextlib
import contextvars
from collections.abc import Iterator
from typing import Literal, get_args

import jax

Implementation = Literal["fast", "reference"]
IMPLEMENTATIONS: tuple[str, ...] = get_args(Implementation)

_current: contextvars.ContextVar[Implementation] = contextvars.ContextVar(
    "ddsp_jax_implementation", default="fast"
)


def current_implementation() -> Implementation:
    """The code path in force (``"fast"`` unless inside ``use_implementation``)."""
    return _current.get()


@contextlib.contextmanager
def use_implementation(implementation: Implementation) -> Iterator[None]:
    """Trace the hot spots with ``implementation`` inside this block."""
    if implementation not in IMPLEMENTATIONS:
        raise ValueError(
            f"implementation must be one of {IMPLEMENTATIONS}, got {implementation!r}."
        )
    token = _current.set(implementation)
    try:
        yield
    finally:
        _current.reset(token)


def cpu_fusion_barrier[T](values: T) -> T:
    """``jax.lax.optimization_barrier`` when compiled for the CPU, the identity elsewhere.

    For fusion decisions that help XLA's CPU back end only: each barrier is a kernel boundary
    on a GPU, where inside a ``lax.scan`` it costs a launch per step (the GRU's barriers made
    the batch-32 train step 32 % slower on an H200). Resolved when lowering, per platform.
    """
    return jax.lax.platform_dependent(
        values, cpu=jax.lax.optimization_barrier, default=lambda unchanged: unchanged
    )
