"""Training: configuration, data sources, the train loop and checkpoints."""

from ddsp_jax.training.config import PRESETS, TrainConfig
from ddsp_jax.training.metrics import read_metrics
from ddsp_jax.training.trainer import Trainer, TrainingError

__all__ = ["PRESETS", "TrainConfig", "Trainer", "TrainingError", "read_metrics"]
