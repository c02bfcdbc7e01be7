"""The training loop: one jitted step, checkpoints, exact resume, metrics and progress."""

import contextlib
import functools
import json
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx

from ddsp_jax.files import check_output, write_json
from ddsp_jax.losses import multi_scale_spectral_loss, pretrained_crepe_embedding_loss
from ddsp_jax.models.autoencoder import Autoencoder
from ddsp_jax.serialization import from_dict, to_dict
from ddsp_jax.training.checkpoints import CHECKPOINT_DIR, DAMAGED_DIR, Checkpoints
from ddsp_jax.training.config import CONFIG_FILE, LossConfig, TrainConfig, model_class_of
from ddsp_jax.training.examples import BatchSource, Examples, nsynth_dataset_dir
from ddsp_jax.training.finetune import load_initial_state, run_optimizer
from ddsp_jax.training.metrics import MetricsLog
from ddsp_jax.training.optimizer import learning_rate
from ddsp_jax.training.parallel import DataParallel, is_main_process, wait_for_processes
from ddsp_jax.training.program_cache import cached_jit

# Settings a resumed run may change: none alters the result of a step.
RESUMABLE_CHANGES = ("steps", "tensorboard", "eval_every", "eval_f0_model", "eval_summaries")


class TrainingError(RuntimeError):
    """A run that cannot go on (e.g. too many non-finite steps in a row)."""


