"""Inference with a saved model: resynthesis and timbre transfer of audio of any length, rate
and channel count."""

import dataclasses
import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import soxr
from flax import nnx

from ddsp_jax.core.units import DB_RANGE, hz_to_midi, midi_to_hz
from ddsp_jax.features.extract import compute_features
from ddsp_jax.features.notes import is_silent, note_frames
from ddsp_jax.models.autoencoder import Autoencoder, render
from ddsp_jax.models.saved import SavedModel

# ``ddsp transfer`` warns when, on the note frames, the output's loudness is this far (dB,
# median) from the loudness it was conditioned on: the model does not follow the input.
LOUDNESS_WARNING_DB = 10.0


class SilentInputError(ValueError):
    """Input with no sound to resynthesise."""


def model_for_length(saved: SavedModel, n_samples: int) -> Autoencoder:
    """The saved model, synthesising ``n_samples`` at a time (no parameter depends on it)."""
    synth = dataclasses.replace(saved.config.synth, n_samples=n_samples)
    config = dataclasses.replace(saved.config, synth=synth)
    graphdef = nnx.split(nnx.eval_shape(lambda: Autoencoder(config, rngs=nnx.Rngs(0))))[0]
    return nnx.merge(graphdef, nnx.state(saved.model))


def whole_frames(n_samples: int, sample_rate: int, frame_rate: int) -> int:
    """The fewest samples ≥ ``n_samples`` that hold a whole number of frames."""
    unit = sample_rate // math.gcd(sample_rate, frame_rate)
    return -(-n_samples // unit) * unit


def extract(saved: SavedModel, audio: np.ndarray, f0_model: str = "full") -> dict[str, np.ndarray]:
    """The model's conditioning of mono ``audio`` ``[n_samples]`` at the model's sample rate:
    ``f0_hz``, ``f0_confidence``, ``loudness_db``, each ``[n_frames]`` with ``n_frames``
    covering ``whole_frames`` samples (the audio zero-padded at the end).

    Raises:
        ValueError: For audio shorter than one frame.
    """
    sample_rate, frame_rate = saved.sample_rate, saved.frame_rate
    if len(audio) * frame_rate < sample_rate:
        raise ValueError(
            f"audio of {len(audio)} samples is shorter than one frame "
            f"({sample_rate / frame_rate:g} samples at {sample_rate} Hz)."
        )
    n_samples = whole_frames(len(audio), sample_rate, frame_rate)
    padded = np.pad(np.asarray(audio, np.float32), (0, n_samples - len(audio)))
    n_frames = n_samples * frame_rate // sample_rate
    features = compute_features(padded[None], sample_rate, frame_rate, f0_model)
    return {name: values[0, :n_frames] for name, values in features.items()}


def synthesize(saved: SavedModel, f0_hz: np.ndarray, loudness_db: np.ndarray) -> np.ndarray:
    """Audio ``[n_frames · hop]`` at the model's sample rate from conditioning
    ``[n_frames]`` (one pass: the decoder's GRU and the oscillators' phase run through the
    whole input, so there are no chunk boundaries)."""
    n_samples = len(f0_hz) * saved.sample_rate // saved.frame_rate
    model = model_for_length(saved, n_samples)
    audio = render(model, np.asarray(f0_hz)[None], np.asarray(loudness_db)[None])
    return np.asarray(audio[0])


def resynthesize(
    saved: SavedModel, audio: np.ndarray, sample_rate: int, f0_model: str = "full"
) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Resynthesise ``audio`` (``[n_samples]`` or ``[n_samples, channels]``, at
    ``sample_rate``) with the model: features extracted at the model's rate, synthesis there,
    the result resampled back to ``sample_rate`` with the input's length.

    Returns:
        ``(audio [n_samples] at sample_rate, features)``.

    Raises:
        SilentInputError: For audio without sound (peak below −80 dBFS).
        ValueError: For audio shorter than one frame or with NaN/inf.
    """
    at_model_rate, n_samples = _at_model_rate(saved, audio, sample_rate)
    features = extract(saved, at_model_rate, f0_model)
    out = synthesize(saved, features["f0_hz"], features["loudness_db"])
    return _at_input_rate(saved, out, sample_rate, n_samples), features


def _at_model_rate(
    saved: SavedModel, audio: np.ndarray, sample_rate: int
) -> tuple[np.ndarray, int]:
    """Mono ``audio`` at the model's sample rate, and the input's length (samples)."""
    audio = np.asarray(audio, np.float32)
    if audio.ndim == 2:
        audio = audio.mean(axis=1)
    if not np.all(np.isfinite(audio)):
        raise ValueError("the audio has NaN or infinite samples.")
    if is_silent(audio):
        raise SilentInputError("the audio is silent: no notes were detected.")
    if sample_rate != saved.sample_rate:
        return soxr.resample(audio, sample_rate, saved.sample_rate, "HQ").astype(np.float32), len(
            audio
        )
    return audio, len(audio)


def _at_input_rate(
    saved: SavedModel, out: np.ndarray, sample_rate: int, n_samples: int
) -> np.ndarray:
    """Synthesis at the model's rate → ``n_samples`` at ``sample_rate``."""
    if sample_rate != saved.sample_rate:
        out = soxr.resample(out, saved.sample_rate, sample_rate, "HQ")
    return np.pad(out, (0, max(0, n_samples - len(out))))[:n_samples].astype(np.float32)


# ----------------------------------------------------------------------------------------------
# Timbre transfer: magenta's adjustments of the conditioning toward the training data.
# ----------------------------------------------------------------------------------------------
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
) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """magenta's timbre-transfer adjustments of ``features`` (``f0_hz``, ``f0_confidence``,
    ``loudness_db``, each ``[n_frames]``) toward the model's training ``statistics``.

    ``pitch_shift``: semitones, or ``"auto"``: the whole octaves that bring the mean pitch of
    the note frames closest to the training mean pitch. ``loudness_shift``: dB, or
    ``"auto"``: quantile mapping of the note frames' loudness onto the training note
    loudness. Frames that are not notes are then lowered by ``quiet_db``; ``autotune_amount``
    pulls the note frames' pitch toward semitones.

    Returns:
        ``(adjusted features, report)``: the report gives the shifts applied and the number
        of note frames.

    Raises:
        ValueError: For ``"auto"`` without statistics, or a bad setting.
    """
    loudness = np.asarray(features["loudness_db"], np.float32)
    f0_midi = np.asarray(hz_to_midi(features["f0_hz"]), np.float64)
    mask = note_frames(features["f0_confidence"], loudness)
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


