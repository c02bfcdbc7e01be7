"""The sum over harmonics inside each frame: a fast kernel beside the plain reference.

``core.oscillators.harmonic_oscillator`` lays the samples out as ``[n_frames, slots]``: each
frame's harmonics start at exactly accumulated phases (``core.phase``), and inside the frame
the phase of linearly interpolated frequencies is a fixed linear combination of the frame's
and the next frame's f0. What remains is a sum over harmonics at every slot:

- ``harmonic_sum_reference``: that sum written plainly (a sine per harmonic per sample),
  differentiated by JAX;
- ``harmonic_sum``: the same result by Horner's rule on phasors, with a hand-written backward
  pass (``use_implementation("fast")``, the default); tested against the reference.
"""

import dataclasses
import functools
import math

import jax
import jax.numpy as jnp
import numpy as np

from ddsp_jax.core.phase import wrap
from ddsp_jax.core.resample import ResampleMethod, interpolation_taps

HORNER_GROUP = 100  # Harmonics per fused Horner loop (see _harmonic_sum_forward).


@dataclasses.dataclass(frozen=True)
class FramePhasePlan:
    """Static weights for the phase of linearly interpolated frame frequencies.

    Samples are laid out as ``[n_frames, slots]``: frame ``j`` owns the samples whose
    interpolation position falls in ``[j, j + 1)``. With ``f(i) = (1 - t) f[j] + t f[j + 1]``
    (the last frame held), the inclusive phase of a sample is
    ``P[j] + f[j] * within_this + f[j + 1] * within_next`` and frame ``j`` advances the phase
    by ``f[j] * frame_this[j] + f[j + 1] * frame_next[j]`` cycles. When ``n_samples`` is a
    multiple of ``n_frames`` every frame is alike, so the per-slot arrays have one row and
    the per-frame ones are scalars; otherwise the slots are padded to the longest frame and
    ``sample_slots`` picks the real samples out of the flattened layout.
    """

    slots: int
    t: np.ndarray  # [1 or n_frames, slots] float32, interpolation fraction.
    within_this: np.ndarray  # [1 or n_frames, slots] float32, cycles per Hz.
    within_next: np.ndarray  # [1 or n_frames, slots] float32, cycles per Hz.
    frame_this: np.ndarray  # [] or [n_frames] float64, cycles per Hz.
    frame_next: np.ndarray  # [] or [n_frames] float64, cycles per Hz.
    sample_slots: np.ndarray | None  # [n_samples] int, flat slot of each sample, or None.


@functools.lru_cache(maxsize=64)
def frame_phase_plan(n_frames: int, n_samples: int, sample_rate: float) -> FramePhasePlan:
    """Build the static weights of ``FramePhasePlan`` in float64."""
    if n_samples % n_frames == 0:
        hop = n_samples // n_frames
        t = np.arange(hop) / hop
        weight_this, weight_next = (1.0 - t) / sample_rate, t / sample_rate
        return FramePhasePlan(
            slots=hop,
            t=t[None].astype(np.float32),
            within_this=np.cumsum(weight_this)[None].astype(np.float32),
            within_next=np.cumsum(weight_next)[None].astype(np.float32),
            frame_this=np.float64((hop + 1) / (2.0 * sample_rate)),
            frame_next=np.float64((hop - 1) / (2.0 * sample_rate)),
            sample_slots=None,
        )
    # Exact rational positions: sample i sits at i * n_frames / n_samples frames.
    numerator = np.arange(n_samples, dtype=np.int64) * n_frames
    frame_index = numerator // n_samples
    t = (numerator % n_samples) / n_samples
    starts = np.searchsorted(frame_index, np.arange(n_frames))
    slot = np.arange(n_samples) - starts[frame_index]
    slots = int(slot.max()) + 1
    t_slots = np.zeros((n_frames, slots))
    t_slots[frame_index, slot] = t
    in_frame = np.zeros((n_frames, slots), bool)
    in_frame[frame_index, slot] = True
    weight_this = np.where(in_frame, 1.0 - t_slots, 0.0) / sample_rate
    weight_next = np.where(in_frame, t_slots, 0.0) / sample_rate
    return FramePhasePlan(
        slots=slots,
        t=t_slots.astype(np.float32),
        within_this=np.cumsum(weight_this, axis=1).astype(np.float32),
        within_next=np.cumsum(weight_next, axis=1).astype(np.float32),
        frame_this=weight_this.sum(axis=1),
        frame_next=weight_next.sum(axis=1),
        sample_slots=frame_index * slots + slot,
    )


