"""ddsp-jax processors as datarax operators (needs the ``datarax`` extra).

Each processor becomes an ``OperatorModule`` with its ``OperatorConfig``; operators work on
one record at a time (no batch axis) and datarax vmaps them over a batch. ``datarax_graph``
rebuilds the original datarax DDSP example's composition,
``SEQUENTIAL[WEIGHTED_PARALLEL(Harmonic, FilteredNoise), Reverb]``, around the processors of
a plain ``ProcessorGraph``, sharing their parameters, so both give the same audio.

Randomness follows datarax: each record's key is folded with each child's position, so the
noise of record key ``k`` is drawn with ``noise_key(k)``.
"""

import dataclasses
from typing import Any

import jax
from flax import nnx

try:
    from datarax.core.config import OperatorConfig
    from datarax.core.operator import OperatorModule, require_key
    from datarax.operators import (
        CompositeOperatorConfig,
        CompositeOperatorModule,
        CompositionStrategy,
    )
except ImportError as error:  # pragma: no cover - exercised only without the extra
    raise ImportError(
        "ddsp_jax.integrations.datarax needs the datarax extra: pip install 'ddsp-jax[datarax]'"
    ) from error

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
        return {**data, AUDIO_FIELD: audio}, state, metadata


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
    """The original system's operator graph around ``graph``'s processors (shared parameters).

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
