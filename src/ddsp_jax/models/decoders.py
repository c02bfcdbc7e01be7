"""Decoders: conditioning signals (f0, loudness, z) → raw synthesizer controls."""

import dataclasses
import functools
import itertools

import jax
import jax.numpy as jnp
from flax import nnx

from ddsp_jax.core.implementation import cpu_fusion_barrier, current_implementation
from ddsp_jax.core.validation import check_positive_int, check_rank


def fan_in_bias_init(fan_in: int) -> nnx.Initializer:
    """Biases uniform in ``±1 / sqrt(fan_in)`` (PyTorch's ``nn.Linear`` default)."""
    bound = 1.0 / float(fan_in) ** 0.5

    def init(key: jax.Array, shape: tuple[int, ...], dtype: jnp.dtype = jnp.float32) -> jax.Array:
        return jax.random.uniform(key, shape, dtype, -bound, bound)

    return init


class FcStack(nnx.Module):
    """``layers`` × (Dense → LayerNorm → LeakyReLU), magenta's ``fc_stack``.

    Maps ``[..., in_features]`` to ``[..., ch]``. Dense biases start non-zero
    (``fan_in_bias_init``): with magenta's zero biases, LayerNorm of ``Dense(x)`` for a scalar
    input ``x`` is ``sign(x) × const``, so the stack cannot see the magnitude of f0 or
    loudness until the biases have drifted away from zero, which costs hundreds of steps.

    Each layer runs as ``dense_layer_norm_leaky_relu`` (a hand-written backward pass); under
    ``use_implementation("reference")`` as the flax layers differentiated by JAX.
    """

    def __init__(self, in_features: int, ch: int, layers: int, *, rngs: nnx.Rngs) -> None:
        sizes = [in_features] + [ch] * layers
        self.dense = nnx.List(
            [
                nnx.Linear(a, b, bias_init=fan_in_bias_init(a), rngs=rngs)
                for a, b in itertools.pairwise(sizes)
            ]
        )
        self.norm = nnx.List([nnx.LayerNorm(ch, rngs=rngs) for _ in range(layers)])

    def __call__(self, x: jax.Array) -> jax.Array:
        fast = current_implementation() == "fast"
        for dense, norm in zip(self.dense, self.norm, strict=True):
            if fast:
                x = dense_layer_norm_leaky_relu(
                    x,
                    dense.kernel[...],
                    dense.bias[...],
                    norm.scale[...],
                    norm.bias[...],
                    norm.epsilon,
                    LEAKY_RELU_SLOPE,
                )
            else:
                x = _fc_layer_reference(dense, norm, x)
        return x


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


