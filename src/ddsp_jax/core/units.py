"""Unit conversions and scaling nonlinearities (magenta/ddsp ``core`` conventions)."""

import jax
import jax.numpy as jnp

DB_RANGE = 80.0  # dB: the dynamic range of loudness and amplitude_to_db.


def safe_log(x: jax.Array, eps: float = 1e-5) -> jax.Array:
    """Natural log with non-positive inputs replaced by ``eps`` (magenta's ``safe_log``)."""
    return jnp.log(jnp.where(x <= 0.0, eps, x))


def safe_divide(numerator: jax.Array, denominator: jax.Array, eps: float = 1e-7) -> jax.Array:
    """Divide, replacing zero denominators by ``eps``."""
    return numerator / jnp.where(denominator == 0.0, eps, denominator)


def midi_to_hz(notes: jax.Array) -> jax.Array:
    """MIDI note numbers to frequency in Hz (A4 = MIDI 69 = 440 Hz).

    >>> midi_to_hz(jnp.array([57.0, 69.0, 81.0]))
    Array([220., 440., 880.], dtype=float32)
    """
    return 440.0 * 2.0 ** ((jnp.asarray(notes, jnp.float32) - 69.0) / 12.0)


def hz_to_midi(frequencies: jax.Array) -> jax.Array:
    """Frequency in Hz to (fractional) MIDI note numbers; 0 Hz and below map to MIDI 0.

    >>> hz_to_midi(jnp.array([0.0, 440.0]))
    Array([ 0., 69.], dtype=float32)
    """
    frequencies = jnp.asarray(frequencies, jnp.float32)
    positive = frequencies > 0.0
    safe = jnp.where(positive, frequencies, 440.0)
    notes = 12.0 * (jnp.log2(safe) - jnp.log2(440.0)) + 69.0
    return jnp.where(positive, notes, 0.0)


def power_to_db(power: jax.Array, ref_db: float = 0.0, range_db: float = DB_RANGE) -> jax.Array:
    """Power to decibels, floored at ``-range_db`` after subtracting ``ref_db``."""
    power = jnp.maximum(power, 10.0 ** (-range_db / 10.0))
    db = 10.0 * jnp.log10(power) - ref_db
    return jnp.maximum(db, -range_db)


def amplitude_to_db(
    amplitude: jax.Array, ref_db: float = 0.0, range_db: float = DB_RANGE
) -> jax.Array:
    """Linear amplitude to decibels (of power amplitude**2), floored at ``-range_db``.

    >>> amplitude_to_db(jnp.array([1.0, 0.1, 0.0]))
    Array([  0., -20., -80.], dtype=float32)
    """
    return power_to_db(jnp.square(amplitude), ref_db=ref_db, range_db=range_db)


def db_to_power(db: jax.Array) -> jax.Array:
    """Decibels to linear power."""
    return 10.0 ** (jnp.asarray(db) / 10.0)


def db_to_amplitude(db: jax.Array) -> jax.Array:
    """Decibels to linear amplitude."""
    return db_to_power(jnp.asarray(db) / 2.0)


def exp_sigmoid(
    x: jax.Array, exponent: float = 10.0, max_value: float = 2.0, threshold: float = 1e-7
) -> jax.Array:
    """Exponentiated sigmoid: ``max_value * sigmoid(x) ** ln(exponent) + threshold``.

    Bounds outputs to ``[threshold, max_value]``; away from 0 the output changes by a factor
    of ``exponent`` per unit of ``x``. With the defaults, ``2 * sigmoid(x)**ln(10) + 1e-7``.
    Evaluated as ``exp(-ln(exponent) * softplus(-x))``: the same value (to ~1e-6), stable
    gradients for any ``x``, and half the time of XLA's ``pow`` on the CPU.
    """
    return max_value * jnp.exp(-jnp.log(exponent) * jax.nn.softplus(-x)) + threshold


def inverse_exp_sigmoid(
    y: jax.Array, exponent: float = 10.0, max_value: float = 2.0, threshold: float = 1e-7
) -> jax.Array:
    """The raw value ``x`` with ``exp_sigmoid(x) == y``, for ``threshold < y < max_value``.

    Useful to drive processors (which apply ``exp_sigmoid``) with chosen linear values.

    >>> round(float(exp_sigmoid(inverse_exp_sigmoid(0.5))), 4)
    0.5
    """
    p = ((jnp.asarray(y, jnp.float32) - threshold) / max_value) ** (1.0 / jnp.log(exponent))
    return jnp.log(p) - jnp.log1p(-p)


