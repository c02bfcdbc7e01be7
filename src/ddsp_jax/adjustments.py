"""Timbre transfer's adjustments (magenta's): the conditioning of a melody moved toward a
model's training data — whole-octave pitch shift, loudness quantile mapping, quieter
non-note frames and autotune."""

from collections.abc import Sequence
from typing import Any

import numpy as np

from ddsp_jax.core.units import DB_RANGE, hz_to_midi, midi_to_hz
from ddsp_jax.features.notes import CONFIDENT, note_frames


def octave_shift(mean_pitch: float, target_mean_pitch: float) -> int:
    """The whole-octave shift (semitones) that brings ``mean_pitch`` closest to
    ``target_mean_pitch`` (MIDI)."""
    return 12 * round((target_mean_pitch - mean_pitch) / 12.0)


def quantile_map(
    values: np.ndarray, mask: np.ndarray, target_quantiles: Sequence[float]
) -> np.ndarray:
    """Map ``values`` so that those under ``mask`` take the distribution whose quantiles
    (0-100 %, evenly spaced) are ``target_quantiles``: each value goes to the target quantile
    of its rank among the masked values (a monotone map, applied to every value; values
    beyond the masked range take the target's extremes)."""
    target = np.asarray(target_quantiles, np.float64)
    percent = np.linspace(0.0, 100.0, len(target))
    source = np.percentile(np.asarray(values, np.float64)[mask], percent)
    # Ties in the source quantiles (e.g. many frames at the floor) would make interp ambiguous.
    source = source + np.arange(len(source)) * 1e-9
    return np.interp(values, source, target).astype(np.float32)


def autotune(f0_midi: np.ndarray, mask: np.ndarray, amount: float) -> np.ndarray:
    """Pull pitch toward the nearest semitone by ``amount`` (0: unchanged, 1: on the
    semitone), in the input's own tuning (the circular mean offset from 12-TET over
    ``mask``'s frames, as magenta's ``get_tuning_factor``), on ``mask``'s frames only."""
    f0_midi = np.asarray(f0_midi, np.float64)
    if not 0.0 <= amount <= 1.0:
        raise ValueError(f"autotune amount must be in [0, 1], got {amount}.")
    if amount == 0.0 or not np.any(mask):
        return f0_midi.astype(np.float32)
    angle = 2 * np.pi * f0_midi[mask]
    tuning = np.angle(np.mean(np.exp(1j * angle))) / (2 * np.pi)  # Semitones, in [-0.5, 0.5).
    target = np.round(f0_midi - tuning) + tuning
    tuned = np.where(mask, f0_midi + amount * (target - f0_midi), f0_midi)
    return tuned.astype(np.float32)


def adjust(
    features: dict[str, np.ndarray],
    statistics: dict[str, Any] | None,
    pitch_shift: float | str = "auto",
    loudness_shift: float | str = "auto",
    quiet_db: float = 20.0,
    autotune_amount: float = 0.0,
    note_threshold: float = CONFIDENT,
) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """magenta's timbre-transfer adjustments of ``features`` (``f0_hz``, ``f0_confidence``,
    ``loudness_db``, each ``[n_frames]``) toward the model's training ``statistics``.

    ``pitch_shift``: semitones, or ``"auto"``: the whole octaves that bring the mean pitch of
    the note frames closest to the training mean pitch. ``loudness_shift``: dB, or
    ``"auto"``: quantile mapping of the note frames' loudness onto the training note
    loudness. Frames that are not notes (f0 confidence below ``note_threshold`` or too quiet,
    ``note_frames``) are then lowered by ``quiet_db``; ``autotune_amount`` pulls the note
    frames' pitch toward semitones.

    Returns:
        ``(adjusted features, report)``: the report gives the shifts applied and the number
        of note frames.

    Raises:
        ValueError: For ``"auto"`` without statistics, or a bad setting.
    """
    loudness = np.asarray(features["loudness_db"], np.float32)
    f0_midi = np.asarray(hz_to_midi(features["f0_hz"]), np.float64)
    if not 0.0 <= note_threshold <= 1.0:
        raise ValueError(f"the note threshold must be in [0, 1], got {note_threshold}.")
    mask = note_frames(features["f0_confidence"], loudness, threshold=note_threshold)
    auto = [
        name for name, v in (("pitch", pitch_shift), ("loudness", loudness_shift)) if v == "auto"
    ]
    if auto and (statistics is None or statistics.get("mean_pitch_midi") is None):
        raise ValueError(
            f"automatic {' and '.join(auto)} shift needs the model's training statistics, and "
            "this model has none with pitched frames: give the shifts in semitones and dB."
        )
    report: dict[str, Any] = {"note_frames": int(mask.sum()), "n_frames": len(mask)}
    if pitch_shift == "auto":
        pitch_shift = (
            octave_shift(float(np.mean(f0_midi[mask])), statistics["mean_pitch_midi"])
            if mask.any()
            else 0
        )
    report["pitch_shift_semitones"] = float(pitch_shift)
    f0_midi = autotune(f0_midi, mask, autotune_amount) + float(pitch_shift)
    if loudness_shift == "auto":
        report["loudness_shift_db"] = "quantile map"
        if mask.any():
            loudness = quantile_map(loudness, mask, statistics["note_loudness_db_quantiles"])
    else:
        report["loudness_shift_db"] = float(loudness_shift)
        loudness = loudness + float(loudness_shift)
    loudness = np.where(mask, loudness, loudness - quiet_db)
    adjusted = {
        "f0_hz": np.asarray(midi_to_hz(f0_midi), np.float32),
        "f0_confidence": np.asarray(features["f0_confidence"], np.float32),
        "loudness_db": np.maximum(loudness, -DB_RANGE).astype(np.float32),
    }
    return adjusted, report
