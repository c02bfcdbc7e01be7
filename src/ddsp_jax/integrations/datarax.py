"""ddsp-jax on datarax (needs the ``datarax`` extra), composed as datarax's DDSP example.

Each processor becomes an ``OperatorModule`` with its ``OperatorConfig`` (the graph's own
processors have their operator classes; ``processor_operator`` wraps any other: Sinusoidal,
Wavetable, Noise, FIRFilter, SincFilter, ModDelay, FilteredNoiseReverb, ...); operators work
on one record at a time (no batch axis) and datarax vmaps them over a batch. ``datarax_graph``
rebuilds datarax's DDSP example's composition,
``SEQUENTIAL[WEIGHTED_PARALLEL(Harmonic, FilteredNoise), Reverb]``, around the processors of
a plain ``ProcessorGraph``, sharing their parameters, so both give the same audio.
``DataraxAutoencoder`` synthesises through that graph and ``PipelineSource`` serves training
batches from a datarax ``Pipeline`` over a ``MemorySource``: together they are the training
engine ``"datarax"`` (``ddsp demo --engine datarax``).

Randomness follows datarax: each record's key is folded with each child's position, so the
noise of record key ``k`` is drawn with ``noise_key(k)``.
"""

import dataclasses
from typing import Any

import jax
import jax.numpy as jnp
from flax import nnx

try:
    from datarax.core.config import OperatorConfig
    from datarax.core.operator import OperatorModule, require_key
    from datarax.operators import (
        CompositeOperatorConfig,
        CompositeOperatorModule,
        CompositionStrategy,
    )
    from datarax.pipeline import Pipeline
    from datarax.sources import MemorySource, MemorySourceConfig
except ImportError as error:  # pragma: no cover - exercised only without the extra
    raise ImportError(
        "ddsp_jax.integrations.datarax needs the datarax extra: pip install 'ddsp-jax[datarax]'"
    ) from error

from ddsp_jax.models.autoencoder import Autoencoder, AutoencoderConfig
from ddsp_jax.processors.base import Processor
from ddsp_jax.processors.effects import (
    ExpDecayReverb,
    ExpDecayReverbConfig,
    Reverb,
    ReverbConfig,
)
from ddsp_jax.processors.graph import ProcessorGraph
from ddsp_jax.processors.synths import (
    FilteredNoise,
    FilteredNoiseConfig,
    Harmonic,
    HarmonicConfig,
)

AUDIO_FIELD = "audio"
NOISE_STREAM = "noise"
# Child positions in the graph: SEQUENTIAL[parallel (0), reverb (1)], parallel[harmonic (0),
# noise (1)]. datarax folds these into the record key for each child.
_PARALLEL_POSITION, _NOISE_POSITION = 0, 1


class ProcessorOperator(OperatorModule):
    """Runs a ddsp-jax processor on one record and writes its output to ``audio``."""

    processor: Processor

    def apply(
        self,
        data: dict[str, jax.Array],
        state: Any,
        metadata: dict[str, Any] | None,
        key: jax.Array | None = None,
        stats: dict[str, Any] | None = None,
    ) -> tuple[dict[str, jax.Array], Any, dict[str, Any] | None]:
        """Apply the processor to one record (arrays without a batch axis)."""
        controls = {name: value[None] for name, value in data.items()}
        key = require_key(key, self) if self.stochastic else None
        audio = self.processor(controls, key=key)[0]
        return {**data, self.config.field_key: audio}, state, metadata


@dataclasses.dataclass(frozen=True)
class ProcessorOperatorConfig(OperatorConfig):
    """Config of ``processor_operator``'s operators: the field the output goes to."""

    field_key: str = AUDIO_FIELD


class WrappedProcessorOperator(ProcessorOperator):
    """Any processor as a datarax operator (made by ``processor_operator``)."""

    def __init__(
        self,
        config: ProcessorOperatorConfig,
        *,
        processor: Processor,
        rngs: nnx.Rngs | None = None,
    ) -> None:
        super().__init__(config, rngs=rngs)
        self.processor = processor


