"""The prepared-dataset format: a folder of memory-mapped ``.npy`` shards and ``dataset.json``.

A prepared dataset is a folder:

- ``shards/<key>/``: the examples of one input file (or of a group of NSynth notes):
  ``audio.npy`` ``[n, example_samples]`` and ``f0_hz.npy``, ``f0_confidence.npy``,
  ``loudness_db.npy``, ``power_db.npy`` ``[n, example_frames]`` (float32), with
  ``shard.json`` describing them (datasets written before power was added lack
  ``power_db.npy``; reading it from them is an error that says to prepare again).
- ``dataset.json``: settings (``PrepareConfig``), counts, durations, the train/eval split,
  feature statistics (loudness and pitch quantiles, mean pitch: what timbre transfer needs;
  ``power_statistics`` the same with power in loudness's place) and skipped inputs.

Why ``.npy`` shards and not one archive: training memory-maps them and reads single examples
at random, so a dataset larger than memory streams through the OS page cache; nothing beyond
NumPy is needed to read them. A shard is written under a temporary name and renamed into
place (atomic on POSIX), so a killed writer never leaves a shard that looks finished;
``dataset.json`` is written last, also by rename. ``data.preparation`` writes datasets.
"""

import dataclasses
import json
import os
import shutil
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ddsp_jax.defaults import FRAME_RATE, SAMPLE_RATE
from ddsp_jax.features.extract import FEATURE_NAMES
from ddsp_jax.features.f0 import HOP_RATE

FORMAT = "ddsp-jax prepared dataset"
VERSION = 1
DATASET_FILE = "dataset.json"
SHARD_DIR = "shards"
SHARD_FILE = "shard.json"
ARRAY_NAMES = ("audio", *FEATURE_NAMES)


class DatasetError(ValueError):
    """A dataset folder that is missing, damaged, or does not fit the model."""


@dataclasses.dataclass(frozen=True)
class PrepareConfig:
    """How inputs become examples.

    Attributes:
        sample_rate: Audio rate of the examples (Hz); inputs are resampled to it.
        frame_rate: Feature frames per second (Hz).
        example_seconds: Length of an example (s).
        hop_seconds: Step between examples within a chunk (s).
        eval_fraction: Share of chunks held out for evaluation (1: an evaluation-only
            dataset, e.g. of recordings kept apart for ``ddsp eval``).
        f0_model: CREPE capacity, ``"tiny"`` or ``"full"``.
        chunk_seconds: Chunk length (s): examples never straddle chunks, and the eval split
            takes whole chunks.
        nsynth_subset: For ``nsynth:`` inputs, ``"gansynth"`` or ``"all"``.
        f0_rate: Frames per second CREPE runs at, its f0 interpolated to ``frame_rate``
            (``features.compute_f0``'s ``network_rate``); None: ``frame_rate``. By default
            CREPE's training hop, 100 Hz: on tones, SoundFont notes and phrases with vibrato
            its accuracy equals that at 250 Hz within 0.1 cent and 0.1 % of frames
            (docs/benchmarks.md), for 2.5 times fewer frames.
    """

    sample_rate: int = SAMPLE_RATE
    frame_rate: int = FRAME_RATE
    example_seconds: float = 4.0
    hop_seconds: float = 1.0
    eval_fraction: float = 0.1
    f0_model: str = "full"
    chunk_seconds: float = 20.0
    nsynth_subset: str = "gansynth"
    f0_rate: int | None = HOP_RATE

    def __post_init__(self) -> None:
        if self.f0_rate is not None and self.f0_rate <= 0:
            raise ValueError(f"f0_rate must be positive, got {self.f0_rate!r}.")
        if self.f0_model not in ("tiny", "full"):
            raise ValueError(f"f0_model must be 'tiny' or 'full', got {self.f0_model!r}.")
        if self.nsynth_subset not in ("gansynth", "all"):
            raise ValueError(
                f"nsynth_subset must be 'gansynth' or 'all', got {self.nsynth_subset!r}."
            )
        if not 0.0 <= self.eval_fraction <= 1.0:
            raise ValueError(f"eval_fraction must be in [0, 1], got {self.eval_fraction}.")
        if self.sample_rate <= 0 or not 0 < self.frame_rate <= self.sample_rate:
            raise ValueError(
                f"need 0 < frame_rate <= sample_rate, got {self.frame_rate} and {self.sample_rate}."
            )
        for name in ("example_seconds", "hop_seconds"):
            seconds = getattr(self, name)
            for rate in (self.sample_rate, self.frame_rate):
                if seconds <= 0 or abs(seconds * rate - round(seconds * rate)) > 1e-6:
                    raise ValueError(
                        f"{name}={seconds} must be a positive whole number of samples at "
                        f"{self.sample_rate} Hz and of frames at {self.frame_rate} Hz."
                    )
        if self.chunk_seconds < self.example_seconds:
            raise ValueError(
                f"chunk_seconds={self.chunk_seconds} is shorter than an example "
                f"({self.example_seconds} s)."
            )

    @property
    def example_samples(self) -> int:
        return round(self.example_seconds * self.sample_rate)

    @property
    def example_frames(self) -> int:
        return round(self.example_seconds * self.frame_rate)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def write_shard(directory: Path, arrays: dict[str, np.ndarray], info: dict[str, Any]) -> None:
    """Write a shard under a temporary name, then rename it into place. When another writer
    of the same shard (a retried or duplicated task) renamed its copy first, that copy is
    kept: the same input and settings give the same shard."""
    temporary = directory.parent / f".{directory.name}.partial-{os.getpid()}-{uuid.uuid4().hex}"
    temporary.mkdir(parents=True)
    for name, values in arrays.items():
        np.save(temporary / f"{name}.npy", values)
    (temporary / SHARD_FILE).write_text(json.dumps(info, indent=1) + "\n")
    if (directory / SHARD_FILE).exists():
        shutil.rmtree(temporary)
        return
    shutil.rmtree(directory, ignore_errors=True)  # A copy without shard.json is unfinished.
    try:
        temporary.rename(directory)
    except OSError:
        if not (directory / SHARD_FILE).exists():
            raise
        shutil.rmtree(temporary)


