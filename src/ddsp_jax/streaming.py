"""Streaming synthesis: a model rendered one block at a time, with every state carried.

- ``StreamingSynth``: the processor graph (harmonic + filtered noise → reverb) driven by raw
  controls one block at a time.
- ``Stream``: a saved model (decoder + graph) driven by f0 (Hz) and loudness (dB) frames.

Timing. Frame ``j`` of the controls sits at sample ``j * hop``. Block ``i`` covers samples
``[i * block_size, (i + 1) * block_size)`` of the stream and takes the frames whose positions
fall inside it (``frames_due``: ``block_size / hop`` when that is whole, else it alternates
between the two neighbouring counts). Each block returns ``block_size`` samples: the offline
render of all frames so far, delayed by ``latency`` samples, ``max(hop, taps // 2)``: the
harmonic synth interpolates towards the next frame (one hop) and the noise filter is linear
phase with ``taps // 2`` samples of delay (64 samples, one hop or 4 ms, at the defaults:
65 bands make 128 taps).
``finish`` takes the last frames and renders the rest, holding the last frame as the offline
render does.

State carried between blocks: the decoder's GRU state; the fundamental's phase as the exact
fixed-point accumulator (``core.phase``); the last frame's controls (the harmonic synth's
interpolation needs the frame after the one it renders); the noise stream's position
(``core.noise``: noise indexed by sample position, so each block draws exactly its samples of
the offline noise) and the noise filter's overlap; the reverb's frequency-domain delay line
(a uniformly partitioned convolution with partitions of one hop: a 3 s IR costs
``reverb_length / hop`` complex products of ``hop + 1`` bins per hop); and the samples made
but not yet returned.

Exactness. The concatenated blocks equal the offline render (``models.render`` with the same
key) up to float32 rounding, never more: the phase is the same integer arithmetic, the noise
the same numbers and every frame the same arithmetic; what differs is the order of sums — the
decoder's matrix products over a block instead of the whole input, the overlap-add, and the
reverb's partitioned convolution instead of one long FFT. The tests bound the difference at
1e-5 of the output's peak (measured: about 1e-6) for blocks of 64, 100, 320 and 1024 samples.

Every block runs one compiled program (one per block size), on state passed in and out of
it: nothing is compiled and no array is allocated on the host after the first block.
"""

import dataclasses
import functools
import math
from typing import Any, ClassVar

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from ddsp_jax.adjustments import octave_shift
from ddsp_jax.core.filters import filter_blocks, overlap_add
from ddsp_jax.core.implementation import Implementation, current_implementation
from ddsp_jax.core.noise import NOISE_CHUNK, uniform_noise
from ddsp_jax.core.oscillators import harmonic_frames
from ddsp_jax.core.phase import FixedPoint
from ddsp_jax.core.units import DB_RANGE
from ddsp_jax.features.extract import level_conditioning
from ddsp_jax.features.notes import note_frames
from ddsp_jax.features.streaming import StreamingFeatures
from ddsp_jax.models.autoencoder import preprocess
from ddsp_jax.models.saved import SavedModel
from ddsp_jax.polyphase import PolyphaseResampler
from ddsp_jax.processors.graph import ProcessorGraph

State = dict[str, Any]
STREAMING_RESAMPLE_METHODS = ("nearest", "linear", "window")


