"""Data: reading audio, preparing datasets (f0, loudness, statistics), procedural and
SoundFont notes, and NSynth (read without TensorFlow).

The SoundFont renderer (``data.soundfont``) needs the ``soundfont`` extra and is imported
from its module; ``prepare_with_beam`` (``data.beam``) needs the ``beam`` extra when called.
"""

from ddsp_jax.data.audio import (
    AUDIO_EXTENSIONS,
    InputError,
    UnusableInputError,
    audio_blocks,
    audio_info,
    find_audio_files,
    load_audio,
)
from ddsp_jax.data.beam import prepare_with_beam
from ddsp_jax.data.dataset import DatasetError, PrepareConfig, PreparedDataset
from ddsp_jax.data.nsynth import NSynthError, read_notes
from ddsp_jax.data.preparation import PrepareError, prepare
from ddsp_jax.data.procedural import make_instrument, render_notes, sung_melody

__all__ = [
    "AUDIO_EXTENSIONS",
    "DatasetError",
    "InputError",
    "NSynthError",
    "PrepareConfig",
    "PrepareError",
    "PreparedDataset",
    "UnusableInputError",
    "audio_blocks",
    "audio_info",
    "find_audio_files",
    "load_audio",
    "make_instrument",
    "prepare",
    "prepare_with_beam",
    "read_notes",
    "render_notes",
    "sung_melody",
]
