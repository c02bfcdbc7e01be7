"""Orbax checkpoints of a training run: arrays (model, optimizer) plus JSON metadata."""

import resource
import shutil
from pathlib import Path
from typing import Any

import jax
import orbax.checkpoint as ocp
from flax import nnx

from ddsp_jax.models.autoencoder import Autoencoder
from ddsp_jax.training.config import TrainConfig, model_class_of
from ddsp_jax.training.finetune import run_optimizer

CHECKPOINT_DIR = "checkpoints"  # Inside a run folder.
DAMAGED_DIR = "damaged-checkpoints"  # Beside it: checkpoints a resume could not read.
_TEMPORARY_MARK = ".orbax-checkpoint-tmp"  # In the names of orbax's unfinished writes.


class Checkpoints:
    """Saves every ``state`` pytree with its JSON ``meta``, keeping the last ``keep``.

    Unfinished writes a stopped process left (orbax's temporary folders) are removed when it
    opens a folder.
    """

    def __init__(self, directory: str | Path, keep: int) -> None:
        self.directory = Path(directory).resolve()
        self.keep = keep
        if self.directory.is_dir():
            for unfinished in self.directory.glob(f"*{_TEMPORARY_MARK}*"):
                shutil.rmtree(unfinished, ignore_errors=True)
        self.manager = self._open()

    def _open(self) -> ocp.CheckpointManager:
        return ocp.CheckpointManager(
            self.directory,
            options=ocp.CheckpointManagerOptions(max_to_keep=self.keep, create=True),
        )

    def latest_step(self) -> int | None:
        return self.manager.latest_step()

    def all_steps(self) -> list[int]:
        return list(self.manager.all_steps())

    def save(self, step: int, state: Any, meta: dict[str, Any]) -> None:
        """Write step ``step`` and wait until it is complete on disk.

        Raises:
            OSError: Before writing, when the disk's free space or the file-size limit
                (``ulimit -f``) cannot hold the checkpoint; or when the write fails (its
                unfinished folder removed, the earlier checkpoints intact).
        """
        self._check_room(step, sum(leaf.nbytes for leaf in jax.tree.leaves(state)))
        try:
            self.manager.save(
                step,
                args=ocp.args.Composite(
                    state=ocp.args.StandardSave(state), meta=ocp.args.JsonSave(meta)
                ),
                force=True,
            )
            self.manager.wait_until_finished()
        except Exception as error:  # orbax and tensorstore raise many types.
            for unfinished in self.directory.glob(f"{step}{_TEMPORARY_MARK}*"):
                shutil.rmtree(unfinished, ignore_errors=True)
            reason = str(error).strip().splitlines()[0][-300:] if str(error).strip() else ""
            raise OSError(
                f"cannot write the checkpoint of step {step} ({type(error).__name__}: {reason})"
            ) from error

    def _check_room(self, step: int, n_bytes: int) -> None:
        """Raise ``OSError`` if ``n_bytes`` (plus a margin) cannot be written here."""
        needed = int(n_bytes * 1.1) + 2**20
        self.directory.mkdir(parents=True, exist_ok=True)
        free = shutil.disk_usage(self.directory).free
        if free < needed:
            raise OSError(
                28,
                f"no room for the checkpoint of step {step}: {needed / 1e6:.1f} MB needed, "
                f"{free / 1e6:.1f} MB free",
                str(self.directory),
            )
        limit = resource.getrlimit(resource.RLIMIT_FSIZE)[0]
        if limit != resource.RLIM_INFINITY and limit < needed:
            raise OSError(
                27,
                f"the file-size limit (ulimit -f: {limit} bytes) is below the "
                f"{needed} bytes of the checkpoint of step {step}",
                str(self.directory),
            )

    def restore(self, step: int, like: Any) -> tuple[Any, dict[str, Any]]:
        """Read step ``step`` into the structure of ``like`` (arrays, or ``jax.ShapeDtypeStruct``
        leaves, of the saved shapes).

        Raises:
            FileNotFoundError: When there is no checkpoint of that step.
        """
        if step not in self.all_steps():
            raise FileNotFoundError(
                f"no checkpoint of step {step} in {self.directory} (steps: {self.all_steps()})."
            )
        target = jax.tree.map(ocp.utils.to_shape_dtype_struct, like)
        restored = self.manager.restore(
            step,
            args=ocp.args.Composite(
                state=ocp.args.StandardRestore(target), meta=ocp.args.JsonRestore()
            ),
        )
        return restored.state, restored.meta

    def restore_newest(self, like: Any) -> tuple[int, Any, dict[str, Any], list[str]]:
        """Read the newest checkpoint that can be read: ``(step, state, meta, notes)``, with a
        note for each newer one that could not (its step and the reason), which is moved to
        ``damaged-checkpoints/`` beside the checkpoints (kept for inspection, out of the way
        of the run's next saves).

        Raises:
            FileNotFoundError: When there is no checkpoint, or none can be read.
        """
        notes: list[str] = []
        damaged: list[int] = []
        for step in sorted(self.all_steps(), reverse=True):
            try:
                state, meta = self.restore(step, like)
            except Exception as error:  # orbax and tensorstore raise many types for bad files.
                reason = str(error).strip().splitlines()[0] if str(error).strip() else ""
                notes.append(f"step {step} cannot be read ({type(error).__name__}: {reason})")
                damaged.append(step)
                continue
            self._set_aside(damaged)
            return step, state, meta, notes
        raise FileNotFoundError(
            f"no readable checkpoint in {self.directory}"
            + (f": {'; '.join(notes)}." if notes else ".")
        )

    def _set_aside(self, steps: list[int]) -> None:
        """Move the checkpoints of ``steps`` to ``damaged-checkpoints/`` and reopen."""
        if not steps:
            return
        self.manager.close()
        aside = self.directory.parent / DAMAGED_DIR
        aside.mkdir(exist_ok=True)
        for step in steps:
            target = aside / str(step)
            shutil.rmtree(target, ignore_errors=True)
            (self.directory / str(step)).rename(target)
        self.manager = self._open()

    def close(self) -> None:
        self.manager.close()