def unit_to_hz(unit: jax.Array, hz_min: float, hz_max: float) -> jax.Array:
    """The unit interval to ``[hz_min, hz_max]``, linear in MIDI (log frequency), as
    magenta's ``unit_to_hz`` (0 Hz counts as MIDI 0).

    >>> unit_to_hz(jnp.array([0.0, 0.5, 1.0]), 110.0, 440.0)
    Array([110., 220., 440.], dtype=float32)
    """
    low, high = hz_to_midi(jnp.float32(hz_min)), hz_to_midi(jnp.float32(hz_max))
    return midi_to_hz(low + (high - low) * jnp.asarray(unit, jnp.float32))


def _with_depth(freqs: jax.Array, depth: int) -> tuple[jax.Array, int]:
    """``[batch, time, n * depth]`` to ``[batch, time, n, depth]`` (a rank-4 input keeps its
    last axis as the depth)."""
    freqs = jnp.asarray(freqs, jnp.float32)
    if freqs.ndim == 4:
        return freqs, freqs.shape[-1]
    if freqs.ndim != 3 or freqs.shape[-1] % depth:
        raise ValueError(
            f"frequencies must be [batch, time, n * depth] with depth {depth}, or [batch, "
            f"time, n, depth]; got shape {freqs.shape}."
        )
    return freqs.reshape(*freqs.shape[:2], -1, depth), depth


def frequencies_softmax(
    freqs: jax.Array, depth: int = 1, hz_min: float = 20.0, hz_max: float = 8000.0
) -> jax.Array:
    """Network outputs to frequencies (Hz): a softmax over ``depth`` points spread evenly in
    log frequency from ``hz_min`` to ``hz_max``, its mean position mapped by ``unit_to_hz``
    (magenta's ``frequencies_softmax``).

    Args:
        freqs: ``[batch, time, n * depth]`` or ``[batch, time, n, depth]``.
        depth: Softmax points per frequency (with a rank-3 input).
        hz_min: The lowest frequency (Hz).
        hz_max: The highest frequency (Hz).

    Returns:
        ``[batch, time, n]`` (Hz).
    """
    freqs, depth = _with_depth(freqs, depth)
    probabilities = jax.nn.softmax(freqs, axis=-1)
    unit = jnp.sum(probabilities * jnp.linspace(0.0, 1.0, depth), axis=-1)
    return unit_to_hz(unit, hz_min, hz_max)


def frequencies_sigmoid(
    freqs: jax.Array, depth: int = 1, hz_min: float = 0.0, hz_max: float = 8000.0
) -> jax.Array:
    """Network outputs to frequencies (Hz): a sum of ``depth`` sigmoids, each mapped by
    ``unit_to_hz`` over its share of the range (magenta's ``frequencies_sigmoid``: the range
    ``hz_max - hz_min`` is split by a constant factor, the last share from ``hz_min``).

    Args:
        freqs: ``[batch, time, n * depth]`` or ``[batch, time, n, depth]``.
        depth: Sigmoids per frequency (with a rank-3 input).
        hz_min: The lowest frequency (Hz).
        hz_max: The highest frequency (Hz).

    Returns:
        ``[batch, time, n]`` (Hz).

    >>> top = frequencies_sigmoid(jnp.full((1, 1, 1), 20.0), hz_min=20.0, hz_max=8000.0)
    >>> round(float(top[0, 0, 0]), 1)  # As magenta's: one share, hz_min to hz_max - hz_min.
    7980.0
    """
    freqs, depth = _with_depth(freqs, depth)
    probabilities = jax.nn.sigmoid(freqs)
    remainder = hz_max - hz_min
    scale_factor = remainder ** (1.0 / depth)
    total = jnp.zeros(freqs.shape[:-1], jnp.float32)
    for index in range(depth):
        if index == depth - 1:
            low, high = hz_min, remainder
        else:
            low, high = 0.0, remainder * (1.0 - 1.0 / scale_factor)
            remainder -= high
        total = total + unit_to_hz(probabilities[..., index], low, high)
    return total
