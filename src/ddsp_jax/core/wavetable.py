"""Wavetable synthesis: one-cycle tables read at an oscillator's phase (magenta's
``wavetable_synthesis``), and tables made from harmonic distributions.

magenta reads a table by weighting every one of its points by a hat function of the
distance to the phase (``[batch, n_samples, n_table]`` products) and upsamples
time-varying tables to every sample (``[batch, n_samples, n_table]`` values: 0.5 GB for
4 s at 16 kHz with 2048-point tables). Both are linear interpolations: here a table is read
at the two points around the phase, and a sample between two frames' tables reads both and
blends them with the linear resampling weights, which is the same number (reading is linear
in the table).
"""

import jax
import jax.numpy as jnp
import numpy as np

from ddsp_jax.core.oscillators import accumulate_phase
from ddsp_jax.core.resample import interpolation_taps, resample
from ddsp_jax.core.validation import check_positive, check_positive_int, check_rank
from ddsp_jax.defaults import SAMPLE_RATE


def _read(tables: jax.Array, rows: jax.Array, phase: jax.Array) -> jax.Array:
    """Tables ``[batch, n_rows, n_table]`` read at ``phase`` ``[batch, n_samples]`` (cycles in
    [0, 1]), sample ``i`` from row ``rows[..., i]``, interpolating linearly around the cycle
    (the point after the last is the first): ``[batch, n_samples]``."""
    size = tables.shape[-1]
    position = phase * size
    index = jnp.clip(jnp.floor(position), 0, size - 1).astype(jnp.int32)
    fraction = position - index
    batch = jnp.arange(tables.shape[0])[:, None]
    before = tables[batch, rows, index]
    after = tables[batch, rows, (index + 1) % size]
    return before + fraction * (after - before)


def linear_lookup(phase: jax.Array, wavetables: jax.Array) -> jax.Array:
    """Read wavetables at a phase with linear interpolation (magenta's ``linear_lookup``).

    Args:
        phase: ``[batch, n_samples]`` or ``[batch, n_samples, 1]``, cycles in [0, 1]: the
            position in the table, whose first point is also the point after its last.
        wavetables: One table per example ``[batch, n_table]``, or one per sample
            ``[batch, n_samples, n_table]``.

    Returns:
        ``[batch, n_samples]``.

    >>> table = jnp.array([[0.0, 1.0, 0.0, -1.0]])
    >>> linear_lookup(jnp.array([[0.0, 0.125, 0.25, 0.875, 1.0]]), table)
    Array([[ 0. ,  0.5,  1. , -0.5,  0. ]], dtype=float32)
    """
    phase = jnp.asarray(phase, jnp.float32)
    if phase.ndim == 3:
        phase = phase[..., 0]
    check_rank("phase", phase, (2,), "[batch, n_samples] or [batch, n_samples, 1]")
    tables = jnp.asarray(wavetables, jnp.float32)
    check_rank("wavetables", tables, (2, 3), "[batch, n_table] or [batch, n_samples, n_table]")
    if tables.ndim == 2:
        return _read(tables[:, None, :], jnp.zeros(phase.shape[1], jnp.int32), phase)
    if tables.shape[1] != phase.shape[1]:
        raise ValueError(
            f"per-sample wavetables need one table per sample: {tables.shape[1]} tables for "
            f"{phase.shape[1]} samples."
        )
    return _read(tables, jnp.arange(phase.shape[1]), phase)


def harmonic_distribution_to_wavetable(
    harmonic_distribution: jax.Array, n_wavetable: int = 2048
) -> jax.Array:
    """One cycle of the sum of cosines whose amplitudes are a harmonic distribution
    (magenta's ``harmonic_distribution_to_wavetable``): point ``n`` is ``sum_k a_k cos(2π k n
    / n_wavetable)``.

    Args:
        harmonic_distribution: ``[..., n_harmonics]``, harmonic 1 first.
        n_wavetable: Points per table, even and at least ``2 * n_harmonics``.

    Returns:
        ``[..., n_wavetable]``.

    >>> table = harmonic_distribution_to_wavetable(jnp.array([1.0, 0.0]), 8)
    >>> [round(float(x), 4) + 0.0 for x in table]  # + 0.0: no negative zeros.
    [1.0, 0.7071, 0.0, -0.7071, -1.0, -0.7071, 0.0, 0.7071]
    """
    check_positive_int("n_wavetable", n_wavetable)
    distribution = jnp.asarray(harmonic_distribution, jnp.float32)
    n_harmonics = distribution.shape[-1]
    if n_wavetable % 2 or n_wavetable < 2 * n_harmonics:
        raise ValueError(
            f"n_wavetable must be even and at least 2 * n_harmonics = {2 * n_harmonics}, "
            f"got {n_wavetable}."
        )
    padding = [(0, 0)] * (distribution.ndim - 1) + [(1, n_wavetable // 2 - n_harmonics)]
    spectrum = jnp.pad(distribution, padding)
    return jnp.fft.irfft(spectrum, n=n_wavetable, axis=-1) * (n_wavetable / 2)


def wavetable_synthesis(
    frequencies: jax.Array,
    amplitudes: jax.Array,
    wavetables: jax.Array,
    n_samples: int = 64000,
    sample_rate: float = SAMPLE_RATE,
) -> jax.Array:
    """A monophonic wavetable oscillator (magenta's ``wavetable_synthesis``).

    The frequency is upsampled linearly and the amplitude with ``window``, as magenta does;
    the phase starts at 0 on sample 0 and is accumulated exactly (``accumulate_phase``, where
    magenta's float32 cumulative sum drifts); frame-wise tables are interpolated linearly
    between frames.

    Args:
        frequencies: Fundamental ``[batch, n_frames, 1]`` (Hz).
        amplitudes: ``[batch, n_frames, 1]``.
        wavetables: One cycle each: ``[batch, n_table]``, or one per frame ``[batch,
            n_tables, n_table]`` (spread over the output as frames are).
        n_samples: Output length (samples).
        sample_rate: Samples per second (Hz).

    Returns:
        ``[batch, n_samples]``.
    """
    check_positive_int("n_samples", n_samples)
    check_positive("sample_rate", sample_rate)
    check_rank("frequencies", frequencies, (3,), "[batch, n_frames, 1]")
    check_rank("amplitudes", amplitudes, (3,), "[batch, n_frames, 1]")
    check_rank("wavetables", wavetables, (2, 3), "[batch, n_table] or [batch, n_frames, n_table]")
    amplitude = resample(amplitudes, n_samples, "window")[:, :, 0]
    frequency = resample(frequencies, n_samples, "linear")
    phase = accumulate_phase(frequency, float(sample_rate), exclusive=True)[:, :, 0]
    tables = jnp.asarray(wavetables, jnp.float32)
    if tables.ndim == 2 or tables.shape[1] == 1:
        tables = tables.reshape(tables.shape[0], 1, -1)
        return amplitude * _read(tables, jnp.zeros(n_samples, jnp.int32), phase)
    n_tables = tables.shape[1]
    offsets, frame_index, weights = interpolation_taps(n_tables, n_samples, "linear")
    audio = 0.0
    for offset, weight in zip(offsets, weights, strict=True):
        rows = jnp.asarray(np.clip(frame_index + offset, 0, n_tables - 1), jnp.int32)
        audio = audio + jnp.asarray(weight, jnp.float32) * _read(tables, rows, phase)
    return amplitude * audio
