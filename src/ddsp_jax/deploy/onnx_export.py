"""A model's streaming synthesis as an ONNX graph: one control frame in, one hop of audio out.

ONNX has no form of JAX's programs that a maintained converter reaches today (jax2onnx 0.17
stops at once on jax 0.12, and on jax 0.11 cannot convert ``rfft`` followed by ``abs`` nor
``irfft``), so the graph is written here from the model's parameters with ``onnx.helper``:
the same arithmetic as ``streaming.Stream`` with one frame per block, in ops every ONNX
runtime has (no FFT op: the few transforms are matrix products).

``synth_graph`` is the step of ``Stream(saved, block_size=hop)``: frame ``j``'s f0 and
loudness in, samples ``[j * hop, (j + 1) * hop)`` of the stream out (the offline render
delayed by ``Stream.latency``), every state an explicit input and output:

- inputs: each state array (``state_names`` order), ``f0_hz`` ``[1]`` (Hz), ``loudness_db``
  ``[1]`` (dB) and ``noise`` ``[hop]``, uniform white noise in [-1, 1) (any generator; the
  Python engine's own is ``core.uniform_noise``);
- outputs: ``audio`` ``[hop]`` and the next value of each state array, named ``next_`` and
  the state's name.

Differences from the Python engine, all float32 rounding: the fundamental's phase is a
float64 number of cycles reduced modulo 1 every frame instead of the 64-bit fixed-point
accumulator (1e-16 cycles per frame, ~1e-13 after 30 minutes), harmonic phases are taken
from it in float64, LayerNorm's variance is ONNX's, the noise filter is a direct FIR and the
reverb's transforms are matrix products. A frame with a NaN or infinite input is silent and
the stream goes on, as in ``Stream``.
"""

import dataclasses
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, compose, helper, numpy_helper

from ddsp_jax.core.filters import frequency_impulse_response
from ddsp_jax.core.harmonic_sum import frame_phase_plan, slot_taps
from ddsp_jax.core.spectral import a_weighting
from ddsp_jax.core.units import DB_RANGE
from ddsp_jax.deploy.stablehlo import ExportError
from ddsp_jax.features.extract import LEVEL_FEATURES, LOUDNESS_N_FFT
from ddsp_jax.features.f0 import (
    CENTS_PER_BIN,
    FIRST_BIN_CENTS,
    FIRST_PADDING,
    FIRST_STRIDE,
    FRAME_SIZE,
    KERNEL,
    MODEL_SAMPLE_RATE,
    N_BINS,
    PADDING,
    PHASES,
    first_kernel,
    load_crepe,
    phased_kernel,
    short_taps,
)
from ddsp_jax.features.notes import CONFIDENT, NOTE_MIN_LOUDNESS_DB
from ddsp_jax.files import write_files
from ddsp_jax.models.autoencoder import F0_RANGE
from ddsp_jax.models.kernels import LEAKY_RELU_SLOPE
from ddsp_jax.models.saved import SavedModel
from ddsp_jax.streaming import (
    Stream,
    StreamPlan,
    TransferShifts,
    check_live_model,
    priming_frames,
)

OPSET = 18
FORMAT = "ddsp-jax streaming ONNX"
VERSION = 1
SILENT_LOUDNESS_DB = -120.0  # What ``Stream`` puts in place of a frame that is not finite.


class GraphBuilder:
    """Nodes and constants of an ONNX graph under construction, each value named once."""

    def __init__(self) -> None:
        self.nodes: list[onnx.NodeProto] = []
        self.initializers: list[onnx.TensorProto] = []
        self._names = 0

    def _name(self, hint: str) -> str:
        self._names += 1
        return f"{hint}_{self._names}"

    def constant(self, value: Any, dtype: Any = np.float32, name: str = "c") -> str:
        """A constant array (an initializer)."""
        tensor = numpy_helper.from_array(np.asarray(value, dtype), self._name(name))
        self.initializers.append(tensor)
        return tensor.name

    def __call__(self, op: str, *inputs: str, outputs: int = 1, name: str = "", **attrs: Any):
        """Add a node; returns its output's name (a list when ``outputs > 1``)."""
        names = [name] if name and outputs == 1 else [self._name(op) for _ in range(outputs)]
        self.nodes.append(helper.make_node(op, list(inputs), names, **attrs))
        return names[0] if outputs == 1 else names

    def model(
        self,
        inputs: list[tuple[str, Any, list[int]]],
        outputs: list[tuple[str, Any, list[int]]],
        doc: str,
        metadata: dict[str, str],
    ) -> onnx.ModelProto:
        """The model with these graph inputs and outputs ``(name, numpy dtype, shape)``."""

        def info(name: str, dtype: Any, shape: list[int]) -> onnx.ValueInfoProto:
            element = helper.np_dtype_to_tensor_dtype(np.dtype(dtype))
            return helper.make_tensor_value_info(name, element, shape)

        graph = helper.make_graph(
            self.nodes,
            "ddsp_jax",
            [info(*entry) for entry in inputs],
            [info(*entry) for entry in outputs],
            self.initializers,
            doc_string=doc,
        )
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])
        model.ir_version = 9  # What onnxruntime 1.20 and later read.
        helper.set_model_props(model, metadata)
        onnx.checker.check_model(model)
        return model


@dataclasses.dataclass(frozen=True)
class StateArray:
    """One array of the step's state: its name, type, shape and value before the first frame."""

    name: str
    initial: np.ndarray

    @property
    def spec(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "shape": list(self.initial.shape),
            "dtype": str(self.initial.dtype),
        }


def _scale(g: GraphBuilder, x: str, scale_fn: str) -> str:
    """``processors.SCALE_FNS[scale_fn]``: ``exp_sigmoid`` (its defaults) or ``none``."""
    if scale_fn == "none":
        return x
    softplus = g("Softplus", g("Neg", x))
    exponent = g("Exp", g("Mul", softplus, g.constant(-np.log(10.0))))
    return g("Add", g("Mul", exponent, g.constant(2.0)), g.constant(1e-7))


def _fc_stack(g: GraphBuilder, x: str, stack: Any) -> str:
    """``decoders.FcStack``: Dense → LayerNorm → LeakyReLU per layer, ``x`` ``[1, in]``."""
    for dense, norm in zip(stack.dense, stack.norm, strict=True):
        y = g("Add", g("MatMul", x, g.constant(dense.kernel[...])), g.constant(dense.bias[...]))
        y = g(
            "LayerNormalization",
            y,
            g.constant(norm.scale[...]),
            g.constant(norm.bias[...]),
            axis=-1,
            epsilon=float(norm.epsilon),
        )
        x = g("LeakyRelu", y, alpha=LEAKY_RELU_SLOPE)
    return x


