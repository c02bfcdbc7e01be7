"""magenta's optimizer: global-norm clipping, then Adam with an exponentially decaying rate."""

import jax
import jax.numpy as jnp
import optax

from ddsp_jax.training.config import OptimizerConfig


def scale_by_given_learning_rate() -> optax.GradientTransformationExtraArgs:
    """Scale updates by ``-learning_rate``, a value given to each ``update`` call (by the
    training step, from ``learning_rate`` on the host): the compiled step then does not
    depend on the schedule, so runs of any length share one program. Its state counts the
    updates as ``optax.scale_by_schedule``'s does.

    >>> transform = scale_by_given_learning_rate()
    >>> updates, state = transform.update(
    ...     {"w": jnp.ones(2)}, transform.init(None), learning_rate=jnp.float32(0.5)
    ... )
    >>> updates["w"].tolist(), int(state.count)
    ([-0.5, -0.5], 1)
    """

    def init(params: optax.Params) -> optax.ScaleByScheduleState:
        return optax.ScaleByScheduleState(count=jnp.zeros([], jnp.int32))

    def update(
        updates: optax.Updates,
        state: optax.ScaleByScheduleState,
        params: optax.Params | None = None,
        *,
        learning_rate: jax.Array,
        **extra_args: object,
    ) -> tuple[optax.Updates, optax.ScaleByScheduleState]:
        updates = jax.tree.map(lambda u: (-learning_rate * u).astype(u.dtype), updates)
        return updates, optax.ScaleByScheduleState(count=optax.safe_increment(state.count))

    return optax.GradientTransformationExtraArgs(init, update)


def make_optimizer(config: OptimizerConfig) -> optax.GradientTransformationExtraArgs:
    """Global-norm clipping (``grad_clip_norm``) then Adam, whose rate each ``update`` is
    given (``learning_rate=``; ``learning_rate(config, step)`` is magenta's exponential
    decay). Its state has the layout of ``optax.adam`` with a schedule."""
    return optax.chain(
        optax.clip_by_global_norm(config.grad_clip_norm),
        optax.chain(optax.scale_by_adam(), scale_by_given_learning_rate()),
    )


def learning_rate(config: OptimizerConfig, step: int) -> float:
    """The learning rate of step ``step`` (0-based): magenta's exponential decay,
    ``learning_rate * decay_rate ** (step / decay_steps)``, times ``(step + 1) /
    warmup_steps`` during the warm-up.

    >>> learning_rate(OptimizerConfig(learning_rate=1e-3, decay_steps=100, decay_rate=0.5), 200)
    0.00025
    >>> warm = OptimizerConfig(learning_rate=1e-3, decay_rate=1.0, warmup_steps=4)
    >>> [learning_rate(warm, step) for step in range(5)]
    [0.00025, 0.0005, 0.00075, 0.001, 0.001]
    """
    warmup = min(1.0, (step + 1) / config.warmup_steps) if config.warmup_steps else 1.0
    return warmup * config.learning_rate * config.decay_rate ** (step / config.decay_steps)
