"""Linear (never circular) FFT convolution, time-varying FIR filters and filter design."""

import functools
from typing import Literal

import jax
import jax.numpy as jnp
import numpy as np

from ddsp_jax.core.validation import (
    check_batch_match,
    check_finite,
    check_positive_int,
    check_rank,
)

Padding = Literal["same", "valid"]


def next_fast_fft_size(n: int) -> int:
    """Smallest size >= ``n`` whose only prime factors are 2, 3 and 5 (one that the FFT
    splits into small radices): e.g. 80 000 for 79 999, where the next power of two is
    131 072 and its FFT takes ~1.8× as long on the project's CPU."""
    n = max(int(n), 1)
    best = 1 << (n - 1).bit_length()
    power_of_5 = 1
    while power_of_5 < best:
        power_of_3 = power_of_5
        while power_of_3 < best:
            size = power_of_3
            while size < n:
                size *= 2
            best = min(best, size)
            power_of_3 *= 3
        power_of_5 *= 5
    return best


def overlap_add(frames: jax.Array, hop: int) -> jax.Array:
    """Overlap-add frames ``[batch, n_frames, frame_size]`` with hop ``hop`` (samples).

    Returns:
        ``[batch, (n_frames - 1) * hop + frame_size]``.
    """
    batch, n_frames, frame_size = frames.shape
    n_hops = -(-frame_size // hop)  # Each frame spans this many hop-sized blocks.
    frames = jnp.pad(frames, ((0, 0), (0, 0), (0, n_hops * hop - frame_size)))
    blocks = frames.reshape(batch, n_frames, n_hops, hop)
    out = jnp.zeros((batch, n_frames + n_hops - 1, hop), frames.dtype)
    for block in range(n_hops):
        out = out.at[:, block : block + n_frames].add(blocks[:, :, block])
    return out.reshape(batch, -1)[:, : (n_frames - 1) * hop + frame_size]


def fft_convolve(
    audio: jax.Array,
    impulse_response: jax.Array,
    padding: Padding = "same",
    delay_compensation: int = -1,
) -> jax.Array:
    """Convolve audio with one impulse response or one per frame (linear convolution).

    A 2-D ``impulse_response`` is a time-invariant filter. A 3-D one is time-varying: frame
    ``j`` sits at sample ``j * n_samples / n_frames`` (as in ``resample``) and its IR filters
    the audio until the next frame. The audio is cut into blocks of
    ``n_samples // n_frames`` samples (one per frame when that divides ``n_samples``; else
    each block takes the IR of the frame it starts in), each block is convolved with its IR
    (zero-padded FFTs long enough that nothing wraps around) and the results are
    overlap-added, so each block's tail rings into the next.

    Args:
        audio: Input ``[batch, n_samples]``.
        impulse_response: ``[batch, ir_size]`` or ``[batch, n_frames, ir_size]``; a batch of 1
            is shared by every example.
        padding: ``same`` returns ``n_samples`` samples; ``valid`` the full convolution,
            ``n_samples + ir_size - 1`` samples.
        delay_compensation: Samples dropped from the start of the full convolution. Negative
            means ``ir_size // 2``, the group delay of ``frequency_impulse_response``'s
            linear-phase filters (magenta uses ``(ir_size - 1) // 2 - 1``, which leaves a
            2-sample delay on its even-length filters).

    Returns:
        Filtered audio ``[batch, n_samples]`` (``same``) or ``[batch, n_samples + ir_size - 1]``
        (``valid``).

    A delayed impulse response delays the audio (linear, not circular, convolution):

    >>> audio = jnp.array([[1.0, 2.0, 3.0]])
    >>> fft_convolve(audio, jnp.array([[0.0, 1.0]]), padding="valid", delay_compensation=0)
    Array([[0., 1., 2., 3.]], dtype=float32)
    """
    audio, impulse_response = _convolution_inputs(
        audio, impulse_response, "impulse_response", "ir_size", padding
    )
    return _fft_convolve(audio, impulse_response, padding, delay_compensation, None)


def _convolution_inputs(
    audio: jax.Array, filters: jax.Array, name: str, size: str, padding: Padding
) -> tuple[jax.Array, jax.Array]:
    """Check ``fft_convolve``'s inputs; return them as float32 ``[batch, n_samples]`` and
    ``[batch, n_frames, size]`` (``filters``: impulse responses or magnitudes, called
    ``name`` in errors, their last axis ``size``)."""
    check_rank("audio", audio, (2,), "[batch, n_samples]")
    check_rank(name, filters, (2, 3), f"[batch, {size}] or [batch, n_frames, {size}]")
    if padding not in ("same", "valid"):
        raise ValueError(f"padding must be 'same' or 'valid', got {padding!r}.")
    audio = jnp.asarray(audio, jnp.float32)
    filters = jnp.asarray(filters, jnp.float32)
    if filters.ndim == 2:
        filters = filters[:, None, :]
    batch = check_batch_match(("audio", name), (audio, filters))
    audio = jnp.broadcast_to(audio, (batch, audio.shape[1]))
    if filters.shape[1] > audio.shape[1]:
        raise ValueError(
            f"{name} has {filters.shape[1]} frames, more than the {audio.shape[1]} audio samples."
        )
    return audio, filters


@functools.partial(jax.jit, static_argnums=(2, 3, 4))
def _fft_convolve(
    audio: jax.Array,
    filters: jax.Array,
    padding: Padding,
    delay_compensation: int,
    window_size: int | None,
) -> jax.Array:
    """``filters`` are impulse responses ``[batch, n_frames, ir_size]`` (``window_size``
    None), or magnitudes ``[batch, n_frames, n_frequencies]`` of the linear-phase filters of
    ``window_size`` taps that ``frequency_impulse_response`` designs."""
    batch, n_samples = audio.shape
    n_frames = filters.shape[1]
    ir_size = filters.shape[2] if window_size is None else window_size
    frame_size = n_samples // n_frames
    n_blocks = -(-n_samples // frame_size)
    if n_blocks != n_frames:
        block_starts = np.arange(n_blocks, dtype=np.int64) * frame_size
        filters = filters[:, block_starts * n_frames // n_samples]
    audio_frames = jnp.pad(audio, ((0, 0), (0, n_blocks * frame_size - n_samples)))
    audio_frames = audio_frames.reshape(batch, n_blocks, frame_size)
    convolved = overlap_add(_convolve_blocks(audio_frames, filters, window_size), frame_size)

    start = ir_size // 2 if delay_compensation < 0 else delay_compensation
    length = n_samples if padding == "same" else n_samples + ir_size - 1
    convolved = jnp.pad(convolved, ((0, 0), (0, max(0, start + length - convolved.shape[1]))))
    return convolved[:, start : start + length]


def _convolve_blocks(blocks: jax.Array, filters: jax.Array, window_size: int | None) -> jax.Array:
    """Each block ``[batch, n_blocks, block_size]`` linearly convolved with its filter:
    ``[batch, n_blocks, fft_size]``, zero after ``block_size + ir_size - 1`` samples.
    ``filters`` as in ``_fft_convolve``."""
    ir_size = filters.shape[2] if window_size is None else window_size
    fft_size = next_fast_fft_size(blocks.shape[2] + ir_size - 1)
    if window_size is None:
        filter_spectrum = jnp.fft.rfft(filters, fft_size)
    else:  # The designed filters' spectra directly: one product, no IR and no FFT of it.
        real, imag = _filter_spectrum_basis(filters.shape[2], window_size, fft_size)
        filter_spectrum = jax.lax.complex(_product(filters, real), _product(filters, imag))
    spectrum = jnp.fft.rfft(blocks, fft_size) * filter_spectrum
    return jnp.fft.irfft(spectrum, fft_size)


def filter_blocks(blocks: jax.Array, magnitudes: jax.Array, window_size: int = 0) -> jax.Array:
    """Blocks of audio, each filtered by its own designed linear-phase filter, in full.

    The pieces ``frequency_filter`` overlap-adds: with ``hop = block_size``, overlap-adding
    the result and dropping ``window_size // 2`` samples gives ``frequency_filter``'s output.
    A stream filters its blocks as they come and carries the overlap.

    Args:
        blocks: ``[batch, n_blocks, block_size]``.
        magnitudes: ``[batch, n_blocks, n_frequencies]`` (see ``frequency_impulse_response``).
        window_size: Filter taps (see ``frequency_impulse_response``).

    Returns:
        ``[batch, n_blocks, block_size + window_size - 1]``.
    """
    check_rank("blocks", blocks, (3,), "[batch, n_blocks, block_size]")
    check_rank("magnitudes", magnitudes, (3,), "[batch, n_blocks, n_frequencies]")
    magnitudes = jnp.asarray(magnitudes, jnp.float32)
    window_size = _window_size(magnitudes.shape, window_size)
    full = _convolve_blocks(jnp.asarray(blocks, jnp.float32), magnitudes, window_size)
    return full[..., : blocks.shape[2] + window_size - 1]


def frequency_impulse_response(magnitudes: jax.Array, window_size: int = 0) -> jax.Array:
    """Linear-phase FIR filters from frequency responses (frequency sampling method).

    The zero-phase impulse response ``irfft(magnitudes)`` is windowed with a Hann window of
    ``window_size`` taps centred on lag 0, then shifted to causal form with its centre at
    tap ``window_size // 2`` (the group delay, in samples).

    Args:
        magnitudes: Linear gains ``[batch, n_frequencies]`` or
            ``[batch, n_frames, n_frequencies]`` at frequencies evenly spaced from 0 Hz to
            Nyquist inclusive.
        window_size: Taps of the filter; ``<= 0`` or larger than ``2 * (n_frequencies - 1)``
            means ``2 * (n_frequencies - 1)``.

    Returns:
        Impulse responses ``[..., window_size]``.
    """
    check_rank(
        "magnitudes", magnitudes, (2, 3), "[batch, n_frequencies] or [batch, n_frames, n_freq]"
    )
    magnitudes = jnp.asarray(magnitudes, jnp.float32)
    window_size = _window_size(magnitudes.shape, window_size)
    return _product(magnitudes, _impulse_response_basis(magnitudes.shape[-1], window_size))


def _window_size(magnitudes_shape: tuple[int, ...], window_size: int) -> int:
    """``frequency_impulse_response``'s taps for ``window_size`` (see there)."""
    ir_size = 2 * (magnitudes_shape[-1] - 1)
    if ir_size < 2:
        raise ValueError(f"magnitudes needs at least 2 frequency bins, got {magnitudes_shape}.")
    return ir_size if window_size <= 0 or window_size > ir_size else window_size


def _product(x: jax.Array, matrix: np.ndarray) -> jax.Array:
    """``x @ matrix`` in full float32 (no reduced-precision matmul on accelerators)."""
    return jnp.matmul(x, jnp.asarray(matrix, jnp.float32), precision=jax.lax.Precision.HIGHEST)


@functools.lru_cache(maxsize=32)
def _impulse_response_basis(n_frequencies: int, window_size: int) -> np.ndarray:
    """``[n_frequencies, window_size]`` (float64): row ``k`` is the windowed, causal impulse
    response of magnitude 1 at bin ``k`` alone.

    ``irfft`` of real magnitudes is a cosine sum, ``h[n] = (m[0] + m[N/2] (-1)^n + 2 sum_k
    m[k] cos(2π k n / N)) / N`` with ``N = 2 (n_frequencies - 1)``, so windowing and shifting
    it is one matrix product (the basis computed in float64).
    """
    ir_size = 2 * (n_frequencies - 1)
    centre = window_size // 2
    lags = np.arange(window_size) - centre
    window = 0.5 + 0.5 * np.cos(2.0 * np.pi * lags / window_size)  # Hann, peak at lag 0.
    bins = np.arange(n_frequencies)
    weights = np.where((bins == 0) | (bins == n_frequencies - 1), 1.0, 2.0) / ir_size
    cosines = np.cos(2.0 * np.pi * np.outer(bins, lags) / ir_size)
    return weights[:, None] * cosines * window


@functools.lru_cache(maxsize=32)
def _filter_spectrum_basis(
    n_frequencies: int, window_size: int, fft_size: int
) -> tuple[np.ndarray, np.ndarray]:
    """Real and imaginary parts ``[n_frequencies, fft_size // 2 + 1]`` (float64) of the
    ``rfft`` of ``_impulse_response_basis``'s rows: magnitudes times these are the spectra
    of the filters ``frequency_impulse_response`` designs, zero-padded to ``fft_size``."""
    spectra = np.fft.rfft(_impulse_response_basis(n_frequencies, window_size), fft_size)
    return spectra.real, spectra.imag


def frequency_filter(
    audio: jax.Array, magnitudes: jax.Array, window_size: int = 0, padding: Padding = "same"
) -> jax.Array:
    """Filter audio with linear-phase FIR filters designed from frequency responses.

    Args:
        audio: Input ``[batch, n_samples]``.
        magnitudes: Linear gains ``[batch, n_frequencies]`` (time-invariant) or
            ``[batch, n_frames, n_frequencies]`` (time-varying, frames spread evenly over the
            audio), frequencies from 0 Hz to Nyquist inclusive.
        window_size: Filter taps (see ``frequency_impulse_response``).
        padding: ``same`` or ``valid`` (see ``fft_convolve``).

    Returns:
        Filtered audio, delay-compensated, ``[batch, n_samples]`` for ``same``.
    """
    audio, magnitudes = _convolution_inputs(
        audio, magnitudes, "magnitudes", "n_frequencies", padding
    )
    check_finite("magnitudes", magnitudes)
    window_size = _window_size(magnitudes.shape, window_size)
    return _fft_convolve(audio, magnitudes, padding, -1, window_size)


def sinc_impulse_response(
    cutoff_frequency: jax.Array, window_size: int = 512, sample_rate: float | None = None
) -> jax.Array:
    """Windowed-sinc low-pass filters with unit gain at 0 Hz (magenta's
    ``sinc_impulse_response``).

    The ideal low-pass response ``sinc(cutoff · n)`` over taps ``n = -h ... h`` (``h =
    window_size // 2``, so the filter has ``2h + 1`` taps and its centre at tap ``h``),
    times magenta's Hamming window (TensorFlow's periodic one of ``2h + 1`` points), scaled
    to sum to 1.

    Args:
        cutoff_frequency: ``[...]``: in Hz with ``sample_rate``, else as a fraction of the
            Nyquist frequency (0 to 1).
        window_size: Taps (made odd: ``2 * (window_size // 2) + 1``).
        sample_rate: Samples per second (Hz), or None for cutoffs relative to Nyquist.

    Returns:
        Impulse responses ``[..., 2 * (window_size // 2) + 1]``.

    >>> ir = sinc_impulse_response(jnp.array([0.5]), window_size=8)
    >>> ir.shape, round(float(ir.sum()), 6), int(jnp.argmax(ir[0]))
    ((1, 9), 1.0, 4)
    """
    check_positive_int("window_size", window_size)
    cutoff = jnp.asarray(cutoff_frequency, jnp.float32)
    if sample_rate is not None:
        cutoff = cutoff * (2.0 / sample_rate)
    half = window_size // 2
    taps = np.arange(-half, half + 1, dtype=np.float32)
    size = len(taps)
    hamming = 0.54 - 0.46 * np.cos(2.0 * np.pi * np.arange(size) / size)
    response = jnp.sinc(cutoff[..., None] * taps) * hamming.astype(np.float32)
    return response / jnp.sum(response, axis=-1, keepdims=True)


def sinc_filter(
    audio: jax.Array,
    cutoff_frequency: jax.Array,
    window_size: int = 512,
    sample_rate: float | None = None,
    padding: Padding = "same",
    high_pass: bool = False,
) -> jax.Array:
    """Low- or high-pass filter audio with windowed-sinc filters (``sinc_impulse_response``),
    one per example or one per frame (time-varying, as ``fft_convolve``).

    The high-pass filter is the low-pass one subtracted from an impulse at its centre
    (spectral inversion), so the two outputs at one cutoff add up to the input, delayed by
    nothing with ``padding="same"`` (the linear-phase delay is compensated).

    Args:
        audio: ``[batch, n_samples]``.
        cutoff_frequency: ``[batch]`` (one filter per example) or ``[batch, n_frames]``; in Hz
            with ``sample_rate``, else relative to Nyquist.
        window_size: Taps (made odd).
        sample_rate: Samples per second (Hz), or None.
        padding: ``same`` or ``valid`` (``fft_convolve``'s).
        high_pass: Pass what is above the cutoff instead of below.

    Returns:
        ``[batch, n_samples]`` (``same``) or ``[batch, n_samples + taps - 1]`` (``valid``).
    """
    check_rank("cutoff_frequency", cutoff_frequency, (1, 2), "[batch] or [batch, n_frames]")
    impulse_response = sinc_impulse_response(cutoff_frequency, window_size, sample_rate)
    if high_pass:
        centre = jnp.zeros(impulse_response.shape[-1]).at[window_size // 2].set(1.0)
        impulse_response = centre - impulse_response
    return fft_convolve(audio, impulse_response, padding)