def _dense(g: GraphBuilder, x: str, layer: Any) -> str:
    return g("Add", g("MatMul", x, g.constant(layer.kernel[...])), g.constant(layer.bias[...]))


def _decoder(g: GraphBuilder, saved: SavedModel, f0: str, loudness: str, rnn: str):
    """``RnnFcDecoder.decode`` of the block's frames (``f0`` and ``loudness`` ``[F]``):
    ``(raw controls {name: [F, size]}, next rnn [1, rnn_channels])``. The GRU is ONNX's
    (gates z, r, h; ``linear_before_reset``: Keras's ``reset_after`` form)."""
    decoder = saved.model.decoder
    positive = g("Greater", f0, g.constant(0.0))
    safe = g("Where", positive, f0, g.constant(440.0))
    semitones = g("Mul", g("Log", g("Div", safe, g.constant(440.0))), g.constant(12 / np.log(2)))
    midi = g("Where", positive, g("Add", semitones, g.constant(69.0)), g.constant(0.0))
    scaled = {
        "f0_scaled": g("Div", midi, g.constant(F0_RANGE)),
        "ld_scaled": g("Add", g("Div", loudness, g.constant(DB_RANGE)), g.constant(1.0)),
    }
    stacks = [
        _fc_stack(g, _column(g, scaled[key]), stack)
        for key, stack in zip(decoder.config.input_keys, decoder.input_stacks, strict=True)
    ]
    inputs = g("Concat", *stacks, axis=-1)  # [F, n_inputs * ch]
    gru, channels = decoder.rnn, decoder.config.rnn_channels
    bias = np.concatenate([gru.input_projection.bias[...], gru.recurrent_projection.bias[...]])
    outputs, last = g(
        "GRU",
        g("Unsqueeze", inputs, g.constant([1], np.int64)),  # [F, batch 1, features]
        g.constant(np.asarray(gru.input_projection.kernel[...]).T[None]),
        g.constant(np.asarray(gru.recurrent_projection.kernel[...]).T[None]),
        g.constant(bias[None]),
        "",
        g("Unsqueeze", rnn, g.constant([0], np.int64)),
        outputs=2,
        hidden_size=channels,
        linear_before_reset=1,
    )
    rnn_out = g("Reshape", outputs, g.constant([-1, channels], np.int64))
    hidden = _fc_stack(g, g("Concat", inputs, rnn_out, axis=-1), decoder.output_stack)
    raw = {name: _dense(g, hidden, head) for name, head in decoder.heads.items()}
    return raw, g("Reshape", last, g.constant([1, channels], np.int64))


def _column(g: GraphBuilder, x: str) -> str:
    """``x[:, None]``."""
    return g("Unsqueeze", x, g.constant([1], np.int64))


def _wrap(g: GraphBuilder, cycles: str) -> str:
    """``core.phase.wrap``: cycles reduced to [-0.5, 0.5]."""
    return g("Sub", cycles, g("Round", cycles))


def _harmonic(
    g: GraphBuilder, plan: StreamPlan, f0: str, amplitudes: str, state: dict[str, str]
) -> tuple[str, str]:
    """The harmonic audio ``[F * hop]`` of the frame before the block and all but the block's
    last frame, each interpolating towards the next (``core.harmonic_frames``), and the next
    phase (float64 cycles in [0, 1))."""
    hop, n_harmonics = plan.hop, plan.n_harmonics
    phases = frame_phase_plan(1, hop, plan.sample_rate)
    offsets, tap_weights = slot_taps(1, hop, plan.amp_resample_method)
    harmonics = np.arange(1, n_harmonics + 1, dtype=np.float32)
    all_but_last = g.constant([-1], np.int64)
    zero = g.constant([0], np.int64)
    f0_before = g("Concat", state["f0"], g("Slice", f0, zero, all_but_last), axis=0)  # [F]
    row = g("Reshape", state["amplitudes"], g.constant([1, n_harmonics], np.int64))
    amplitudes_before = g("Concat", row, g("Slice", amplitudes, zero, all_but_last), axis=0)

    # Phase at each frame's start in float64: the exclusive sum of the frames' increments
    # (the first frame of the stream does not advance it).
    frames = g("Range", g.constant(0, np.int64), _count(g, f0), g.constant(1, np.int64))
    advance = g(
        "Max",
        state["started"],
        g("Cast", g("Greater", frames, g.constant(0, np.int64)), to=TensorProto.FLOAT),
    )
    increment = g(
        "Add",
        g(
            "Mul",
            g("Cast", f0_before, to=TensorProto.DOUBLE),
            g.constant(phases.frame_this, np.float64),
        ),
        g("Mul", g("Cast", f0, to=TensorProto.DOUBLE), g.constant(phases.frame_next, np.float64)),
    )
    increment = g("Mul", increment, g("Cast", advance, to=TensorProto.DOUBLE))
    axis = g.constant(0, np.int64)
    starts = g("Add", state["phase"], g("CumSum", increment, axis, exclusive=1))  # [F]
    end = g("Add", state["phase"], g("ReduceSum", increment, g.constant([0], np.int64)))
    next_phase = g("Sub", end, g("Floor", end))
    start = g("Mul", _column(g, starts), g.constant(harmonics, np.float64))  # [F, n_harmonics]
    start = g("Cast", _wrap(g, start), to=TensorProto.FLOAT)

    # Inside each frame: [F, hop, n_harmonics].
    before, after = _column(g, f0_before), _column(g, f0)
    within = g(
        "Add",
        g("Mul", before, g.constant(phases.within_this[0])),
        g("Mul", after, g.constant(phases.within_next[0])),
    )  # [F, hop]
    expand = g.constant([2], np.int64)
    cycles = g(
        "Add",
        g("Unsqueeze", start, g.constant([1], np.int64)),
        g("Mul", g("Unsqueeze", within, expand), g.constant(harmonics)),
    )
    sines = g("Sin", g("Mul", _wrap(g, cycles), g.constant(2 * np.pi)))
    frequency = g(
        "Add",
        g("Mul", before, g.constant(1.0 - phases.t[0])),
        g("Mul", after, g.constant(phases.t[0])),
    )
    above = g(
        "GreaterOrEqual",
        g("Mul", g("Unsqueeze", frequency, expand), g.constant(harmonics)),
        g.constant(plan.sample_rate / 2),
    )
    sines = g("Where", above, g.constant(0.0), sines)
    by_frame = {0: amplitudes_before, 1: amplitudes}
    weighted = [
        g(
            "Mul",
            g.constant(weights[0][:, None]),
            g("Unsqueeze", by_frame[min(max(offset, 0), 1)], g.constant([1], np.int64)),
        )
        for offset, weights in zip(offsets, tap_weights, strict=True)
    ]
    slot_amplitudes = weighted[0] if len(weighted) == 1 else g("Sum", *weighted)
    audio = g("ReduceSum", g("Mul", sines, slot_amplitudes), expand, keepdims=0)
    return g("Reshape", audio, g.constant([-1], np.int64)), next_phase


