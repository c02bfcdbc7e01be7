"""Oscillators with exactly accumulated phase, and harmonic synthesis.

- ``oscillator_bank``: sinusoids from sample-wise frequencies, phase accumulated in 64-bit
  fixed point (``core.phase``).
- ``harmonic_oscillator`` / ``harmonic_synthesis``: a monophonic harmonic synth driven at
  frame rate. Phase is accumulated once per frame and interpolated inside each frame in
  closed form: with frequencies linearly interpolated between frames (magenta's alignment),
  the phase within a frame is a fixed linear combination of the frame's and the next frame's
  f0. The sum over harmonics runs in ``core.harmonic_sum``.
- ``harmonic_synthesis_reference``: magenta's formulation (upsample every harmonic's
  frequency and amplitude to samples, then ``oscillator_bank``), the plain reference the
  frame-wise synthesis is tested against.
"""

import functools

import jax
import jax.numpy as jnp
import numpy as np

from ddsp_jax.core.harmonic_sum import (
    frame_phase_plan,
    harmonic_sum,
    harmonic_sum_reference,
    slot_taps,
    slots_to_samples,
)
from ddsp_jax.core.implementation import Implementation, current_implementation
from ddsp_jax.core.phase import (
    TWO_POW_32,
    FixedPoint,
    add_fixed,
    cumsum_fixed,
    fixed_to_cycles,
    fixed_weighted_sum,
    straight_through,
    to_fixed,
    wrap,
)
from ddsp_jax.core.resample import ResampleMethod, resample
from ddsp_jax.core.units import safe_divide
from ddsp_jax.core.validation import (
    check_batch_match,
    check_below,
    check_finite,
    check_non_negative,
    check_positive,
    check_positive_int,
    check_rank,
)
from ddsp_jax.defaults import SAMPLE_RATE


def remove_above_nyquist(
    frequencies: jax.Array, amplitudes: jax.Array, sample_rate: float
) -> jax.Array:
    """Zero the amplitudes of oscillators at or above Nyquist (``sample_rate / 2``).

    Args:
        frequencies: Oscillator frequencies (Hz), broadcastable to ``amplitudes``.
        amplitudes: Oscillator amplitudes, e.g. ``[batch, time, n_oscillators]``.
        sample_rate: Samples per second (Hz).

    Returns:
        ``amplitudes`` with zeros where ``frequencies >= sample_rate / 2``.
    """
    return jnp.where(frequencies >= sample_rate / 2.0, 0.0, amplitudes)


def normalize_harmonics(
    harmonic_distribution: jax.Array,
    f0_hz: jax.Array | None = None,
    sample_rate: float | None = None,
) -> jax.Array:
    """Normalise a harmonic distribution to sum to 1, after removing harmonics above Nyquist.

    Args:
        harmonic_distribution: Non-negative weights ``[batch, n_frames, n_harmonics]``.
        f0_hz: Fundamental frequency ``[batch, n_frames, 1]`` (Hz); with ``sample_rate``,
            harmonics ``k * f0 >= sample_rate / 2`` are zeroed before normalising.
        sample_rate: Samples per second (Hz).

    Returns:
        The distribution, shape ``[batch, n_frames, n_harmonics]``, summing to 1 over the
        harmonics below Nyquist (all zeros where none is).
    """
    if f0_hz is not None and sample_rate is not None:
        n_harmonics = harmonic_distribution.shape[-1]
        harmonic_numbers = jnp.arange(1, n_harmonics + 1, dtype=jnp.float32)
        harmonic_distribution = remove_above_nyquist(
            f0_hz * harmonic_numbers, harmonic_distribution, sample_rate
        )
    total = jnp.sum(harmonic_distribution, axis=-1, keepdims=True)
    return safe_divide(harmonic_distribution, total)


