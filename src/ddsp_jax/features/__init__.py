"""Features computed from audio: CREPE f0 with confidence (weights read without torch),
A-weighted loudness and power (of a whole signal, or of a long one chunk by chunk in bounded
memory), note frames and a dataset's feature statistics, and the same features of audio that arrives
block by block in real time (``StreamingFeatures``)."""

from ddsp_jax.features.extract import (
    FEATURE_NAMES,
    LEVEL_FEATURES,
    LOUDNESS_N_FFT,
    compute_features,
    features_in_chunks,
    level_conditioning,
)
from ddsp_jax.features.f0 import Crepe, ViterbiDecoder, compute_f0, crepe_salience, load_crepe
from ddsp_jax.features.notes import (
    CONFIDENT,
    NOTE_GAP_FRAMES,
    NOTE_MIN_LOUDNESS_DB,
    SILENCE_PEAK,
    feature_statistics,
    is_silent,
    note_frames,
    signal_peak,
)
from ddsp_jax.features.streaming import StreamingFeatures

__all__ = [
    "CONFIDENT",
    "FEATURE_NAMES",
    "LEVEL_FEATURES",
    "LOUDNESS_N_FFT",
    "NOTE_GAP_FRAMES",
    "NOTE_MIN_LOUDNESS_DB",
    "SILENCE_PEAK",
    "Crepe",
    "StreamingFeatures",
    "ViterbiDecoder",
    "compute_f0",
    "compute_features",
    "crepe_salience",
    "feature_statistics",
    "features_in_chunks",
    "is_silent",
    "level_conditioning",
    "load_crepe",
    "note_frames",
    "signal_peak",
]
