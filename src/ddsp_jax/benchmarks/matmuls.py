"""The decoder's matrix products alone: the floor under a training step on this machine.

``ddsp bench train`` reports the step's roofline fraction, its decoder FLOPs over a 2048²
matmul's speed. The decoder's own products are smaller (512-wide layers, a GRU multiplying
a ``[batch, 512]`` state once per frame) and run slower than a 2048² matmul, so even a step
that did nothing else would not reach 100 %. This benchmark runs just those products, at a
training step's shapes, and reports the fraction that such a step would reach: the
ceiling for ``roofline_fraction``.
"""

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from ddsp_jax.benchmarks.common import machine, time_calls
from ddsp_jax.benchmarks.flops import decoder_matmul_shapes
from ddsp_jax.benchmarks.train import PEAK, SETTLE_SECONDS, matmul_peak
from ddsp_jax.models.decoders import RnnFcDecoderConfig
from ddsp_jax.models.kernels import weight_gradient
from ddsp_jax.training.config import PRESETS


def _recurrent_products(
    h: jax.Array, kernel: jax.Array, n_frames: int
) -> tuple[jax.Array, jax.Array]:
    """The GRU's per-frame products for ``n_frames`` frames: forward ``h W`` and backward
    ``∂g Wᵀ``, each feeding the next frame (so that frames run one after another)."""
    channels = kernel.shape[0]

    def forward(h: jax.Array, _: None) -> tuple[jax.Array, None]:
        return jnp.tanh((h @ kernel)[:, :channels]), None

    def backward(d_gates: jax.Array, _: None) -> tuple[jax.Array, None]:
        return jnp.tile(jnp.tanh(d_gates @ kernel.T), 3), None

    h_last, _ = jax.lax.scan(forward, h, length=n_frames)
    d_gates_last, _ = jax.lax.scan(backward, jnp.tile(h, 3), length=n_frames)
    return h_last, d_gates_last


def decoder_matmuls(
    config: RnnFcDecoderConfig, batch_size: int, n_frames: int
) -> dict[str, tuple[Callable[[], list[Any]], int]]:
    """The decoder's matrix products as one training step on ``batch_size`` examples of
    ``n_frames`` frames needs them, grouped by shape.

    Every product of ``decoder_matmul_shapes(config)`` is applied to all ``batch_size × n_frames``
    rows three times (forward ``x W``, input gradient ``∂y Wᵀ``, weight gradient
    ``xᵀ ∂y``), each a jitted program of its own; the GRU's recurrent product runs once per
    frame forward and once backward, on ``[batch_size, channels]``, and its weight gradient
    over all rows. Operands are random and shared between products of equal sizes.

    Returns:
        Per shape, ``"{fan_in}x{fan_out}"`` (``"recurrent_{channels}x{gates}"`` for the GRU's
        recurrent product): a function running every product of that shape, and their FLOPs.
    """
    products, (channels, gates) = decoder_matmul_shapes(config)
    rows = batch_size * n_frames
    rng = np.random.default_rng(0)
    inputs: dict[int, jax.Array] = {}
    gradients: dict[int, jax.Array] = {}

    def operand(cache: dict[int, jax.Array], size: int) -> jax.Array:
        if size not in cache:
            cache[size] = jnp.asarray(rng.normal(size=(rows, size)), jnp.float32)
        return cache[size]

    multiply = jax.jit(jnp.matmul)
    multiply_transposed = jax.jit(lambda d_y, kernel: d_y @ kernel.T)
    weight_gradient_of = jax.jit(weight_gradient)
    recurrent = jax.jit(_recurrent_products, static_argnums=2)
    calls: dict[str, list[Callable[[], Any]]] = {}
    flops: dict[str, int] = {}
    # Flagged, not recognised by shape: the GRU's input projection has the recurrent
    # product's shape whenever its input is as wide as its state.
    shapes = [(*shape, False) for shape in products] + [(channels, gates, True)]
    for fan_in, fan_out, is_recurrent in shapes:
        label = f"{'recurrent_' if is_recurrent else ''}{fan_in}x{fan_out}"
        # Three products of 2 × fan_in × fan_out FLOPs per row (the recurrent one: per
        # example and frame, forward and backward, and its weight gradient over all rows).
        flops[label] = flops.get(label, 0) + 3 * 2 * fan_in * fan_out * rows
        group = calls.setdefault(label, [])
        x, d_y = operand(inputs, fan_in), operand(gradients, fan_out)
        kernel = jnp.asarray(rng.normal(size=(fan_in, fan_out)) / fan_in**0.5, jnp.float32)
        group.append(lambda x=x, d_y=d_y: weight_gradient_of(x, d_y))
        if is_recurrent:
            h = jnp.asarray(rng.normal(size=(batch_size, channels)), jnp.float32)
            group.append(lambda h=h, kernel=kernel: recurrent(h, kernel, n_frames))
        else:
            group.append(lambda x=x, kernel=kernel: multiply(x, kernel))
            group.append(lambda d_y=d_y, kernel=kernel: multiply_transposed(d_y, kernel))

    def run_all(group: list[Callable[[], Any]]) -> Callable[[], list[Any]]:
        return lambda: [jax.block_until_ready(call()) for call in group]

    return {label: (run_all(group), flops[label]) for label, group in calls.items()}


def run(
    preset: str = "nsynth", batch_size: int = 4, repeats: int = 5, micro_batches: int = 1
) -> dict[str, Any]:
    """Time the decoder's products (``decoder_matmuls``) for one training step of
    ``preset`` at ``batch_size`` in ``micro_batches`` parts, each shape's in turn,
    interleaved with the 2048² matmul peak that ``ddsp bench train`` uses.

    Returns:
        ``matmul_seconds`` (for the whole step: the sum of each shape's median, times
        ``micro_batches``), ``matmul_flops_per_second``, ``matmul_peak_flops``,
        ``shape_efficiency`` (the products' speed over the peak: the highest
        ``roofline_fraction`` a training step at these shapes can reach on this machine),
        ``shape_flops_per_second`` (per shape, as ``decoder_matmuls`` labels them: where
        the ceiling comes from) and ``machine``.
    """
    if micro_batches <= 0 or batch_size % micro_batches:
        raise ValueError(
            f"micro_batches ({micro_batches}) must be positive and divide batch_size "
            f"({batch_size})."
        )
    config = PRESETS[preset]
    groups = decoder_matmuls(config.model.decoder, batch_size // micro_batches, config.n_frames)
    peak_call, peak_call_flops = matmul_peak()
    timings = time_calls(
        {**{label: call for label, (call, _) in groups.items()}, PEAK: peak_call},
        repeats=repeats,
        warmup=2,
        settle_seconds=SETTLE_SECONDS,
    )
    peak = peak_call_flops / timings[PEAK]["median_seconds"]
    seconds = {label: timings[label]["median_seconds"] for label in groups}
    flops = sum(group_flops for _, group_flops in groups.values())
    total_seconds = sum(seconds.values())
    return {
        "benchmark": "matmuls",
        "preset": preset,
        "batch_size": batch_size,
        "micro_batches": micro_batches,
        "decoder_flops_per_step": flops * micro_batches,
        "matmul_seconds": total_seconds * micro_batches,
        "matmul_flops_per_second": flops / total_seconds,
        "matmul_peak_flops": peak,
        "shape_efficiency": flops / total_seconds / peak,
        "shape_flops_per_second": {
            label: group_flops / seconds[label] for label, (_, group_flops) in groups.items()
        },
        "machine": machine(),
    }
