"""Where notes sound, and the statistics of a dataset's features that timbre transfer needs.

A *note frame* is a frame whose CREPE confidence is at least ``CONFIDENT`` (magenta's
``F0LdEvaluator`` threshold) and whose loudness is above ``NOTE_MIN_LOUDNESS_DB``, with short
gaps between such frames filled. Preparation (``dataset.json`` statistics), model export,
evaluation and timbre transfer all use these definitions.
"""

from collections.abc import Callable
from typing import Any

import numpy as np

from ddsp_jax.core.units import hz_to_midi

CONFIDENT = 0.85  # f0 confidence of a note frame (magenta's F0LdEvaluator threshold).
NOTE_MIN_LOUDNESS_DB = -60.0  # A note frame is also louder than this.
NOTE_GAP_FRAMES = 25  # Shorter gaps between note frames are filled (0.1 s at 250 Hz).
SILENCE_PEAK = 1e-4  # Audio whose peak is below this (−80 dBFS) is silent.


def signal_peak(audio: np.ndarray) -> float:
    """The peak of ``audio`` (``[n_samples]`` or ``[n_samples, channels]``) once each
    channel's mean is removed: a constant offset (DC) carries no sound. 0 when empty."""
    audio = np.asarray(audio, np.float64)
    if audio.size == 0:
        return 0.0
    return float(np.max(np.abs(audio - np.mean(audio, axis=0))))


def is_silent(audio: np.ndarray) -> bool:
    """Whether ``audio`` (``[n_samples]`` or ``[n_samples, channels]``) is empty or, its
    constant offset removed (``signal_peak``), peaks below ``SILENCE_PEAK`` (−80 dBFS).

    >>> is_silent(np.zeros(16000)), is_silent(np.full(16000, 0.1))
    (True, True)
    >>> is_silent(0.1 + 0.01 * np.sin(np.arange(16000)))
    False
    """
    return signal_peak(audio) < SILENCE_PEAK


def note_frames(
    f0_confidence: np.ndarray,
    loudness_db: np.ndarray,
    max_gap: int = NOTE_GAP_FRAMES,
    threshold: float = CONFIDENT,
) -> np.ndarray:
    """Where notes sound, ``[..., n_frames]`` bool.

    Frames whose f0 confidence is at least ``threshold`` (``CONFIDENT``) and loudness above
    ``NOTE_MIN_LOUDNESS_DB``, with gaps of fewer than ``max_gap`` frames between them filled
    (a morphological closing along time), so that a vibrato or consonant that dips the
    confidence does not cut a note.

    Args:
        f0_confidence: CREPE confidence in [0, 1], ``[..., n_frames]``.
        loudness_db: Loudness (dB), the same shape.
        max_gap: Gaps shorter than this many frames are filled.

    Returns:
        Bool ``[..., n_frames]``.

    >>> confidence = np.array([0.9, 0.9, 0.1, 0.9, 0.1, 0.1, 0.1, 0.1])
    >>> note_frames(confidence, np.full(8, -20.0), max_gap=3).astype(int)
    array([1, 1, 1, 1, 0, 0, 0, 0])
    """
    notes = (np.asarray(f0_confidence) >= threshold) & (
        np.asarray(loudness_db) > NOTE_MIN_LOUDNESS_DB
    )
    if max_gap <= 1 or notes.shape[-1] == 0:
        return notes
    half = max_gap // 2
    width = [(0, 0)] * (notes.ndim - 1) + [(half, half)]

    def sliding(x: np.ndarray, reduce: Callable, fill: bool) -> np.ndarray:
        padded = np.pad(x, width, constant_values=fill)
        windows = np.lib.stride_tricks.sliding_window_view(padded, 2 * half + 1, axis=-1)
        return reduce(windows, axis=-1)

    return sliding(sliding(notes, np.any, False), np.all, True)


def feature_statistics(
    f0_hz: np.ndarray, f0_confidence: np.ndarray, loudness_db: np.ndarray
) -> dict[str, Any]:
    """What timbre transfer needs of a training set's features.

    Loudness quantiles (0-100 %, 101 values; dB) over all frames and over ``note_frames``,
    f0 quantiles and mean pitch (MIDI) over note frames, and the share of note frames.
    Note-frame figures are None where there are none.

    Args:
        f0_hz: f0 (Hz), ``[..., n_frames]``.
        f0_confidence: Its confidence, the same shape.
        loudness_db: Loudness (dB), the same shape.

    Returns:
        ``confidence_threshold``, ``note_frame_fraction``, ``loudness_db_quantiles``,
        ``note_loudness_db_quantiles``, ``f0_midi_quantiles``, ``mean_pitch_midi``,
        ``mean_loudness_db``.

    >>> stats = feature_statistics(np.full(100, 440.0), np.ones(100), np.full(100, -20.0))
    >>> stats["mean_pitch_midi"], stats["note_frame_fraction"]
    (69.0, 1.0)
    """
    loudness = np.asarray(loudness_db, np.float64).ravel()
    notes = note_frames(f0_confidence, loudness_db).ravel()
    pitch = np.asarray(hz_to_midi(np.asarray(f0_hz, np.float32).ravel()[notes]))
    percent = np.linspace(0.0, 100.0, 101)
    stats: dict[str, Any] = {
        "confidence_threshold": CONFIDENT,
        "note_frame_fraction": float(np.mean(notes)),
        "loudness_db_quantiles": np.percentile(loudness, percent).round(4).tolist(),
        "note_loudness_db_quantiles": None,
        "f0_midi_quantiles": None,
        "mean_pitch_midi": None,
        "mean_loudness_db": float(np.mean(loudness)),
    }
    if notes.any():
        stats["note_loudness_db_quantiles"] = (
            np.percentile(loudness[notes], percent).round(4).tolist()
        )
        stats["f0_midi_quantiles"] = np.percentile(pitch, percent).round(4).tolist()
        stats["mean_pitch_midi"] = float(np.mean(pitch))
    return stats
