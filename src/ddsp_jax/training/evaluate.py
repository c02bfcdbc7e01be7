"""Evaluation of resynthesis, as magenta's ``F0LdEvaluator``: features are re-extracted from
the resynthesis and compared with the original's.

Per example: loudness L1 (dB, all frames); on the frames where the original's CREPE
confidence is at least 0.85, the f0 L1 (cents) and the raw pitch accuracy (share of those
frames within 50 cents). An example whose original has no such frame is not scored for f0;
one whose f0 L1 exceeds 12 semitones (or whose resynthesis has no trackable pitch there)
is an outlier, counted in the outlier ratio and left out of the mean f0 L1.
"""

import sys
from pathlib import Path
from typing import Any

import jax
import numpy as np
from flax import nnx
from tqdm import tqdm

from ddsp_jax import plots
from ddsp_jax.data.dataset import PreparedDataset
from ddsp_jax.features.extract import compute_features, level_conditioning
from ddsp_jax.features.notes import CONFIDENT
from ddsp_jax.models.autoencoder import Autoencoder, render
from ddsp_jax.models.saved import SavedModel
from ddsp_jax.serialization import from_dict
from ddsp_jax.training.config import TrainConfig
from ddsp_jax.training.metrics import write_summary
from ddsp_jax.training.parallel import is_main_process
from ddsp_jax.training.trainer import example_spectral_losses, initialize_model

OUTLIER_CENTS = 1200.0  # magenta's OUTLIER_MIDI_THRESH: 12 semitones.
RPA_CENTS = 50.0
# Below this held-out raw pitch accuracy after EARLY_STEPS the model is not playing its
# pitch: its harmonic amplitude has usually collapsed to silence, leaving the filtered noise
# and the reverb to imitate the spectrum's envelope, a minimum training does not leave.
PITCH_LOST_ACCURACY, EARLY_STEPS = 0.5, 500


def example_metrics(
    original: dict[str, np.ndarray], resynthesis: dict[str, np.ndarray]
) -> dict[str, Any]:
    """Metrics of one example from its features (``f0_hz``, ``f0_confidence``,
    ``loudness_db``, each ``[n_frames]``; loudness only: no f0 metrics) and the
    resynthesis's."""
    metrics: dict[str, Any] = {
        "loudness_l1_db": float(
            np.mean(np.abs(original["loudness_db"] - resynthesis["loudness_db"]))
        ),
        "f0_l1_cents": None,
        "raw_pitch_accuracy": None,
        "outlier": None,
    }
    if "f0_confidence" not in original:
        return metrics
    pitched = original["f0_confidence"] >= CONFIDENT
    if not pitched.any():
        return metrics
    ratio = np.maximum(resynthesis["f0_hz"][pitched], 1e-3) / original["f0_hz"][pitched]
    cents = np.abs(1200.0 * np.log2(ratio))
    f0_l1 = float(np.mean(cents))
    metrics["f0_l1_cents"] = f0_l1
    metrics["raw_pitch_accuracy"] = float(np.mean(cents <= RPA_CENTS))
    metrics["outlier"] = bool(f0_l1 > OUTLIER_CENTS or not np.all(np.isfinite(cents)))
    return metrics


def summarize(per_example: list[dict[str, Any]]) -> dict[str, Any]:
    """Means over examples: loudness L1 over all, f0 L1 over pitched non-outliers, raw
    pitch accuracy over pitched ones; the outlier ratio among pitched ones."""
    pitched = [m for m in per_example if m["outlier"] is not None]
    inliers = [m["f0_l1_cents"] for m in pitched if not m["outlier"]]
    return {
        "n_examples": len(per_example),
        "n_pitched": len(pitched),
        "loudness_l1_db": float(np.mean([m["loudness_l1_db"] for m in per_example])),
        "f0_l1_cents": float(np.mean(inliers)) if inliers else None,
        "f0_outlier_ratio": float(np.mean([m["outlier"] for m in pitched])) if pitched else None,
        "raw_pitch_accuracy": (
            float(np.mean([m["raw_pitch_accuracy"] for m in pitched])) if pitched else None
        ),
    }


_losses = jax.jit(example_spectral_losses, static_argnums=(0, 1))


def resynthesize_batches(
    model: Autoencoder, examples: dict[str, np.ndarray], batch_size: int
) -> np.ndarray:
    """The model's audio ``[n, n_samples]`` for examples' ``f0_hz`` and ``loudness_db``, in
    batches of ``batch_size`` (the last padded by repeating, so one compiled program)."""
    n = len(examples["f0_hz"])
    out = []
    for start in range(0, n, batch_size):
        index = np.arange(start, start + batch_size) % n
        audio = render(model, examples["f0_hz"][index], examples["loudness_db"][index])
        out.append(np.asarray(audio)[: min(batch_size, n - start)])
    return np.concatenate(out)