@dataclasses.dataclass(frozen=True)
class StreamPlan:
    """The static sizes of a stream (everything its compiled program is specialised on).

    Attributes:
        block_size: Samples returned per block.
        hop: Samples per frame.
        max_frames: The most frames a block takes, ``ceil(block_size / hop)``.
        latency: Output delay (samples), ``max(hop, noise_window // 2)``.
        noise_window: Taps of the noise filter.
        n_harmonics: Harmonics of the harmonic synth.
        n_partitions: Reverb partitions of one hop (0: no reverb).
        add_dry: The reverb adds the dry signal.
        sample_rate: Samples per second (Hz).
        amp_resample_method: How harmonic amplitudes are interpolated.
        implementation: The harmonic sum's implementation (``fast`` or ``reference``).
    """

    block_size: int
    hop: int
    max_frames: int
    latency: int
    noise_window: int
    n_harmonics: int
    n_partitions: int
    add_dry: bool
    sample_rate: int
    amp_resample_method: str
    implementation: Implementation

    @property
    def harmonic_delay(self) -> int:
        """Samples the harmonic signal waits for the noise filter's output to catch up."""
        return self.latency - self.hop

    @property
    def noise_kept(self) -> int:
        """Filtered-noise samples kept: finished ones waiting for the harmonic signal, and
        the partial sums of the filter's overlap."""
        return (self.hop - min(self.hop, self.noise_window // 2)) + self.noise_window - 1

    @property
    def hold_frames(self) -> int:
        """Frames ``finish`` appends, each a copy of the last, to flush ``latency`` samples."""
        return -(-self.latency // self.hop)


def _plan(graph: ProcessorGraph, frame_rate: int, block_size: int) -> StreamPlan:
    """Check that ``graph`` can stream and size the stream."""
    config = graph.config
    if block_size <= 0 or isinstance(block_size, bool) or not isinstance(block_size, int):
        raise ValueError(f"block_size must be a positive integer, got {block_size!r}.")
    if config.sample_rate % frame_rate:
        raise ValueError(
            f"streaming needs a whole number of samples per frame; sample_rate "
            f"{config.sample_rate} / frame_rate {frame_rate} is not whole."
        )
    if config.amp_resample_method not in STREAMING_RESAMPLE_METHODS:
        raise ValueError(
            f"streaming interpolates amplitudes with one of {STREAMING_RESAMPLE_METHODS}; "
            f"this model uses {config.amp_resample_method!r}."
        )
    if graph.reverb is not None and "ir" in graph.reverb.control_names:
        raise ValueError(
            "streaming needs a reverb with its own impulse response, not one read "
            "from the controls (reverb_trainable=False)."
        )
    hop = config.sample_rate // frame_rate
    window = graph.noise.config.window_size
    window = min(window, 2 * (config.n_noise_bands - 1))  # As frequency_impulse_response.
    n_partitions = 0 if graph.reverb is None else -(-config.reverb_length // hop)
    return StreamPlan(
        block_size=block_size,
        hop=hop,
        max_frames=-(-block_size // hop),
        latency=max(hop, window // 2),
        noise_window=window,
        n_harmonics=config.n_harmonics,
        n_partitions=n_partitions,
        add_dry=config.reverb_add_dry,
        sample_rate=config.sample_rate,
        amp_resample_method=config.amp_resample_method,
        implementation=current_implementation(),
    )


def reverb_partitions(impulse_response: jax.Array, hop: int) -> jax.Array:
    """The spectra of an IR cut into partitions of ``hop`` samples, for a uniformly
    partitioned convolution: ``[2 * n_partitions, hop + 1]`` complex, partitions in reverse
    order and the sequence twice, so that the ``n_partitions`` rows starting at
    ``n_partitions - 1 - k`` pair partition ``p`` with the delay line's slot ``k - p``.

    Args:
        impulse_response: ``[ir_size]``.
        hop: Partition size (samples).
    """
    n_partitions = -(-impulse_response.shape[0] // hop)
    padded = jnp.pad(impulse_response, (0, n_partitions * hop - impulse_response.shape[0]))
    spectra = jnp.fft.rfft(padded.reshape(n_partitions, hop), 2 * hop)
    reverse = spectra[::-1]
    return jnp.concatenate([reverse, reverse])


def initial_state(plan: StreamPlan) -> State:
    """The state of a stream before its first block (silence, phase 0)."""
    zeros = functools.partial(jnp.zeros, dtype=jnp.float32)
    state: State = {
        "started": jnp.array(False),
        "f0": zeros(()),
        "amplitudes": zeros((plan.n_harmonics,)),
        "phase": (jnp.zeros((1,), jnp.uint32), jnp.zeros((1,), jnp.uint32)),
        "noise_chunk": jnp.zeros((), jnp.uint32),
        "noise_offset": jnp.zeros((), jnp.int32),
        "noise": zeros((plan.noise_kept,)),
        "harmonic": zeros((plan.harmonic_delay,)),
        "pending": zeros((plan.hop,)),
        "n_pending": jnp.zeros((), jnp.int32),
        "lead_in": jnp.array(plan.latency, jnp.int32),
    }
    if plan.n_partitions:
        state["delay_line"] = jnp.zeros((plan.n_partitions, plan.hop + 1), jnp.complex64)
        state["slot"] = jnp.zeros((), jnp.int32)
        state["previous"] = zeros((plan.hop,))
    return state


def _reverberate(
    plan: StreamPlan, state: State, partitions: jax.Array, dry: jax.Array, n_frames: jax.Array
) -> tuple[jax.Array, State]:
    """Uniformly partitioned overlap-save convolution of ``dry`` ``[max_frames, hop]`` (the
    first ``n_frames`` rows real), plus the dry signal when ``add_dry``."""
    hop, n_partitions = plan.hop, plan.n_partitions

    def step(carry: tuple, inputs: tuple) -> tuple[tuple, jax.Array]:
        delay_line, slot, previous = carry
        block, real = inputs
        spectrum = jnp.fft.rfft(jnp.concatenate([previous, block]))
        delay_line = jax.lax.dynamic_update_index_in_dim(delay_line, spectrum, slot, 0)
        paired = jax.lax.dynamic_slice_in_dim(partitions, n_partitions - 1 - slot, n_partitions)
        wet = jnp.fft.irfft(jnp.sum(delay_line * paired, axis=0), 2 * hop)[hop:]
        # Padding rows write into the next slot, which the next real block overwrites.
        slot = jnp.where(real, (slot + 1) % n_partitions, slot)
        previous = jnp.where(real, block, previous)
        return (delay_line, slot, previous), wet + block if plan.add_dry else wet

    real = jnp.arange(dry.shape[0]) < n_frames
    carry = (state["delay_line"], state["slot"], state["previous"])
    (delay_line, slot, previous), out = jax.lax.scan(step, carry, (dry, real))
    return out, {**state, "delay_line": delay_line, "slot": slot, "previous": previous}


def synthesize_frames(
    plan: StreamPlan,
    state: State,
    partitions: jax.Array | None,
    key: jax.Array,
    f0_hz: jax.Array,
    amplitudes: jax.Array,
    noise_magnitudes: jax.Array,
    n_frames: jax.Array,
    noise_on: jax.Array | None = None,
) -> tuple[jax.Array, State]:
    """Render the next frames into the stream's pending output.

    Args:
        plan: The stream's sizes.
        state: The stream's state.
        partitions: ``reverb_partitions`` of the reverb's IR, or None without a reverb.
        key: PRNG key of the noise stream.
        f0_hz: ``[n_slots]`` (Hz), the first ``n_frames`` real.
        amplitudes: Each harmonic's amplitude ``[n_slots, n_harmonics]``.
        noise_magnitudes: The noise filter's magnitudes ``[n_slots, n_bands]``.
        n_frames: Real frames (int32 scalar, may be traced); the rest is padding.
        noise_on: ``[n_slots]`` booleans; False silences a frame's noise (default all on).

    Returns:
        ``(made [n_slots * hop], state)``: ``n_frames * hop`` new output samples first.
    """
    hop, n_slots = plan.hop, f0_hz.shape[0]
    real = jnp.arange(n_slots) < n_frames

    # Harmonic: each frame is rendered once the next one is known, so this block renders
    # the frame before it (the previous block's last) and all but its own last.
    frame_f0 = jnp.concatenate([state["f0"][None], f0_hz[:-1]])
    frame_amplitudes = jnp.concatenate([state["amplitudes"][None], amplitudes[:-1]])
    advance = real & ((jnp.arange(n_slots) > 0) | state["started"])
    phase: FixedPoint = state["phase"]
    harmonic, end, _ = harmonic_frames(
        frame_f0[None],
        frame_amplitudes[None],
        f0_hz[-1:],
        amplitudes[-1:],
        (phase, jnp.zeros((1,), jnp.float32)),
        n_slots * hop,
        plan.sample_rate,
        plan.amp_resample_method,  # type: ignore[arg-type]
        plan.implementation,
        advance[None],
    )
    harmonic = jnp.concatenate([state["harmonic"], harmonic[0]])
    last = jnp.maximum(n_frames - 1, 0)
    any_frame = n_frames > 0

    # Filtered noise: this block's frames filter this block's noise; the tail of the filter
    # carries into the next block.
    noise = uniform_noise(key, 1, n_slots * hop, state["noise_chunk"], state["noise_offset"])
    on = real if noise_on is None else real & noise_on
    magnitudes = jnp.where(on[:, None], noise_magnitudes, 0.0)
    filtered = filter_blocks(noise.reshape(1, n_slots, hop), magnitudes[None], plan.noise_window)
    filtered = overlap_add(filtered, hop)[0]
    kept = plan.noise_kept
    finished = kept - plan.noise_window + 1
    noise = jnp.concatenate([jnp.zeros((finished,)), filtered])
    noise = noise.at[:kept].add(state["noise"])

    made = n_frames * hop
    # The first ``latency`` samples come before the render's start: the filter's lead-in,
    # which the offline render crops, is silenced (before it can reach the reverb).
    dry = harmonic[: n_slots * hop] + noise[: n_slots * hop]
    dry = jnp.where(jnp.arange(n_slots * hop) < state["lead_in"], 0.0, dry)
    position = state["noise_offset"] + made
    state = {
        **state,
        "started": state["started"] | any_frame,
        "f0": jnp.where(any_frame, f0_hz[last], state["f0"]),
        "amplitudes": jnp.where(any_frame, amplitudes[last], state["amplitudes"]),
        "phase": end,
        "noise_chunk": state["noise_chunk"] + (position // NOISE_CHUNK).astype(jnp.uint32),
        "noise_offset": position % NOISE_CHUNK,
        "noise": jax.lax.dynamic_slice_in_dim(noise, made, kept),
        "harmonic": jax.lax.dynamic_slice_in_dim(harmonic, made, plan.harmonic_delay),
        "lead_in": jnp.maximum(state["lead_in"] - made, 0),
    }
    if partitions is None:
        return dry, state
    out, state = _reverberate(plan, state, partitions, dry.reshape(n_slots, hop), n_frames)
    return out.reshape(-1), state


def take_output(
    plan: StreamPlan, state: State, made: jax.Array, n_made: jax.Array, n_out: int
) -> tuple[jax.Array, State]:
    """Append ``n_made`` samples of ``made`` to the pending output and take the first
    ``n_out`` (which the pending output must hold)."""
    capacity = plan.hop + made.shape[0]
    queue = jnp.zeros((capacity,), jnp.float32)
    queue = jax.lax.dynamic_update_slice_in_dim(queue, made, state["n_pending"], 0)
    queue = jnp.where(
        jnp.arange(capacity) < state["n_pending"],
        jnp.pad(state["pending"], (0, capacity - plan.hop)),
        queue,
    )
    n_left = state["n_pending"] + n_made - n_out
    left = jax.lax.dynamic_slice_in_dim(jnp.pad(queue, (0, plan.hop)), n_out, plan.hop)
    return queue[:n_out], {**state, "pending": left, "n_pending": n_left}


def _physical(
    graph: ProcessorGraph, f0_hz: jax.Array, raw: dict[str, jax.Array]
) -> tuple[jax.Array, jax.Array]:
    """Each harmonic's amplitude ``[n_slots, n_harmonics]`` and the noise filter's
    magnitudes ``[n_slots, n_bands]`` from raw controls ``[n_slots, ...]`` (the processors'
    ``get_controls``)."""
    harmonic = graph.harmonic.get_controls(
        raw["amplitudes"][None], raw["harmonic_distribution"][None], f0_hz[None, :, None]
    )
    noise = graph.noise.get_controls(raw["noise_magnitudes"][None])["noise_magnitudes"][0]
    return harmonic["amplitudes"][0] * harmonic["harmonic_distribution"][0], noise


def _frames_before(sample: int, hop: int) -> int:
    """Frames whose positions ``j * hop`` are below ``sample``."""
    return -(-sample // hop)


class _BlockStream:
    """The block loop of a stream: frame counting, input slots, the compiled step, the end.

    Subclasses name their inputs (``INPUTS``, each ``(size, value that silences it)``) and
    turn a block's input slots into raw synth controls in ``_raw_controls``.
    """

    INPUTS: dict[str, tuple[int, float]]

    def __init__(
        self, graph: ProcessorGraph, frame_rate: int, block_size: int, key: jax.Array | int
    ) -> None:
        self.plan = _plan(graph, frame_rate, block_size)
        self.graph = graph
        self._key = jax.random.key(key) if isinstance(key, int) else key
        self._partitions = (
            None
            if graph.reverb is None
            else reverb_partitions(graph.reverb.get_ir()[0], self.plan.hop)
        )
        self._step = jax.jit(self._block, donate_argnums=(1,))
        self._finish = jax.jit(self._last_frames, static_argnums=(4,))
        self.reset()

    @property
    def latency(self) -> int:
        """Samples from a frame's position to where its sound comes out."""
        return self.plan.latency

    @property
    def frames_due(self) -> int:
        """Frames the next block takes."""
        end = (self._blocks + 1) * self.plan.block_size
        return _frames_before(end, self.plan.hop) - self._frames

    def reset(self) -> None:
        """Start again from silence: phase 0, the noise from sample 0, no frames."""
        self._state = self._initial_state()
        self._blocks = 0
        self._frames = 0
        self._slots = {
            name: np.zeros((self.plan.max_frames, size), np.float32)
            for name, (size, _) in self.INPUTS.items()
        }

    def _initial_state(self) -> State:
        return initial_state(self.plan)

    def _params(self) -> Any:
        """Arrays the compiled step reads besides the state (passed, not baked in)."""
        return None

    def _raw_controls(
        self, params: Any, state: State, slots: dict[str, jax.Array], n: jax.Array
    ) -> tuple[jax.Array, dict[str, jax.Array], State]:
        """``(f0_hz [n_slots], raw controls [n_slots, ...], state)`` for a block's slots."""
        raise NotImplementedError

    def _synthesize(
        self, params: Any, state: State, slots: dict[str, jax.Array], n: jax.Array, hold: int
    ) -> tuple[jax.Array, State]:
        f0_hz, raw, state = self._raw_controls(params, state, slots, n)
        amplitudes, noise = _physical(self.graph, f0_hz, raw)
        noise_on = None
        if hold:  # Copies of the last frame (or the one before the block), noise off.
            last = jnp.maximum(n - 1, 0)
            f0_last = jnp.where(n > 0, f0_hz[last], state["f0"])
            amplitudes_last = jnp.where(n > 0, amplitudes[last], state["amplitudes"])
            f0_hz, amplitudes, noise = (
                jnp.pad(x, ((0, hold),) + ((0, 0),) * (x.ndim - 1))
                for x in (f0_hz, amplitudes, noise)
            )
            held = jnp.arange(f0_hz.shape[0]) >= n
            f0_hz = jnp.where(held, f0_last, f0_hz)
            amplitudes = jnp.where(held[:, None], amplitudes_last, amplitudes)
            noise_on = ~held
            n = n + hold
        made, state = synthesize_frames(
            self.plan, state, self._partitions, self._key, f0_hz, amplitudes, noise, n, noise_on
        )
        return made, state

    def _block(
        self, params: Any, state: State, slots: dict[str, jax.Array], n: jax.Array
    ) -> tuple[jax.Array, State]:
        made, state = self._synthesize(params, state, slots, n, 0)
        return take_output(self.plan, state, made, n * self.plan.hop, self.plan.block_size)

    def _last_frames(
        self, params: Any, state: State, slots: dict[str, jax.Array], n: jax.Array, n_out: int
    ) -> jax.Array:
        hold = self.plan.hold_frames
        made, state = self._synthesize(params, state, slots, n, hold)
        return take_output(self.plan, state, made, (n + hold) * self.plan.hop, n_out)[0]

    def block_function(self) -> tuple[Any, list[jax.Array]]:
        """The block step as a pure function of explicit state, for export:
        ``(step, initial_state)`` with ``step(state, slots, n_frames) -> (audio, state)``,
        the state a flat list of arrays, ``slots`` one ``[max_frames, size]`` array per input
        (the block's frames first) and the parameters constants of the function."""
        leaves, tree = jax.tree.flatten(self._initial_state())
        params = self._params()

        def step(
            state: list[jax.Array], slots: dict[str, jax.Array], n_frames: jax.Array
        ) -> tuple[jax.Array, list[jax.Array]]:
            audio, new_state = self._block(params, jax.tree.unflatten(tree, state), slots, n_frames)
            return audio, jax.tree.leaves(new_state)

        return step, leaves

    def _fill(self, values: dict[str, Any], n: int) -> bool:
        """Copy ``n`` frames of each input into its slots; False when a value is not finite
        (then every input's frames are replaced by silent ones)."""
        unknown = sorted(set(values) - set(self.INPUTS))
        if unknown:
            raise ValueError(f"unknown inputs {unknown}; a block takes {sorted(self.INPUTS)}.")
        for name, (size, _) in self.INPUTS.items():
            if name not in values:
                raise ValueError(f"the block needs {name!r}; it has {sorted(values)}.")
            value = np.asarray(values[name], np.float32)
            shapes = ((n, size), (n,)) if size == 1 else ((n, size),)
            if value.shape not in shapes:
                raise ValueError(
                    f"{name} must have shape {shapes[0]} for this block "
                    f"({n} frames due), got {value.shape}."
                )
            self._slots[name][:n] = value.reshape(n, size)
        if all(np.isfinite(self._slots[name][:n]).all() for name in self.INPUTS):
            return True
        for name, (_, silent) in self.INPUTS.items():
            self._slots[name][:n] = silent
        return False

    def process(self, **values: Any) -> np.ndarray:
        """The next block's audio ``[block_size]`` from its ``frames_due`` frames of each
        input. A block with a NaN or infinite value is silent (its frames are replaced by
        silent ones, so the stream goes on in time)."""
        n = self.frames_due
        finite = self._fill(values, n)
        audio, self._state = self._step(self._params(), self._state, self._slots, np.int32(n))
        # Wait for the step: on the CPU it may read the slots in place, and the next block
        # refills them.
        audio = np.asarray(audio)
        self._blocks += 1
        self._frames += n
        return audio if finite else np.zeros(self.plan.block_size, np.float32)

    def finish(self, **values: Any) -> np.ndarray:
        """The end of the stream: the last frames (fewer than ``frames_due``, possibly
        none) and everything still to come out, holding the last frame as the offline
        render does. Afterwards the stream has returned ``latency + n_frames * hop``
        samples; it is reset."""
        n = len(next(iter(values.values()))) if values else 0
        if n > self.plan.max_frames:
            raise ValueError(
                f"finish takes at most {self.plan.max_frames} frames (a block's worth), got {n}."
            )
        if values:
            self._fill(values, n)
        total = self.plan.latency + (self._frames + n) * self.plan.hop
        n_out = total - self._blocks * self.plan.block_size
        audio = self._finish(self._params(), self._state, self._slots, np.int32(n), n_out)
        self.reset()
        return np.asarray(audio)

    def render(self, **values: Any) -> np.ndarray:
        """Stream whole inputs ``[n_frames, ...]`` block by block and return what the
        offline render returns: ``n_frames * hop`` samples, the latency removed."""
        n_frames = len(next(iter(values.values())))
        self.reset()
        blocks, start = [], 0
        while start + self.frames_due <= n_frames:
            due = self.frames_due
            blocks.append(self.process(**{k: v[start : start + due] for k, v in values.items()}))
            start += due
        blocks.append(self.finish(**{k: v[start:] for k, v in values.items()}))
        audio = np.concatenate(blocks)
        return audio[self.plan.latency : self.plan.latency + n_frames * self.plan.hop]


class StreamingSynth(_BlockStream):
    """A processor graph rendered block by block from raw controls (see the module).

    Inputs of a block, ``frames_due`` frames each, as the decoder emits them: ``f0_hz``
    ``[n]`` (Hz), ``amplitudes`` ``[n, 1]``, ``harmonic_distribution`` ``[n, n_harmonics]``,
    ``noise_magnitudes`` ``[n, n_bands]``.

    Args:
        graph: The processor graph (its reverb, if any, with its own IR).
        frame_rate: Control frames per second (Hz); ``sample_rate / frame_rate`` whole.
        block_size: Samples per block.
        key: PRNG key (or seed) of the noise, as ``key`` of the offline render.

    >>> from ddsp_jax.processors import ProcessorGraphConfig
    >>> graph = ProcessorGraph(ProcessorGraphConfig(n_harmonics=4, reverb="none"),
    ...                        rngs=nnx.Rngs(0))
    >>> synth = StreamingSynth(graph, frame_rate=250, block_size=320)
    >>> synth.frames_due, synth.latency
    (5, 64)
    >>> synth.process(f0_hz=np.full(5, 220.0), amplitudes=np.zeros((5, 1)),
    ...               harmonic_distribution=np.zeros((5, 4)),
    ...               noise_magnitudes=np.zeros((5, 65))).shape
    (320,)
    """

    def __init__(
        self, graph: ProcessorGraph, frame_rate: int, block_size: int, key: jax.Array | int = 0
    ) -> None:
        config = graph.config
        self.INPUTS = {
            "f0_hz": (1, 0.0),
            "amplitudes": (1, -1e4),
            "harmonic_distribution": (config.n_harmonics, 0.0),
            "noise_magnitudes": (config.n_noise_bands, -1e4),
        }
        super().__init__(graph, frame_rate, block_size, key)

    def _raw_controls(
        self, params: Any, state: State, slots: dict[str, jax.Array], n: jax.Array
    ) -> tuple[jax.Array, dict[str, jax.Array], State]:
        return slots["f0_hz"][:, 0], slots, state


class Stream(_BlockStream):
    """A saved model rendered block by block from f0 (Hz) and loudness (dB) frames.

    Inputs of a block, ``frames_due`` frames each: ``f0_hz`` ``[n]`` (Hz) and
    ``loudness_db`` ``[n]`` (dB), and for a model with a z encoder ``z`` ``[n, z_dims]``
    (computed beforehand: the encoder normalises over the whole input). The decoder's GRU
    state is carried between blocks.

    Args:
        saved: The model (``models.load_model``).
        block_size: Samples per block.
        key: PRNG key (or seed) of the noise; 0 repeats ``models.render``.
    """

    INPUTS: ClassVar[dict[str, tuple[int, float]]] = {
        "f0_hz": (1, 0.0),
        "loudness_db": (1, -120.0),
    }

    def __init__(self, saved: SavedModel, block_size: int, key: jax.Array | int = 0) -> None:
        self.saved = saved
        if saved.config.encoder is not None:
            self.INPUTS = {**Stream.INPUTS, "z": (saved.config.encoder.z_dims, 0.0)}
        self._decoder_def, decoder_state = nnx.split(saved.model.decoder)
        # Passed as a flat list: flattening an nnx.State on every call keeps a little memory.
        self._decoder_leaves, self._decoder_tree = jax.tree.flatten(decoder_state)
        super().__init__(saved.model.processor_graph, saved.frame_rate, block_size, key)

    def _initial_state(self) -> State:
        rnn = jnp.zeros((1, self.saved.config.decoder.rnn_channels), jnp.float32)
        return {**initial_state(self.plan), "rnn": rnn}

    def _params(self) -> Any:
        return self._decoder_leaves

    def _raw_controls(
        self, params: Any, state: State, slots: dict[str, jax.Array], n: jax.Array
    ) -> tuple[jax.Array, dict[str, jax.Array], State]:
        decoder = nnx.merge(self._decoder_def, jax.tree.unflatten(self._decoder_tree, params))
        f0_hz = slots["f0_hz"][:, 0]
        features = preprocess(f0_hz[None], slots["loudness_db"][None, :, 0])
        if "z" in slots:
            features["z"] = slots["z"][None]
        raw, rnn = decoder.decode(features, state["rnn"], length=n)
        return f0_hz, {name: value[0] for name, value in raw.items()}, {**state, "rnn": rnn}


def check_live_model(saved: SavedModel, what: str) -> None:
    """Raise ValueError when ``what`` (live transfer, an export) cannot take ``saved``: a
    model with a z encoder, whose z needs the whole input, or one whose synthesis is a
    declared graph (the streaming engine renders the standard graph's blocks)."""
    if saved.config.graph is not None:
        raise ValueError(
            f"{what} needs a model with the standard synthesis graph; this one declares its "
            "own (model.graph), which renders offline only (use ddsp resynth or ddsp transfer)."
        )
    if saved.config.encoder is not None:
        raise ValueError(
            f"{what} needs a model conditioned on f0 and loudness alone; this one also reads z "
            "from an encoder that normalises over the whole input (use ddsp resynth or ddsp "
            "transfer, which compute it first)."
        )


def priming_frames(block_size: int, hop: int, lookahead: int) -> int:
    """Silent frames a frame queue starts with so that a synth taking ``frames_due`` frames per
    block never waits for features that lag the block clock by ``lookahead`` samples."""
    period = hop // math.gcd(block_size, hop)
    shortfall = 0
    for block in range(1, period + lookahead // block_size + 2 * period + 1):
        end = block * block_size
        ready = max(0, (end - lookahead) // hop + 1)
        shortfall = max(shortfall, _frames_before(end, hop) - ready)
    return shortfall


class TransferShifts:
    """The pitch (semitones) and loudness (dB) shifts of live transfer: fixed, or ``"auto"``
    from the note frames heard so far (a stream cannot look at the whole input as ``ddsp
    transfer`` does).

    The automatic pitch shift is the whole octaves that bring the notes' mean pitch closest
    to the training data's, the loudness shift the difference between the training notes'
    median loudness and the notes' mean; both are 0 until a note is heard.

    Args:
        pitch_shift: Semitones, or ``"auto"``.
        loudness_shift: dB, or ``"auto"``.
        statistics: The model's training statistics (``SavedModel.statistics``), needed by
            the automatic shifts.
    """

    def __init__(
        self,
        pitch_shift: float | str,
        loudness_shift: float | str,
        statistics: dict[str, Any] | None,
    ) -> None:
        auto = [
            name
            for name, v in (("pitch", pitch_shift), ("loudness", loudness_shift))
            if v == "auto"
        ]
        statistics = statistics or {}
        if auto and statistics.get("mean_pitch_midi") is None:
            raise ValueError(
                f"automatic {' and '.join(auto)} shift needs the model's training statistics, "
                "and this model has none with pitched frames: give the shifts in semitones and dB."
            )
        if auto:
            quantiles = statistics["note_loudness_db_quantiles"]
            self._targets = (statistics["mean_pitch_midi"], quantiles[len(quantiles) // 2])
        self.pitch_shift, self.loudness_shift = pitch_shift, loudness_shift
        self.automatic = bool(auto)
        self.reset()

    def reset(self) -> None:
        """Forget the notes heard."""
        self._notes = np.zeros(3)  # Note frames heard, and the sums of their pitch and loudness.

    def hear(self, f0_hz: np.ndarray, loudness_db: np.ndarray, notes: np.ndarray) -> None:
        """Count the note frames (``notes``, bool) of frames' f0 (Hz, positive where a note)
        and loudness (dB) for the automatic shifts; in NumPy, so that an audio callback never
        compiles a program for a new number of frames."""
        if self.automatic and notes.any():
            pitch = 69.0 + 12.0 * np.log2(np.asarray(f0_hz, np.float64)[notes] / 440.0)
            self._notes += (notes.sum(), np.sum(pitch), np.sum(np.asarray(loudness_db)[notes]))

    def current(self) -> tuple[float, float]:
        """The pitch (semitones) and loudness (dB) shifts in force."""
        count, pitch_sum, loudness_sum = self._notes
        pitch_shift, loudness_shift = self.pitch_shift, self.loudness_shift
        if pitch_shift == "auto":
            pitch_shift = octave_shift(pitch_sum / count, self._targets[0]) if count else 0.0
        if loudness_shift == "auto":
            loudness_shift = self._targets[1] - loudness_sum / count if count else 0.0
        return float(pitch_shift), float(loudness_shift)


class TransferStream:
    """Timbre transfer in real time at the model's rate: audio blocks in, the model's audio
    blocks out.

    Each block of input audio goes through ``StreamingFeatures`` (CREPE f0 decoded frame by
    frame, loudness or, for a power model, power), the frames are shifted as ``ddsp
    transfer`` does (``pitch_shift`` semitones, ``loudness_shift`` dB, frames that are not
    notes lowered by ``quiet_db``; ``features.note_frames`` without gap filling, which would
    look ahead) and queued, and the
    model renders them with ``Stream``. The queue starts with ``priming_frames`` silent
    frames so that the synth never waits for the features.

    ``"auto"`` shifts (``TransferShifts``) follow the note frames heard before the block.

    Args:
        saved: The model; its sample rate must be 16 kHz (CREPE's).
        block_size: Samples per block (the model's rate).
        f0_model: ``"tiny"`` or ``"full"``.
        pitch_shift: Semitones added to the f0, or ``"auto"``.
        loudness_shift: dB added to the loudness, or ``"auto"``.
        quiet_db: dB taken off frames that are not notes.
        key: PRNG key (or seed) of the noise.
    """

    def __init__(
        self,
        saved: SavedModel,
        block_size: int,
        f0_model: str = "tiny",
        pitch_shift: float | str = 0.0,
        loudness_shift: float | str = 0.0,
        quiet_db: float = 20.0,
        key: jax.Array | int = 0,
    ) -> None:
        check_live_model(saved, "live transfer")
        self.adjustment = TransferShifts(pitch_shift, loudness_shift, saved.statistics)
        if saved.sample_rate != StreamingFeatures.sample_rate:
            raise ValueError(
                f"live transfer needs a {StreamingFeatures.sample_rate} Hz model (CREPE's "
                f"rate); this one is {saved.sample_rate} Hz."
            )
        self.block_size = block_size
        self.features = StreamingFeatures(block_size, saved.frame_rate, f0_model)
        self.level_feature = saved.config.level_feature
        self.synth = Stream(saved, block_size, key)
        self.quiet_db = quiet_db
        hop = self.synth.plan.hop
        self.priming_frames = priming_frames(block_size, hop, self.features.latency)
        self.latency = self.priming_frames * hop + self.synth.latency
        capacity = self.priming_frames + 2 * self.synth.plan.max_frames
        self._queue = {name: np.zeros(capacity, np.float32) for name in Stream.INPUTS}
        self.reset()

    def reset(self) -> None:
        """Start again from silence."""
        self.features.reset()
        self.synth.reset()
        self._queue["f0_hz"][:] = 0.0
        self._queue["loudness_db"][:] = -DB_RANGE
        self._queued = self.priming_frames
        self.adjustment.reset()

    def shifts(self) -> tuple[float, float]:
        """The pitch (semitones) and loudness (dB) shifts in force for the next block."""
        return self.adjustment.current()

    def _adjust(self, features: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        notes = note_frames(features["f0_confidence"], features["loudness_db"], max_gap=1)
        pitch_shift, loudness_shift = self.adjustment.current()
        self.adjustment.hear(features["f0_hz"], features["loudness_db"], notes)
        f0_hz = features["f0_hz"] * np.float32(2.0 ** (pitch_shift / 12.0))
        loudness = features["loudness_db"] + np.float32(loudness_shift)
        loudness = np.where(notes, loudness, loudness - np.float32(self.quiet_db))
        return f0_hz, np.maximum(loudness, -DB_RANGE)

    def process(self, audio: np.ndarray) -> np.ndarray:
        """The model's audio for the next block ``[block_size]`` of input ``[block_size]``,
        delayed by ``latency`` samples and a block."""
        features = level_conditioning(self.features.process(audio), self.level_feature)
        f0_hz, loudness = self._adjust(features)
        n = len(f0_hz)
        self._queue["f0_hz"][self._queued : self._queued + n] = f0_hz
        self._queue["loudness_db"][self._queued : self._queued + n] = loudness
        self._queued += n
        due = self.synth.frames_due
        out = self.synth.process(
            f0_hz=self._queue["f0_hz"][:due], loudness_db=self._queue["loudness_db"][:due]
        )
        for values in self._queue.values():
            values[: self._queued - due] = values[due : self._queued].copy()
        self._queued -= due
        return out


class _Queue:
    """A preallocated first-in first-out buffer of float32 samples."""

    def __init__(self, capacity: int) -> None:
        self._values = np.zeros(capacity, np.float32)
        self.count = 0

    def push(self, values: np.ndarray) -> None:
        end = self.count + len(values)
        if end > len(self._values):
            raise RuntimeError(f"the buffer of {len(self._values)} samples overflowed.")
        self._values[self.count : end] = values
        self.count = end

    def pop(self, n: int, out: np.ndarray) -> None:
        """Move the first ``n`` samples into ``out`` (which must hold ``n``)."""
        if n > self.count:
            raise RuntimeError(f"the buffer holds {self.count} samples, not {n}.")
        out[:n] = self._values[:n]
        self._values[: self.count - n] = self._values[n : self.count]
        self.count -= n


class HostRateStream:
    """A model-rate block processor run at a host's sample rate and block size.

    Input is resampled to the model's rate and output back to the host's with
    ``polyphase.PolyphaseResampler`` (about 1.6 ms of delay each way, 80 dB of stop band),
    and buffered: the model runs whenever a block of its input is there, and the host's
    output starts ``prefill`` samples late so that it never waits. ``prefill`` and the total
    ``latency`` are found once, at construction, by running the same buffering on silence
    and on an impulse (the figures depend on both rates and both block sizes).

    Args:
        stream: The model-rate processor: ``process(block [block_size]) -> [block_size]``,
            with ``block_size`` and ``latency`` (samples at ``model_rate``).
        model_rate: The model's sample rate (Hz).
        host_rate: The host's sample rate (Hz).
        host_block: Samples per host block.
    """

    def __init__(self, stream: Any, model_rate: int, host_rate: int, host_block: int) -> None:
        if host_block <= 0 or not isinstance(host_block, int):
            raise ValueError(f"the host block must be a positive integer, got {host_block!r}.")
        if host_rate <= 0:
            raise ValueError(f"the host sample rate must be positive, got {host_rate!r}.")
        self.stream = stream
        self.model_rate, self.host_rate, self.host_block = model_rate, host_rate, host_block
        self.resampled = host_rate != model_rate
        self.prefill = self._simulate(lambda block: np.zeros_like(block))[1]
        response = self._simulate(lambda block: block, impulse=True)[0]
        path = self.prefill + int(np.argmax(np.abs(response)))
        self.latency = path + round(stream.latency * host_rate / model_rate)
        self._out_block = np.zeros(host_block, np.float32)
        self._model_block = np.zeros(stream.block_size, np.float32)
        self.reset()

    def _resamplers(self) -> tuple[PolyphaseResampler, PolyphaseResampler]:
        return (
            PolyphaseResampler(self.host_rate, self.model_rate),
            PolyphaseResampler(self.model_rate, self.host_rate),
        )

    def _simulate(self, model: Any, impulse: bool = False) -> tuple[np.ndarray, int]:
        """Run the buffering with ``model`` for two seconds of host blocks: ``(output,
        the most the output queue was short)``; with ``impulse``, the input is one."""
        resample_in, resample_out = self._resamplers() if self.resampled else (None, None)
        block = self.stream.block_size
        pending = np.zeros(0, np.float32)
        made, outputs, shortfall = 0, [], 0
        for index in range(2 * self.host_rate // self.host_block + 4):
            audio = np.zeros(self.host_block, np.float32)
            if impulse and index == 0:
                audio[0] = 1.0
            audio = resample_in.process(audio) if resample_in else audio
            pending = np.concatenate([pending, audio])
            while len(pending) >= block:
                out = model(pending[:block])
                pending = pending[block:]
                out = resample_out.process(out) if resample_out else out
                outputs.append(out)
                made += len(out)
            shortfall = max(shortfall, (index + 1) * self.host_block - made)
        return np.concatenate(outputs) if outputs else np.zeros(0, np.float32), shortfall

    def reset(self) -> None:
        """Start again: empty buffers, the output ``prefill`` samples of silence ahead."""
        self._resample_in, self._resample_out = (
            self._resamplers() if self.resampled else (None, None)
        )
        capacity = 4 * (self.stream.block_size + self.host_block) + self.prefill + 1024
        self._input = _Queue(capacity)
        self._output = _Queue(capacity * max(1, -(-self.host_rate // self.model_rate)))
        self._output.push(np.zeros(self.prefill, np.float32))

    def process(self, audio: np.ndarray) -> np.ndarray:
        """The next ``host_block`` samples of output (a buffer the next call reuses) for
        ``host_block`` samples of input."""
        if audio.shape != (self.host_block,):
            raise ValueError(f"a block must be [{self.host_block}] samples, got {audio.shape}.")
        self._input.push(self._resample_in.process(audio) if self._resample_in else audio)
        block = self.stream.block_size
        while self._input.count >= block:
            self._input.pop(block, self._model_block)
            out = self.stream.process(self._model_block)
            self._output.push(self._resample_out.process(out) if self._resample_out else out)
        self._output.pop(self.host_block, self._out_block)
        return self._out_block
