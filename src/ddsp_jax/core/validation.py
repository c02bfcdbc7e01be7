"""Argument checks shared by the DSP functions and processors.

Shapes are static under ``jax.jit``, so shape errors are raised while tracing, before any
computation. Value checks (finiteness, ranges) can only look at concrete arrays: they run
when a function is called eagerly and are skipped inside a trace.
"""

from collections.abc import Sequence

import jax
import numpy as np


def is_concrete(x: object) -> bool:
    """Whether ``x`` holds values now (not an abstract tracer inside a transformation)."""
    return not isinstance(x, jax.core.Tracer)


def check_rank(name: str, x: jax.Array, ranks: Sequence[int], expected: str) -> None:
    """Raise ValueError unless ``x.ndim`` is one of ``ranks``.

    Args:
        name: Argument name for the message.
        x: The array.
        ranks: Accepted numbers of dimensions.
        expected: Human-readable expected shape, e.g. ``"[batch, n_frames, 1]"``.
    """
    ndim = np.ndim(x)
    if ndim not in ranks:
        raise ValueError(f"{name} must have shape {expected}, got shape {np.shape(x)}.")


def check_positive(name: str, value: float) -> None:
    """Raise ValueError unless ``value`` is a finite number > 0."""
    if not np.isfinite(value) or value <= 0:
        raise ValueError(f"{name} must be a positive number, got {value!r}.")


def check_positive_int(name: str, value: int) -> None:
    """Raise ValueError unless ``value`` is an integer > 0."""
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value <= 0:
        raise ValueError(f"{name} must be a positive integer, got {value!r}.")


def check_finite(name: str, x: jax.Array) -> None:
    """Raise ValueError if a concrete ``x`` holds NaN or infinity (no-op while tracing)."""
    if is_concrete(x) and not np.all(np.isfinite(np.asarray(x))):
        raise ValueError(f"{name} contains NaN or infinite values.")


def check_non_negative(name: str, x: jax.Array) -> None:
    """Raise ValueError if a concrete ``x`` has negative values (no-op while tracing)."""
    if is_concrete(x):
        low = float(np.min(np.asarray(x), initial=np.inf))
        if low < 0:
            raise ValueError(f"{name} must not be negative, got a minimum of {low:g}.")


def check_below(name: str, x: jax.Array, limit: float, what: str) -> None:
    """Raise ValueError if a concrete ``x`` has values >= ``limit`` (no-op while tracing)."""
    if is_concrete(x):
        peak = float(np.max(np.asarray(x), initial=-np.inf))
        if peak >= limit:
            raise ValueError(f"{name} must be below {what} ({limit:g}), got a maximum of {peak:g}.")


def check_batch_match(names: Sequence[str], arrays: Sequence[jax.Array]) -> int:
    """Check that arrays share their leading (batch) size, or have batch 1; return it."""
    sizes = [np.shape(a)[0] for a in arrays]
    batch = max(sizes)
    for name, size in zip(names, sizes, strict=True):
        if size not in (1, batch):
            detail = ", ".join(f"{n}: {s}" for n, s in zip(names, sizes, strict=True))
            raise ValueError(f"{name} has batch size {size}, expected {batch} or 1 ({detail}).")
    return batch
