"""A tiny training configuration that compiles and runs in seconds."""

import dataclasses

from ddsp_jax.training import PRESETS
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
