"""Decoders: conditioning signals (f0, loudness, z) → raw synthesizer controls."""

import dataclasses
import itertools

import jax
import jax.numpy as jnp
from flax import nnx

from ddsp_jax.core.implementation import current_implementation
from ddsp_jax.core.validation import check_positive_int, check_rank
from ddsp_jax.models.kernels import (
    LEAKY_RELU_SLOPE,
    dense_layer_norm_leaky_relu,
    fc_layer_reference,
    gru_recurrence,
    gru_recurrence_reference,
)


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
                x = fc_layer_reference(dense, norm, x)
        return x


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
        self,
        conditioning: dict[str, jax.Array],
        rnn_state: jax.Array | None = None,
        length: jax.Array | None = None,
    ) -> tuple[dict[str, jax.Array], jax.Array]:
        """Decode, returning the GRU's final state too (to continue a stream).

        Args:
            conditioning: The inputs named in ``input_keys``, each ``[batch, n_frames, size]``.
            rnn_state: The GRU's state before the first frame ``[batch, rnn_channels]``
                (default zeros).
            length: Frames of real input (an int32 scalar, may be traced); the frames after
                it are padding and the returned state is the one after ``length`` frames.
                Default: all ``n_frames``.

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
        rnn_out, final_state = self.rnn(inputs, rnn_state)
        if length is not None:  # The GRU's output at a frame is its state after it.
            before = jnp.zeros_like(final_state) if rnn_state is None else rnn_state
            last = jax.lax.dynamic_index_in_dim(
                rnn_out, jnp.maximum(length - 1, 0), axis=1, keepdims=False
            )
            final_state = jnp.where(length > 0, last, before)
        hidden = self.output_stack(jnp.concatenate([inputs, rnn_out], axis=-1))
        return {name: head(hidden) for name, head in self.heads.items()}, final_state

    def __call__(self, conditioning: dict[str, jax.Array]) -> dict[str, jax.Array]:
        """Raw controls, each ``[batch, n_frames, size]``."""
        return self.decode(conditioning)[0]
