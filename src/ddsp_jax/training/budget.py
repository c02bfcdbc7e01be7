"""Training to a wall-time budget (``ddsp train --minutes``): the number of steps that fits,
from a measured step, and a schedule scaled so the run ends as decayed as its preset's."""

import dataclasses
import math
import tempfile
import time
from collections.abc import Callable

import jax
import jax.numpy as jnp

from ddsp_jax.training.checkpoints import Checkpoints
from ddsp_jax.training.config import TrainConfig
from ddsp_jax.training.examples import BatchSource, Examples, batch_source
from ddsp_jax.training.trainer import Trainer


@dataclasses.dataclass(frozen=True)
class StepCosts:
    """Measured wall times (s) of the parts of a run.

    Attributes:
        step: One training step with its batch (compiled; a mean over a few).
        evaluation: One held-out evaluation during the run (0 when it evaluates never).
        checkpoint: Writing one checkpoint.
        compile: Compiling the step (the first step's time less a compiled one's; 0 when
            it was stored).
        final_evaluation: The held-out loss at the end, compiling its program included.
    """

    step: float
    evaluation: float
    checkpoint: float
    compile: float = 0.0
    final_evaluation: float = 0.0

    def run_seconds(self, config: TrainConfig, steps: int) -> float:
        """Wall time of ``steps`` steps of ``config`` with its evaluations and checkpoints."""
        evaluations = steps // config.eval_every if config.eval_every else 0
        checkpoints = math.ceil(steps / config.checkpoint_every)
        return steps * self.step + evaluations * self.evaluation + checkpoints * self.checkpoint

    def closing_seconds(self) -> float:
        """The end of a run after its last step: the final held-out loss and the model
        folder (written like a checkpoint), with a checkpoint's time to spare."""
        return self.final_evaluation + 2 * self.checkpoint


def scaled_schedule(config: TrainConfig, steps: int) -> TrainConfig:
    """``config`` for a run of ``steps`` steps, its learning-rate decay stretched or shrunk by
    ``steps / config.steps``: the run ends at the rate the preset's run ends at.

    >>> from ddsp_jax.training.config import PRESETS
    >>> quick = PRESETS["quick"]
    >>> (quick.steps, quick.optimizer.decay_steps)
    (350, 350)
    >>> longer = scaled_schedule(quick, 1400)
    >>> (longer.steps, longer.optimizer.decay_steps)
    (1400, 1400)
    """
    decay_steps = max(1, round(config.optimizer.decay_steps * steps / config.steps))
    optimizer = dataclasses.replace(config.optimizer, decay_steps=decay_steps)
    return dataclasses.replace(config, steps=steps, optimizer=optimizer)


def steps_in_budget(config: TrainConfig, costs: StepCosts, seconds: float) -> int:
    """The most steps of ``config`` whose run (``StepCosts.run_seconds``) fits in
    ``seconds``; 0 when not even one does.

    >>> from ddsp_jax.training.config import PRESETS
    >>> steps_in_budget(PRESETS["quick"], StepCosts(step=0.5, evaluation=0, checkpoint=1), 60)
    116
    """
    per_step = costs.step + costs.checkpoint / config.checkpoint_every
    if config.eval_every:
        per_step += costs.evaluation / config.eval_every
    steps = max(0, int(seconds / per_step))
    while steps and costs.run_seconds(config, steps) > seconds:
        steps -= 1
    return steps


def measure_costs(
    trainer: Trainer,
    source: BatchSource,
    held_out: Examples,
    evaluation: Callable[[Trainer], dict[str, float]] | None,
    repeats: int = 3,
    min_seconds: float = 2.0,
) -> StepCosts:
    """Time ``trainer``'s step (after a warm-up one that compiles it), its evaluations and a
    checkpoint write, on copies of its state: the trainer itself is left as it was.

    Args:
        trainer: A trainer (not yet trained).
        source: Batches for the timed steps (a source of its own: it is advanced).
        held_out: The examples of the run's final held-out loss (``Trainer.evaluate``).
        evaluation: What the run evaluates every ``eval_every`` steps, or None. Timed on its
            second call (the first may compute features it keeps).
        repeats, min_seconds: Timed steps after the warm-up: at least ``repeats``, and
            more until ``min_seconds`` have passed.
    """
    params, opt_state = jax.tree.map(jnp.copy, (trainer.params, trainer.opt_state))

    def step(i: int) -> None:
        nonlocal params, opt_state
        batch = {k: jnp.asarray(v) for k, v in source.next_batch().items()}
        params, opt_state, out = trainer.run_step(params, opt_state, batch, i)
        jax.device_get(out)

    begin = time.perf_counter()
    step(0)
    first = time.perf_counter() - begin
    begin, timed = time.perf_counter(), 0
    while timed < repeats or time.perf_counter() - begin < min_seconds:
        timed += 1
        step(timed)
    step_seconds = (time.perf_counter() - begin) / timed
    begin = time.perf_counter()
    trainer.evaluate(held_out)
    final_evaluation = time.perf_counter() - begin
    evaluation_seconds = 0.0
    if evaluation is not None and trainer.config.eval_every:
        evaluation(trainer)
        begin = time.perf_counter()
        evaluation(trainer)
        evaluation_seconds = time.perf_counter() - begin
    state = {"params": params, "rest": trainer.rest, "opt_state": opt_state}
    trainer.run_dir.parent.mkdir(parents=True, exist_ok=True)  # Timed on the run's disk.
    with tempfile.TemporaryDirectory(dir=trainer.run_dir.parent) as folder:
        checkpoints = Checkpoints(folder, keep=1)
        begin = time.perf_counter()
        checkpoints.save(0, state, {"step": 0})
        checkpoint_seconds = time.perf_counter() - begin
        checkpoints.close()
    return StepCosts(
        step_seconds,
        evaluation_seconds,
        checkpoint_seconds,
        max(0.0, first - step_seconds),
        final_evaluation,
    )


def fit_to_budget(
    trainer: Trainer,
    train: Examples,
    held_out: Examples,
    evaluation: Callable[[Trainer], dict[str, float]] | None,
    deadline: float,
) -> StepCosts:
    """Give ``trainer`` (not yet trained) as many steps as fit before ``deadline`` (a
    ``time.monotonic()`` value), its schedule scaled to them (``scaled_schedule``, through
    ``Trainer.reschedule``: the step's program is the same); returns the measured costs.

    The time left is what remains after measuring (``measure_costs``, batches drawn from
    ``train``; ``held_out`` are the examples of the final held-out loss), less closing the
    run (``StepCosts.closing_seconds``).

    Raises:
        ValueError: When not even one step fits.
    """
    config = trainer.config
    source = batch_source(train, config.batch_size, config.seed, config.engine)
    costs = measure_costs(trainer, source, held_out, evaluation)
    seconds = deadline - time.monotonic() - costs.closing_seconds()
    steps = steps_in_budget(config, costs, seconds)
    if steps == 0:
        raise ValueError(
            f"the time budget leaves no time for a step ({costs.step:.2f} s per step, "
            f"{max(seconds, 0):.0f} s left after measuring)."
        )
    trainer.reschedule(scaled_schedule(config, steps))
    return costs