@functools.lru_cache(maxsize=64)
def slot_taps(
    n_frames: int, n_samples: int, method: ResampleMethod
) -> tuple[tuple[int, ...], np.ndarray]:
    """``resample``'s taps laid out like ``FramePhasePlan``: weights ``[n_taps, 1 or n_frames,
    slots]``, zero on padding slots."""
    offsets, frame_index, weights = interpolation_taps(n_frames, n_samples, method)
    if n_samples % n_frames == 0:
        hop = n_samples // n_frames
        return offsets, weights[:, None, :hop].astype(np.float32)
    starts = np.searchsorted(frame_index, np.arange(n_frames))
    slot = np.arange(n_samples) - starts[frame_index]
    laid_out = np.zeros((len(offsets), n_frames, int(slot.max()) + 1), np.float32)
    laid_out[:, frame_index, slot] = weights
    return offsets, laid_out


def slots_to_samples(x: jax.Array, plan: FramePhasePlan) -> jax.Array:
    """``[batch, n_frames, slots, ...]`` to ``[batch, n_samples, ...]``."""
    flat = x.reshape((x.shape[0], -1, *x.shape[3:]))
    return flat if plan.sample_slots is None else flat[:, plan.sample_slots]


def harmonic_sum_reference(
    start_cycles: jax.Array,
    within: jax.Array,
    frequency: jax.Array,
    tap_amplitudes: jax.Array,
    tap_weights: jax.Array,
    nyquist: float,
) -> jax.Array:
    """The sum over harmonics inside every frame, written plainly (differentiated by JAX).

    Harmonic ``k`` at slot ``s`` of frame ``j`` has phase ``start_cycles[j, k] + k ×
    within[j, s]`` cycles, amplitude ``sum_i tap_weights[i, s] × tap_amplitudes[i, j, k]``,
    and is silent where ``k × frequency[j, s] >= nyquist``.

    Args:
        start_cycles: Each harmonic's phase at the frame start ``[batch, n_frames, n_harmonics]``
            (cycles).
        within: The fundamental's phase advance within the frame ``[batch, n_frames, slots]``
            (cycles).
        frequency: The fundamental's frequency at every slot ``[batch, n_frames, slots]`` (Hz).
        tap_amplitudes: Amplitudes of the frames each tap reads
            ``[n_taps, batch, n_frames, n_harmonics]``.
        tap_weights: Interpolation weight of each tap ``[n_taps, 1 or n_frames, slots]``.
        nyquist: Half the sample rate (Hz).

    Returns:
        Audio laid out ``[batch, n_frames, slots]``.
    """
    harmonics = jnp.arange(1, start_cycles.shape[-1] + 1, dtype=jnp.float32)
    cycles = _harmonic_phase(start_cycles, within, harmonics, slots_last=False)
    sines = jnp.where(
        frequency[..., None] * harmonics >= nyquist, 0.0, jnp.sin(2.0 * np.pi * cycles)
    )
    audio = jnp.zeros(frequency.shape, jnp.float32)
    for amplitudes, weight in zip(tap_amplitudes, tap_weights, strict=True):
        audio = audio + weight * jnp.sum(sines * amplitudes[:, :, None, :], axis=-1)
    return audio


def _below(frequencies: jax.Array, nyquist: float) -> jax.Array:
    """1 below ``nyquist``, 0 at or above, in arithmetic: XLA's CPU backend stops fusing the
    sum over harmonics around a ``select``, which costs ~5× in time and memory."""
    return jnp.maximum(jnp.sign(nyquist - frequencies), 0.0)


def _harmonic_phase(
    start_cycles: jax.Array, within: jax.Array, harmonics: jax.Array, slots_last: bool
) -> jax.Array:
    """Every harmonic's phase at every slot (cycles in [-0.5, 0.5]): ``[batch, n_frames,
    slots, n_harmonics]``, or ``[batch, n_frames, n_harmonics, slots]`` with ``slots_last``."""
    if slots_last:
        return wrap(start_cycles[..., None] + harmonics[:, None] * within[:, :, None, :])
    return wrap(start_cycles[:, :, None, :] + harmonics * within[..., None])


def _slot_amplitudes(tap_amplitudes: jax.Array, tap_weights: jax.Array) -> jax.Array:
    """Every harmonic's interpolated amplitude at every slot ``[batch, n_frames, slots,
    n_harmonics]`` (left to XLA to fuse into its consumer, not stored)."""
    return sum(
        weight[..., None] * taps[:, :, None, :]
        for taps, weight in zip(tap_amplitudes, tap_weights, strict=True)
    )