def _slice(g: GraphBuilder, x: str, start: int, end: int | None, axis: int = 0) -> str:
    """``x[start:end]`` along ``axis`` (``end`` None: to the end)."""
    return g(
        "Slice",
        x,
        g.constant([start], np.int64),
        g.constant([np.iinfo(np.int64).max if end is None else end], np.int64),
        g.constant([axis], np.int64),
    )


def _windows(g: GraphBuilder, x: str, rank: int, length: int, count: int, width: int) -> str:
    """The windows ``x[..., i : i + width]`` for ``i < count`` of ``x`` ``[..., length]``
    (rank ``rank``, ``length >= count + width - 1``): ``[..., count, width]``.

    Made by copies alone, which onnxruntime runs several times faster than a ``Gather`` of
    the same windows: ``x`` repeated ``count + 1`` times and read as rows of ``length + 1``
    puts ``x[i + j]`` at row ``i``, column ``j``.
    """
    repeats = g.constant([1] * (rank - 1) + [count + 1], np.int64)
    repeated = _slice(g, g("Tile", x, repeats), 0, count * (length + 1), axis=rank - 1)
    rows = g("Reshape", repeated, g.constant([0] * (rank - 1) + [count, length + 1], np.int64))
    return _slice(g, rows, 0, width, axis=rank)


def _count(g: GraphBuilder, x: str) -> str:
    """The length of ``x``'s first axis, an int64 scalar."""
    return g("Squeeze", g("Shape", x, start=0, end=1), g.constant([0], np.int64))


def _samples(g: GraphBuilder, f0: str, hop: int) -> str:
    """``F * hop`` as a one-element int64 tensor."""
    return g("Mul", g("Shape", f0, start=0, end=1), g.constant([hop], np.int64))


def _split_at(g: GraphBuilder, x: str, at: str, size: int) -> tuple[str, str]:
    """``(x[:at], x[at : at + size])`` with ``at`` a one-element int64 tensor."""
    zero = g.constant([0], np.int64)
    return g("Slice", x, zero, at), g("Slice", x, at, g("Add", at, g.constant([size], np.int64)))


