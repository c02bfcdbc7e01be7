"""Processor graphs declared in config: named processors, each reading decoder outputs, the
conditioning ``f0_hz`` or earlier processors' signals (magenta's ``ProcessorGroup`` DAG).

A declaration lists nodes in order; a node names its processor type, its options (the fields
of that processor's config; ``sample_rate`` and ``n_samples`` default to the model's) and its
inputs, one per control of the processor. Without ``inputs`` a node reads each control by its
own name, and an ``audio`` control from the node before it: effects declared one after the
other form a chain. In TOML::

    [[model.graph.nodes]]
    name = "harmonic"
    processor = "harmonic"        # amplitudes, harmonic_distribution, f0_hz
    [[model.graph.nodes]]
    name = "noise"
    processor = "filtered_noise"  # noise_magnitudes
    [[model.graph.nodes]]
    name = "dry"
    processor = "add"
    inputs = ["harmonic", "noise"]
    [[model.graph.nodes]]
    name = "reverb"
    processor = "reverb"          # audio: the output of "dry"
    options = { reverb_length = 16000 }

The graph's audio is its ``output`` node's signal (by default the last node's).
"""

import dataclasses
import json
from collections.abc import Callable, Collection
from typing import Any

import jax
import jax.numpy as jnp
from flax import nnx

from ddsp_jax.processors.base import Controls, Processor
from ddsp_jax.processors.effects import (
    ExpDecayReverb,
    ExpDecayReverbConfig,
    FilteredNoiseReverb,
    FilteredNoiseReverbConfig,
    FIRFilter,
    FIRFilterConfig,
    ModDelay,
    ModDelayConfig,
    Reverb,
    ReverbConfig,
    SincFilter,
    SincFilterConfig,
)
from ddsp_jax.processors.graph import ProcessorGraphConfig
from ddsp_jax.processors.routing import Add, Crop, CropConfig, Mix
from ddsp_jax.processors.synths import (
    FilteredNoise,
    FilteredNoiseConfig,
    Harmonic,
    HarmonicConfig,
    Noise,
    NoiseConfig,
    Sinusoidal,
    SinusoidalConfig,
    TensorToAudio,
    Wavetable,
    WavetableConfig,
)
from ddsp_jax.serialization import from_dict, to_dict


@dataclasses.dataclass(frozen=True)
class ProcessorType:
    """How a declared node's processor is built: its class, its config dataclass (None: it
    takes no options) and whether its constructor takes ``rngs`` (it has parameters)."""

    processor: Callable[..., Processor]
    config: type | None = None
    takes_rngs: bool = False


PROCESSOR_TYPES: dict[str, ProcessorType] = {
    "harmonic": ProcessorType(Harmonic, HarmonicConfig),
    "sinusoidal": ProcessorType(Sinusoidal, SinusoidalConfig),
    "wavetable": ProcessorType(Wavetable, WavetableConfig),
    "filtered_noise": ProcessorType(FilteredNoise, FilteredNoiseConfig),
    "noise": ProcessorType(Noise, NoiseConfig),
    "tensor_to_audio": ProcessorType(TensorToAudio),
    "fir_filter": ProcessorType(FIRFilter, FIRFilterConfig),
    "sinc_filter": ProcessorType(SincFilter, SincFilterConfig),
    "mod_delay": ProcessorType(ModDelay, ModDelayConfig),
    "reverb": ProcessorType(Reverb, ReverbConfig, takes_rngs=True),
    "exp_decay_reverb": ProcessorType(ExpDecayReverb, ExpDecayReverbConfig, takes_rngs=True),
    "filtered_noise_reverb": ProcessorType(
        FilteredNoiseReverb, FilteredNoiseReverbConfig, takes_rngs=True
    ),
    "add": ProcessorType(Add),
    "mix": ProcessorType(Mix),
    "crop": ProcessorType(Crop, CropConfig),
}

CONDITIONING = ("f0_hz",)  # What every graph may read besides the decoder's outputs.
RESERVED_NAMES = frozenset({*CONDITIONING, "audio", "controls"})