class PreparedDataset:
    """A prepared dataset folder, read through memory maps (nothing loaded up front)."""

    def __init__(self, path: str | Path, info: dict[str, Any] | None = None) -> None:
        self.path = Path(path)
        info_path = self.path / DATASET_FILE
        try:
            self.info = info if info is not None else json.loads(info_path.read_text())
        except FileNotFoundError:
            raise DatasetError(
                f"{self.path}: not a prepared dataset (no {DATASET_FILE}; make one with "
                "`ddsp prepare AUDIO... --out DATASET`)."
            ) from None
        except (OSError, ValueError) as error:
            raise DatasetError(f"{info_path}: unreadable ({error}).") from error
        if self.info.get("format") != FORMAT or self.info.get("version") != VERSION:
            raise DatasetError(
                f"{info_path}: not a {FORMAT} of version {VERSION} (re-run ddsp prepare)."
            )
        self.config = PrepareConfig(**self.info["config"])
        keys = sorted({key for ranges in self.info["splits"].values() for key, _, _ in ranges})
        self._shard_number = {key: i for i, key in enumerate(keys)}
        self._keys = keys
        self._open: dict[int, dict[str, np.ndarray]] = {}

    def index(self, split: str) -> np.ndarray:
        """``[n, 2]`` (shard number, row) of every example of ``split`` (``train``/``eval``)."""
        rows = [
            (self._shard_number[key], row)
            for key, start, stop in self.info["splits"][split]
            for row in range(start, stop)
        ]
        return np.asarray(rows, np.int64).reshape(-1, 2)

    def _shard(self, number: int) -> dict[str, np.ndarray]:
        if number not in self._open:
            if len(self._open) >= 64:  # Bound the open memory maps.
                self._open.pop(next(iter(self._open)))
            directory = self.path / SHARD_DIR / self._keys[number]
            try:
                self._open[number] = {
                    name: np.load(directory / f"{name}.npy", mmap_mode="r")
                    for name in ARRAY_NAMES
                    if name != "power_db" or (directory / "power_db.npy").exists()
                }
            except (OSError, ValueError) as error:
                raise DatasetError(
                    f"{directory}: damaged shard ({error}); re-run ddsp prepare."
                ) from error
        return self._open[number]

    def read(self, index: np.ndarray, names: Sequence[str] | None = None) -> dict[str, np.ndarray]:
        """The examples at ``index`` rows ``[n, 2]``, as ``{name: [n, ...]}`` float32 arrays
        (``names``: those arrays; None: every array the dataset's examples have).

        Raises:
            DatasetError: For a name a shard does not have (``power_db`` of an older dataset).
        """
        for s, _ in index[:1]:
            have = self._shard(int(s))
            names = list(have) if names is None else names
            missing = [name for name in names if name not in have]
            if missing:
                raise DatasetError(
                    f"{self.path}: no {', '.join(missing)} in its examples (prepared by an "
                    "older ddsp-jax); re-run ddsp prepare."
                )
        return {
            name: np.stack([self._shard(int(s))[name][int(r)] for s, r in index]).astype(np.float32)
            if len(index)
            else np.zeros((0,), np.float32)
            for name in names or ARRAY_NAMES
        }

    def check_matches(self, sample_rate: int, n_samples: int, frame_rate: int) -> None:
        """Raise ``DatasetError`` unless the examples fit a model of these sizes."""
        config = self.config
        mismatches = [
            f"{what} {have} (the model needs {need})"
            for what, have, need in (
                ("sample rate", config.sample_rate, sample_rate),
                ("example samples", config.example_samples, n_samples),
                ("frame rate", config.frame_rate, frame_rate),
            )
            if have != need
        ]
        if mismatches:
            raise DatasetError(
                f"{self.path}: prepared with {', '.join(mismatches)}; re-run ddsp prepare with "
                "the training's --preset (or matching --sample-rate/--example-seconds/"
                "--frame-rate), or change the model."
            )


class Column:
    """One array of a split, indexable like a NumPy array by example numbers (what the
    training batch sources need), read from the shards on demand."""

    def __init__(self, dataset: PreparedDataset, split: str, name: str) -> None:
        self.dataset, self.name = dataset, name
        self._index = dataset.index(split)

    def __len__(self) -> int:
        return len(self._index)

    def __getitem__(self, examples: Any) -> np.ndarray:
        rows = self._index[np.atleast_1d(np.asarray(examples))]
        return self.dataset.read(rows, (self.name,))[self.name]


def split_columns(dataset: PreparedDataset, split: str, names: Sequence[str]) -> dict[str, Column]:
    """``{name: Column}`` of a split: the lazily read ``Examples`` of the training loop."""
    return {name: Column(dataset, split, name) for name in names}