def start_phasors(start_cycles: jax.Array) -> tuple[jax.Array, jax.Array]:
    """``cos`` and ``sin`` of ``2π start_cycles [batch, n_frames, n_harmonics]``, with a sine
    and cosine of only ~2√n_harmonics harmonics per frame.

    Harmonic ``k = a G + m`` (``1 <= m <= G``, ``G = ceil(√n_harmonics)``) starts at the
    phase of harmonic ``a G`` plus that of harmonic ``m``, so its phasor is the product of
    theirs (to a few float32 ulps); the sines and cosines are taken of harmonics ``1 ... G``
    and ``G, 2G, ...`` only, whose exact start phases ``start_cycles`` holds.
    """
    n_harmonics = start_cycles.shape[-1]
    group = math.isqrt(n_harmonics - 1) + 1
    n_groups = -(-n_harmonics // group)
    units = 2.0 * np.pi * start_cycles[..., :group]  # Harmonics 1 ... G.
    tens = 2.0 * np.pi * start_cycles[..., group - 1 : (n_groups - 1) * group : group]
    # Stored once: fused into the products below, each sine would be taken once per product.
    unit_cos, unit_sin, tens_cos, tens_sin = jax.lax.optimization_barrier(
        (jnp.cos(units), jnp.sin(units), jnp.cos(tens), jnp.sin(tens))
    )
    unit_cos, unit_sin = unit_cos[..., None, :], unit_sin[..., None, :]
    shape = (*start_cycles.shape[:-1], 1)
    tens_cos = jnp.concatenate([jnp.ones(shape), tens_cos], axis=-1)[..., None]
    tens_sin = jnp.concatenate([jnp.zeros(shape), tens_sin], axis=-1)[..., None]
    start_cos = tens_cos * unit_cos - tens_sin * unit_sin  # [batch, n_frames, a, m]
    start_sin = tens_sin * unit_cos + tens_cos * unit_sin
    flat = (*start_cycles.shape[:-1], n_groups * group)
    start_cos = start_cos.reshape(flat)[..., :n_harmonics]
    start_sin = start_sin.reshape(flat)[..., :n_harmonics]
    return jax.lax.optimization_barrier((start_cos, start_sin))


def _harmonic_sum_forward(
    start_cycles: jax.Array,
    within: jax.Array,
    frequency: jax.Array,
    tap_amplitudes: jax.Array,
    tap_weights: jax.Array,
    nyquist: float,
) -> jax.Array:
    """``harmonic_sum_reference``'s result by Horner's rule on phasors, with no sine per
    harmonic per sample.

    Inside frame ``j`` harmonic ``k`` is ``Im(c[j, k] × z[j, s]^k)``, with the frame's
    coefficient ``c = amplitude × exp(2πi start_cycles)`` and the slot's phasor ``z =
    exp(2πi within)``. The harmonics are taken in groups of ``HORNER_GROUP``: group ``k0 + 1
    ... k0 + G`` is ``z^k0 × sum_m c[k0 + m] z^m``, its polynomial evaluated from the top
    down (one complex multiply-add per harmonic per sample) and ``z^k0`` from the phase
    ``k0 × within``. Each group is one fused loop, unrolled, that adds its imaginary part to
    the running sum. Rounding grows with the harmonics in a group: ~6e-6 of the peak at 100
    harmonics (the test bounds it against extended precision).
    """
    n_harmonics = start_cycles.shape[-1]
    shape = within.shape  # [batch, n_frames, slots]
    start_cos, start_sin = start_phasors(start_cycles)
    # Coefficients per tap and harmonic, [batch, n_frames, 1] each: split once, so the loop
    # below traces a few lax operations per harmonic (jnp's per-call overhead, ~0.3 ms per
    # operation, made the unrolled loop the slowest part of tracing a train step).
    real = [jax.lax.split(taps * start_cos, [1] * n_harmonics, axis=-1) for taps in tap_amplitudes]
    imag = [jax.lax.split(taps * start_sin, [1] * n_harmonics, axis=-1) for taps in tap_amplitudes]
    weights = [jnp.broadcast_to(weight, shape) for weight in tap_weights]
    slot_angle = 2.0 * np.pi * within
    z_real, z_imag = jnp.cos(slot_angle), jnp.sin(slot_angle)
    zeros = jnp.zeros(shape, jnp.float32)
    mul, add = jax.lax.mul, jax.lax.add

    def interpolated(coefficients: list, k: int) -> jax.Array:
        terms = [
            mul(weight, jax.lax.broadcast_in_dim(c[k - 1], shape, (0, 1, 2)))
            for weight, c in zip(weights, coefficients, strict=True)
        ]
        return functools.reduce(add, terms)

    audio = zeros
    for first in range(0, n_harmonics, HORNER_GROUP):
        sum_real = sum_imag = zeros
        for k in range(min(first + HORNER_GROUP, n_harmonics), first, -1):
            below = jax.lax.lt(mul(np.float32(k), frequency), np.float32(nyquist))
            sum_real = add(sum_real, jax.lax.select(below, interpolated(real, k), zeros))
            sum_imag = add(sum_imag, jax.lax.select(below, interpolated(imag, k), zeros))
            sum_real, sum_imag = (
                jax.lax.sub(mul(sum_real, z_real), mul(sum_imag, z_imag)),
                add(mul(sum_real, z_imag), mul(sum_imag, z_real)),
            )
        if first > 0:
            shift = 2.0 * np.pi * wrap(first * within)
            sum_imag = sum_real * jnp.sin(shift) + sum_imag * jnp.cos(shift)
        # The barrier ends the group's loop: one loop over all harmonics would compile in time
        # and memory that grow faster than the harmonics (24 GB at 400), and fused into the
        # caller's reshape to samples, the loop's flat index costs it its vectorisation.
        audio = jax.lax.optimization_barrier(audio + sum_imag)
    return audio


@functools.partial(jax.custom_vjp, nondiff_argnums=(5,))
def harmonic_sum(
    start_cycles: jax.Array,
    within: jax.Array,
    frequency: jax.Array,
    tap_amplitudes: jax.Array,
    tap_weights: jax.Array,
    nyquist: float,
) -> jax.Array:
    """``harmonic_sum_reference``'s result, computed so that XLA fuses every sum.

    Forward: Horner's rule on phasors in fused loops (no ``[batch, n_samples, n_harmonics]``
    array is stored and no sine is taken per harmonic per sample). Backward, by hand: the
    amplitude and start-phase gradients are reductions over each frame's slots, evaluated
    with the slots as the minor axis so they fuse too; only the small inputs are kept for it,
    where autodiff would store the sines. ``frequency`` (the Nyquist mask) and
    ``tap_weights`` get zero gradients: the mask is piecewise constant and the weights are
    constants.
    """
    return _harmonic_sum_forward(
        start_cycles, within, frequency, tap_amplitudes, tap_weights, nyquist
    )


def _harmonic_sum_fwd(
    start_cycles: jax.Array,
    within: jax.Array,
    frequency: jax.Array,
    tap_amplitudes: jax.Array,
    tap_weights: jax.Array,
    nyquist: float,
) -> tuple[jax.Array, tuple[jax.Array, ...]]:
    audio = _harmonic_sum_forward(
        start_cycles, within, frequency, tap_amplitudes, tap_weights, nyquist
    )
    return audio, (start_cycles, within, frequency, tap_amplitudes, tap_weights)


def _harmonic_sum_bwd(
    nyquist: float, residuals: tuple[jax.Array, ...], d_audio: jax.Array
) -> tuple[jax.Array, ...]:
    start_cycles, within, frequency, tap_amplitudes, tap_weights = residuals
    harmonics = jnp.arange(1, start_cycles.shape[-1] + 1, dtype=jnp.float32)
    # Amplitude and start-phase gradients: sums over slots, laid out [b, j, tap, k, slot].
    angle = 2.0 * np.pi * _harmonic_phase(start_cycles, within, harmonics, slots_last=True)
    below = _below(frequency[:, :, None, :] * harmonics[:, None], nyquist)
    weighted = d_audio[:, :, None, :] * jnp.moveaxis(tap_weights, 0, 1)  # [b, j, tap, slot]
    weighted = weighted[:, :, :, None, :]
    d_taps = jnp.sum((jnp.sin(angle) * below)[:, :, None] * weighted, axis=-1)
    d_sines = jnp.sum((jnp.cos(angle) * below)[:, :, None] * weighted, axis=-1)
    d_start = 2.0 * np.pi * jnp.sum(d_sines * jnp.moveaxis(tap_amplitudes, 0, 2), axis=2)
    # Within-frame phase gradient: a sum over harmonics, laid out [b, j, slot, k].
    angle = 2.0 * np.pi * _harmonic_phase(start_cycles, within, harmonics, slots_last=False)
    amplitudes = _slot_amplitudes(tap_amplitudes, tap_weights)
    below = _below(frequency[..., None] * harmonics, nyquist)
    d_within = (2.0 * np.pi * d_audio) * jnp.sum(
        harmonics * jnp.cos(angle) * amplitudes * below, axis=-1
    )
    return (
        d_start,
        d_within,
        jnp.zeros_like(frequency),
        jnp.moveaxis(d_taps, 2, 0),
        jnp.zeros_like(tap_weights),
    )


harmonic_sum.defvjp(_harmonic_sum_fwd, _harmonic_sum_bwd)