def transfer(
    saved: SavedModel,
    audio: np.ndarray,
    sample_rate: int,
    f0_model: str = "full",
    **adjustments: Any,
) -> tuple[np.ndarray, dict[str, np.ndarray], dict[str, np.ndarray], dict[str, Any]]:
    """Timbre transfer: ``audio`` (any rate, mono or stereo) played by the model, its
    features adjusted by ``adjust(**adjustments)``.

    Returns:
        ``(audio [n_samples] at sample_rate, features, adjusted features, report)``; the
        report (see ``adjust``) adds ``loudness_error_db``: the median, over note frames, of
        the output's loudness minus the adjusted loudness it was asked for (near 0 dB for a
        model that follows loudness).

    Raises:
        SilentInputError: For silent audio; ValueError for audio shorter than a frame.
    """
    at_model_rate, n_samples = _at_model_rate(saved, audio, sample_rate)
    features = extract(saved, at_model_rate, f0_model)
    adjusted, report = adjust(features, saved.statistics, **adjustments)
    if report["note_frames"] == 0:
        raise SilentInputError("no notes were detected (no confidently pitched frames).")
    out = synthesize(saved, adjusted["f0_hz"], adjusted["loudness_db"])
    out_loudness = compute_features(out[None], saved.sample_rate, saved.frame_rate, None)
    mask = note_frames(features["f0_confidence"], features["loudness_db"])
    error = out_loudness["loudness_db"][0, : len(mask)] - adjusted["loudness_db"]
    report["loudness_error_db"] = float(np.median(error[mask]))
    return _at_input_rate(saved, out, sample_rate, n_samples), features, adjusted, report
