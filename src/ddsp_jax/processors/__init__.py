"""Synths and effects as Flax NNX modules, and the standard processor graph."""

from ddsp_jax.processors.base import SCALE_FNS, Controls, Processor
from ddsp_jax.processors.effects import (
    ConvolutionReverb,
    ExpDecayReverb,
    ExpDecayReverbConfig,
    Reverb,
    ReverbConfig,
    apply_reverb,
    mask_dry_tap,
)
from ddsp_jax.processors.graph import ProcessorGraph, ProcessorGraphConfig
from ddsp_jax.processors.synths import (
    FilteredNoise,
    FilteredNoiseConfig,
    Harmonic,
    HarmonicConfig,
)

__all__ = [
    "SCALE_FNS",
    "Controls",
    "ConvolutionReverb",
    "ExpDecayReverb",
    "ExpDecayReverbConfig",
    "FilteredNoise",
    "FilteredNoiseConfig",
    "Harmonic",
    "HarmonicConfig",
    "Processor",
    "ProcessorGraph",
    "ProcessorGraphConfig",
    "Reverb",
    "ReverbConfig",
    "apply_reverb",
    "mask_dry_tap",
]
