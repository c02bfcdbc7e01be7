"""Timbre-transfer benchmark: how closely a model's output follows a sung melody's pitch."""

from typing import Any

import numpy as np

from ddsp_jax.benchmarks.common import machine
from ddsp_jax.data.procedural import sung_melody
from ddsp_jax.features.f0 import compute_f0
from ddsp_jax.features.notes import CONFIDENT
from ddsp_jax.inference import transfer
from ddsp_jax.training.export import load_model_or_run

MELODY = [57, 59, 61, 62, 64, 62, 61, 59, 57]  # A major, up and down; MIDI.
NOTE_SECONDS = 0.5


def run(model: str, f0_model: str = "tiny", sample_rate: int = 44100) -> dict[str, Any]:
    """Transfer ``sung_melody(MELODY)`` (at ``sample_rate``) with ``model`` (auto pitch and
    loudness shifts), track the output's f0 with CREPE ``f0_model``, and compare it with the
    input's f0 after the pitch shift on the input's confident frames (CREPE confidence ≥
    ``CONFIDENT``).

    Returns:
        ``pitch_shift_semitones``, ``loudness_error_db`` (see ``inference.transfer``),
        ``confident_frames``, ``within_50_cents`` (share of them),
        ``median_error_cents``, ``mean_error_cents``; ``machine``.
    """
    saved = load_model_or_run(model)
    audio, _ = sung_melody(MELODY, NOTE_SECONDS, sample_rate)
    out, features, adjusted, report = transfer(saved, audio, sample_rate, f0_model)
    f0_out, _ = compute_f0(out, sample_rate, saved.frame_rate, capacity=f0_model)
    n = min(len(f0_out), len(adjusted["f0_hz"]))
    confident = features["f0_confidence"][:n] >= CONFIDENT
    cents = np.abs(1200.0 * np.log2(f0_out[:n][confident] / adjusted["f0_hz"][:n][confident]))
    return {
        "benchmark": "transfer",
        "model": model,
        "f0_model": f0_model,
        "pitch_shift_semitones": report["pitch_shift_semitones"],
        "loudness_error_db": report["loudness_error_db"],
        "confident_frames": int(confident.sum()),
        "within_50_cents": float(np.mean(cents <= 50.0)),
        "median_error_cents": float(np.median(cents)),
        "mean_error_cents": float(np.mean(cents)),
        "machine": machine(),
    }
