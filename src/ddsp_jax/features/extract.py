"""The conditioning features of audio: CREPE f0 with confidence, and A-weighted loudness."""

import functools

import jax
import numpy as np

from ddsp_jax.core.spectral import compute_loudness
from ddsp_jax.defaults import FRAME_RATE
from ddsp_jax.features.f0 import compute_f0

LOUDNESS_N_FFT = 512  # magenta's data preparation (prepare_tfrecord) computes loudness so.
FEATURE_NAMES = ("f0_hz", "f0_confidence", "loudness_db")


@functools.partial(jax.jit, static_argnums=(1, 2, 3))
def _loudness(audio: jax.Array, sample_rate: int, frame_rate: int, n_fft: int) -> jax.Array:
    return compute_loudness(audio, sample_rate, frame_rate, n_fft)


def compute_features(
    audio: np.ndarray,
    sample_rate: int,
    frame_rate: int = FRAME_RATE,
    f0_model: str | None = "full",
    loudness_n_fft: int = LOUDNESS_N_FFT,
    f0_rate: int | None = None,
) -> dict[str, np.ndarray]:
    """f0 (Hz), its confidence in [0, 1] and loudness (dB) of ``audio`` ``[batch, n_samples]``.

    Frames are centred (frame ``i`` at ``i / frame_rate`` s), so there are
    ``1 + n_samples * frame_rate // sample_rate`` of them; f0 by CREPE (``f0_model``: ``"tiny"``
    or ``"full"``; None: loudness only) with Viterbi decoding, loudness by
    ``compute_loudness``. ``f0_rate``: frames per second CREPE runs at, interpolated to
    ``frame_rate`` (``compute_f0``'s ``network_rate``; None: ``frame_rate``).

    Returns:
        ``{"f0_hz", "f0_confidence", "loudness_db"}``, each ``[batch, n_frames]`` float32.
    """
    loudness = np.asarray(
        _loudness(np.asarray(audio, np.float32), sample_rate, frame_rate, loudness_n_fft)
    )
    features = {"loudness_db": loudness.astype(np.float32)}
    if f0_model is not None:
        f0_hz, confidence = compute_f0(
            audio, sample_rate, frame_rate, capacity=f0_model, network_rate=f0_rate
        )
        features["f0_hz"] = np.asarray(f0_hz, np.float32)
        features["f0_confidence"] = np.asarray(confidence, np.float32)
    return features