# The reference path's FC layer: autodiff of LayerNorm and LeakyReLU, the backward pass
# keeping each layer's matmul output only and recomputing the rest from it (at the paper's
# shapes and batch 32 this halves the decoder's memory against plain autodiff).
_fc_layer_reference = nnx.remat(
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


class Gru(nnx.Module):
    """A GRU over time (Keras's ``reset_after`` form, as magenta's ``tf.keras.layers.GRU``).

    The input projections of all frames are one matmul outside the recurrence; only
    ``h @ W_h`` stays inside the scan (``gru_recurrence``, which also has a hand-written
    backward pass; ``gru_recurrence_reference`` under ``use_implementation("reference")``).
    Gates (update ``z``, reset ``r``, candidate ``n``):
    ``z, r = σ(x W_xz,r + h W_hz,r + b)``, ``n = tanh(x W_xn + r ⊙ (h W_hn + b_hn))``,
    ``h' = z ⊙ h + (1 − z) ⊙ n``.
    """

    def __init__(self, in_features: int, channels: int, *, rngs: nnx.Rngs) -> None:
        self.channels = channels
        self.input_projection = nnx.Linear(in_features, 3 * channels, rngs=rngs)
        self.recurrent_projection = nnx.Linear(
            channels,
            3 * channels,
            kernel_init=nnx.initializers.orthogonal(),
            rngs=rngs,
        )

    def __call__(
        self, x: jax.Array, initial_state: jax.Array | None = None
    ) -> tuple[jax.Array, jax.Array]:
        """Run over ``x`` ``[batch, n_frames, in_features]``.

        Returns:
            ``(outputs [batch, n_frames, channels], final_state [batch, channels])``.
        """
        batch = x.shape[0]
        h0 = jnp.zeros((batch, self.channels), x.dtype) if initial_state is None else initial_state
        projected = jnp.swapaxes(self.input_projection(x), 0, 1)  # [n_frames, batch, 3 ch]
        fast = current_implementation() == "fast"
        recurrence = gru_recurrence if fast else gru_recurrence_reference
        outputs, final_state = recurrence(
            projected,
            self.recurrent_projection.kernel[...],
            self.recurrent_projection.bias[...],
            h0,
        )
        return jnp.swapaxes(outputs, 0, 1), final_state


@dataclasses.dataclass(frozen=True)
class RnnFcDecoderConfig:
    """Sizes of ``RnnFcDecoder`` (magenta's defaults: 512 / 512 / 3).

    Attributes:
        input_keys: Conditioning signals, each ``[batch, n_frames, 1]`` (or ``z``-like
            ``[batch, n_frames, d]`` with its size in ``input_sizes``).
        input_sizes: Feature size of each input.
        output_splits: ``(name, size)`` of each raw control the decoder emits.
        ch: Units of every fully connected layer.
        layers_per_stack: Layers of each FC stack.
        rnn_channels: GRU units.
    """

    input_keys: tuple[str, ...] = ("f0_scaled", "ld_scaled")
    input_sizes: tuple[int, ...] = (1, 1)
    output_splits: tuple[tuple[str, int], ...] = (
        ("amplitudes", 1),
        ("harmonic_distribution", 100),
        ("noise_magnitudes", 65),
    )
    ch: int = 512
    layers_per_stack: int = 3
    rnn_channels: int = 512

    def __post_init__(self) -> None:
        if len(self.input_keys) != len(self.input_sizes) or not self.input_keys:
            raise ValueError("input_keys and input_sizes must be non-empty and of equal length.")
        for name in ("ch", "layers_per_stack", "rnn_channels"):
            check_positive_int(name, getattr(self, name))
        for _, size in self.output_splits:
            check_positive_int("output size", size)

    def matmul_shapes(self) -> tuple[tuple[tuple[int, int], ...], tuple[int, int]]:
        """``(fan_in, fan_out)`` of ``RnnFcDecoder``'s matrix products for one frame of one
        example: those applied to all frames at once (every Dense layer, the GRU's input
        projection, the heads), and the GRU's recurrent product (one per frame, inside the
        recurrence)."""
        ch, rnn, layers = self.ch, self.rnn_channels, self.layers_per_stack
        stack_in = len(self.input_keys) * ch
        products = [(size, ch) for size in self.input_sizes]  # first layer of each stack
        products += [(ch, ch)] * ((layers - 1) * len(self.input_sizes))
        products += [(stack_in, 3 * rnn)]  # GRU input projection
        products += [(stack_in + rnn, ch)] + [(ch, ch)] * (layers - 1)  # output stack
        products += [(ch, size) for _, size in self.output_splits]
        return tuple(products), (rnn, 3 * rnn)

    def matmul_flops_per_frame(self) -> int:
        """Multiply-add FLOPs (2 per multiply-add) of ``matmul_shapes`` for one frame of one
        example, forward only. Training costs about three times this (the backward pass has
        two products per forward one)."""
        products, recurrent = self.matmul_shapes()
        return sum(2 * fan_in * fan_out for fan_in, fan_out in (*products, recurrent))


class RnnFcDecoder(nnx.Module):
    """magenta's ``RnnFcDecoder``: per-input FC stacks → GRU → FC stack → one Dense per control.

    Inputs are a dict of named conditioning signals ``[batch, n_frames, size]``; outputs a
    dict of raw (unscaled) controls ``[batch, n_frames, size]``.
    """

    def __init__(self, config: RnnFcDecoderConfig, *, rngs: nnx.Rngs) -> None:
        self.config = config
        ch, layers = config.ch, config.layers_per_stack
        self.input_stacks = nnx.List(
            [FcStack(size, ch, layers, rngs=rngs) for size in config.input_sizes]
        )
        n_inputs = len(config.input_keys)
        self.rnn = Gru(n_inputs * ch, config.rnn_channels, rngs=rngs)
        self.output_stack = FcStack(n_inputs * ch + config.rnn_channels, ch, layers, rngs=rngs)
        self.heads = nnx.Dict(
            {name: nnx.Linear(ch, size, rngs=rngs) for name, size in config.output_splits}
        )

    def decode(
        self, conditioning: dict[str, jax.Array], rnn_state: jax.Array | None = None
    ) -> tuple[dict[str, jax.Array], jax.Array]:
        """Decode, returning the GRU's final state too (to continue a stream).

        Returns:
            ``(controls, rnn_state [batch, rnn_channels])``.
        """
        missing = [k for k in self.config.input_keys if k not in conditioning]
        if missing:
            raise ValueError(
                f"RnnFcDecoder needs inputs {list(self.config.input_keys)}; missing {missing}."
            )
        stacks = []
        for key, size, stack in zip(
            self.config.input_keys, self.config.input_sizes, self.input_stacks, strict=True
        ):
            x = conditioning[key]
            if x.ndim == 2:
                x = x[..., None]
            check_rank(key, x, (3,), f"[batch, n_frames, {size}]")
            if x.shape[-1] != size:
                raise ValueError(f"{key} must have {size} features, got shape {x.shape}.")
            stacks.append(stack(x))
        inputs = jnp.concatenate(stacks, axis=-1)
        rnn_out, rnn_state = self.rnn(inputs, rnn_state)
        hidden = self.output_stack(jnp.concatenate([inputs, rnn_out], axis=-1))
        return {name: head(hidden) for name, head in self.heads.items()}, rnn_state

    def __call__(self, conditioning: dict[str, jax.Array]) -> dict[str, jax.Array]:
        """Raw controls, each ``[batch, n_frames, size]``."""
        return self.decode(conditioning)[0]
