"""ddsp-jax: Differentiable Digital Signal Processing in JAX and Flax NNX.

Subpackages, from the bottom layer up (imports only go downward):

- ``core``: pure ``jax.numpy`` DSP functions (oscillators, filters, spectra, units).
- ``processors``: synths and effects as Flax NNX modules, and the standard graph.
- ``losses``: the multi-scale spectral loss.
- ``features``: CREPE f0, loudness, note frames and dataset statistics.
- ``models``: the decoder, the autoencoder and saved model folders.
- ``data``: reading audio, prepared datasets, procedural, SoundFont and NSynth notes.
- ``adjustments``: timbre transfer's shifts of a melody's pitch and loudness toward a model.
- ``inference``: resynthesis and timbre transfer with a saved model, any length.
- ``streaming``: a model or a processor graph rendered block by block, state carried.
- ``training``: configs and presets, the train loop, checkpoints, evaluation, export.
- ``benchmarks``: what ``ddsp bench`` measures.

Each subpackage is imported on first use, so ``import ddsp_jax`` itself is light:

>>> import ddsp_jax
>>> ddsp_jax.SAMPLE_RATE, ddsp_jax.FRAME_RATE
(16000, 250)
>>> float(ddsp_jax.core.midi_to_hz(69.0))
440.0

Importing ``ddsp_jax`` with jaxlib < 0.12 on CPU sets ``XLA_FLAGS`` to work around a deadlock
in XLA's multi-threaded CPU FFT, and logs that it did (``ddsp_jax._platform``).
"""

import importlib
from types import ModuleType
from typing import TYPE_CHECKING

from ddsp_jax._platform import configure_xla_cpu

configure_xla_cpu()

from ddsp_jax.defaults import FRAME_RATE, SAMPLE_RATE  # noqa: E402

if TYPE_CHECKING:
    from ddsp_jax import (
        adjustments,
        benchmarks,
        core,
        data,
        features,
        inference,
        losses,
        models,
        processors,
        streaming,
        training,
    )

__version__ = "0.1.0"

SUBPACKAGES = (
    "core",
    "processors",
    "losses",
    "features",
    "models",
    "data",
    "adjustments",
    "inference",
    "streaming",
    "training",
    "benchmarks",
)

__all__ = [
    "FRAME_RATE",
    "SAMPLE_RATE",
    "__version__",
    "adjustments",
    "benchmarks",
    "core",
    "data",
    "features",
    "inference",
    "losses",
    "models",
    "processors",
    "streaming",
    "training",
]


def __getattr__(name: str) -> ModuleType:
    if name in SUBPACKAGES:
        return importlib.import_module(f"ddsp_jax.{name}")
    raise AttributeError(f"module 'ddsp_jax' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(SUBPACKAGES))