@contextlib.contextmanager
def _stop_requests() -> Iterator[list[int]]:
    """While active, SIGINT and SIGTERM ask the training loop to stop after the step in flight
    (the signal's number is appended to the yielded list) instead of killing the process; a
    second SIGINT interrupts at once. Outside the main thread (where Python cannot install
    handlers) signals keep their usual effect."""
    received: list[int] = []
    if threading.current_thread() is not threading.main_thread():
        yield received
        return

    def request_stop(signum: int, frame: Any) -> None:
        received.append(signum)
        signal.signal(signal.SIGINT, signal.default_int_handler)

    previous = {s: signal.signal(s, request_stop) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield received
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def spectral_loss(
    config: LossConfig, sample_rate: int, target: jax.Array, audio: jax.Array
) -> jax.Array:
    """The training loss of ``audio`` ``[batch, n_samples]`` against ``target``: the
    multi-scale spectral loss, plus the CREPE embedding loss when it has a weight."""
    loss = multi_scale_spectral_loss(
        target,
        audio,
        fft_sizes=config.fft_sizes,
        mag_weight=config.mag_weight,
        logmag_weight=config.logmag_weight,
        loudness_weight=config.loudness_weight,
        sample_rate=sample_rate,
    )
    if config.crepe_embedding_weight > 0:
        loss = loss + pretrained_crepe_embedding_loss(
            target,
            audio,
            config.crepe_embedding_model,
            config.crepe_embedding_layer,
            weight=config.crepe_embedding_weight,
        )
    return loss


def example_spectral_losses(
    config: LossConfig, sample_rate: int, targets: jax.Array, audio: jax.Array
) -> jax.Array:
    """The training loss of each example ``[batch]`` of ``audio`` ``[batch, n_samples]``."""
    return jax.vmap(lambda t, a: spectral_loss(config, sample_rate, t[None], a[None]))(
        targets, audio
    )


def step_key(seed: int, step: jax.Array) -> jax.Array:
    """The noise key of a step: a function of (seed, step) only, so resumes repeat it."""
    return jax.random.fold_in(jax.random.key(seed), step)


def _train_step(
    graphdef: nnx.GraphDef,
    transform: optax.GradientTransformation,
    loss_config: LossConfig,
    sample_rate: int,
    seed: int,
    micro_batches: int,
    params: nnx.State,
    rest: nnx.State,
    opt_state: optax.OptState,
    batch: dict[str, jax.Array],
    step: jax.Array,
    learning_rate: jax.Array,
) -> tuple[nnx.State, optax.OptState, dict[str, jax.Array]]:
    """One optimisation step at ``learning_rate``; a non-finite loss or gradient leaves the
    state unchanged.

    With ``micro_batches`` > 1 the batch is split into that many parts (every m-th example)
    and the loss and gradients of the parts are averaged in a ``lax.scan`` (one part's
    activations alive at a time); each part draws its noise from the step's key folded with
    its index.
    """

    def loss_fn(params: nnx.State, batch: dict[str, jax.Array], key: jax.Array) -> jax.Array:
        model = nnx.merge(graphdef, params, rest)
        audio = model(batch, key=key)["audio_synth"]
        return spectral_loss(loss_config, sample_rate, batch["audio"], audio)

    key = step_key(seed, step)
    if micro_batches == 1:
        loss, grads = jax.value_and_grad(loss_fn)(params, batch, key)
    else:
        # Micro-batch k holds examples k, k + m, k + 2m, ...: each device's share of a batch
        # split over a mesh splits alike, so no example leaves its device.
        parts = jax.tree.map(
            lambda x: x.reshape(-1, micro_batches, *x.shape[1:]).swapaxes(0, 1), batch
        )

        def accumulate(total: Any, part: tuple[jax.Array, dict[str, jax.Array]]) -> Any:
            index, micro_batch = part
            value = jax.value_and_grad(loss_fn)(params, micro_batch, jax.random.fold_in(key, index))
            return jax.tree.map(jnp.add, total, value), None

        zeros = (jnp.zeros((), jnp.float32), jax.tree.map(jnp.zeros_like, params))
        total, _ = jax.lax.scan(accumulate, zeros, (jnp.arange(micro_batches), parts))
        loss, grads = jax.tree.map(lambda x: x / micro_batches, total)
    grad_norm = optax.tree.norm(grads)
    finite = jnp.isfinite(loss) & jnp.isfinite(grad_norm)
    updates, new_opt_state = transform.update(grads, opt_state, params, learning_rate=learning_rate)
    new_params = optax.apply_updates(params, updates)

    def keep_if_finite(new: Any, old: Any) -> Any:
        return jax.tree.map(lambda n, o: jnp.where(finite, n, o), new, old)

    return (
        keep_if_finite(new_params, params),
        keep_if_finite(new_opt_state, opt_state),
        {"loss": loss, "grad_norm": grad_norm, "finite": finite},
    )


def step_settings(config: TrainConfig) -> str:
    """What a training step's program depends on besides its arguments' shapes: the model,
    the loss, the seed, the micro-batches, the clipping and the frozen parts; not the run's
    length or its learning-rate schedule (the rate is an argument)."""
    fixed = (config.model, config.loss, config.seed, config.micro_batches, config.engine)
    return repr((*fixed, config.optimizer.grad_clip_norm, config.init.freeze))


def _train_step_outputs(
    params: nnx.State, rest: nnx.State, opt_state: optax.OptState, *_: Any
) -> tuple[nnx.State, optax.OptState, dict[str, int]]:
    """A pytree shaped like ``_train_step``'s outputs (for ``cached_jit``)."""
    return params, opt_state, {"loss": 0, "grad_norm": 0, "finite": 0}


def _evaluate(
    graphdef: nnx.GraphDef,
    loss_config: LossConfig,
    sample_rate: int,
    params: nnx.State,
    rest: nnx.State,
    batch: dict[str, jax.Array],
) -> tuple[jax.Array, jax.Array]:
    """Resynthesis ``[batch, n_samples]`` and spectral loss of every example ``[batch]``
    (fixed noise key)."""
    model = nnx.merge(graphdef, params, rest)
    audio = model(batch, key=jax.random.key(0))["audio_synth"]
    return audio, example_spectral_losses(loss_config, sample_rate, batch["audio"], audio)


def initialize_model(
    config: TrainConfig, model_class: type[Autoencoder] | None = None
) -> tuple[nnx.GraphDef, nnx.State, nnx.State]:
    """A new model's ``(graphdef, params, rest)`` from ``config.seed``, initialised by one
    compiled program (``model_class`` defaults to the training engine's).

    Built eagerly, every initializer of every distinct shape is compiled on its own (~4 s at
    the quick preset's sizes); one program compiled without LLVM's slower optimisations
    takes under half that and runs once.
    """

    model_class = model_class or model_class_of(config.engine)
    graphdefs = []

    def create() -> tuple[nnx.State, nnx.State]:
        graphdef, params, rest = nnx.split(
            model_class(config.model, rngs=nnx.Rngs(config.seed)), nnx.Param, ...
        )
        graphdefs.append(graphdef)  # Static structure: the same inside the trace as outside.
        return params, rest

    params, rest = jax.jit(create, compiler_options={"xla_backend_optimization_level": 0})()
    return graphdefs[0], params, rest


class Trainer:
    """Owns the model, optimizer state, data position and run folder of one training run.

    With ``parallel`` (a device mesh, ``training.parallel``) the state is replicated on its
    devices and each batch split over them; only process 0 writes the run folder's files.
    """

    def __init__(
        self, config: TrainConfig, run_dir: str | Path, parallel: DataParallel | None = None
    ) -> None:
        self.config = config
        self.run_dir = Path(run_dir)
        self.parallel = parallel
        if parallel is not None:
            if config.engine != "jax":
                raise ValueError(f"--devices trains with engine jax, not {config.engine}.")
            parallel.check_batch(config.batch_size, config.micro_batches)
        self.graphdef, self.params, self.rest = initialize_model(config)
        self.params, self.rest = load_initial_state(config, self.params, self.rest)
        self.transform = run_optimizer(config)
        self.opt_state = jax.jit(self.transform.init)(self.params)  # One program, not one per leaf.
        self.step = 0
        step = functools.partial(
            _train_step,
            self.graphdef,
            self.transform,
            config.loss,
            config.model.synth.sample_rate,
            config.seed,
            config.micro_batches,
        )
        evaluate = functools.partial(
            _evaluate, self.graphdef, config.loss, config.model.synth.sample_rate
        )
        if parallel is None:
            self.train_step = cached_jit(
                step,
                name="train_step",
                settings=step_settings(config),
                output_like=_train_step_outputs,
                donate_argnums=(0, 2),
            )
            self.evaluate_batch = jax.jit(evaluate)
        else:
            self.params, self.rest, self.opt_state = parallel.replicate(
                (self.params, self.rest, self.opt_state)
            )
            self.train_step = parallel.jit(step, "train_step", donate_argnums=(0, 2))
            self.evaluate_batch = parallel.jit(evaluate, "evaluate")
        self._checkpoints: Checkpoints | None = None
        # The signal that stopped the last ``fit`` early (its checkpoint saved), or None.
        self.stopped_by: int | None = None
        # Whether the last ``fit`` stopped at its deadline (its checkpoint saved).
        self.out_of_time = False

    # ------------------------------------------------------------------ run folder
    @property
    def checkpoints(self) -> Checkpoints:
        if self._checkpoints is None:
            self._checkpoints = Checkpoints(
                self.run_dir / CHECKPOINT_DIR, self.config.keep_checkpoints
            )
        return self._checkpoints

    def check_folder(self, resume: bool) -> None:
        """Raise ``TrainingError`` unless the run folder can take this run: a resumed run needs
        its ``config.json`` with the same settings (but ``RESUMABLE_CHANGES``); a new run an
        empty or missing folder (but for the ``dataset/`` that ``nsynth:`` data is prepared
        into, which an earlier attempt may have left). An ``OSError`` (``files.check_output``)
        when the folder cannot be written."""
        check_output(self.run_dir, folder=True)
        config_path = self.run_dir / CONFIG_FILE
        if resume:
            if not config_path.exists():
                raise TrainingError(f"cannot resume: {config_path} does not exist.")
            saved = json.loads(config_path.read_text())
            with contextlib.suppress(ValueError):  # Settings added since take their defaults.
                saved = to_dict(from_dict(TrainConfig, saved))
            current = to_dict(self.config)
            changed = sorted(
                k for k in current if k not in RESUMABLE_CHANGES and saved.get(k) != current[k]
            )
            if changed:
                raise TrainingError(
                    f"cannot resume {self.run_dir}: settings {changed} differ from its "
                    f"{CONFIG_FILE} (only {', '.join(RESUMABLE_CHANGES)} may change)."
                )
        elif self.run_dir.exists() and any(
            p != nsynth_dataset_dir(self.run_dir) for p in self.run_dir.iterdir()
        ):
            raise TrainingError(
                f"{self.run_dir} exists and is not empty: pass --resume to continue that run, "
                "or choose another --out."
            )

    def start(self, resume: bool) -> None:
        """Check the run folder (``check_folder``) and write the run's ``config.json`` (with
        several processes, after every process has checked it)."""
        self.check_folder(resume)
        wait_for_processes("checked run folder")
        self.run_dir.mkdir(parents=True, exist_ok=True)
        if is_main_process():
            write_json(self.run_dir / CONFIG_FILE, to_dict(self.config), indent=2)

    def reschedule(self, config: TrainConfig) -> None:
        """Train with ``config`` from now on: another length, schedule, checkpointing or
        evaluation, with the same model, loss and step program (``step_settings``).

        Raises:
            ValueError: When ``config`` changes what the step computes.
        """
        if step_settings(config) != step_settings(self.config):
            raise ValueError("reschedule keeps the model, loss, seed and micro-batches.")
        self.config = config

    def run_step(
        self, params: nnx.State, opt_state: optax.OptState, batch: dict[str, jax.Array], step: int
    ) -> tuple[nnx.State, optax.OptState, dict[str, jax.Array]]:
        """Step ``step`` (0-based) from ``params`` and ``opt_state`` (whose buffers it reuses)
        on ``batch``: the new parameters and optimizer state and ``{loss, grad_norm,
        finite}``."""
        rate = np.float32(learning_rate(self.config.optimizer, step))
        return self.train_step(params, self.rest, opt_state, batch, np.int32(step), rate)

    def model(self) -> Autoencoder:
        """The current model (a fresh module sharing nothing with the training state; on
        this process's host when the state is spread over a mesh)."""
        return nnx.merge(self.graphdef, *self._on_host((self.params, self.rest)))

    def _on_host(self, tree: Any) -> Any:
        """``tree`` as this process can read it: the replicated arrays' local copies."""
        return tree if self.parallel is None else self.parallel.to_host(tree)

    def _batch(self, examples: Examples) -> dict[str, jax.Array]:
        """A batch on the devices: split over the mesh, or on the default device."""
        if self.parallel is None:
            return {k: jnp.asarray(v) for k, v in examples.items()}
        return self.parallel.shard_batch(examples)

    def save(self, source: BatchSource) -> None:
        state = {"params": self.params, "rest": self.rest, "opt_state": self.opt_state}
        meta = {"step": self.step, "data": source.state(), "seed": self.config.seed}
        self.checkpoints.save(self.step, state, meta)

    def restore(self, source: BatchSource) -> int:
        """Load the newest readable checkpoint, ``source``'s data position with it; returns
        its step. A newer checkpoint that cannot be read (a damaged or truncated file) is
        reported on stderr and set aside (``Checkpoints.restore_newest``). A run stopped
        before its first checkpoint starts again from step 0 (noted on stderr): a run is a
        function of its config, so this repeats what was lost.

        Raises:
            TrainingError: When checkpoints exist and none of them can be read.
        """
        if not self.checkpoints.all_steps():
            print(
                f"note: {self.run_dir} has no checkpoint yet (stopped before the first one); "
                "starting from step 0.",
                file=sys.stderr,
            )
            return self.step
        like = {"params": self.params, "rest": self.rest, "opt_state": self.opt_state}
        try:
            step, state, meta, notes = self.checkpoints.restore_newest(like)
        except FileNotFoundError as error:
            raise TrainingError(str(error)) from error
        for note in notes:
            print(
                f"warning: checkpoint {note}; moved to {self.run_dir / DAMAGED_DIR}, resuming "
                f"from step {step}.",
                file=sys.stderr,
            )
        self.params, self.rest, self.opt_state = state["params"], state["rest"], state["opt_state"]
        self.step = int(meta["step"])
        source.restore(meta["data"])
        return self.step

    # ------------------------------------------------------------------ training
    def learning_rate(self) -> float:
        """The learning rate of the next step (``optimizer.learning_rate``)."""
        return learning_rate(self.config.optimizer, self.step)

    def fit(
        self,
        source: BatchSource,
        until_step: int | None = None,
        progress: bool = True,
        evaluation: Callable[["Trainer"], dict[str, float]] | None = None,
        deadline: float | None = None,
    ) -> list[dict[str, Any]]:
        """Train until ``until_step`` (default: ``config.steps``), checkpointing on the way,
        and every ``config.eval_every`` steps adding ``evaluation(self)``'s metrics (e.g.
        ``evaluate.HeldOutEvaluation``) to that step's record.

        SIGINT (Ctrl-C) or SIGTERM stops the run after the step in flight and checkpoints it,
        so nothing is lost; ``stopped_by`` then names the signal. Past ``deadline`` (a
        ``time.monotonic()`` value) no step starts: the run is checkpointed where it is and
        ``out_of_time`` is set.

        Returns:
            The metrics of every step taken (also appended to ``metrics.jsonl``).

        Raises:
            TrainingError: After ``max_nonfinite_steps`` non-finite steps in a row; the last
                good checkpoint stays intact.
        """
        until_step = self.config.steps if until_step is None else until_step
        history: list[dict[str, Any]] = []
        bar = _progress(self.step, until_step) if progress else None
        shown: dict[str, str] = {}  # The latest held-out loss, kept in the progress bar.
        nonfinite_in_a_row = 0
        last_time = time.perf_counter()
        self.stopped_by = None
        self.out_of_time = False
        with (
            MetricsLog(
                self.run_dir, self.step, self.config.tensorboard, enabled=is_main_process()
            ) as log,
            _stop_requests() as stop_requests,
        ):
            while self.step < until_step and not stop_requests:
                if deadline is not None and time.monotonic() >= deadline:
                    self.out_of_time = True
                    break
                batch = self._batch(source.next_batch())
                learning_rate = self.learning_rate()
                self.params, self.opt_state, out = self.run_step(
                    self.params, self.opt_state, batch, self.step
                )
                out = jax.device_get(self._on_host(out))
                loss, grad_norm, finite = (float(out[k]) for k in ("loss", "grad_norm", "finite"))
                now = time.perf_counter()
                record = {
                    "step": self.step + 1,
                    "loss": loss,
                    "learning_rate": learning_rate,
                    "grad_norm": grad_norm,
                    "steps_per_second": 1.0 / max(now - last_time, 1e-9),
                    "time": round(time.time(), 3),  # Unix time: learning against wall time.
                }
                last_time = now
                if not finite:
                    record["nonfinite"] = True
                    nonfinite_in_a_row += 1
                else:
                    nonfinite_in_a_row = 0
                    self.step += 1
                every = self.config.eval_every
                if evaluation is not None and finite and every and self.step % every == 0:
                    record.update(evaluation(self))
                    last_time = time.perf_counter()  # Steps/s counts training only.
                log.write(record)
                history.append(record)
                if bar is not None:
                    bar.update(1 if finite else 0)
                    if "eval_loss" in record:
                        shown["held-out"] = f"{record['eval_loss']:.3f}"
                    bar.set_postfix(loss=f"{loss:.3f}", **shown, refresh=False)
                if nonfinite_in_a_row >= self.config.max_nonfinite_steps:
                    last = self.checkpoints.latest_step()
                    raise TrainingError(
                        f"{nonfinite_in_a_row} non-finite steps in a row at step {self.step}: "
                        "stopping. Check the data for NaN/inf or lower the learning rate. "
                        f"Last good checkpoint: step {last} in {self.run_dir / CHECKPOINT_DIR}."
                    )
                if finite and (
                    self.step % self.config.checkpoint_every == 0 or self.step == until_step
                ):
                    self.save(source)
            if stop_requests and self.step < until_step:  # A signal during the last step
                self.stopped_by = stop_requests[0]  # finds the run complete: not a stop.
            if (self.stopped_by or self.out_of_time) and self.checkpoints.latest_step() != (
                self.step
            ):
                self.save(source)
        if bar is not None:
            bar.close()
        return history

    def resynthesize(self, examples: Examples) -> tuple[np.ndarray, np.ndarray]:
        """Resynthesis ``[n, n_samples]`` and spectral loss ``[n]`` of every example.

        Runs in batches of ``batch_size`` (the last one padded by wrapping around), so it
        reuses one compiled function whatever the number of examples.
        """
        n = len(examples["audio"])
        size = self.config.batch_size
        audio, losses = [], []
        for start in range(0, n, size):
            index = np.arange(start, start + size) % n
            batch = {k: np.asarray(v[index]) for k, v in examples.items()}
            if self.parallel is not None:
                batch = self.parallel.replicate(batch)  # Every process holds the examples.
            outputs = self.evaluate_batch(self.params, self.rest, batch)
            batch_audio, batch_losses = self._on_host(outputs)
            keep = min(size, n - start)
            audio.append(np.asarray(batch_audio)[:keep])
            losses.append(np.asarray(batch_losses)[:keep])
        return np.concatenate(audio), np.concatenate(losses)

    def evaluate(self, examples: Examples) -> float:
        """Mean spectral loss over ``examples`` (fixed noise key)."""
        return float(np.mean(self.resynthesize(examples)[1]))

    def close(self) -> None:
        if self._checkpoints is not None:
            self._checkpoints.close()


def _progress(start: int, total: int) -> Any:
    from tqdm.auto import tqdm

    return tqdm(
        total=total, initial=start, unit="step", dynamic_ncols=True, desc="train", mininterval=1.0
    )
