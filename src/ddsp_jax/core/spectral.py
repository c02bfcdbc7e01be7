"""Spectral operations: STFT, magnitudes, mel and MFCC (magenta/ddsp ``spectral_ops``).

Conventions follow ``tf.signal.stft(..., pad_end=True)`` as magenta uses it: a periodic Hann
window of ``size`` samples, hop ``size * (1 - overlap)``, FFT length ``size`` (a power of
two), and the end zero-padded so that there are ``ceil(n_samples / hop)`` frames.
"""

import functools

import jax
import jax.numpy as jnp
import numpy as np

from ddsp_jax.core.units import DB_RANGE, amplitude_to_db, power_to_db, safe_log
from ddsp_jax.core.validation import check_positive, check_positive_int, check_rank
from ddsp_jax.defaults import FRAME_RATE, SAMPLE_RATE


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


def _sqrt_zero_gradient_at_zero(x: jax.Array) -> jax.Array:
    """``sqrt(x)`` for ``x >= 0`` with a zero gradient where ``x == 0`` (instead of inf; the
    square root of silence is then inert). NaN is not zero: bad input stays visible."""
    zero = x == 0.0
    return jnp.where(zero, 0.0, jnp.sqrt(jnp.where(zero, 1.0, x)))


def compute_mag(
    audio: jax.Array, size: int = 2048, overlap: float = 0.75, pad_end: bool = True
) -> jax.Array:
    """STFT magnitude ``[batch, n_frames, size // 2 + 1]`` (zero gradient at exact zeros)."""
    spectrum = stft(audio, size, overlap, pad_end)
    return _sqrt_zero_gradient_at_zero(jnp.real(spectrum) ** 2 + jnp.imag(spectrum) ** 2)


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
    sample_rate: float = SAMPLE_RATE,
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
    sample_rate: float = SAMPLE_RATE,
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
    sample_rate: float = SAMPLE_RATE,
) -> jax.Array:
    """Mel-frequency cepstral coefficients ``[batch, n_frames, mfcc_bins]``."""
    if not 0 < mfcc_bins <= mel_bins:
        raise ValueError(f"mfcc_bins must be in [1, mel_bins={mel_bins}], got {mfcc_bins}.")
    logmel = compute_logmel(audio, lo_hz, hi_hz, mel_bins, fft_size, overlap, pad_end, sample_rate)
    return logmel @ jnp.asarray(_dct_matrix(mel_bins)[:, :mfcc_bins])


# ----------------------------------------------------------------------------------------------
# Frame-rate energy and loudness (magenta/ddsp ``compute_rms_energy``, ``compute_power`` and
# ``compute_loudness``).
# ----------------------------------------------------------------------------------------------
PADDINGS = ("center", "same", "valid")