def resynthesis_metrics(
    config: TrainConfig,
    audio: np.ndarray,
    original: dict[str, np.ndarray],
    f0_model: str | None,
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """``(summary, per-example metrics)`` of resynthesised ``audio`` ``[n, n_samples]``
    against the originals' features ``[n, n_frames]`` (``loudness_db``, and ``f0_hz``,
    ``f0_confidence`` unless ``f0_model`` is None)."""
    synth = config.model.synth
    n_frames = original["loudness_db"].shape[1]
    features = compute_features(audio, synth.sample_rate, config.frame_rate, f0_model)
    per_example = [
        example_metrics(
            {k: original[k][i] for k in features if k in original},
            {k: v[i, :n_frames] for k, v in features.items()},
        )
        for i in range(len(audio))
    ]
    return summarize(per_example), per_example


class HeldOutEvaluation:
    """What ``Trainer.fit`` logs every ``eval_every`` steps: the held-out spectral loss and
    the loudness L1 of the resynthesis (dB), and with ``config.eval_f0_model`` the f0 metrics
    too (the originals' features are computed from their audio once, as the resynthesis's);
    and for the first ``config.eval_summaries`` examples a summary (``write_summary``): their
    target and resynthesis audio and a figure of spectrograms, loudness and f0.

    From step ``EARLY_STEPS`` on, a raw pitch accuracy below ``PITCH_LOST_ACCURACY`` is
    reported once on stderr with what to do about it."""

    def __init__(self, config: TrainConfig, examples: dict[str, np.ndarray]) -> None:
        self.config, self.examples = config, examples
        self._original: dict[str, np.ndarray] | None = None
        self._warned = False

    def __call__(self, trainer: Any) -> dict[str, float]:
        audio, losses = trainer.resynthesize(self.examples)
        config, synth = self.config, self.config.model.synth
        if self._original is None:
            self._original = compute_features(
                self.examples["audio"], synth.sample_rate, config.frame_rate, config.eval_f0_model
            )
        n_frames = audio.shape[1] * config.frame_rate // synth.sample_rate
        original = {k: v[:, :n_frames] for k, v in self._original.items()}
        summary, _ = resynthesis_metrics(config, audio, original, config.eval_f0_model)
        if config.eval_summaries and is_main_process():
            self._summarize(trainer, audio, original)
        metrics = {"eval_loss": float(np.mean(losses))}
        for name, value in summary.items():
            if isinstance(value, float):
                metrics[f"eval_{name}"] = value
        accuracy = summary["raw_pitch_accuracy"]
        lost = accuracy is not None and accuracy < PITCH_LOST_ACCURACY
        if lost and trainer.step >= EARLY_STEPS and not self._warned:
            self._warned = True
            tqdm.write(
                f"warning: at step {trainer.step} the model plays the held-out pitch on "
                f"{100 * accuracy:.0f} % of frames: its harmonic part has likely gone silent "
                "(filtered noise imitating the sound), which training does not undo. Start "
                "again with another seed (--set seed=1) or a lower --lr.",
                file=sys.stderr,
            )
        return metrics

    def _summarize(self, trainer: Any, audio: np.ndarray, original: dict[str, np.ndarray]) -> None:
        config, synth = self.config, self.config.model.synth
        n = min(config.eval_summaries, len(audio))
        targets, resynthesised = self.examples["audio"][:n, : audio.shape[1]], audio[:n]
        n_frames = original["loudness_db"].shape[1]
        found = compute_features(
            resynthesised, synth.sample_rate, config.frame_rate, config.eval_f0_model
        )
        figure = plots.resynthesis_summary(
            targets,
            resynthesised,
            {k: v[:n] for k, v in original.items()},
            {k: v[:, :n_frames] for k, v in found.items()},
            synth.sample_rate,
            config.frame_rate,
        )
        sounds = {}
        for i in range(n):
            sounds[f"example_{i}/target"] = targets[i]
            sounds[f"example_{i}/resynthesis"] = np.clip(resynthesised[i], -1.0, 1.0)
        write_summary(
            trainer.run_dir, trainer.step, sounds, synth.sample_rate, figure, config.tensorboard
        )


def evaluate_model(
    saved: SavedModel,
    data: str | Path,
    max_examples: int = 64,
    f0_model: str | None = None,
    batch_size: int = 8,
) -> tuple[dict[str, Any], np.ndarray, dict[str, np.ndarray]]:
    """Evaluate ``saved`` on the eval split of prepared dataset ``data`` (its first
    ``max_examples``): spectral loss of the resynthesis (and of the untrained model, for
    reference) and the f0/loudness metrics, with f0 by ``f0_model`` (default: the CREPE
    that prepared ``data``).

    Returns:
        ``(metrics, resynthesised audio [n, n_samples], the examples)``.

    Raises:
        DatasetError: When ``data`` is not a prepared dataset that fits the model.
        ValueError: When it has no eval examples.
    """
    config = from_dict(TrainConfig, saved.training)
    synth = config.model.synth
    dataset = PreparedDataset(data)
    dataset.check_matches(synth.sample_rate, synth.n_samples, config.frame_rate)
    index = dataset.index("eval")[:max_examples]
    if len(index) == 0:
        raise ValueError(f"{data}: no eval examples (prepare it with --eval-fraction > 0).")
    level = config.model.level_feature
    names = dict.fromkeys(("audio", "f0_hz", "f0_confidence", "loudness_db", level))
    examples = dataset.read(index, list(names))
    conditioning = level_conditioning(examples, level)
    f0_model = f0_model or dataset.config.f0_model
    audio = resynthesize_batches(saved.model, conditioning, batch_size)
    untrained = nnx.merge(*initialize_model(config, Autoencoder))
    untrained_audio = resynthesize_batches(untrained, conditioning, batch_size)

    def losses(resynthesis: np.ndarray) -> np.ndarray:
        return np.asarray(_losses(config.loss, synth.sample_rate, examples["audio"], resynthesis))

    summary, per_example = resynthesis_metrics(config, audio, examples, f0_model)
    example_losses = losses(audio)
    for metrics, loss in zip(per_example, example_losses, strict=True):
        metrics["spectral_loss"] = float(loss)
    result = {
        "model": str(saved.path),
        "step": saved.step,
        "data": str(data),
        "f0_model": f0_model,
        "spectral_loss": float(np.mean(example_losses)),
        "untrained_spectral_loss": float(np.mean(losses(untrained_audio))),
        **summary,
        "per_example": per_example,
    }
    return result, audio, examples