def oscillator_bank(
    frequency_envelopes: jax.Array,
    amplitude_envelopes: jax.Array,
    sample_rate: float = SAMPLE_RATE,
    sum_sinusoids: bool = True,
    initial_phase: jax.Array | None = None,
) -> jax.Array:
    """Sinusoids from sample-wise frequencies, with exactly accumulated phase.

    The phase of sample ``n`` is ``initial_phase + sum_{m <= n} f[m] / sample_rate`` cycles
    (magenta's inclusive cumulative sum). Oscillators at or above Nyquist are silenced.

    Args:
        frequency_envelopes: Frequencies ``[batch, n_samples, n_oscillators]`` (Hz).
        amplitude_envelopes: Amplitudes ``[batch, n_samples, n_oscillators]``.
        sample_rate: Samples per second (Hz).
        sum_sinusoids: Sum the oscillators into one signal.
        initial_phase: Starting phase ``[batch, n_oscillators]`` (cycles), default 0.

    Returns:
        ``[batch, n_samples]`` if ``sum_sinusoids`` else ``[batch, n_samples, n_oscillators]``.
    """
    check_positive("sample_rate", sample_rate)
    check_rank("frequency_envelopes", frequency_envelopes, (3,), "[batch, n_samples, n_osc]")
    check_rank("amplitude_envelopes", amplitude_envelopes, (3,), "[batch, n_samples, n_osc]")
    frequency_envelopes = jnp.asarray(frequency_envelopes, jnp.float32)
    amplitude_envelopes = jnp.asarray(amplitude_envelopes, jnp.float32)
    if frequency_envelopes.shape[1] != amplitude_envelopes.shape[1]:
        raise ValueError(
            "frequency_envelopes and amplitude_envelopes must have the same n_samples, got "
            f"{frequency_envelopes.shape} and {amplitude_envelopes.shape}."
        )
    check_finite("frequency_envelopes", frequency_envelopes)
    if initial_phase is not None:
        initial_phase = jnp.broadcast_to(
            jnp.asarray(initial_phase, jnp.float32),
            (frequency_envelopes.shape[0], frequency_envelopes.shape[2]),
        )
    return _oscillator_bank(
        frequency_envelopes, amplitude_envelopes, float(sample_rate), sum_sinusoids, initial_phase
    )


def accumulate_phase(
    frequency_envelopes: jax.Array,
    sample_rate: float,
    initial_phase: jax.Array | None = None,
    exclusive: bool = False,
) -> jax.Array:
    """The phase of oscillators at sample-wise frequencies, accumulated exactly.

    Sample ``n``'s phase is ``initial_phase + sum_{m <= n} f[m] / sample_rate`` cycles (``m <
    n`` with ``exclusive``), summed in 64-bit fixed point (``core.phase``), so it does not
    drift over any length; its gradient is that of the float32 cumulative sum.

    Args:
        frequency_envelopes: Frequencies ``[batch, n_samples, n_oscillators]`` (Hz).
        sample_rate: Samples per second (Hz).
        initial_phase: ``[batch, n_oscillators]`` (cycles), default 0.
        exclusive: Start each oscillator at ``initial_phase`` on sample 0 (magenta's
            wavetable phase) instead of one sample's step later (its oscillator bank's).

    Returns:
        Phase ``[batch, n_samples, n_oscillators]`` in cycles, in [0, 1].
    """
    step = np.float64(1.0) / sample_rate
    if exclusive:
        frequency_envelopes = jnp.pad(frequency_envelopes, ((0, 0), (1, 0), (0, 0)))[:, :-1]
    phase = cumsum_fixed(fixed_weighted_sum([(frequency_envelopes, step)]), axis=1)
    surrogate = jnp.cumsum(frequency_envelopes * np.float32(step), axis=1)
    if initial_phase is not None:
        start = initial_phase[:, None, :]
        phase = add_fixed(phase, to_fixed(start))
        surrogate = surrogate + start
    return straight_through(fixed_to_cycles(phase), surrogate)


@functools.partial(jax.jit, static_argnums=(2, 3))
def _oscillator_bank(
    frequency_envelopes: jax.Array,
    amplitude_envelopes: jax.Array,
    sample_rate: float,
    sum_sinusoids: bool,
    initial_phase: jax.Array | None,
) -> jax.Array:
    amplitudes = remove_above_nyquist(frequency_envelopes, amplitude_envelopes, sample_rate)
    cycles = accumulate_phase(frequency_envelopes, sample_rate, initial_phase)
    audio = amplitudes * jnp.sin(2.0 * np.pi * wrap(cycles))
    return jnp.sum(audio, axis=-1) if sum_sinusoids else audio


