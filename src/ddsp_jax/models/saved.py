"""Saved models: a trained model as one folder that loads without its training run or data.

``MODEL_DIR/``:

- ``model.json``: format and version, the step and run it came from, and ``config``: the
  training configuration as plain data, whose ``model`` (an ``AutoencoderConfig``) and
  ``frame_rate`` entries are what building the model needs;
- ``params.msgpack``: the model's arrays (``flax.serialization`` of the NNX state as plain
  dicts: parameters, and any non-trainable state such as a drawn reverb noise);
- ``dataset.json``: ``features.notes.feature_statistics`` of the training data (loudness and
  pitch quantiles, mean pitch) and the CREPE that made its f0: what timbre transfer adjusts
  its input towards.

``training.export`` makes such a folder from a training run; inference, streaming and export
read it through ``load_model`` alone.
"""

import dataclasses
import json
from pathlib import Path
from typing import Any

import jax
import numpy as np
from flax import nnx, serialization

from ddsp_jax.files import write_files
from ddsp_jax.instruments import bundled_instrument
from ddsp_jax.models.autoencoder import Autoencoder, AutoencoderConfig
from ddsp_jax.serialization import from_dict, to_dict

FORMAT = "ddsp-jax model"
VERSION = 1
MODEL_FILE = "model.json"
PARAMS_FILE = "params.msgpack"
STATISTICS_FILE = "dataset.json"


class ModelError(ValueError):
    """A model folder that is missing, incomplete or does not fit this version."""


@dataclasses.dataclass
class SavedModel:
    """A trained model with what using it needs.

    Attributes:
        model: The model; ``model.config`` builds it.
        frame_rate: Control frames per second the decoder was trained at (Hz).
        statistics: ``feature_statistics`` of the training data plus ``f0_model`` (the CREPE
            that made its f0, or None), or None when unknown.
        step: The training step it was saved at.
        path: Where it was read from (a model folder or a training run).
        training: How it was trained: the run's configuration as plain data (``TrainConfig``
            through ``serialization.to_dict``); empty when unknown.
    """

    model: Autoencoder
    frame_rate: int
    statistics: dict[str, Any] | None
    step: int
    path: Path
    training: dict[str, Any] = dataclasses.field(default_factory=dict)

    @property
    def config(self) -> AutoencoderConfig:
        return self.model.config

    @property
    def sample_rate(self) -> int:
        return self.config.synth.sample_rate


def save_model(
    saved: SavedModel, out: str | Path, run: str | Path | None = None, float16: bool = False
) -> Path:
    """Write ``saved`` as a model folder ``out`` (created if needed); returns ``out``.

    The files are written under temporary names and renamed into place only when all are
    written, ``model.json`` last (``files.write_files``): a failed save leaves an earlier
    model in ``out`` as it was, and a folder that ``load_model`` accepts is complete.

    Args:
        saved: The model and its frame rate, statistics, step and training configuration.
        out: The folder.
        run: The training run it came from (recorded in ``model.json``).
        float16: Store the floating-point arrays as float16 (half the size; ``load_model``
            reads them back as the model's float32).
    """
    out = Path(out)
    _, params, rest = nnx.split(saved.model, nnx.Param, ...)
    state = {"params": nnx.to_pure_dict(params), "rest": nnx.to_pure_dict(rest)}
    state = jax.tree.map(np.asarray, state)
    if float16:
        state = jax.tree.map(
            lambda x: x.astype(np.float16) if np.issubdtype(x.dtype, np.floating) else x, state
        )
    statistics = json.dumps({"statistics": saved.statistics}, indent=1) + "\n"
    info = {
        "format": FORMAT,
        "version": VERSION,
        "step": saved.step,
        "run": str(Path(run).resolve()) if run is not None else None,
        "config": {
            **saved.training,
            "model": to_dict(saved.config),
            "frame_rate": saved.frame_rate,
        },
    }
    write_files(
        out,
        {
            PARAMS_FILE: serialization.msgpack_serialize(state),
            STATISTICS_FILE: statistics.encode(),
            MODEL_FILE: (json.dumps(info, indent=1) + "\n").encode(),
        },
    )
    return out


def load_model(path: str | Path) -> SavedModel:
    """Load a model folder written by ``save_model`` (``ddsp export``), or an instrument
    that comes with the package by its name (``ddsp_jax.instruments``; a folder of that
    name takes precedence).

    Raises:
        ModelError: Naming what is missing or does not fit.
    """
    path = Path(path)
    if not path.exists() and (bundled := bundled_instrument(str(path))) is not None:
        path = bundled
    if not path.is_dir():
        raise ModelError(f"{path}: no such model folder (make one with `ddsp export RUN --out`).")
    missing = [
        name for name in (MODEL_FILE, PARAMS_FILE, STATISTICS_FILE) if not (path / name).exists()
    ]
    if missing:
        raise ModelError(f"{path}: not a complete model folder; missing {', '.join(missing)}.")
    try:
        info = json.loads((path / MODEL_FILE).read_text())
        statistics = json.loads((path / STATISTICS_FILE).read_text())["statistics"]
    except (ValueError, KeyError, TypeError) as error:
        raise ModelError(
            f"{path}: unreadable {MODEL_FILE} or {STATISTICS_FILE} ({error})."
        ) from error
    if not isinstance(info, dict):
        raise ModelError(f"{path / MODEL_FILE}: not a model description (a JSON object).")
    if info.get("format") != FORMAT or info.get("version") != VERSION:
        raise ModelError(
            f"{path / MODEL_FILE}: not a {FORMAT} of version {VERSION} "
            f"(found {info.get('format')!r} version {info.get('version')!r})."
        )
    training = info.get("config")
    step = info.get("step")
    if isinstance(step, bool) or not isinstance(step, int) or step < 0:
        raise ModelError(f"{path / MODEL_FILE}: step must be an integer >= 0, got {step!r}.")
    try:
        config = from_dict(AutoencoderConfig, training["model"], "config.model")
        frame_rate = training["frame_rate"]
        if isinstance(frame_rate, bool) or not isinstance(frame_rate, int) or frame_rate <= 0:
            raise ValueError(f"frame_rate must be a positive integer, got {frame_rate!r}")
    except (ValueError, TypeError, KeyError) as error:
        raise ModelError(f"{path / MODEL_FILE}: its config does not fit ({error}).") from error
    try:
        abstract = nnx.eval_shape(lambda: Autoencoder(config, rngs=nnx.Rngs(0)))
    except (ValueError, TypeError) as error:
        raise ModelError(f"{path / MODEL_FILE}: its config does not fit ({error}).") from error
    graphdef, params, rest = nnx.split(abstract, nnx.Param, ...)
    try:
        state = serialization.msgpack_restore((path / PARAMS_FILE).read_bytes())
        for target, saved in ((params, state["params"]), (rest, state["rest"])):
            expected = nnx.to_pure_dict(target)
            if jax.tree.map(np.shape, saved) != jax.tree.map(lambda x: x.shape, expected):
                raise ValueError("the arrays do not have the model's shapes")
            arrays = jax.tree.map(lambda x, like: jax.numpy.asarray(x, like.dtype), saved, expected)
            nnx.replace_by_pure_dict(target, arrays)
    except (ValueError, KeyError, TypeError) as error:
        raise ModelError(
            f"{path / PARAMS_FILE}: does not fit the model in {MODEL_FILE} ({error})."
        ) from error
    model = nnx.merge(graphdef, params, rest)
    return SavedModel(model, frame_rate, statistics, step, path, training)
