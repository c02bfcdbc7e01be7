"""Saved models: a training run's model as one folder that loads without the run or its data.

``MODEL_DIR/``:

- ``model.json``: format and version, the run's ``TrainConfig``, the step and run it came from;
- ``params.msgpack``: the model's arrays (``flax.serialization`` of the NNX state as plain
  dicts: parameters, and any non-trainable state such as a drawn reverb noise);
- ``dataset.json``: ``feature_statistics`` of the training data (loudness and pitch
  quantiles, mean pitch), what timbre transfer adjusts its input towards.
"""

import dataclasses
import json
from pathlib import Path
from typing import Any

import jax
import numpy as np
from flax import nnx, serialization

from ddsp_jax.data.prepare import DATASET_FILE, NSYNTH_PREFIX, PreparedDataset
from ddsp_jax.features.notes import feature_statistics
from ddsp_jax.models.autoencoder import Autoencoder
from ddsp_jax.training.config import TrainConfig, from_dict, to_dict
from ddsp_jax.training.data import load_npz, nsynth_dataset_dir, procedural_split
from ddsp_jax.training.trainer import CONFIG_FILE, Trainer, TrainingError

FORMAT = "ddsp-jax model"
VERSION = 1
MODEL_FILE = "model.json"
PARAMS_FILE = "params.msgpack"


class ModelError(ValueError):
    """A model folder that is missing, incomplete or does not fit this version."""


@dataclasses.dataclass
class SavedModel:
    """A loaded model folder."""

    model: Autoencoder
    config: TrainConfig
    statistics: dict[str, Any] | None
    step: int
    path: Path

    @property
    def sample_rate(self) -> int:
        return self.config.model.synth.sample_rate

    @property
    def frame_rate(self) -> int:
        return self.config.frame_rate


def training_statistics(config: TrainConfig, run_dir: str | Path) -> dict[str, Any]:
    """``feature_statistics`` of a run's training data: a prepared dataset's own (also for
    ``nsynth:`` data, prepared inside the run), or computed from procedural notes or an
    ``.npz`` (whose f0 counts as confident throughout); plus ``f0_model``, the CREPE that
    made the training f0 (None when it was not CREPE)."""
    data, synth = config.data, config.model.synth
    source = data.source
    if source.startswith(NSYNTH_PREFIX):
        source = str(nsynth_dataset_dir(run_dir))
    if (Path(source) / DATASET_FILE).exists():
        dataset = PreparedDataset(source)
        return {**dataset.info["statistics"], "f0_model": dataset.config.f0_model}
    if source == "procedural":
        examples, _ = procedural_split(config)
    else:
        examples = load_npz(source, synth.n_samples, config.n_frames)
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
    config = from_dict(TrainConfig, json.loads(config_path.read_text()))
    trainer = Trainer(config, run_dir)
    try:
        step = trainer.restore(step=step)
    except (TrainingError, FileNotFoundError, ValueError) as error:
        raise ModelError(f"{run_dir}: {error}") from error
    finally:
        trainer.close()
    return SavedModel(trainer.model(), config, training_statistics(config, run_dir), step, run_dir)


def export_model(run_dir: str | Path, out: str | Path, step: int | None = None) -> Path:
    """Write the model of training run ``run_dir`` at ``step`` (default: its latest
    checkpoint) as a model folder ``out`` (see ``model_of_run``)."""
    saved = model_of_run(run_dir, step)
    save_model(saved.model, saved.config, saved.statistics, out, saved.step, run_dir)
    return Path(out)


def load_model_or_run(path: str | Path) -> SavedModel:
    """A model folder (``load_model``) or a training run's latest model (``model_of_run``)."""
    path = Path(path)
    if (path / CONFIG_FILE).exists() and not (path / MODEL_FILE).exists():
        return model_of_run(path)
    return load_model(path)


def save_model(
    model: Autoencoder,
    config: TrainConfig,
    statistics: dict[str, Any] | None,
    out: str | Path,
    step: int,
    run_dir: str | Path | None = None,
) -> None:
    """Write ``model`` (built from ``config.model``) as a model folder ``out``."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    _, params, rest = nnx.split(model, nnx.Param, ...)
    state = {"params": nnx.to_pure_dict(params), "rest": nnx.to_pure_dict(rest)}
    state = jax.tree.map(np.asarray, state)
    (out / PARAMS_FILE).write_bytes(serialization.msgpack_serialize(state))
    (out / DATASET_FILE).write_text(json.dumps({"statistics": statistics}, indent=1) + "\n")
    info = {
        "format": FORMAT,
        "version": VERSION,
        "step": step,
        "run": str(Path(run_dir).resolve()) if run_dir is not None else None,
        "config": to_dict(config),
    }
    (out / MODEL_FILE).write_text(json.dumps(info, indent=1) + "\n")


def load_model(path: str | Path) -> SavedModel:
    """Load a model folder written by ``export_model``.

    Raises:
        ModelError: Naming what is missing or does not fit.
    """
    path = Path(path)
    if not path.is_dir():
        raise ModelError(f"{path}: no such model folder (make one with `ddsp export RUN --out`).")
    missing = [
        name for name in (MODEL_FILE, PARAMS_FILE, DATASET_FILE) if not (path / name).exists()
    ]
    if missing:
        raise ModelError(f"{path}: not a complete model folder; missing {', '.join(missing)}.")
    try:
        info = json.loads((path / MODEL_FILE).read_text())
        statistics = json.loads((path / DATASET_FILE).read_text())["statistics"]
    except (ValueError, KeyError) as error:
        raise ModelError(f"{path}: unreadable {MODEL_FILE} or {DATASET_FILE} ({error}).") from error
    if info.get("format") != FORMAT or info.get("version") != VERSION:
        raise ModelError(
            f"{path / MODEL_FILE}: not a {FORMAT} of version {VERSION} "
            f"(found {info.get('format')!r} version {info.get('version')!r})."
        )
    try:
        config = from_dict(TrainConfig, info["config"])
    except (ValueError, TypeError, KeyError) as error:
        raise ModelError(f"{path / MODEL_FILE}: its config does not fit ({error}).") from error
    abstract = nnx.eval_shape(lambda: Autoencoder(config.model, rngs=nnx.Rngs(0)))
    graphdef, params, rest = nnx.split(abstract, nnx.Param, ...)
    try:
        state = serialization.msgpack_restore((path / PARAMS_FILE).read_bytes())
        for target, saved in ((params, state["params"]), (rest, state["rest"])):
            expected = jax.tree.map(lambda x: x.shape, nnx.to_pure_dict(target))
            if jax.tree.map(np.shape, saved) != expected:
                raise ValueError("the arrays do not have the model's shapes")
            nnx.replace_by_pure_dict(target, jax.tree.map(jax.numpy.asarray, saved))
    except (ValueError, KeyError, TypeError) as error:
        raise ModelError(
            f"{path / PARAMS_FILE}: does not fit the model in {MODEL_FILE} ({error})."
        ) from error
    model = nnx.merge(graphdef, params, rest)
    return SavedModel(model, config, statistics, int(info["step"]), path)
