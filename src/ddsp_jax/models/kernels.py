"""The decoder's hot spots with hand-written backward passes, beside the plain versions
they are tested against.

- ``dense_layer_norm_leaky_relu``: one FC layer (Dense → LayerNorm → LeakyReLU) as a
  ``jax.custom_vjp``; its reference ``fc_layer_reference`` is the flax layers differentiated
  by JAX (rematerialised).
- ``gru_recurrence``: the GRU's recurrence over time as a ``jax.custom_vjp``; its reference
  ``gru_recurrence_reference`` is JAX's autodiff of the same ``lax.scan``.

``models.decoders`` chooses between them with ``core.implementation.use_implementation``.
"""

import functools

import jax
import jax.numpy as jnp
from flax import nnx

from ddsp_jax.core.implementation import cpu_fusion_barrier

LEAKY_RELU_SLOPE = 0.2  # tf.nn.leaky_relu's default, magenta's fc_stack activation.


def _layer_norm_statistics(y: jax.Array, epsilon: float) -> tuple[jax.Array, jax.Array]:
    """Per-row mean and ``1 / sqrt(variance + epsilon)`` over the last axis, ``[..., 1]``
    each, with flax's fast variance ``E[y²] − E[y]²`` (clipped at 0), as ``nnx.LayerNorm``."""
    mean = jnp.mean(y, axis=-1, keepdims=True)
    variance = jnp.maximum(jnp.mean(y * y, axis=-1, keepdims=True) - mean * mean, 0.0)
    return mean, jax.lax.rsqrt(variance + epsilon)


def weight_gradient(x_rows: jax.Array, d_y_rows: jax.Array) -> jax.Array:
    """A Dense layer's kernel gradient ``xᵀ ∂y`` over all rows, without transposing ``x``
    first: ``[rows, fan_in]``, ``[rows, fan_out]`` → ``[fan_in, fan_out]``."""
    return jax.lax.dot_general(x_rows, d_y_rows, (((0,), (0,)), ((), ())))


def _dense_layer_norm_leaky_relu_fwd(
    x: jax.Array,
    kernel: jax.Array,
    bias: jax.Array,
    scale: jax.Array,
    norm_bias: jax.Array,
    epsilon: float,
    negative_slope: float,
) -> tuple[jax.Array, tuple[jax.Array, ...]]:
    y = x @ kernel + bias
    mean, inverse_std = _layer_norm_statistics(y, epsilon)
    out = jax.nn.leaky_relu((y - mean) * (inverse_std * scale) + norm_bias, negative_slope)
    return out, (x, kernel, y, mean, inverse_std, scale, norm_bias)


@functools.partial(jax.custom_vjp, nondiff_argnums=(5, 6))
def dense_layer_norm_leaky_relu(
    x: jax.Array,
    kernel: jax.Array,
    bias: jax.Array,
    scale: jax.Array,
    norm_bias: jax.Array,
    epsilon: float,
    negative_slope: float,
) -> jax.Array:
    """One FC layer, ``leaky_relu(LayerNorm(x W + b) · scale + norm_bias)``, with a
    hand-written backward pass.

    Equals ``nnx.Linear`` → ``nnx.LayerNorm`` (flax's fast variance) → ``jax.nn.leaky_relu``
    (``_fc_layer_reference``). Autodiff of that runs ~9 passes over ``[..., out]``-sized
    arrays, several of them reductions that XLA's CPU back end feeds with materialised
    broadcasts of ``scale`` and of the per-row statistics, and it must be rematerialised to
    keep the decoder's memory down. Here the residuals are the layer's input, its matmul output
    and the per-row statistics (what the rematerialised reference keeps); the backward pass
    writes ``∂pre`` and ``∂pre · ŷ`` once, takes the per-row sums against ``scale`` as
    matrix-vector products and the per-feature sums as plain reductions, then the two matmuls.

    Args:
        x: ``[..., in_features]``.
        kernel: ``[in_features, out_features]``.
        bias: Dense bias ``[out_features]``.
        scale: LayerNorm scale ``[out_features]``.
        norm_bias: LayerNorm bias ``[out_features]``.
        epsilon: Added to the variance.
        negative_slope: Slope of the leaky ReLU for negative inputs.

    Returns:
        ``[..., out_features]``.
    """
    return _dense_layer_norm_leaky_relu_fwd(
        x, kernel, bias, scale, norm_bias, epsilon, negative_slope
    )[0]


