"""magenta's optimizer: global-norm clipping, then Adam with an exponentially decaying rate."""

import optax

from ddsp_jax.training.config import OptimizerConfig


def make_optimizer(config: OptimizerConfig) -> optax.GradientTransformation:
    """Global-norm clipping (``grad_clip_norm``) then Adam at ``learning_rate(config, step)``."""
    schedule = optax.exponential_decay(
        config.learning_rate, transition_steps=config.decay_steps, decay_rate=config.decay_rate
    )
    return optax.chain(optax.clip_by_global_norm(config.grad_clip_norm), optax.adam(schedule))


def learning_rate(config: OptimizerConfig, step: int) -> float:
    """The learning rate of step ``step`` (0-based) under ``make_optimizer``'s schedule,
    computed on the host (evaluating the optax schedule would dispatch a device computation).

    >>> learning_rate(OptimizerConfig(learning_rate=1e-3, decay_steps=100, decay_rate=0.5), 200)
    0.00025
    """
    return config.learning_rate * config.decay_rate ** (step / config.decay_steps)
