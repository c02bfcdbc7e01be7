"""Inference with a saved model: resynthesis of audio of any length, rate and channel count."""

import dataclasses
import math

import jax
import numpy as np
import soxr
from flax import nnx

from ddsp_jax.data.prepare import SILENCE_PEAK
from ddsp_jax.features.extract import compute_features
from ddsp_jax.models.autoencoder import Autoencoder
from ddsp_jax.training.export import SavedModel


class SilentInputError(ValueError):
    """Input with no sound to resynthesise."""


def model_for_length(saved: SavedModel, n_samples: int) -> Autoencoder:
    """The saved model, synthesising ``n_samples`` at a time (no parameter depends on it)."""
    synth = dataclasses.replace(saved.config.model.synth, n_samples=n_samples)
    config = dataclasses.replace(saved.config.model, synth=synth)
    graphdef = nnx.split(nnx.eval_shape(lambda: Autoencoder(config, rngs=nnx.Rngs(0))))[0]
    return nnx.merge(graphdef, nnx.state(saved.model))


def whole_frames(n_samples: int, sample_rate: int, frame_rate: int) -> int:
    """The fewest samples ≥ ``n_samples`` that hold a whole number of frames."""
    unit = sample_rate // math.gcd(sample_rate, frame_rate)
    return -(-n_samples // unit) * unit


@nnx.jit
def _synthesize(model: Autoencoder, f0_hz: jax.Array, loudness_db: jax.Array) -> jax.Array:
    batch = {"f0_hz": f0_hz, "loudness_db": loudness_db}
    return model(batch, key=jax.random.key(0))["audio_synth"]


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
    audio = _synthesize(model, np.asarray(f0_hz)[None], np.asarray(loudness_db)[None])
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
    audio = np.asarray(audio, np.float32)
    if audio.ndim == 2:
        audio = audio.mean(axis=1)
    if not np.all(np.isfinite(audio)):
        raise ValueError("the audio has NaN or infinite samples.")
    if audio.size == 0 or np.max(np.abs(audio)) < SILENCE_PEAK:
        raise SilentInputError("the audio is silent: no notes were detected.")
    model_rate = saved.sample_rate
    at_model_rate = audio
    if sample_rate != model_rate:
        at_model_rate = soxr.resample(audio, sample_rate, model_rate, "HQ").astype(np.float32)
    features = extract(saved, at_model_rate, f0_model)
    out = synthesize(saved, features["f0_hz"], features["loudness_db"])
    if sample_rate != model_rate:
        out = soxr.resample(out, model_rate, sample_rate, "HQ")
    out = np.pad(out, (0, max(0, len(audio) - len(out))))[: len(audio)]
    return out.astype(np.float32), features