def harmonic_oscillator(
    f0_hz: jax.Array,
    harmonic_amplitudes: jax.Array,
    n_samples: int,
    sample_rate: float = SAMPLE_RATE,
    amp_resample_method: ResampleMethod = "window",
    initial_phase: jax.Array | None = None,
) -> tuple[jax.Array, jax.Array]:
    """Harmonic oscillator bank driven at frame rate, with its phase as explicit state.

    Frequencies are interpolated linearly and amplitudes with ``amp_resample_method`` from
    frames to samples (frame ``j`` at sample ``j * n_samples / n_frames``, the last frame held).
    Harmonic ``k`` (1-based) has frequency ``k * f0``; at or above Nyquist it is silent.

    Args:
        f0_hz: Fundamental frequency ``[batch, n_frames, 1]`` (Hz).
        harmonic_amplitudes: Amplitude of each harmonic ``[batch, n_frames, n_harmonics]``.
        n_samples: Output length (samples).
        sample_rate: Samples per second (Hz).
        amp_resample_method: How amplitudes are upsampled (see ``resample``).
        initial_phase: Phase of the fundamental before the first sample ``[batch]``
            (cycles), default 0. Pass the returned ``final_phase`` to continue a stream.

    Returns:
        ``(audio [batch, n_samples], final_phase [batch])``: the final phase in cycles in
        ``[0, 1]``, the fundamental's phase at the last sample.
    """
    check_positive("sample_rate", sample_rate)
    check_positive_int("n_samples", n_samples)
    check_rank("f0_hz", f0_hz, (3,), "[batch, n_frames, 1]")
    check_rank("harmonic_amplitudes", harmonic_amplitudes, (3,), "[batch, n_frames, n_harmonics]")
    if f0_hz.shape[::2] != (harmonic_amplitudes.shape[0], 1) or (
        f0_hz.shape[1] != harmonic_amplitudes.shape[1]
    ):
        raise ValueError(
            "f0_hz [batch, n_frames, 1] and harmonic_amplitudes [batch, n_frames, n_harmonics] "
            f"do not match: {f0_hz.shape} and {harmonic_amplitudes.shape}."
        )
    if amp_resample_method == "window" and f0_hz.shape[1] > n_samples:
        raise ValueError(f"{f0_hz.shape[1]} frames cannot be upsampled to {n_samples} samples.")
    batch = f0_hz.shape[0]
    if initial_phase is None:
        initial_phase = jnp.zeros((batch,), jnp.float32)
    initial_phase = jnp.broadcast_to(jnp.asarray(initial_phase, jnp.float32), (batch,))
    return _harmonic_oscillator(
        jnp.asarray(f0_hz, jnp.float32),
        jnp.asarray(harmonic_amplitudes, jnp.float32),
        n_samples,
        float(sample_rate),
        amp_resample_method,
        initial_phase,
        current_implementation(),
    )


@functools.partial(jax.jit, static_argnums=(2, 3, 4, 6))
def _harmonic_oscillator(
    f0_hz: jax.Array,
    harmonic_amplitudes: jax.Array,
    n_samples: int,
    sample_rate: float,
    amp_resample_method: ResampleMethod,
    initial_phase: jax.Array,
    implementation: Implementation,
) -> tuple[jax.Array, jax.Array]:
    audio, end, surrogate_end = harmonic_frames(
        f0_hz[..., 0],
        harmonic_amplitudes,
        f0_hz[:, -1, 0],
        harmonic_amplitudes[:, -1],
        (to_fixed(initial_phase), initial_phase),
        n_samples,
        sample_rate,
        amp_resample_method,
        implementation,
    )
    return audio, straight_through(fixed_to_cycles(end), surrogate_end)