def frame_starts(
    n_samples: int, frame_size: int, sample_rate: int, frame_rate: int, padding: str = "center"
) -> tuple[int, np.ndarray]:
    """Where the frames of a frame-rate feature start, and how the audio is padded.

    Frame ``i`` is centred (``"center"``) or starts (``"same"``, ``"valid"``) at sample
    ``floor(i * sample_rate / frame_rate)``: the hop ``sample_rate / frame_rate`` need not be
    a whole number (44.1 kHz at 250 Hz), and where it is, this is magenta's framing.
    ``"center"`` pads ``frame_size // 2`` zeros at both ends and gives
    ``1 + floor(n_samples * frame_rate / sample_rate)`` frames; ``"same"`` pads the end and
    gives ``ceil(n_samples * frame_rate / sample_rate)``; ``"valid"`` pads nothing and gives
    the frames that fit.

    Returns:
        ``(left_padding, starts)``: zeros before the audio, and each frame's first sample in
        the padded audio ``[n_frames]`` (int).
    """
    check_positive_int("frame_size", frame_size)
    check_positive_int("sample_rate", sample_rate)
    check_positive_int("frame_rate", frame_rate)
    if padding not in PADDINGS:
        raise ValueError(f"padding must be one of {PADDINGS}, got {padding!r}.")
    if frame_rate > sample_rate:
        raise ValueError(f"frame_rate {frame_rate} Hz exceeds sample_rate {sample_rate} Hz.")
    if padding == "center":
        n_frames, left = 1 + n_samples * frame_rate // sample_rate, frame_size // 2
    elif padding == "same":
        n_frames, left = -(-n_samples * frame_rate // sample_rate), 0
    else:
        if n_samples < frame_size:
            raise ValueError(f"audio of {n_samples} samples is shorter than one frame.")
        n_frames, left = 1 + (n_samples - frame_size) * frame_rate // sample_rate, 0
    starts = np.arange(n_frames, dtype=np.int64) * sample_rate // frame_rate
    return left, starts


def frames_at_rate(
    audio: jax.Array, frame_size: int, sample_rate: int, frame_rate: int, padding: str
) -> jax.Array:
    """``[batch, n_samples]`` (or ``[n_samples]``) → frames ``[batch, n_frames, frame_size]``
    placed by ``frame_starts``."""
    audio = jnp.asarray(audio, jnp.float32)
    if audio.ndim == 1:
        audio = audio[None]
    check_rank("audio", audio, (2,), "[batch, n_samples]")
    n_samples = audio.shape[-1]
    left, starts = frame_starts(n_samples, frame_size, sample_rate, frame_rate, padding)
    right = max(0, int(starts[-1]) + frame_size - left - n_samples)
    padded = jnp.pad(audio, ((0, 0), (left, right)))
    return padded[:, starts[:, None] + np.arange(frame_size)[None, :]]


def compute_rms_energy(
    audio: jax.Array,
    sample_rate: int = SAMPLE_RATE,
    frame_rate: int = FRAME_RATE,
    frame_size: int = 512,
    padding: str = "center",
) -> jax.Array:
    """Root-mean-square amplitude of each frame.

    Args:
        audio: ``[batch, n_samples]`` or ``[n_samples]``.
        sample_rate: Samples per second of ``audio`` (Hz).
        frame_rate: Frames per second (Hz).
        frame_size: Samples per frame (rectangular window).
        padding: ``"center"``, ``"same"`` or ``"valid"`` (see ``frame_starts``).

    Returns:
        ``[batch, n_frames]`` (``[n_frames]`` for 1-D input).
    """
    frames = frames_at_rate(audio, frame_size, sample_rate, frame_rate, padding)
    rms = _sqrt_zero_gradient_at_zero(jnp.mean(jnp.square(frames), axis=-1))
    return rms[0] if jnp.ndim(audio) == 1 else rms


def compute_power(
    audio: jax.Array,
    sample_rate: int = SAMPLE_RATE,
    frame_rate: int = FRAME_RATE,
    frame_size: int = 512,
    ref_db: float = 0.0,
    range_db: float = DB_RANGE,
    padding: str = "center",
) -> jax.Array:
    """Frame power in dB: ``amplitude_to_db`` of ``compute_rms_energy`` minus ``ref_db``,
    floored at ``-range_db``. Shapes as ``compute_rms_energy``."""
    rms = compute_rms_energy(audio, sample_rate, frame_rate, frame_size, padding)
    return amplitude_to_db(rms, ref_db=ref_db, range_db=range_db)


def a_weighting(frequencies: np.ndarray, min_db: float = -80.0) -> np.ndarray:
    """A-weighting (IEC 61672) in dB, as ``librosa.A_weighting``: about 0 dB at 1 kHz,
    floored at ``min_db`` (the 0 Hz bin would otherwise be −inf)."""
    f_squared = np.square(np.asarray(frequencies, np.float64))
    c = np.array([20.598997, 107.65265, 737.86223, 12194.217]) ** 2
    with np.errstate(divide="ignore"):
        weight = 2.0 + 20.0 * (
            np.log10(c[3])
            + 2.0 * np.log10(f_squared)
            - np.log10(f_squared + c[0])
            - np.log10(f_squared + c[3])
            - 0.5 * np.log10(f_squared + c[1])
            - 0.5 * np.log10(f_squared + c[2])
        )
    return np.maximum(weight, min_db)


@functools.lru_cache(maxsize=32)
def _a_weighting_power(n_fft: int, sample_rate: int) -> np.ndarray:
    frequencies = np.arange(n_fft // 2 + 1) * sample_rate / n_fft
    return (10.0 ** (a_weighting(frequencies) / 10.0)).astype(np.float32)


def compute_loudness(
    audio: jax.Array,
    sample_rate: int = SAMPLE_RATE,
    frame_rate: int = FRAME_RATE,
    n_fft: int = 512,
    range_db: float = DB_RANGE,
    ref_db: float = 0.0,
    padding: str = "center",
) -> jax.Array:
    """Perceptual loudness in dB: magenta/ddsp's ``compute_loudness`` (v3 convention).

    Periodic-Hann STFT of ``n_fft``-sample frames at ``frame_rate``, power ``|X|²``, A-weighting
    applied to the power (``10^(A/10)``), mean over the ``n_fft // 2 + 1`` bins, then
    ``power_to_db``: minus ``ref_db``, floored at ``-range_db``. Jittable and
    differentiable; any sample rate (the hop ``sample_rate / frame_rate`` may be fractional,
    see ``frame_starts``). Reference (magenta/ddsp 3.7, 16 kHz, 250 Hz, center): a 440 Hz
    sine of amplitude 0.5 reads 15.72 dB with ``n_fft=2048`` and 9.69 dB with 512.

    Args:
        audio: ``[batch, n_samples]`` or ``[n_samples]``.
        sample_rate: Samples per second of ``audio`` (Hz).
        frame_rate: Frames per second (Hz).
        n_fft: Frame and FFT size (samples).
        range_db: Dynamic range (dB): the result is floored at ``-range_db``.
        ref_db: Level subtracted from the result (dB).
        padding: ``"center"``, ``"same"`` or ``"valid"`` (see ``frame_starts``).

    Returns:
        Loudness ``[batch, n_frames]`` (dB; ``[n_frames]`` for 1-D input).

    >>> t = jnp.arange(16000) / 16000
    >>> loudness = compute_loudness(0.5 * jnp.sin(2 * jnp.pi * 440.0 * t), n_fft=2048)
    >>> loudness.shape, round(float(loudness[125]), 1)
    ((251,), 15.7)
    """
    frames = frames_at_rate(audio, n_fft, sample_rate, frame_rate, padding)
    spectrum = jnp.fft.rfft(frames * _hann(n_fft), n_fft)
    power = jnp.real(spectrum) ** 2 + jnp.imag(spectrum) ** 2
    weighted = jnp.mean(power * _a_weighting_power(n_fft, sample_rate), axis=-1)
    loudness = power_to_db(weighted, ref_db=ref_db, range_db=range_db)
    return loudness[0] if jnp.ndim(audio) == 1 else loudness