def restore_model(
    run_dir: str | Path, config: TrainConfig, step: int | None = None
) -> tuple[Autoencoder, int]:
    """The model of training run ``run_dir`` at checkpoint ``step`` (default: the latest).

    Nothing is initialised or compiled: the model and optimizer state are built abstractly
    (``nnx.eval_shape``) to give orbax the saved structure, and only arrays are read.

    Args:
        run_dir: The run folder (its ``checkpoints/``).
        config: The run's ``TrainConfig`` (its ``config.json``).
        step: The checkpoint's step; None for the latest.

    Returns:
        ``(model, step)``: a plain ``Autoencoder``, whatever the training engine's model class
        (see ``model_class_of``).

    Raises:
        FileNotFoundError: When the run has no checkpoint, or none of ``step``.
    """
    directory = Path(run_dir) / CHECKPOINT_DIR
    if not directory.is_dir():
        raise FileNotFoundError(f"no checkpoint in {directory}.")
    model_class = model_class_of(config.engine)
    abstract = nnx.eval_shape(lambda: model_class(config.model, rngs=nnx.Rngs(config.seed)))
    graphdef, params, rest = nnx.split(abstract, nnx.Param, ...)
    opt_state = jax.eval_shape(run_optimizer(config).init, params)
    checkpoints = Checkpoints(directory, config.keep_checkpoints)
    try:
        step = checkpoints.latest_step() if step is None else step
        if step is None:
            raise FileNotFoundError(f"no checkpoint in {directory}.")
        like = {"params": params, "rest": rest, "opt_state": opt_state}
        state, meta = checkpoints.restore(step, like)
    finally:
        checkpoints.close()
    model = nnx.merge(graphdef, state["params"], state["rest"])
    if model_class is not Autoencoder:  # An engine's subclass: keep the plain model's parts.
        plain = nnx.eval_shape(lambda: Autoencoder(config.model, rngs=nnx.Rngs(config.seed)))
        nnx.update(plain.decoder, nnx.state(model.decoder))
        nnx.update(plain.processor_graph, nnx.state(model.processor_graph))
        if plain.encoder is not None:
            nnx.update(plain.encoder, nnx.state(model.encoder))
        model = plain
    return model, int(meta["step"])