def processor_operator(
    processor: Processor, *, field_key: str = AUDIO_FIELD, rngs: nnx.Rngs | None = None
) -> WrappedProcessorOperator:
    """``processor`` as a datarax operator: it reads its controls from a record's fields and
    writes its audio to ``field_key`` (an effect reads ``audio`` and rewrites it). One that
    draws noise (``Processor.draws_noise``) is stochastic, on the RNG stream ``noise`` of
    ``rngs``, and uses the record's key as the processor's.

    >>> from ddsp_jax.processors import FIRFilter, FIRFilterConfig
    >>> fir = processor_operator(FIRFilter(FIRFilterConfig(window_size=16)))
    >>> record = {"audio": jnp.ones(320), "magnitudes": jnp.zeros((10, 9))}
    >>> fir.apply(record, {}, None)[0]["audio"].shape
    (320,)
    """
    stochastic = processor.draws_noise
    if stochastic and rngs is None:
        raise ValueError(
            f"{type(processor).__name__} draws noise: its operator needs rngs=nnx.Rngs(...)."
        )
    config = ProcessorOperatorConfig(
        field_key=field_key,
        stochastic=stochastic,
        stream_name=NOISE_STREAM if stochastic else None,
    )
    return WrappedProcessorOperator(config, processor=processor, rngs=rngs)


@dataclasses.dataclass(frozen=True)
class HarmonicOperatorConfig(OperatorConfig):
    """Config of ``HarmonicOperator``: the synth's settings and the field it writes."""

    harmonic: HarmonicConfig = dataclasses.field(default_factory=HarmonicConfig)
    field_key: str = AUDIO_FIELD


class HarmonicOperator(ProcessorOperator):
    """``Harmonic`` as a deterministic datarax operator."""

    def __init__(
        self,
        config: HarmonicOperatorConfig,
        *,
        processor: Harmonic | None = None,
        rngs: nnx.Rngs | None = None,
    ) -> None:
        super().__init__(config, rngs=rngs)
        self.processor = processor if processor is not None else Harmonic(config.harmonic)


@dataclasses.dataclass(frozen=True)
class FilteredNoiseOperatorConfig(OperatorConfig):
    """Config of ``FilteredNoiseOperator`` (stochastic, RNG stream ``noise``)."""

    filtered_noise: FilteredNoiseConfig = dataclasses.field(default_factory=FilteredNoiseConfig)
    field_key: str = AUDIO_FIELD
    stochastic: bool = True
    stream_name: str | None = NOISE_STREAM


class FilteredNoiseOperator(ProcessorOperator):
    """``FilteredNoise`` as a stochastic datarax operator: noise from each record's key."""

    def __init__(
        self,
        config: FilteredNoiseOperatorConfig,
        *,
        processor: FilteredNoise | None = None,
        rngs: nnx.Rngs | None = None,
    ) -> None:
        super().__init__(config, rngs=rngs)
        self.processor = (
            processor if processor is not None else FilteredNoise(config.filtered_noise)
        )


@dataclasses.dataclass(frozen=True)
class ReverbOperatorConfig(OperatorConfig):
    """Config of ``ReverbOperator``."""

    reverb: ReverbConfig = dataclasses.field(default_factory=ReverbConfig)
    field_key: str = AUDIO_FIELD


class ReverbOperator(ProcessorOperator):
    """``Reverb`` as a datarax operator: reads and rewrites ``audio``."""

    def __init__(
        self,
        config: ReverbOperatorConfig,
        *,
        processor: Reverb | None = None,
        rngs: nnx.Rngs | None = None,
    ) -> None:
        super().__init__(config, rngs=rngs)
        if processor is None:
            if rngs is None:
                raise ValueError("ReverbOperator needs rngs to initialise its impulse response.")
            processor = Reverb(config.reverb, rngs=rngs)
        self.processor = processor


@dataclasses.dataclass(frozen=True)
class ExpDecayReverbOperatorConfig(OperatorConfig):
    """Config of ``ExpDecayReverbOperator``."""

    reverb: ExpDecayReverbConfig = dataclasses.field(default_factory=ExpDecayReverbConfig)
    field_key: str = AUDIO_FIELD


class ExpDecayReverbOperator(ProcessorOperator):
    """``ExpDecayReverb`` as a datarax operator: reads and rewrites ``audio``."""

    def __init__(
        self,
        config: ExpDecayReverbOperatorConfig,
        *,
        processor: ExpDecayReverb | None = None,
        rngs: nnx.Rngs | None = None,
    ) -> None:
        super().__init__(config, rngs=rngs)
        if processor is None:
            if rngs is None:
                raise ValueError("ExpDecayReverbOperator needs rngs for its noise.")
            processor = ExpDecayReverb(config.reverb, rngs=rngs)
        self.processor = processor


def _reverb_operator(reverb: Reverb | ExpDecayReverb) -> ProcessorOperator:
    if isinstance(reverb, ExpDecayReverb):
        return ExpDecayReverbOperator(
            ExpDecayReverbOperatorConfig(reverb=reverb.config), processor=reverb
        )
    return ReverbOperator(ReverbOperatorConfig(reverb=reverb.config), processor=reverb)