def harmonic_frames(
    f0: jax.Array,
    harmonic_amplitudes: jax.Array,
    f0_after: jax.Array,
    amplitudes_after: jax.Array,
    start: tuple[FixedPoint, jax.Array],
    n_samples: int,
    sample_rate: float,
    amp_resample_method: ResampleMethod,
    implementation: Implementation = "fast",
    advance: jax.Array | None = None,
) -> tuple[jax.Array, FixedPoint, jax.Array]:
    """``harmonic_oscillator``'s synthesis of a run of frames, given the frame after them.

    The samples of the last frame interpolate towards ``f0_after`` and ``amplitudes_after``
    (``harmonic_oscillator`` holds the last frame: it passes the last frame itself). Phase is
    the exact fixed-point accumulator in and out, so consecutive runs of frames, each given
    the next run's first frame, join into exactly the phase of one run over all of them.

    Args:
        f0: Fundamental frequency ``[batch, n_frames]`` (Hz).
        harmonic_amplitudes: ``[batch, n_frames, n_harmonics]``.
        f0_after: The next frame's f0 ``[batch]`` (Hz).
        amplitudes_after: The next frame's harmonic amplitudes ``[batch, n_harmonics]``.
        start: ``(phase, surrogate)``: the fundamental's phase before the first sample, as
            fixed point (``core.phase``) and as float32 cycles carrying the gradient.
        n_samples: Samples of the run (frame ``j`` at sample ``j * n_samples / n_frames``).
        sample_rate: Samples per second (Hz).
        amp_resample_method: How amplitudes are interpolated (see ``resample``).
        implementation: ``fast`` (``harmonic_sum``) or ``reference``.
        advance: ``[batch, n_frames]`` booleans; a frame marked False does not advance the
            phase (its samples are still rendered). Default: every frame advances.

    Returns:
        ``(audio [batch, n_samples], end, surrogate_end)``: the phase after the last sample
        as fixed point ``[batch]`` and as its float32 surrogate.
    """
    n_frames = f0.shape[1]
    n_harmonics = harmonic_amplitudes.shape[-1]
    plan = frame_phase_plan(n_frames, n_samples, sample_rate)
    f0_next = jnp.concatenate([f0[:, 1:], f0_after[:, None]], axis=1)

    # Phase at the start of every frame, exactly, and its differentiable surrogate.
    moving, moving_next = (
        (f0, f0_next)
        if advance is None
        else (
            jnp.where(advance, f0, 0.0),
            jnp.where(advance, f0_next, 0.0),
        )
    )
    increments = fixed_weighted_sum([(moving, plan.frame_this), (moving_next, plan.frame_next)])
    surrogate_increments = moving * plan.frame_this.astype(np.float32) + (
        moving_next * plan.frame_next.astype(np.float32)
    )
    start_fixed = (start[0][0][:, None], start[0][1][:, None])
    ends = add_fixed(cumsum_fixed(increments, axis=1), start_fixed)
    starts = tuple(
        jnp.concatenate([first, end[:, :-1]], axis=1)
        for first, end in zip(start_fixed, ends, strict=True)
    )
    surrogate_ends = start[1][:, None] + jnp.cumsum(surrogate_increments, axis=1)
    surrogate_starts = surrogate_ends - surrogate_increments

    # Harmonic k's phase at frame starts: k × phase, exact modulo 1 in the high word.
    harmonic_numbers = jnp.arange(1, n_harmonics + 1, dtype=jnp.uint32)
    harmonic_float = harmonic_numbers.astype(jnp.float32)
    start_cycles = (starts[0][..., None] * harmonic_numbers).astype(jnp.float32) / TWO_POW_32
    start_cycles = start_cycles + (
        starts[1][..., None].astype(jnp.float32) * harmonic_float / TWO_POW_32**2
    )
    start_cycles = straight_through(
        wrap(start_cycles), harmonic_float * surrogate_starts[..., None]
    )

    # Closed-form phase inside each frame, laid out [batch, n_frames, slots].
    this, after = f0[:, :, None], f0_next[:, :, None]
    within = this * plan.within_this + after * plan.within_next
    frequency = this * (1.0 - plan.t) + after * plan.t  # Hz, [batch, n_frames, slots]

    # Amplitudes interpolated from frames: tap ``i`` weighs frame ``j + offsets[i]``'s
    # amplitudes by ``tap_weights[i]`` within frame ``j``; index n_frames is the next frame.
    offsets, tap_weights = slot_taps(n_frames, n_samples, amp_resample_method)
    extended = jnp.concatenate([harmonic_amplitudes, amplitudes_after[:, None]], axis=1)
    frames = np.arange(n_frames)
    tap_amplitudes = jnp.stack(
        [extended[:, np.clip(frames + offset, 0, n_frames)] for offset in offsets]
    )
    sum_over_harmonics = harmonic_sum if implementation == "fast" else harmonic_sum_reference
    audio = sum_over_harmonics(
        start_cycles, within, frequency, tap_amplitudes, jnp.asarray(tap_weights), sample_rate / 2
    )
    audio = slots_to_samples(audio, plan)
    return audio, (ends[0][:, -1], ends[1][:, -1]), surrogate_ends[:, -1]


