"""A training run's model as a ``SavedModel`` (``ddsp export``): its checkpoint's parameters,
its config, and the statistics of its training data."""

import json
from pathlib import Path
from typing import Any

import numpy as np

from ddsp_jax.data.dataset import DATASET_FILE, PreparedDataset
from ddsp_jax.data.preparation import NSYNTH_PREFIX, dataset_statistics
from ddsp_jax.features.notes import feature_statistics
from ddsp_jax.models.autoencoder import Autoencoder
from ddsp_jax.models.saved import MODEL_FILE, ModelError, SavedModel, load_model, save_model
from ddsp_jax.serialization import from_dict, to_dict
from ddsp_jax.training.checkpoints import restore_model
from ddsp_jax.training.config import CONFIG_FILE, TrainConfig
from ddsp_jax.training.examples import (
    level_conditioned,
    load_npz,
    nsynth_dataset_dir,
    procedural_split,
)


def training_statistics(config: TrainConfig, run_dir: str | Path) -> dict[str, Any]:
    """``feature_statistics`` of a run's training data: a prepared dataset's own (also for
    ``nsynth:`` data, prepared inside the run), or computed from procedural notes or an
    ``.npz`` (whose f0 counts as confident throughout), the model's level feature in
    loudness's place (``model.level_feature``); plus ``f0_model``, the CREPE that
    made the training f0 (None when it was not CREPE)."""
    data, synth = config.data, config.model.synth
    source = data.source
    if source.startswith(NSYNTH_PREFIX):
        source = str(nsynth_dataset_dir(run_dir))
    level = config.model.level_feature
    if (Path(source) / DATASET_FILE).exists():
        dataset = PreparedDataset(source)
        key = "statistics" if level == "loudness_db" else "power_statistics"
        statistics = dataset.info.get(key) or dataset_statistics(dataset, level)
        return {**statistics, "f0_model": dataset.config.f0_model}
    if source == "procedural":
        examples, _ = procedural_split(config)
    else:
        examples = level_conditioned(load_npz(source, synth.n_samples, config.n_frames), config)
    f0_hz = examples["f0_hz"]
    statistics = feature_statistics(f0_hz, np.ones_like(f0_hz), examples["loudness_db"])
    return {**statistics, "f0_model": None}


def model_of_run(run_dir: str | Path, step: int | None = None) -> SavedModel:
    """The model of training run ``run_dir`` at ``step`` (default: its latest checkpoint),
    with its training data's statistics, as if exported and loaded.

    Raises:
        ModelError: When ``run_dir`` is not a run folder or has no such checkpoint.
    """
    run_dir = Path(run_dir)
    config_path = run_dir / CONFIG_FILE
    if not config_path.exists():
        raise ModelError(f"{run_dir}: not a training run folder (no {CONFIG_FILE}).")
    try:
        config = from_dict(TrainConfig, json.loads(config_path.read_text()))
        model, step = restore_model(run_dir, config, step)
    except (FileNotFoundError, ValueError, TypeError) as error:
        raise ModelError(f"{run_dir}: {error}") from error
    return run_model(config, run_dir, model, step)


def run_model(
    config: TrainConfig, run_dir: str | Path, model: Autoencoder, step: int
) -> SavedModel:
    """``model`` of training run ``run_dir`` at ``step`` as a
    ``SavedModel``, with the statistics of the run's training data."""
    statistics = training_statistics(config, run_dir)
    return SavedModel(model, config.frame_rate, statistics, step, Path(run_dir), to_dict(config))


RUN_MODEL_DIR = "model"  # The model folder `ddsp train` writes in its run folder at the end.


def export_model(run_dir: str | Path, out: str | Path, step: int | None = None) -> Path:
    """Write the model of training run ``run_dir`` at ``step`` (default: its latest
    checkpoint) as a model folder ``out`` (see ``model_of_run``)."""
    return save_model(model_of_run(run_dir, step), out, run=run_dir)


def load_model_or_run(path: str | Path) -> SavedModel:
    """A model folder (``load_model``) or a training run's latest model (``model_of_run``)."""
    path = Path(path)
    if (path / CONFIG_FILE).exists() and not (path / MODEL_FILE).exists():
        return model_of_run(path)
    return load_model(path)