@dataclasses.dataclass(frozen=True)
class NodeConfig:
    """One processor of a declared graph.

    Attributes:
        name: How inputs of later nodes and the graph's ``output`` refer to it.
        processor: One of ``PROCESSOR_TYPES``.
        inputs: One name per control of the processor, in its order: a decoder output,
            ``f0_hz`` or an earlier node. Empty: each control by its own name, and ``audio``
            from the node before.
        options: Settings of the processor's config (e.g. ``{"reverb_length": 16000}``).
    """

    name: str
    processor: str
    inputs: tuple[str, ...] = ()
    options: dict[str, Any] = dataclasses.field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.name or "/" in self.name:
            raise ValueError(
                f"a graph node's name must be non-empty without '/', got {self.name!r}."
            )
        if self.name in RESERVED_NAMES:
            raise ValueError(
                f"graph node {self.name!r}: the name is reserved "
                f"({', '.join(sorted(RESERVED_NAMES))})."
            )
        if self.processor not in PROCESSOR_TYPES:
            raise ValueError(
                f"graph node {self.name!r}: unknown processor {self.processor!r}; known: "
                f"{', '.join(PROCESSOR_TYPES)}."
            )
        if not isinstance(self.options, dict) or not all(isinstance(k, str) for k in self.options):
            raise ValueError(
                f"graph node {self.name!r}: options must be a table of settings, got "
                f"{self.options!r}."
            )

    def __hash__(self) -> int:
        options = json.dumps(self.options, sort_keys=True, default=repr)
        return hash((self.name, self.processor, self.inputs, options))

    @property
    def where(self) -> str:
        """How errors name this node."""
        return f"graph node {self.name!r} ({self.processor})"

    def build(self, sample_rate: int, n_samples: int, rngs: nnx.Rngs) -> Processor:
        """The node's processor, its config from ``options`` (``sample_rate`` and
        ``n_samples`` defaulting to the model's).

        Raises:
            ValueError: For an unknown or bad option, naming the node.
        """
        kind = PROCESSOR_TYPES[self.processor]
        if kind.config is None:
            if self.options:
                raise ValueError(f"{self.where} takes no options; got {sorted(self.options)}.")
            return kind.processor()
        fields = {field.name for field in dataclasses.fields(kind.config)}
        model = {"sample_rate": sample_rate, "n_samples": n_samples}
        settings = {name: value for name, value in model.items() if name in fields}
        config = from_dict(kind.config, {**settings, **self.options}, f"{self.where} options")
        return kind.processor(config, rngs=rngs) if kind.takes_rngs else kind.processor(config)


@dataclasses.dataclass(frozen=True)
class GraphConfig:
    """A processor graph: its nodes in order (each reads only earlier ones) and the node
    whose signal is the audio (``None``: the last)."""

    nodes: tuple[NodeConfig, ...] = ()
    output: str | None = None

    def __post_init__(self) -> None:
        if not self.nodes:
            raise ValueError("a declared graph needs at least one node.")
        names = [node.name for node in self.nodes]
        repeated = sorted({name for name in names if names.count(name) > 1})
        if repeated:
            raise ValueError(f"graph node names must be unique; repeated: {repeated}.")
        if self.output is not None and self.output not in names:
            raise ValueError(f"the graph's output {self.output!r} is not a node; nodes: {names}.")

    @property
    def output_node(self) -> str:
        """The name of the node whose signal is the graph's audio."""
        return self.output or self.nodes[-1].name


class DeclaredGraph(nnx.Module):
    """A processor graph built from a ``GraphConfig``.

    Its call maps raw controls (the decoder's outputs and ``f0_hz``) to every node's signal
    by name and ``audio``, the output node's ``[batch, n_samples]``. Nodes that draw noise
    take ``key`` itself when there is one such node (so the declaration of the standard graph
    renders what ``ProcessorGraph`` does), else ``fold_in(key, position)``.

    >>> graph = DeclaredGraph(
    ...     GraphConfig(nodes=(NodeConfig("sine", "harmonic", options={"n_samples": 640}),)),
    ...     sample_rate=16000, n_samples=640,
    ...     controls=("amplitudes", "harmonic_distribution"), rngs=nnx.Rngs(0))
    >>> raw = {"f0_hz": jnp.full((1, 10, 1), 440.0), "amplitudes": jnp.zeros((1, 10, 1)),
    ...        "harmonic_distribution": jnp.zeros((1, 10, 1))}
    >>> sorted(signals := graph(raw, key=jax.random.key(0)))
    ['audio', 'sine']
    >>> signals["audio"].shape
    (1, 640)
    """

    def __init__(
        self,
        config: GraphConfig,
        sample_rate: int,
        n_samples: int,
        controls: Collection[str],
        *,
        rngs: nnx.Rngs,
    ) -> None:
        """Build the nodes and resolve their inputs.

        Args:
            config: The declaration.
            sample_rate, n_samples: The model's; node options default to them.
            controls: The names of the decoder's outputs (the raw controls besides ``f0_hz``).
            rngs: For processors with parameters.

        Raises:
            ValueError: Naming the node, for an option, an input that is none of the decoder
                outputs, ``f0_hz`` or an earlier node, the wrong number of inputs, a node that
                feeds nothing, or a decoder output that no node reads.
        """
        self.config = config
        clash = sorted(set(controls) & {node.name for node in config.nodes})
        if clash:
            raise ValueError(f"graph nodes {clash} have the names of decoder outputs.")
        processors: dict[str, Processor] = {}
        inputs: list[tuple[str, ...]] = []
        available = [*CONDITIONING, *controls]
        read: set[str] = set()
        for node in config.nodes:
            processor = node.build(sample_rate, n_samples, rngs)
            names = node.inputs or _default_inputs(node, processor, processors)
            if len(names) != len(processor.control_names):
                raise ValueError(
                    f"{node.where} takes {len(processor.control_names)} inputs "
                    f"({', '.join(processor.control_names)}); got {list(names)}."
                )
            for name in names:
                if name not in available:
                    raise ValueError(
                        f"{node.where}: input {name!r} is not a decoder output, f0_hz or an "
                        f"earlier node (available: {', '.join(available)})."
                    )
            read.update(names)
            processors[node.name] = processor
            inputs.append(tuple(names))
            available.append(node.name)
        for name in [*controls, *processors]:
            if name not in read and name != config.output_node:
                what = "decoder output" if name in controls else "graph node"
                raise ValueError(f"{what} {name!r} is not read by any graph node.")
        self.processors = nnx.Dict(processors)
        self.inputs = tuple(inputs)
        noisy = [i for i, node in enumerate(config.nodes) if processors[node.name].draws_noise]
        self.noise_positions = tuple(noisy)

    def __call__(self, controls: Controls, *, key: jax.Array) -> dict[str, jax.Array]:
        """Every node's signal by name, and ``audio`` (the output node's).

        Raises:
            ValueError: When a node's processor refuses its inputs, naming the node.
        """
        signals = dict(controls)
        for position, (node, names) in enumerate(zip(self.config.nodes, self.inputs, strict=True)):
            processor = self.processors[node.name]
            raw = dict(zip(processor.control_names, (signals[name] for name in names), strict=True))
            node_key = None
            if processor.draws_noise:
                shared = len(self.noise_positions) == 1
                node_key = key if shared else jax.random.fold_in(key, position)
            try:
                signals[node.name] = processor(raw, key=node_key)
            except (ValueError, TypeError) as error:
                raise ValueError(f"{node.where}: {error}") from None
        outputs = {node.name: signals[node.name] for node in self.config.nodes}
        return {**outputs, "audio": outputs[self.config.output_node]}