def _harmonic_controls(
    frequencies: jax.Array,
    amplitudes: jax.Array,
    harmonic_distribution: jax.Array | None,
    n_samples: int,
    sample_rate: float,
    normalize_below_nyquist: bool,
) -> tuple[jax.Array, jax.Array]:
    """Checked ``harmonic_synthesis`` inputs as ``(f0 [batch, n_frames, 1], each harmonic's
    amplitude [batch, n_frames, n_harmonics])``."""
    check_positive("sample_rate", sample_rate)
    check_positive_int("n_samples", n_samples)
    frequencies = jnp.asarray(frequencies, jnp.float32)
    amplitudes = jnp.asarray(amplitudes, jnp.float32)
    if frequencies.ndim == 2:
        frequencies = frequencies[..., None]
    if amplitudes.ndim == 2:
        amplitudes = amplitudes[..., None]
    check_rank("frequencies", frequencies, (3,), "[batch, n_frames, 1]")
    check_rank("amplitudes", amplitudes, (3,), "[batch, n_frames, 1]")
    if harmonic_distribution is None:
        harmonic_distribution = jnp.ones((*amplitudes.shape[:2], 1), jnp.float32)
    harmonic_distribution = jnp.asarray(harmonic_distribution, jnp.float32)
    check_rank(
        "harmonic_distribution", harmonic_distribution, (3,), "[batch, n_frames, n_harmonics]"
    )
    names = ("frequencies", "amplitudes", "harmonic_distribution")
    arrays = (frequencies, amplitudes, harmonic_distribution)
    if frequencies.shape[-1] != 1 or amplitudes.shape[-1] != 1:
        raise ValueError(
            "frequencies and amplitudes must have shape [batch, n_frames, 1], got "
            f"{frequencies.shape} and {amplitudes.shape}."
        )
    if len({a.shape[1] for a in arrays}) != 1:
        detail = ", ".join(f"{n}: {a.shape}" for n, a in zip(names, arrays, strict=True))
        raise ValueError(f"controls must have the same number of frames ({detail}).")
    batch = check_batch_match(names, arrays)
    for name, array in zip(names, arrays, strict=True):
        check_finite(name, array)
    check_non_negative("frequencies", frequencies)
    check_below("frequencies", frequencies, sample_rate / 2.0, "Nyquist (sample_rate / 2)")

    frequencies, amplitudes, harmonic_distribution = (
        jnp.broadcast_to(a, (batch, *a.shape[1:])) for a in arrays
    )
    if normalize_below_nyquist:
        harmonic_distribution = normalize_harmonics(harmonic_distribution, frequencies, sample_rate)
    return frequencies, amplitudes * harmonic_distribution