def _noise(
    g: GraphBuilder,
    plan: StreamPlan,
    bands: int,
    noise: str,
    magnitudes: str,
    carried: str,
    n_samples: str,
) -> tuple[str, str]:
    """The block's filtered noise: ``(finished samples [F * hop], next overlap)``: each
    frame's hop of ``noise`` through the linear-phase FIR of its ``magnitudes`` ``[F,
    n_bands]`` as a direct convolution, overlap-added (``core.filter_blocks``)."""
    hop, taps, kept = plan.hop, plan.noise_window, plan.noise_kept
    basis = np.asarray(frequency_impulse_response(np.eye(bands, dtype=np.float32)[None], taps))[0]
    reversed_responses = g("MatMul", magnitudes, g.constant(basis[:, ::-1]))  # [F, taps]
    length = hop + taps - 1
    blocks = g("Reshape", noise, g.constant([-1, hop], np.int64))
    padded = g("Pad", blocks, g.constant([0, taps - 1, 0, taps - 1], np.int64))
    # Output n is the sum over k of the reversed response's tap k times padded[n + k].
    shifted = _windows(g, padded, 2, hop + 2 * (taps - 1), taps, length)  # [F, taps, length]
    unsqueezed = g("Unsqueeze", reversed_responses, g.constant([1], np.int64))
    filtered = g("MatMul", unsqueezed, shifted)  # [F, 1, length]
    n_hops = -(-length // hop)
    filtered = g(
        "Pad",
        g("Squeeze", filtered, g.constant([1], np.int64)),
        g.constant([0, 0, 0, n_hops * hop - length], np.int64),
    )
    pieces = g("Reshape", filtered, g.constant([-1, n_hops, hop], np.int64))
    shifted_pieces = [
        g(
            "Pad",
            g("Gather", pieces, g.constant(piece, np.int64), axis=1),
            g.constant([piece, 0, n_hops - 1 - piece, 0], np.int64),
        )
        for piece in range(n_hops)
    ]
    added = g("Reshape", g("Sum", *shifted_pieces), g.constant([-1], np.int64))
    finished = kept - taps + 1
    total = g("Concat", g.constant(np.zeros(finished)), added, axis=0) if finished else added
    total = g(
        "Concat", g("Add", _slice(g, total, 0, kept), carried), _slice(g, total, kept, None), axis=0
    )
    return _split_at(g, total, n_samples, kept)


def _delay(g: GraphBuilder, x: str, carried: str, n_samples: str, delay: int) -> tuple[str, str]:
    """``x`` ``[F * hop]`` delayed by ``delay`` samples: ``(out, next carried [delay])``."""
    if not delay:
        return x, carried
    return _split_at(g, g("Concat", carried, x, axis=0), n_samples, delay)


def _reverb_matrices(impulse_response: np.ndarray, hop: int) -> dict[str, np.ndarray]:
    """The uniformly partitioned convolution's constants (``streaming.reverb_partitions``
    as real matrices): the partitions' spectra (``[n_partitions, hop + 1]``, real and
    imaginary), and the DFT of ``2 hop`` real samples and the inverse that keeps its last
    ``hop`` samples, as matrices."""
    n_partitions = -(-len(impulse_response) // hop)
    padded = np.zeros(n_partitions * hop)
    padded[: len(impulse_response)] = impulse_response
    spectra = np.fft.rfft(padded.reshape(n_partitions, hop), 2 * hop)
    size, bins = 2 * hop, np.arange(hop + 1)
    angle = 2 * np.pi * np.outer(np.arange(size), bins) / size  # [2 hop, hop + 1]
    weight = np.where((bins == 0) | (bins == hop), 1.0, 2.0) / size
    inverse = angle[hop:].T  # [hop + 1, hop]: the output's last hop samples.
    return {
        "partitions_real": spectra.real,
        "partitions_imag": spectra.imag,
        "forward_real": np.cos(angle),
        "forward_imag": -np.sin(angle),
        "inverse_real": weight[:, None] * np.cos(inverse),
        "inverse_imag": -weight[:, None] * np.sin(inverse),
    }


def _reverb(
    g: GraphBuilder,
    plan: StreamPlan,
    matrices: dict[str, np.ndarray],
    dry: str,
    f0: str,
    state: dict[str, str],
) -> tuple[str, dict[str, str]]:
    """The block's hops through the uniformly partitioned overlap-save convolution
    (``streaming``'s reverb): ``(wet (+ dry) [F * hop], next state)``. Hop ``f`` pairs
    partition ``d`` with the spectrum of hop ``f - d``: the block's spectra, newest first,
    are stacked on the delay line and read along diagonals."""
    hop, n_partitions = plan.hop, plan.n_partitions
    c = {name: g.constant(value) for name, value in matrices.items()}
    count = _count(g, f0)
    one = g.constant(1, np.int64)
    frames = g("Range", g.constant(0, np.int64), count, one)
    newest_first = g("Sub", g("Sub", count, one), frames)  # F - 1 - f
    signal = g("Concat", state["previous"], dry, axis=0)  # [(F + 1) * hop]
    windows = g(
        "Add",
        g("Mul", _column(g, frames), g.constant(hop, np.int64)),
        g.constant(np.arange(2 * hop)[None], np.int64),
    )
    windows = g("Gather", signal, windows, axis=0)  # [F, 2 hop]
    diagonals = g(
        "Add", _column(g, newest_first), g.constant(np.arange(n_partitions)[None], np.int64)
    )
    lines, read = {}, []
    for part, name in zip(
        ("forward_real", "forward_imag"), ("delay_real", "delay_imag"), strict=True
    ):
        spectra = g("Gather", g("MatMul", windows, c[part]), newest_first, axis=0)
        stacked = g("Concat", spectra, state[name], axis=0)  # [F + n_partitions, hop + 1]
        lines[name] = _slice(g, stacked, 0, n_partitions)
        read.append(g("Gather", stacked, diagonals, axis=0))  # [F, n_partitions, hop + 1]
    (x_re, x_im), (h_re, h_im) = read, (c["partitions_real"], c["partitions_imag"])
    axis = g.constant([1], np.int64)
    total_re = g(
        "ReduceSum", g("Sub", g("Mul", x_re, h_re), g("Mul", x_im, h_im)), axis, keepdims=0
    )
    total_im = g(
        "ReduceSum", g("Add", g("Mul", x_re, h_im), g("Mul", x_im, h_re)), axis, keepdims=0
    )
    wet = g(
        "Add", g("MatMul", total_re, c["inverse_real"]), g("MatMul", total_im, c["inverse_imag"])
    )
    wet = g("Reshape", wet, g.constant([-1], np.int64))
    out = g("Add", wet, dry) if plan.add_dry else wet
    return out, {**lines, "previous": _slice(g, dry, -hop, None)}


def synth_graph(saved: SavedModel) -> tuple[onnx.ModelProto, list[StateArray], StreamPlan]:
    """The block step of ``saved`` (see the module): ``(model, its state arrays, the plan
    of ``Stream`` with one frame per block)``.

    Raises:
        ValueError: A model this graph cannot express (other decoder inputs, a scale
            function other than ``exp_sigmoid`` or ``none``, or one ``Stream`` refuses).
    """
    decoder_config = saved.config.decoder
    if tuple(decoder_config.input_keys) != ("f0_scaled", "ld_scaled"):
        raise ValueError(
            f"ONNX export takes decoders of f0 and loudness; this one reads "
            f"{list(decoder_config.input_keys)}."
        )
    graph = saved.model.processor_graph
    for name, processor in (("harmonic", graph.harmonic), ("noise", graph.noise)):
        if processor.config.scale_fn not in ("exp_sigmoid", "none"):
            raise ValueError(
                f"ONNX export knows the scale functions exp_sigmoid and none; the {name} "
                f"synth uses {processor.config.scale_fn!r}."
            )
    plan = Stream(saved, block_size=saved.sample_rate // saved.frame_rate).plan
    hop, n_harmonics = plan.hop, plan.n_harmonics
    n_bands = dict(decoder_config.output_splits)["noise_magnitudes"]
    zeros = lambda *shape: np.zeros(shape, np.float32)  # noqa: E731
    states = [
        StateArray("rnn", zeros(1, decoder_config.rnn_channels)),
        StateArray("f0", zeros(1)),
        StateArray("amplitudes", zeros(n_harmonics)),
        StateArray("phase", np.zeros(1, np.float64)),
        StateArray("started", zeros(1)),
        StateArray("noise_overlap", zeros(plan.noise_kept)),
        StateArray("lead_in", np.full(1, plan.latency, np.float32)),
    ]
    if plan.harmonic_delay:
        states.append(StateArray("harmonic_delay", zeros(plan.harmonic_delay)))
    if plan.n_partitions:
        states += [
            StateArray("delay_real", zeros(plan.n_partitions, hop + 1)),
            StateArray("delay_imag", zeros(plan.n_partitions, hop + 1)),
            StateArray("previous", zeros(hop)),
        ]

    g = GraphBuilder()
    state = {s.name: s.name for s in states}
    f0_in, loudness_in = "f0_hz", "loudness_db"
    bad_frames = g(
        "Or",
        g("Or", g("IsNaN", f0_in), g("IsInf", f0_in)),
        g("Or", g("IsNaN", loudness_in), g("IsInf", loudness_in)),
    )
    bad_count = g("ReduceMax", g("Cast", bad_frames, to=TensorProto.FLOAT), keepdims=0)
    bad = g("Greater", bad_count, g.constant(0.0))
    f0 = g("Where", bad, g.constant(0.0), f0_in)
    loudness = g("Where", bad, g.constant(SILENT_LOUDNESS_DB), loudness_in)

    raw, next_rnn = _decoder(g, saved, f0, loudness, state["rnn"])
    harmonic_config = graph.harmonic.config
    amplitude = _scale(g, raw["amplitudes"], harmonic_config.scale_fn)
    distribution = _scale(g, raw["harmonic_distribution"], harmonic_config.scale_fn)
    harmonics = np.arange(1, n_harmonics + 1, dtype=np.float32)
    if harmonic_config.normalize_below_nyquist:
        above = g(
            "GreaterOrEqual",
            g("Mul", _column(g, f0), g.constant(harmonics)),
            g.constant(plan.sample_rate / 2),
        )
        distribution = g("Where", above, g.constant(0.0), distribution)
        total = g("ReduceSum", distribution, g.constant([-1], np.int64), keepdims=1)
        total = g("Where", g("Equal", total, g.constant(0.0)), g.constant(1e-7), total)
        distribution = g("Div", distribution, total)
    amplitudes = g("Mul", amplitude, distribution)  # [F, n_harmonics]
    noise_config = graph.noise.config
    magnitudes = _scale(
        g,
        g("Add", raw["noise_magnitudes"], g.constant(noise_config.initial_bias)),
        noise_config.scale_fn,
    )

    n_samples = _samples(g, f0, hop)
    harmonic, next_phase = _harmonic(g, plan, f0, amplitudes, state)
    noise, next_noise = _noise(
        g, plan, n_bands, "noise", magnitudes, state["noise_overlap"], n_samples
    )
    next_state = {
        "rnn": next_rnn,
        "f0": _slice(g, f0, -1, None),
        "amplitudes": g(
            "Reshape", _slice(g, amplitudes, -1, None), g.constant([n_harmonics], np.int64)
        ),
        "phase": next_phase,
        "started": g.constant([1.0]),
        "noise_overlap": next_noise,
    }
    if plan.harmonic_delay:
        harmonic, next_state["harmonic_delay"] = _delay(
            g, harmonic, state["harmonic_delay"], n_samples, plan.harmonic_delay
        )
    dry = g("Add", harmonic, noise)
    lead_in = state["lead_in"]
    positions = g(
        "Range",
        g.constant(0.0),
        g("Cast", g("Squeeze", n_samples, g.constant([0], np.int64)), to=TensorProto.FLOAT),
        g.constant(1.0),
    )
    dry = g("Where", g("Less", positions, lead_in), g.constant(0.0), dry)
    made = g("Cast", n_samples, to=TensorProto.FLOAT)
    next_state["lead_in"] = g("Max", g("Sub", lead_in, made), g.constant([0.0]))
    audio = dry
    if plan.n_partitions:
        impulse_response = np.asarray(graph.reverb.get_ir()[0], np.float64)
        matrices = _reverb_matrices(impulse_response, hop)
        audio, reverb_state = _reverb(g, plan, matrices, dry, f0, state)
        next_state.update(reverb_state)
    g("Where", bad, g.constant(0.0), audio, name="audio")
    for s in states:
        g("Identity", next_state[s.name], name=f"next_{s.name}")

    model = g.model(
        inputs=[(s.name, s.initial.dtype, list(s.initial.shape)) for s in states]
        + [
            ("f0_hz", np.float32, ["frames"]),
            ("loudness_db", np.float32, ["frames"]),
            ("noise", np.float32, ["samples"]),
        ],
        outputs=[("audio", np.float32, ["samples"])]
        + [(f"next_{s.name}", s.initial.dtype, list(s.initial.shape)) for s in states],
        doc="ddsp-jax streaming synthesis: control frames in, hop samples of audio per frame out.",
        metadata={
            "sample_rate": str(plan.sample_rate),
            "hop": str(hop),
            "latency": str(plan.latency),
        },
    )
    return model, states, plan


def _loudness(g: GraphBuilder, frames: str, n_fft: int) -> str:
    """``core.compute_loudness`` of frames ``[F, n_fft]`` at 16 kHz: ``[F]`` (dB)."""
    bins = np.arange(n_fft // 2 + 1)
    hann = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(n_fft) / n_fft)
    angle = 2 * np.pi * np.outer(np.arange(n_fft), bins) / n_fft
    real = g("MatMul", frames, g.constant(hann[:, None] * np.cos(angle)))
    imag = g("MatMul", frames, g.constant(hann[:, None] * np.sin(angle)))
    power = g("Add", g("Mul", real, real), g("Mul", imag, imag))
    weight = 10.0 ** (a_weighting(bins * MODEL_SAMPLE_RATE / n_fft) / 10.0)
    mean = g(
        "ReduceMean", g("Mul", power, g.constant(weight)), g.constant([1], np.int64), keepdims=0
    )
    return _power_to_db(g, mean)


def _power(g: GraphBuilder, frames: str) -> str:
    """``core.compute_power`` of frames ``[F, frame_size]``: ``[F]`` (dB)."""
    mean = g("ReduceMean", g("Mul", frames, frames), g.constant([1], np.int64), keepdims=0)
    return _power_to_db(g, mean)


def _power_to_db(g: GraphBuilder, power: str) -> str:
    """``core.power_to_db`` (reference 0 dB, floor ``-DB_RANGE``)."""
    floor = 10.0 ** (-DB_RANGE / 10.0)
    db = g("Mul", g("Log", g("Max", power, g.constant(floor))), g.constant(10.0 / np.log(10.0)))
    return g("Max", db, g.constant(-DB_RANGE))


def _crepe(g: GraphBuilder, frames: str, capacity: str) -> str:
    """CREPE's salience ``[F, 360]`` of 1024-sample frames ``[F, 1024]``
    (``features.f0.Crepe``, with its fast path's forms of the convolutions), activations
    ``[F, channels, length]``."""
    crepe = load_crepe(capacity)
    axis = g.constant([-1], np.int64)
    centred = g("Sub", frames, g("ReduceMean", frames, axis, keepdims=1))
    deviation = g("Sqrt", g("ReduceMean", g("Mul", centred, centred), axis, keepdims=1))
    x = g("Div", centred, g("Max", deviation, g.constant(1e-10)))
    length = FRAME_SIZE // FIRST_STRIDE
    for index, (conv, norm) in enumerate(zip(crepe.convs, crepe.norms, strict=True)):
        kernel, bias = np.asarray(conv.kernel[...]), np.asarray(conv.bias[...])
        if index == 0:
            x = _first_convolution(g, x, kernel)
        elif length < KERNEL:
            x = _short_convolution(g, x, kernel, length)
        else:
            x = _phased_convolution(g, x, kernel, PHASES[capacity][index - 1])
        x = g("Add", x, g.constant(bias[:, None]))
        x = g(
            "BatchNormalization",
            g("Relu", x),
            g.constant(norm.scale[...]),
            g.constant(norm.bias[...]),
            g.constant(norm.mean[...]),
            g.constant(norm.var[...]),
            epsilon=float(norm.epsilon),
        )
        x = g("MaxPool", x, kernel_shape=[2], strides=[2])
        length //= 2
    x = g("Reshape", g("Transpose", x, perm=[0, 2, 1]), g.constant([0, -1], np.int64))
    return g("Sigmoid", _dense(g, x, crepe.classifier))


def _first_convolution(g: GraphBuilder, frames: str, kernel: np.ndarray) -> str:
    """``features.f0.first_convolution`` of normalised frames ``[F, 1024]``: ``[F, out,
    256]``."""
    padded = g("Pad", frames, g.constant([0, FIRST_PADDING, 0, FIRST_PADDING], np.int64))
    steps = g("Reshape", padded, g.constant([0, -1, FIRST_STRIDE], np.int64))
    weights = np.transpose(first_kernel(kernel), (2, 1, 0))  # [out, 4, 128]
    return g("Conv", g("Transpose", steps, perm=[0, 2, 1]), g.constant(weights))


def _phased_convolution(g: GraphBuilder, x: str, kernel: np.ndarray, phases: int) -> str:
    """``features.f0.phased_convolution`` of ``x`` ``[F, in, L]``: ``[F, out, L]``."""
    channels_in, channels_out = kernel.shape[1:]
    grouped = phased_kernel(kernel, phases)
    right = phases * (len(grouped) - 1) - PADDING[0]
    padded = g("Pad", x, g.constant([0, 0, PADDING[0], 0, 0, right], np.int64))
    if phases == 1:
        return g("Conv", padded, g.constant(np.transpose(kernel, (2, 1, 0))))
    # [F, in, steps, phases] → [F, phases · in, steps], channel r · in + c.
    split = g("Reshape", padded, g.constant([0, channels_in, -1, phases], np.int64))
    steps = g(
        "Reshape",
        g("Transpose", split, perm=[0, 3, 1, 2]),
        g.constant([0, phases * channels_in, -1], np.int64),
    )
    y = g("Conv", steps, g.constant(np.transpose(grouped, (2, 1, 0))))  # [F, phases·out, L/p]
    # Channel s · out + o of step j → output o at phases · j + s.
    split = g("Reshape", y, g.constant([0, phases, channels_out, -1], np.int64))
    return g(
        "Reshape",
        g("Transpose", split, perm=[0, 2, 3, 1]),
        g.constant([0, channels_out, -1], np.int64),
    )


def _short_convolution(g: GraphBuilder, x: str, kernel: np.ndarray, length: int) -> str:
    """``features.f0.short_convolution`` of ``x`` ``[F, in, L]`` (``L < 64``): ``[F, out,
    L]``."""
    first, end = short_taps(length)
    left, right = PADDING[0] - first, PADDING[1] - (KERNEL - end)
    padded = g("Pad", x, g.constant([0, 0, left, 0, 0, right], np.int64))
    width = end - first
    patches = _windows(g, padded, 3, length + width - 1, length, width)  # [F, in, L, taps]
    rows = g(
        "Reshape",
        g("Transpose", patches, perm=[0, 2, 1, 3]),
        g.constant([0, length, -1], np.int64),
    )  # [F, L, in · taps]
    weights = np.transpose(kernel[first:end], (1, 0, 2)).reshape(-1, kernel.shape[-1])
    return g("Transpose", g("MatMul", rows, g.constant(weights)), perm=[0, 2, 1])


def _decode_f0(g: GraphBuilder, salience: str) -> tuple[str, str]:
    """CREPE's argmax and local average (``features.f0``, without Viterbi) of salience
    ``[F, 360]``: ``(f0_hz [F], confidence [F])``."""
    index = np.arange(N_BINS, dtype=np.float32)
    best = g("Cast", g("ArgMax", salience, axis=-1, keepdims=1), to=TensorProto.FLOAT)  # [F, 1]
    near = g("LessOrEqual", g("Abs", g("Sub", g.constant(index), best)), g.constant(4.0))
    weights = g("Where", near, salience, g.constant(0.0))
    axis = g.constant([-1], np.int64)
    total = g("ReduceSum", weights, axis, keepdims=0)
    weighted = g("ReduceSum", g("Mul", weights, g.constant(index)), axis, keepdims=0)
    some = g("Greater", total, g.constant(0.0))
    mean = g("Div", weighted, g("Where", some, total, g.constant(1.0)))
    mean = g("Where", some, mean, g("Squeeze", best, axis))
    cents = g("Add", g("Mul", mean, g.constant(CENTS_PER_BIN)), g.constant(FIRST_BIN_CENTS))
    octaves = g("Div", cents, g.constant(1200.0))
    f0_hz = g("Mul", g("Pow", g.constant(2.0), octaves), g.constant(10.0))
    return f0_hz, g("ReduceMax", salience, axis, keepdims=0)


def feature_window(f0_model: str | None, loudness_n_fft: int) -> int:
    """Samples of audio ``features_graph`` reads per frame, centred on the frame."""
    return max(FRAME_SIZE if f0_model else 0, loudness_n_fft)


def features_graph(
    f0_model: str | None, loudness_n_fft: int, level_feature: str = "loudness_db"
) -> onnx.ModelProto:
    """The features of frames: input ``audio`` ``[F, window]``, each row 16 kHz audio centred
    on a frame (``window`` = 1024 with CREPE, ``loudness_n_fft`` without); outputs
    ``loudness_db`` ``[F]`` (dB: the model's level, A-weighted loudness or with
    ``level_feature="power_db"`` frame power; ``features.level_conditioning``) and, with
    ``f0_model``, ``f0_hz`` and ``f0_confidence`` ``[F]`` (``features.StreamingFeatures``'
    numbers for those frames)."""
    g = GraphBuilder()
    window = feature_window(f0_model, loudness_n_fft)
    start = (window - loudness_n_fft) // 2
    frames = _slice(g, "audio", start, start + loudness_n_fft, axis=1)
    level = (
        _power(g, frames) if level_feature == "power_db" else _loudness(g, frames, loudness_n_fft)
    )
    g("Identity", level, name="loudness_db")
    outputs = [("loudness_db", np.float32, ["frames"])]
    if f0_model:
        first = (window - FRAME_SIZE) // 2
        crepe_frames = _slice(g, "audio", first, first + FRAME_SIZE, axis=1)
        f0_hz, confidence = _decode_f0(g, _crepe(g, crepe_frames, f0_model))
        g("Identity", f0_hz, name="f0_hz")
        g("Identity", confidence, name="f0_confidence")
        outputs += [("f0_hz", np.float32, ["frames"]), ("f0_confidence", np.float32, ["frames"])]
    return g.model(
        inputs=[("audio", np.float32, ["frames", window])],
        outputs=outputs,
        doc="ddsp-jax streaming features: the f0 and loudness of frames.",
        metadata={"window": str(window), "f0_model": str(f0_model)},
    )


def export_onnx(saved: SavedModel, out: str | Path, f0_model: str | None = "tiny") -> Path:
    """Write ``saved``'s frame step as ``synth.onnx``, the features of a frame as
    ``features.onnx`` (CREPE ``f0_model`` and the model's level, loudness or power;
    ``f0_model`` None: the level only)
    and ``metadata.json`` to the folder ``out``; returns ``out``."""
    check_live_model(saved, "an ONNX export")
    if saved.sample_rate != MODEL_SAMPLE_RATE:
        raise ValueError(
            f"the features run at {MODEL_SAMPLE_RATE} Hz; this model is {saved.sample_rate} Hz."
        )
    synth, states, plan = synth_graph(saved)
    level_feature = saved.config.level_feature
    features = features_graph(f0_model, LOUDNESS_N_FFT, level_feature)
    window = feature_window(f0_model, LOUDNESS_N_FFT)
    level = LEVEL_FEATURES[level_feature]
    metadata = {
        "format": FORMAT,
        "version": VERSION,
        "sample_rate": saved.sample_rate,
        "frame_rate": saved.frame_rate,
        "hop": plan.hop,
        "latency": plan.latency,
        "level_feature": level_feature,
        "synth": {
            "inputs": {
                "f0_hz": "[1] Hz",
                "loudness_db": f"[1] dB ({level}, floor -80)",
                "noise": f"[{plan.hop}] uniform white noise in [-1, 1)",
            },
            "state": [
                {
                    **state.spec,
                    "initial": float(state.initial.flat[0]) if state.initial.size else 0.0,
                }
                for state in states
            ],
        },
        "features": {
            "f0_model": f0_model,
            "window": window,
            "latency": window // 2,
            "outputs": ["loudness_db"] + (["f0_hz", "f0_confidence"] if f0_model else []),
        },
        "statistics": saved.statistics,
    }
    contents = {
        "synth.onnx": synth.SerializeToString(),
        "features.onnx": features.SerializeToString(),
        "metadata.json": (json.dumps(metadata, indent=1) + "\n").encode(),
    }
    write_files(out, contents)  # All or nothing; metadata.json last.
    return Path(out)


def transfer_graph(synth: onnx.ModelProto, features: onnx.ModelProto) -> onnx.ModelProto:
    """One call of timbre transfer: the features of frames, adjusted as ``TransferStream``
    adjusts them, rendered by the synth, as one graph (composed with ``onnx.compose``; one
    ``run`` and one thread pool per block).

    Inputs: ``features/audio`` ``[F, window]`` (``features_graph``'s ``audio``, with an f0
    model), ``f0_scale``, ``loudness_shift`` and ``quiet_db`` (scalars: the f0 is multiplied
    by the first, the loudness in dB moved by the second, and by minus the third where a
    frame is not a note, then floored at ``-DB_RANGE``), then ``synth_graph``'s state arrays
    and ``noise`` ``[F * hop]``. Outputs: ``synth_graph``'s (``audio`` and the next states),
    ``notes`` ``[F]`` (bool: confidence at least ``CONFIDENT`` and loudness above
    ``NOTE_MIN_LOUDNESS_DB``, ``note_frames`` without gap filling), the frames' own
    ``found_f0_hz`` and ``found_loudness_db`` (for a host's automatic shifts) and
    ``features/f0_confidence``.
    """
    g = GraphBuilder()
    confident = g("GreaterOrEqual", "features/f0_confidence", g.constant(CONFIDENT))
    loud = g("Greater", "features/loudness_db", g.constant(NOTE_MIN_LOUDNESS_DB))
    notes = g("And", confident, loud, name="notes")
    g("Identity", "features/f0_hz", name="found_f0_hz")
    g("Identity", "features/loudness_db", name="found_loudness_db")
    g("Mul", "features/f0_hz", "f0_scale", name="f0_hz")
    shifted = g("Add", "features/loudness_db", "loudness_shift")
    lowered = g("Where", notes, shifted, g("Sub", shifted, "quiet_db"))
    g("Max", lowered, g.constant(-DB_RANGE), name="loudness_db")
    found = ["features/f0_hz", "features/loudness_db", "features/f0_confidence"]
    frames = [(name, np.float32, ["frames"]) for name in found]
    scalars = [(name, np.float32, []) for name in ("f0_scale", "loudness_shift", "quiet_db")]
    outputs = ["f0_hz", "loudness_db", "found_f0_hz", "found_loudness_db"]
    shift = g.model(
        inputs=frames + scalars,
        outputs=[("notes", np.bool_, ["frames"])]
        + [(name, np.float32, ["frames"]) for name in outputs],
        doc="ddsp-jax transfer adjustments.",
        metadata={},
    )
    shift = compose.add_prefix(shift, "shift/", rename_inputs=False, rename_outputs=False)
    features = compose.add_prefix(features, "features/")
    kept = ["features/f0_confidence", "notes", "found_f0_hz", "found_loudness_db", *outputs[:2]]
    adjusted = compose.merge_models(
        features, shift, io_map=[(name, name) for name in found], outputs=kept
    )
    controls = [(name, name) for name in ("f0_hz", "loudness_db")]
    return compose.merge_models(adjusted, synth, io_map=controls)


def _check_io(path: Path, runner: Any, inputs: dict[str, list[int]], outputs: dict) -> None:
    """Raise ``ExportError`` unless ``runner``'s inputs and outputs have these shapes."""
    found_in = {i.name: list(i.shape) for i in runner.get_inputs()}
    found_out = {o.name: list(o.shape) for o in runner.get_outputs()}
    if found_in != inputs or found_out != outputs:
        raise ExportError(
            f"{path}: its inputs {found_in} and outputs {found_out} do not match "
            f"metadata.json (inputs {inputs}, outputs {outputs})."
        )


def _session(graph: str | bytes, threads: int, spinning: bool) -> Any:
    """An onnxruntime CPU session of ``graph`` (a path or a serialized model) with
    ``threads`` threads (0: one per physical core) that spin between operators or not."""
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.add_session_config_entry("session.intra_op.allow_spinning", str(int(spinning)))
    return onnxruntime.InferenceSession(graph, options, providers=["CPUExecutionProvider"])


def load_onnx(folder: str | Path, threads: int = 0) -> tuple[Any, Any, dict[str, Any]]:
    """Open a folder ``export_onnx`` wrote in onnxruntime: ``(synth runner, features
    runner, metadata)``, each graph checked against ``metadata.json``. ``threads``:
    onnxruntime's threads per graph (0: one per physical core); they do not spin waiting for
    work, which would take the cores from the other graph when a host runs one after the
    other.

    Raises:
        ExportError: Naming the file and what does not fit.
    """
    folder = Path(folder)
    try:
        metadata = json.loads((folder / "metadata.json").read_text())
        states = metadata["synth"]["state"]
        state_shapes = {state["name"]: state["shape"] for state in states}
        features = metadata["features"]
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise ExportError(f"{folder}: not a complete ONNX export ({error}).") from error
    if metadata.get("format") != FORMAT or metadata.get("version") != VERSION:
        raise ExportError(f"{folder / 'metadata.json'}: not a {FORMAT} of version {VERSION}.")
    runners = []
    for name in ("synth.onnx", "features.onnx"):
        try:
            runners.append(_session(str(folder / name), threads, spinning=False))
        except Exception as error:  # onnxruntime's errors share no narrower base class.
            message = str(error).split("\n")[0]
            raise ExportError(
                f"{folder / name}: onnxruntime cannot load it ({message})."
            ) from error
    _check_io(
        folder / "synth.onnx",
        runners[0],
        {**state_shapes, "f0_hz": ["frames"], "loudness_db": ["frames"], "noise": ["samples"]},
        {"audio": ["samples"], **{f"next_{name}": shape for name, shape in state_shapes.items()}},
    )
    _check_io(
        folder / "features.onnx",
        runners[1],
        {"audio": ["frames", features["window"]]},
        {name: ["frames"] for name in features["outputs"]},
    )
    written = runners[0].get_modelmeta().custom_metadata_map
    for key in ("sample_rate", "hop", "latency"):
        if written.get(key) != str(metadata.get(key)):
            raise ExportError(
                f"{folder / 'synth.onnx'}: made for {key} {written.get(key)}; metadata.json "
                f"says {metadata.get(key)}."
            )
    return runners[0], runners[1], metadata


class OnnxStream:
    """Timbre transfer with an ONNX export in onnxruntime: 16 kHz audio blocks in, the
    model's audio blocks out, the loop a host runs (docs/deployment.md), needing no JAX.

    Each frame's features are computed once its window is complete (``latency`` samples
    after its centre), adjusted as ``streaming.TransferStream`` adjusts them (``pitch_shift``
    semitones, ``loudness_shift`` dB, frames that are not notes lowered by ``quiet_db``;
    ``"auto"`` shifts from the notes heard before the block, ``streaming.TransferShifts``)
    and rendered, in one ``transfer_graph`` call per block whose threads spin between
    operators. The synth starts with ``streaming.priming_frames`` silent frames so that a
    block's output is always there. With the same noise, the output equals
    ``TransferStream``'s with the same settings (up to float32 rounding).

    Args:
        folder: An ``export_onnx`` folder with an f0 model.
        block_size: Samples per block.
        pitch_shift: Semitones added to the f0, or ``"auto"``.
        loudness_shift: dB added to the loudness, or ``"auto"``.
        quiet_db: dB taken off frames that are not notes.
        noise: ``noise(start, count)``: uniform noise in [-1, 1) for samples ``[start, start
            + count)`` of the stream (default: numpy's generator, seed 0).
        threads: onnxruntime's threads per graph (0: one per physical core).
    """

    def __init__(
        self,
        folder: str | Path,
        block_size: int,
        pitch_shift: float | str = 0.0,
        loudness_shift: float | str = 0.0,
        quiet_db: float = 20.0,
        noise: Callable[[int, int], np.ndarray] | None = None,
        threads: int = 0,
    ) -> None:
        self.synth, _, self.metadata = load_onnx(folder, threads)
        if self.metadata["features"]["f0_model"] is None:
            raise ValueError(f"{folder}: exported without an f0 model; transfer needs one.")
        if block_size <= 0 or not isinstance(block_size, int):
            raise ValueError(f"block_size must be a positive integer, got {block_size!r}.")
        self.adjustment = TransferShifts(pitch_shift, loudness_shift, self.metadata["statistics"])
        folder = Path(folder)
        graphs = (onnx.load(folder / name) for name in ("synth.onnx", "features.onnx"))
        transfer = transfer_graph(*graphs)
        self.transfer = _session(transfer.SerializeToString(), threads, spinning=True)
        self._synth_outputs = [output.name for output in self.synth.get_outputs()]
        self.block_size = block_size
        self.hop = self.metadata["hop"]
        self.window = self.metadata["features"]["window"]
        lookahead = self.window // 2
        self.priming_frames = priming_frames(block_size, self.hop, lookahead)
        self.latency = self.priming_frames * self.hop + self.metadata["latency"]
        self._quiet_db = np.array(quiet_db, np.float32)
        generator = np.random.default_rng(0)
        self._noise = noise or (
            lambda start, count: generator.uniform(-1.0, 1.0, count).astype(np.float32)
        )
        self.reset()

    def reset(self) -> None:
        """Start again from silence."""
        self._state = {
            state["name"]: np.full(state["shape"], state["initial"], state["dtype"])
            for state in self.metadata["synth"]["state"]
        }
        self._frames = 0
        self._input = np.zeros(self.window // 2, np.float32)  # Silence before sample 0.
        self._output = np.zeros(0, np.float32)
        self.adjustment.reset()
        if self.priming_frames:
            silent = np.ones(self.priming_frames, np.float32)
            conditioning = {"f0_hz": 0.0 * silent, "loudness_db": -DB_RANGE * silent}
            self._render(self.synth, self.priming_frames, conditioning)

    def shifts(self) -> tuple[float, float]:
        """The pitch (semitones) and loudness (dB) shifts in force for the next block."""
        return self.adjustment.current()

    def _render(
        self, runner: Any, frames: int, inputs: dict[str, np.ndarray], heard: tuple = ()
    ) -> list[np.ndarray]:
        """Render the next ``frames`` frames with ``runner`` (the synth graph, or
        ``transfer_graph`` of both) from ``inputs`` (their conditioning, or their audio),
        keep the audio and state it returns, and return its outputs ``heard``."""
        noise = np.asarray(self._noise(self._frames * self.hop, frames * self.hop), np.float32)
        outputs = [*self._synth_outputs, *heard]
        audio, *rest = runner.run(outputs, {**self._state, **inputs, "noise": noise})
        state, found = rest[: len(self._state)], rest[len(self._state) :]
        self._state = dict(zip(self._state, state, strict=True))
        self._output = np.concatenate([self._output, audio])
        self._frames += frames
        return found

    def process(self, audio: np.ndarray) -> np.ndarray:
        """The model's audio ``[block_size]`` for the next block of input ``[block_size]``,
        ``latency`` samples later."""
        audio = np.asarray(audio, np.float32)
        if audio.shape != (self.block_size,):
            raise ValueError(f"a block must be [{self.block_size}] samples, got {audio.shape}.")
        self._input = np.concatenate([self._input, audio])
        n = max(0, (len(self._input) - self.window) // self.hop + 1)  # Complete windows.
        if n:
            windows = np.lib.stride_tricks.sliding_window_view(self._input, self.window)
            frames = np.ascontiguousarray(windows[: n * self.hop : self.hop])
            pitch_shift, loudness_shift = self.adjustment.current()
            adjustments = {
                "f0_scale": np.array(2.0 ** (pitch_shift / 12.0), np.float32),
                "loudness_shift": np.array(loudness_shift, np.float32),
                "quiet_db": self._quiet_db,
            }
            heard = ("found_f0_hz", "found_loudness_db", "notes")
            inputs = {"features/audio": frames, **adjustments}
            found = self._render(
                self.transfer, n, inputs, heard if self.adjustment.automatic else ()
            )
            if found:
                self.adjustment.hear(*found)
            self._input = self._input[n * self.hop :]
        out, self._output = self._output[: self.block_size], self._output[self.block_size :]
        return out