def _default_inputs(
    node: NodeConfig, processor: Processor, earlier: dict[str, Processor]
) -> tuple[str, ...]:
    """Each control by its own name, ``audio`` from the node before ``node``."""
    if "audio" in processor.control_names and not earlier:
        raise ValueError(
            f"{node.where} is the first node, so its audio has no node before it: give inputs."
        )
    previous = list(earlier)[-1] if earlier else ""
    return tuple(previous if name == "audio" else name for name in processor.control_names)


def check_graph(
    config: GraphConfig, sample_rate: int, n_samples: int, control_sizes: dict[str, int]
) -> None:
    """Build ``config``'s graph and trace it on controls of ``control_sizes`` channels (no
    computation), so that a bad declaration fails when the model is configured.

    Raises:
        ValueError: Naming the node whose processor refuses its inputs or options, or the
            output node when its audio is not ``[batch, n_samples]``.
    """
    n_frames = 8

    def render() -> jax.Array:
        graph = DeclaredGraph(config, sample_rate, n_samples, control_sizes, rngs=nnx.Rngs(0))
        controls = {name: jnp.zeros((1, n_frames, size)) for name, size in control_sizes.items()}
        controls["f0_hz"] = jnp.full((1, n_frames, 1), 220.0)
        return graph(controls, key=jax.random.key(0))["audio"]

    shape = jax.eval_shape(render).shape
    if shape != (1, n_samples):
        raise ValueError(
            f"the graph's output node {config.output_node!r} makes audio of shape "
            f"{list(shape)} for a batch of 1; the model synthesises [1, {n_samples}]."
        )


def standard_declaration(config: ProcessorGraphConfig) -> GraphConfig:
    """``ProcessorGraph``'s graph as a declaration: harmonic and filtered noise added, then
    the configured reverb. It reads the same controls and renders the same audio.

    >>> [node.name for node in standard_declaration(ProcessorGraphConfig()).nodes]
    ['harmonic', 'noise', 'dry', 'reverb']
    """
    model_fields = ("sample_rate", "n_samples")

    def options(processor_config: object) -> dict[str, Any]:
        settings = to_dict(processor_config)
        return {name: value for name, value in settings.items() if name not in model_fields}

    nodes = [
        NodeConfig("harmonic", "harmonic", options=options(config.harmonic())),
        NodeConfig("noise", "filtered_noise", options=options(config.filtered_noise())),
        NodeConfig("dry", "add", inputs=("harmonic", "noise")),
    ]
    if config.reverb == "ir":
        nodes.append(NodeConfig("reverb", "reverb", options=options(config.ir_reverb())))
    elif config.reverb == "exp_decay":
        reverb_options = options(config.exp_decay_reverb())
        nodes.append(NodeConfig("reverb", "exp_decay_reverb", options=reverb_options))
    return GraphConfig(nodes=tuple(nodes))