def harmonic_synthesis(
    frequencies: jax.Array,
    amplitudes: jax.Array,
    harmonic_distribution: jax.Array | None = None,
    n_samples: int = 64000,
    sample_rate: float = SAMPLE_RATE,
    amp_resample_method: ResampleMethod = "window",
    normalize_below_nyquist: bool = True,
    harmonic_shifts: jax.Array | None = None,
) -> jax.Array:
    """Audio from a frame-rate monophonic harmonic oscillator bank.

    Args:
        frequencies: Fundamental frequency ``[batch, n_frames, 1]`` (Hz), below Nyquist.
        amplitudes: Overall amplitude ``[batch, n_frames, 1]``.
        harmonic_distribution: Relative harmonic amplitudes ``[batch, n_frames, n_harmonics]``
            (non-negative); default a single harmonic.
        n_samples: Output length (samples).
        sample_rate: Samples per second (Hz).
        amp_resample_method: How amplitudes are upsampled (see ``resample``).
        normalize_below_nyquist: Zero harmonics at or above Nyquist and renormalise the
            distribution to sum to 1 over the remaining ones (per frame).
        harmonic_shifts: Inharmonicity, ``[batch, n_frames, n_harmonics]``, zero-centred:
            harmonic ``k`` sounds at ``k · f0 · (1 + shift)`` (magenta's). Its partials no
            longer share the fundamental's phase, so the synthesis is then
            ``harmonic_synthesis_reference``'s.

    Returns:
        Audio ``[batch, n_samples]``.

    Raises:
        ValueError: On wrong shapes, mismatched frame counts, a non-positive sample rate or
            length, and (for concrete inputs) NaN/inf values, negative f0 or f0 at or above
            Nyquist.
    """
    f0_hz, harmonic_amplitudes = _harmonic_controls(
        frequencies,
        amplitudes,
        harmonic_distribution,
        n_samples,
        sample_rate,
        normalize_below_nyquist,
    )
    if harmonic_shifts is not None:
        return _oscillators_of_harmonics(
            f0_hz, harmonic_amplitudes, n_samples, sample_rate, amp_resample_method, harmonic_shifts
        )
    audio, _ = harmonic_oscillator(
        f0_hz, harmonic_amplitudes, n_samples, sample_rate, amp_resample_method
    )
    return audio


def harmonic_synthesis_reference(
    frequencies: jax.Array,
    amplitudes: jax.Array,
    harmonic_distribution: jax.Array | None = None,
    n_samples: int = 64000,
    sample_rate: float = SAMPLE_RATE,
    amp_resample_method: ResampleMethod = "window",
    normalize_below_nyquist: bool = True,
    harmonic_shifts: jax.Array | None = None,
) -> jax.Array:
    """``harmonic_synthesis`` as magenta writes it: every harmonic's frequency (linear) and
    amplitude (``amp_resample_method``) upsampled to samples, then ``oscillator_bank``.

    The plain reference of the frame-wise synthesis: the same arguments, checks and result
    (to float32 rounding), at the cost of ``[batch, n_samples, n_harmonics]`` arrays and a
    sine per harmonic per sample. Use it to check, not to train.

    >>> f0 = jnp.full((1, 10, 1), 440.0)
    >>> args = (f0, jnp.full((1, 10, 1), 0.5), jnp.ones((1, 10, 3)), 640)
    >>> fast, plain = harmonic_synthesis(*args), harmonic_synthesis_reference(*args)
    >>> bool(jnp.max(jnp.abs(fast - plain)) < 1e-5)
    True
    """
    f0_hz, harmonic_amplitudes = _harmonic_controls(
        frequencies,
        amplitudes,
        harmonic_distribution,
        n_samples,
        sample_rate,
        normalize_below_nyquist,
    )
    return _oscillators_of_harmonics(
        f0_hz, harmonic_amplitudes, n_samples, sample_rate, amp_resample_method, harmonic_shifts
    )


def _oscillators_of_harmonics(
    f0_hz: jax.Array,
    harmonic_amplitudes: jax.Array,
    n_samples: int,
    sample_rate: float,
    amp_resample_method: ResampleMethod,
    harmonic_shifts: jax.Array | None,
) -> jax.Array:
    """Every harmonic upsampled to samples and rendered by ``oscillator_bank``."""
    n_harmonics = harmonic_amplitudes.shape[-1]
    frequencies = f0_hz * jnp.arange(1, n_harmonics + 1, dtype=jnp.float32)
    if harmonic_shifts is not None:
        check_rank("harmonic_shifts", harmonic_shifts, (3,), "[batch, n_frames, n_harmonics]")
        if harmonic_shifts.shape[1:] != harmonic_amplitudes.shape[1:]:
            raise ValueError(
                f"harmonic_shifts must be [batch, {harmonic_amplitudes.shape[1]}, "
                f"{n_harmonics}], got {harmonic_shifts.shape}."
            )
        frequencies = frequencies * (1.0 + jnp.asarray(harmonic_shifts, jnp.float32))
    frequency_envelopes = resample(frequencies, n_samples, "linear")
    amplitude_envelopes = resample(harmonic_amplitudes, n_samples, amp_resample_method)
    return oscillator_bank(frequency_envelopes, amplitude_envelopes, sample_rate)