def _dense_layer_norm_leaky_relu_bwd(
    epsilon: float,
    negative_slope: float,
    residuals: tuple[jax.Array, ...],
    d_out: jax.Array,
) -> tuple[jax.Array, ...]:
    del epsilon
    x, kernel, y, mean, inverse_std, scale, norm_bias = residuals
    y_hat = (y - mean) * inverse_std
    pre_activation = y_hat * scale + norm_bias
    d_pre = jnp.where(pre_activation >= 0, d_out, negative_slope * d_out)
    d_pre_y_hat = d_pre * y_hat
    # Both full-size arrays written once, before any reduction reads them.
    d_pre, d_pre_y_hat = jax.lax.optimization_barrier((d_pre, d_pre_y_hat))
    rows = tuple(range(y.ndim - 1))
    d_scale = jnp.sum(d_pre_y_hat, axis=rows)
    d_norm_bias = jnp.sum(d_pre, axis=rows)
    # With ∂ŷ = ∂pre · scale: mean(∂ŷ) and mean(∂ŷ · ŷ) per row.
    features = y.shape[-1]
    mean_d_y_hat = (d_pre @ scale[:, None]) / features
    mean_d_y_hat_y_hat = (d_pre_y_hat @ scale[:, None]) / features
    d_y = inverse_std * (d_pre * scale - mean_d_y_hat - y_hat * mean_d_y_hat_y_hat)
    d_y = jax.lax.optimization_barrier(d_y)
    x_rows = x.reshape(-1, x.shape[-1])
    d_y_rows = d_y.reshape(-1, features)
    d_kernel = weight_gradient(x_rows, d_y_rows)
    d_bias = jnp.sum(d_y_rows, axis=0)
    d_x = d_y @ kernel.T
    return d_x, d_kernel, d_bias, d_scale, d_norm_bias


dense_layer_norm_leaky_relu.defvjp(
    _dense_layer_norm_leaky_relu_fwd, _dense_layer_norm_leaky_relu_bwd
)


def _dense_norm_leaky_relu(dense: nnx.Linear, norm: nnx.LayerNorm, x: jax.Array) -> jax.Array:
    return jax.nn.leaky_relu(norm(dense(x)), negative_slope=LEAKY_RELU_SLOPE)


# The plain FC layer (the reference path): autodiff of LayerNorm and LeakyReLU, the backward pass
# keeping each layer's matmul output only and recomputing the rest from it (at the paper's
# shapes and batch 32 this halves the decoder's memory against plain autodiff).
fc_layer_reference = nnx.remat(
    _dense_norm_leaky_relu, policy=jax.checkpoint_policies.dots_with_no_batch_dims_saveable
)


def _gru_gates(
    projected: jax.Array, recurrent: jax.Array
) -> tuple[jax.Array, jax.Array, jax.Array]:
    """Update ``z``, reset ``r`` and candidate ``n`` from the input projection ``x W_x + b_x``
    and the recurrent projection ``h W_h + b_h`` (each ``[..., 3 channels]``)."""
    x_z, x_r, x_n = jnp.split(projected, 3, axis=-1)
    h_z, h_r, h_n = jnp.split(recurrent, 3, axis=-1)
    z = jax.nn.sigmoid(x_z + h_z)
    r = jax.nn.sigmoid(x_r + h_r)
    n = jnp.tanh(x_n + r * h_n)
    return z, r, n


def _gru_forward(
    projected: jax.Array,
    kernel: jax.Array,
    bias: jax.Array,
    initial_state: jax.Array,
    keep_gates: bool = False,
) -> tuple[jax.Array, jax.Array, jax.Array | None]:
    """The recurrence; with ``keep_gates`` also every frame's ``[z, r, n, (h_{t-1} W + b)_n,
    h_{t-1}]`` in one ``[n_frames, batch, 5 channels]`` array (what the backward pass reads)."""

    def step(h: jax.Array, x_t: jax.Array) -> tuple[jax.Array, tuple[jax.Array, ...]]:
        # This frame's input projection read once into its own buffer: fused into the gates
        # as a dynamic slice, it keeps XLA's CPU back end from vectorising them (0.56 → 0.32 s
        # for the forward scan at batch 16 × 1000 frames).
        x_t = cpu_fusion_barrier(x_t)
        recurrent = h @ kernel + bias
        z, r, n = _gru_gates(x_t, recurrent)
        h_next = z * h + (1.0 - z) * n
        if not keep_gates:
            return h_next, (h_next,)
        h_n = jnp.split(recurrent, 3, axis=-1)[2]
        return h_next, (h_next, jnp.concatenate([z, r, n, h_n, h], axis=-1))

    final_state, stacked = jax.lax.scan(step, initial_state, projected)
    return stacked[0], final_state, stacked[1] if keep_gates else None


