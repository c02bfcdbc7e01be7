"""Training: configuration, examples, the train loop (on one device or a device mesh),
checkpoints, evaluation and export."""

from ddsp_jax.training.budget import fit_to_budget, scaled_schedule
from ddsp_jax.training.checkpoints import Checkpoints, restore_model
from ddsp_jax.training.config import PRESETS, InitConfig, TrainConfig, resolve
from ddsp_jax.training.evaluate import evaluate_model
from ddsp_jax.training.export import export_model, load_model_or_run, model_of_run
from ddsp_jax.training.finetune import freeze, initialize_from
from ddsp_jax.training.metrics import read_metrics
from ddsp_jax.training.parallel import DataParallel, initialize_distributed
from ddsp_jax.training.trainer import Trainer, TrainingError

__all__ = [
    "PRESETS",
    "Checkpoints",
    "DataParallel",
    "InitConfig",
    "TrainConfig",
    "Trainer",
    "TrainingError",
    "evaluate_model",
    "export_model",
    "fit_to_budget",
    "freeze",
    "initialize_distributed",
    "initialize_from",
    "load_model_or_run",
    "model_of_run",
    "read_metrics",
    "resolve",
    "restore_model",
    "scaled_schedule",
]
