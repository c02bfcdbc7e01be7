"""A tiny training configuration that compiles and runs in seconds."""

import dataclasses

from ddsp_jax.training import PRESETS, Trainer
from ddsp_jax.training.config import LossConfig, OptimizerConfig, TrainConfig, model_config


def tiny_config(**changes) -> TrainConfig:
    config = dataclasses.replace(
        PRESETS["quick"],
        model=model_config(8, "ir", 200, 16, 1, 16, 1600),
        optimizer=OptimizerConfig(learning_rate=3e-3),
        loss=LossConfig(fft_sizes=(256, 64)),
        batch_size=2,
        steps=10,
        checkpoint_every=5,
        keep_checkpoints=2,
        frame_rate=250,
    )
    return dataclasses.replace(config, **changes)


def train_and_score(
    config: TrainConfig, run_dir, train: dict, held_out: dict, learning_rate: float = 1e-2
) -> tuple[float, float, Trainer]:
    """Train ``config`` at ``learning_rate`` on ``train`` (batches of 2) in a new run folder:
    the held-out loss before and after, and the trainer."""
    from ddsp_jax.training.examples import ExampleSource

    optimizer = dataclasses.replace(config.optimizer, learning_rate=learning_rate)
    trainer = Trainer(dataclasses.replace(config, optimizer=optimizer), run_dir)
    before = trainer.evaluate(held_out)
    trainer.start(resume=False)
    trainer.fit(ExampleSource(train, 2, 0), progress=False)
    return before, trainer.evaluate(held_out), trainer