@jax.custom_vjp
def gru_recurrence(
    projected: jax.Array, kernel: jax.Array, bias: jax.Array, initial_state: jax.Array
) -> tuple[jax.Array, jax.Array]:
    """The GRU recurrence over time, given the input projections of every frame.

    ``h_t = z ⊙ h_{t-1} + (1 − z) ⊙ n`` with ``z, r = σ(x_t,z|r + (h_{t-1} W + b)_z|r)`` and
    ``n = tanh(x_t,n + r ⊙ (h_{t-1} W + b)_n)`` (Keras's ``reset_after`` form).

    The backward pass is written by hand: the recurrence only carries ``∂h`` (one
    ``[batch, 3 channels] × [3 channels, channels]`` product per frame), and the gradients of
    ``kernel`` and ``bias`` are one matmul over all frames afterwards. Autodiff of the scan
    instead accumulates the ``[channels, 3 channels]`` kernel gradient inside the loop, a
    full read and write of it every frame. The forward pass keeps each frame's gates, the
    recurrent candidate term and ``h_{t-1}`` in one array, so the backward pass neither keeps
    ``projected`` nor recomputes the gates, and reads one slice of it per frame.

    Args:
        projected: ``x_t W_x + b_x`` for every frame, ``[n_frames, batch, 3 channels]``.
        kernel: Recurrent kernel ``W`` ``[channels, 3 channels]`` (gates z, r, n).
        bias: Recurrent bias ``b`` ``[3 channels]``.
        initial_state: ``h_0`` ``[batch, channels]``.

    Returns:
        ``(outputs [n_frames, batch, channels], final_state [batch, channels])``.
    """
    outputs, final_state, _ = _gru_forward(projected, kernel, bias, initial_state)
    return outputs, final_state


def _gru_recurrence_fwd(
    projected: jax.Array, kernel: jax.Array, bias: jax.Array, initial_state: jax.Array
) -> tuple[tuple[jax.Array, jax.Array], tuple[jax.Array, ...]]:
    outputs, final_state, gates = _gru_forward(projected, kernel, bias, initial_state, True)
    return (outputs, final_state), (kernel, gates)


def _gru_recurrence_bwd(
    residuals: tuple[jax.Array, ...], cotangents: tuple[jax.Array, jax.Array]
) -> tuple[jax.Array, jax.Array, jax.Array, jax.Array]:
    kernel, gates = residuals
    d_outputs, d_final_state = cotangents
    d_kernel_t = kernel.T

    def step(
        d_h: jax.Array, frame: tuple[jax.Array, jax.Array]
    ) -> tuple[jax.Array, tuple[jax.Array, jax.Array]]:
        d_out, frame_gates = cpu_fusion_barrier(frame)  # As forward.
        z, r, n, h_n, h_previous = jnp.split(frame_gates, 5, axis=-1)
        d_h = d_h + d_out
        d_n = d_h * (1.0 - z) * (1.0 - n * n)
        d_z = d_h * (h_previous - n) * z * (1.0 - z)
        d_r = d_n * h_n * r * (1.0 - r)
        d_projected = jnp.concatenate([d_z, d_r, d_n], axis=-1)
        d_recurrent = jnp.concatenate([d_z, d_r, d_n * r], axis=-1)
        d_h_previous = d_h * z + d_recurrent @ d_kernel_t
        return d_h_previous, (d_projected, d_recurrent)

    d_initial_state, (d_projected, d_recurrent) = jax.lax.scan(
        step, d_final_state, (d_outputs, gates), reverse=True
    )
    channels = kernel.shape[0]
    previous = gates[..., 4 * channels :].reshape(-1, channels)
    d_kernel = weight_gradient(previous, d_recurrent.reshape(-1, 3 * channels))
    d_bias = jnp.sum(d_recurrent, axis=(0, 1))
    return d_projected, d_kernel, d_bias, d_initial_state


gru_recurrence.defvjp(_gru_recurrence_fwd, _gru_recurrence_bwd)


def gru_recurrence_reference(
    projected: jax.Array, kernel: jax.Array, bias: jax.Array, initial_state: jax.Array
) -> tuple[jax.Array, jax.Array]:
    """``gru_recurrence`` differentiated by JAX through the ``lax.scan`` (the reference path)."""
    outputs, final_state, _ = _gru_forward(projected, kernel, bias, initial_state)
    return outputs, final_state