def datarax_graph(graph: ProcessorGraph, *, rngs: nnx.Rngs) -> CompositeOperatorModule:
    """datarax's DDSP example's operator graph around ``graph``'s processors (shared parameters).

    ``SEQUENTIAL[WEIGHTED_PARALLEL(Harmonic, FilteredNoise; weights 1, 1; mix "audio"),
    Reverb]``, or just the parallel mix when the graph has no reverb. Records must carry the
    controls and an ``audio`` field (any array of the output's shape; it is replaced).

    Args:
        graph: The plain graph whose processors (and parameters) to use.
        rngs: Source of the composites' and the noise operator's base keys.

    Returns:
        The composite operator.
    """
    harmonic = HarmonicOperator(
        HarmonicOperatorConfig(harmonic=graph.harmonic.config), processor=graph.harmonic
    )
    noise = FilteredNoiseOperator(
        FilteredNoiseOperatorConfig(filtered_noise=graph.noise.config),
        processor=graph.noise,
        rngs=rngs,
    )
    mix = CompositeOperatorModule(
        CompositeOperatorConfig(
            strategy=CompositionStrategy.WEIGHTED_PARALLEL,
            operators=[harmonic, noise],
            weights=[1.0, 1.0],
            mix_fields=[AUDIO_FIELD],
        ),
        rngs=rngs,
    )
    if graph.reverb is None:
        return mix
    return CompositeOperatorModule(
        CompositeOperatorConfig(
            strategy=CompositionStrategy.SEQUENTIAL,
            operators=[mix, _reverb_operator(graph.reverb)],
        ),
        rngs=rngs,
    )


def noise_key(record_key: jax.Array, has_reverb: bool = True) -> jax.Array:
    """The key the noise operator of ``datarax_graph`` draws with for a record's key."""
    key = jax.random.fold_in(record_key, _PARALLEL_POSITION) if has_reverb else record_key
    return jax.random.fold_in(key, _NOISE_POSITION)


class DataraxAutoencoder(Autoencoder):
    """The ``Autoencoder`` with synthesis through ``datarax_graph`` (shared parameters).

    Each record of a batch is synthesised by the composite operator's own record-level
    ``apply``, vmapped, with its own key split from the call's ``key``; the signals are the
    composite's mix ``audio`` only (no separate harmonic and noise parts).
    """

    def __init__(self, config: AutoencoderConfig, *, rngs: nnx.Rngs) -> None:
        super().__init__(config, rngs=rngs)
        self.operators = datarax_graph(self.processor_graph, rngs=rngs)

    def synthesize(self, controls: dict[str, jax.Array], *, key: jax.Array) -> dict[str, jax.Array]:
        batch = controls["f0_hz"].shape[0]
        records = {
            **controls,
            AUDIO_FIELD: jnp.zeros((batch, self.config.synth.n_samples), jnp.float32),
        }

        def synthesize_record(record: dict[str, jax.Array], key: jax.Array) -> jax.Array:
            return self.operators.apply(record, {}, None, key=key)[0][AUDIO_FIELD]

        audio = jax.vmap(synthesize_record)(records, jax.random.split(key, batch))
        return {"audio": audio}


class PipelineSource:
    """Training batches from a datarax ``Pipeline`` over a shuffled ``MemorySource``.

    An endless stream (a new permutation every epoch, no short batches). ``state`` is the
    pipeline iterator's checkpoint state (position, epoch and RNG counts, JSON-serialisable),
    so a restored source continues exactly where a checkpoint left it.

    Args:
        examples: Arrays with the examples on the first axis (``audio``, ``f0_hz``,
            ``loudness_db``).
        batch_size: Examples per batch.
        seed: Seed of the shuffle.
    """

    def __init__(self, examples: dict[str, Any], batch_size: int, seed: int) -> None:
        source = MemorySource(
            MemorySourceConfig(shuffle=True), data=dict(examples), rngs=nnx.Rngs(seed)
        )
        self.pipeline = Pipeline(
            source=source, stages=[], batch_size=batch_size, rngs=nnx.Rngs(seed), num_epochs=None
        )
        self._iterator = iter(self.pipeline)

    def next_batch(self) -> dict[str, jax.Array]:
        """The next batch, on the device."""
        return dict(next(self._iterator))

    def state(self) -> dict[str, Any]:
        """The iterator's position, for a checkpoint."""
        return self._iterator.get_state()

    def restore(self, state: dict[str, Any]) -> None:
        """Continue from a position saved by ``state``."""
        self._iterator.set_state(state)
