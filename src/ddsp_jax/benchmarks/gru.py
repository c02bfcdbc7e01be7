"""GRU benchmark: the hand-written backward pass against autodiff of the scan."""

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from ddsp_jax.benchmarks.common import machine, time_call
from ddsp_jax.models.kernels import gru_recurrence, gru_recurrence_reference
from ddsp_jax.training.config import PRESETS


def run(preset: str = "nsynth", batch_size: int = 4, repeats: int = 5) -> dict[str, Any]:
    """Time ``jax.grad`` through the GRU recurrence at ``preset``'s sizes, both ways.

    Returns:
        Per path (``custom_vjp``: ``gru_recurrence``; ``autodiff``: ``jax.grad`` of the plain
        ``lax.scan``): ``*_seconds`` (median) and ``*_compile_seconds``; ``speedup``
        (autodiff over custom) and ``machine``.
    """
    config = PRESETS[preset]
    channels, n_frames = config.model.decoder.rnn_channels, config.n_frames
    rng = np.random.default_rng(0)
    projected = jnp.asarray(rng.normal(size=(n_frames, batch_size, 3 * channels)), jnp.float32)
    kernel = jnp.asarray(rng.normal(size=(channels, 3 * channels)) / channels**0.5, jnp.float32)
    bias = jnp.zeros((3 * channels,), jnp.float32)
    h0 = jnp.zeros((batch_size, channels), jnp.float32)
    weights = jnp.asarray(rng.normal(size=(n_frames, batch_size, channels)), jnp.float32)

    def gradient(recurrence: Any) -> Any:
        def loss(projected: jax.Array, kernel: jax.Array, bias: jax.Array) -> jax.Array:
            return jnp.sum(recurrence(projected, kernel, bias, h0)[0] * weights)

        return jax.jit(jax.grad(loss, argnums=(0, 1, 2)))

    result: dict[str, Any] = {
        "benchmark": "gru",
        "preset": preset,
        "batch_size": batch_size,
        "n_frames": n_frames,
        "channels": channels,
    }
    paths = {"custom_vjp": gru_recurrence, "autodiff": gru_recurrence_reference}
    for name, recurrence in paths.items():
        grad = gradient(recurrence)
        timing = time_call(lambda grad=grad: grad(projected, kernel, bias), repeats=repeats)
        result[f"{name}_compile_seconds"] = timing["first_call_seconds"]
        result[f"{name}_seconds"] = timing["median_seconds"]
    result["speedup"] = result["autodiff_seconds"] / result["custom_vjp_seconds"]
    result["machine"] = machine()
    return result
