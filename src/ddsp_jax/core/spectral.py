"""Spectral operations: STFT, magnitudes, mel and MFCC (magenta/ddsp ``spectral_ops``).

Conventions follow ``tf.signal.stft(..., pad_end=True)`` as magenta uses it: a periodic Hann
window of ``size`` samples, hop ``size * (1 - overlap)``, FFT length ``size`` (a power of
two), and the end zero-padded so that there are ``ceil(n_samples / hop)`` frames.
"""

import functools

import jax
import jax.numpy as jnp
import numpy as np

from ddsp_jax.core.units import safe_log
from ddsp_jax.core.validation import check_positive, check_positive_int, check_rank


def _hop_size(size: int, overlap: float) -> int:
    hop = int(size * (1.0 - overlap))
    if not 0.0 <= overlap < 1.0 or hop < 1:
        raise ValueError(f"overlap must be in [0, 1) with a hop of >= 1 sample, got {overlap}.")
    return hop


def frame(audio: jax.Array, frame_size: int, hop: int, pad_end: bool = True) -> jax.Array:
    """Cut ``[batch, n_samples]`` into frames ``[batch, n_frames, frame_size]``.

    With ``pad_end`` there are ``ceil(n_samples / hop)`` frames and the end is zero-padded;
    without it, ``1 + (n_samples - frame_size) // hop`` frames.
    """
    n_samples = audio.shape[-1]
    if pad_end:
        n_frames = -(-n_samples // hop)
    else:
        if n_samples < frame_size:
            raise ValueError(f"audio of {n_samples} samples is shorter than one frame.")
        n_frames = 1 + (n_samples - frame_size) // hop
    padded = (n_frames - 1) * hop + frame_size
    audio = jnp.pad(audio, ((0, 0), (0, max(0, padded - n_samples))))[:, :padded]
    if frame_size % hop == 0:
        # Frames are runs of consecutive hop-sized blocks: slices, no gather.
        per_frame = frame_size // hop
        blocks = audio[:, : (n_frames + per_frame - 1) * hop].reshape(audio.shape[0], -1, hop)
        return jnp.concatenate([blocks[:, i : i + n_frames] for i in range(per_frame)], axis=-1)
    index = np.arange(n_frames)[:, None] * hop + np.arange(frame_size)[None, :]
    return audio[:, index]


@functools.lru_cache(maxsize=32)
def _hann(size: int) -> np.ndarray:
    return (0.5 - 0.5 * np.cos(2.0 * np.pi * np.arange(size) / size)).astype(np.float32)


def stft(
    audio: jax.Array, size: int = 2048, overlap: float = 0.75, pad_end: bool = True
) -> jax.Array:
    """Short-time Fourier transform with a periodic Hann window.

    Args:
        audio: ``[batch, n_samples]`` or ``[batch, n_samples, 1]``.
        size: Frame and FFT size (samples).
        overlap: Fraction of overlap between frames; hop = ``size * (1 - overlap)``.
        pad_end: Zero-pad the end so the last samples get a frame (see ``frame``).

    Returns:
        Complex spectrogram ``[batch, n_frames, size // 2 + 1]``.
    """
    audio = jnp.asarray(audio, jnp.float32)
    if audio.ndim == 3 and audio.shape[-1] == 1:
        audio = audio[..., 0]
    check_rank("audio", audio, (2,), "[batch, n_samples]")
    check_positive_int("size", size)
    frames = frame(audio, size, _hop_size(size, overlap), pad_end) * _hann(size)
    return jnp.fft.rfft(frames, size)


def compute_mag(
    audio: jax.Array, size: int = 2048, overlap: float = 0.75, pad_end: bool = True
) -> jax.Array:
    """STFT magnitude ``[batch, n_frames, size // 2 + 1]`` (zero gradient at exact zeros)."""
    spectrum = stft(audio, size, overlap, pad_end)
    power = jnp.real(spectrum) ** 2 + jnp.imag(spectrum) ** 2
    zero = power == 0.0  # NaN is not zero: bad input stays visible.
    return jnp.where(zero, 0.0, jnp.sqrt(jnp.where(zero, 1.0, power)))


def compute_logmag(
    audio: jax.Array, size: int = 2048, overlap: float = 0.75, pad_end: bool = True
) -> jax.Array:
    """Natural log of the STFT magnitude (``safe_log``)."""
    return safe_log(compute_mag(audio, size, overlap, pad_end))


def hz_to_mel(frequencies: np.ndarray) -> np.ndarray:
    """Hz to mel (HTK formula, as ``tf.signal``): ``1127 * ln(1 + f / 700)``."""
    return 1127.0 * np.log1p(np.asarray(frequencies, np.float64) / 700.0)


@functools.lru_cache(maxsize=32)
def mel_weight_matrix(
    n_mel_bins: int, n_spectrogram_bins: int, sample_rate: float, lo_hz: float, hi_hz: float
) -> np.ndarray:
    """Triangular mel filterbank ``[n_spectrogram_bins, n_mel_bins]`` (tf.signal's design).

    The DC bin gets zero weight; triangles are spaced evenly on the HTK mel scale between
    ``lo_hz`` and ``hi_hz`` with peaks of 1 (no area normalisation).
    """
    if not 0.0 <= lo_hz < hi_hz <= sample_rate / 2.0:
        raise ValueError(
            f"need 0 <= lo_hz < hi_hz <= sample_rate / 2, got lo_hz={lo_hz}, hi_hz={hi_hz}, "
            f"sample_rate={sample_rate}."
        )
    linear = np.linspace(0.0, sample_rate / 2.0, n_spectrogram_bins)[1:]
    mel = hz_to_mel(linear)[:, None]
    edges = np.linspace(hz_to_mel(lo_hz), hz_to_mel(hi_hz), n_mel_bins + 2)
    lower, centre, upper = edges[:-2], edges[1:-1], edges[2:]
    rising = (mel - lower) / (centre - lower)
    falling = (upper - mel) / (upper - centre)
    weights = np.maximum(0.0, np.minimum(rising, falling))
    return np.pad(weights, ((1, 0), (0, 0))).astype(np.float32)


def compute_mel(
    audio: jax.Array,
    lo_hz: float = 0.0,
    hi_hz: float = 8000.0,
    bins: int = 64,
    fft_size: int = 2048,
    overlap: float = 0.75,
    pad_end: bool = True,
    sample_rate: float = 16000,
) -> jax.Array:
    """Mel-scaled magnitude spectrogram ``[batch, n_frames, bins]``."""
    check_positive("sample_rate", sample_rate)
    mag = compute_mag(audio, fft_size, overlap, pad_end)
    weights = mel_weight_matrix(bins, mag.shape[-1], float(sample_rate), lo_hz, hi_hz)
    return mag @ jnp.asarray(weights)


def compute_logmel(
    audio: jax.Array,
    lo_hz: float = 80.0,
    hi_hz: float = 7600.0,
    bins: int = 64,
    fft_size: int = 2048,
    overlap: float = 0.75,
    pad_end: bool = True,
    sample_rate: float = 16000,
) -> jax.Array:
    """Natural log of the mel spectrogram ``[batch, n_frames, bins]``."""
    return safe_log(compute_mel(audio, lo_hz, hi_hz, bins, fft_size, overlap, pad_end, sample_rate))


@functools.lru_cache(maxsize=32)
def _dct_matrix(n: int) -> np.ndarray:
    """``tf.signal.mfccs_from_log_mel_spectrograms``'s DCT-II, scaled by ``1/sqrt(2n)``."""
    k = np.arange(n)[None, :]
    m = np.arange(n)[:, None]
    return (2.0 * np.cos(np.pi * k * (2 * m + 1) / (2 * n)) / np.sqrt(2.0 * n)).astype(np.float32)


def compute_mfcc(
    audio: jax.Array,
    lo_hz: float = 20.0,
    hi_hz: float = 8000.0,
    fft_size: int = 1024,
    mel_bins: int = 128,
    mfcc_bins: int = 13,
    overlap: float = 0.75,
    pad_end: bool = True,
    sample_rate: float = 16000,
) -> jax.Array:
    """Mel-frequency cepstral coefficients ``[batch, n_frames, mfcc_bins]``."""
    if not 0 < mfcc_bins <= mel_bins:
        raise ValueError(f"mfcc_bins must be in [1, mel_bins={mel_bins}], got {mfcc_bins}.")
    logmel = compute_logmel(audio, lo_hz, hi_hz, mel_bins, fft_size, overlap, pad_end, sample_rate)
    return logmel @ jnp.asarray(_dct_matrix(mel_bins)[:, :mfcc_bins])
