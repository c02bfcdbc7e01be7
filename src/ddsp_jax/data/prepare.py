"""Prepared datasets: audio files or NSynth notes → examples with f0 and loudness, on disk.

A prepared dataset is a folder:

- ``shards/<key>/``: the examples of one input file (or of a group of NSynth notes):
  ``audio.npy`` ``[n, example_samples]`` and ``f0_hz.npy``, ``f0_confidence.npy``,
  ``loudness_db.npy`` ``[n, example_frames]`` (float32), with ``shard.json`` describing them.
- ``dataset.json``: settings, counts, durations, the train/eval split, feature statistics
  (loudness and pitch quantiles, mean pitch: what timbre transfer needs) and skipped inputs.

Why ``.npy`` shards and not one archive: training memory-maps them and reads single examples
at random, so a dataset larger than memory streams through the OS page cache; nothing beyond
NumPy is needed to read them. A shard is written under a temporary name and renamed into
place (atomic on POSIX), so a killed run never leaves a shard that looks finished; its key
hashes the input's path, size and modification time and the settings, so a re-run reuses
every finished shard and only ``dataset.json`` (written last, also by rename) is rebuilt.

As magenta's ``prepare_tfrecord``, audio is cut into chunks (20 s) before windowing into
examples (4 s every 1 s), and whole chunks go to the eval split, so no eval example overlaps
a training one.
"""

import dataclasses
import glob
import hashlib
import itertools
import json
import os
import re
import shutil
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf
import soxr

from ddsp_jax.core.defaults import FRAME_RATE, SAMPLE_RATE
from ddsp_jax.features.extract import FEATURE_NAMES, LOUDNESS_N_FFT, compute_features
from ddsp_jax.features.notes import SILENCE_PEAK, feature_statistics

FORMAT = "ddsp-jax prepared dataset"
VERSION = 1
DATASET_FILE = "dataset.json"
SHARD_DIR = "shards"
ARRAY_NAMES = ("audio", *FEATURE_NAMES)
NSYNTH_PREFIX = "nsynth:"
# Extensions picked up when walking a folder; files named explicitly are always tried.
AUDIO_EXTENSIONS = frozenset(
    {".wav", ".wave", ".flac", ".ogg", ".oga", ".opus", ".mp3", ".aif", ".aiff", ".aifc"}
    | {".au", ".snd", ".caf", ".w64", ".rf64"}
)
NOTES_PER_SHARD = 256
_FEATURE_BATCH = 8  # Chunks whose features are computed together.


class PrepareError(ValueError):
    """Inputs that give nothing usable, or a dataset folder that cannot be used."""


class UnusableInputError(ValueError):
    """One input file (or note) that cannot be used; the message says why."""


@dataclasses.dataclass(frozen=True)
class PrepareConfig:
    """How inputs become examples.

    Attributes:
        sample_rate: Audio rate of the examples (Hz); inputs are resampled to it.
        frame_rate: Feature frames per second (Hz).
        example_seconds: Length of an example (s).
        hop_seconds: Step between examples within a chunk (s).
        eval_fraction: Share of chunks held out for evaluation.
        f0_model: CREPE capacity, ``"tiny"`` or ``"full"``.
        chunk_seconds: Chunk length (s): examples never straddle chunks, and the eval split
            takes whole chunks.
        nsynth_subset: For ``nsynth:`` inputs, ``"gansynth"`` or ``"all"``.
    """

    sample_rate: int = SAMPLE_RATE
    frame_rate: int = FRAME_RATE
    example_seconds: float = 4.0
    hop_seconds: float = 1.0
    eval_fraction: float = 0.1
    f0_model: str = "full"
    chunk_seconds: float = 20.0
    nsynth_subset: str = "gansynth"

    def __post_init__(self) -> None:
        if self.f0_model not in ("tiny", "full"):
            raise ValueError(f"f0_model must be 'tiny' or 'full', got {self.f0_model!r}.")
        if self.nsynth_subset not in ("gansynth", "all"):
            raise ValueError(
                f"nsynth_subset must be 'gansynth' or 'all', got {self.nsynth_subset!r}."
            )
        if not 0.0 <= self.eval_fraction < 1.0:
            raise ValueError(f"eval_fraction must be in [0, 1), got {self.eval_fraction}.")
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


# ----------------------------------------------------------------------------------------------
# Inputs.
# ----------------------------------------------------------------------------------------------
def readable_formats() -> str:
    """The formats the installed libsndfile reads, e.g. ``"AIFF, FLAC, MP3, OGG, WAV, ..."``."""
    return ", ".join(sorted(sf.available_formats()))


def find_audio_files(inputs: Sequence[str | Path]) -> list[Path]:
    """The files named by ``inputs``: files, folders (searched recursively for audio
    extensions) and glob patterns, in order without repeats.

    Raises:
        PrepareError: For an input that names nothing.
    """
    found: dict[Path, None] = {}
    for item in inputs:
        text = str(item)
        if glob.has_magic(text):
            matches = [Path(m) for m in sorted(glob.glob(text, recursive=True))]
            if not matches:
                raise PrepareError(f"{text}: the pattern matches no files.")
        else:
            matches = [Path(text)]
        for match in matches:
            if match.is_dir():
                for path in sorted(match.rglob("*")):
                    if path.is_file() and path.suffix.lower() in AUDIO_EXTENSIONS:
                        found.setdefault(path, None)
            elif match.is_file():
                found.setdefault(match, None)
            else:
                raise PrepareError(f"{match}: no such file or folder.")
    return list(found)


# libsndfile's log line for a data chunk whose stated length runs past the end of the file.
_DATA_LENGTH = re.compile(r"^data\s*:\s*(\d+)\s*\(should be (\d+)\)", re.MULTILINE)
_UNKNOWN_LENGTH = 0xFFFFFFF0  # Streaming writers (pipes, recorders) put 0xFFFFFFFF here.


def _truncated(log: str) -> bool:
    """Whether libsndfile's header log says the audio data was cut short: its stated length
    exceeds what the file holds, unless the length is a streaming writer's placeholder."""
    match = _DATA_LENGTH.search(log)
    if match is None:
        return False
    stated, present = int(match.group(1)), int(match.group(2))
    return present < stated < _UNKNOWN_LENGTH


def load_audio(path: str | Path, sample_rate: int | None) -> tuple[np.ndarray, dict[str, Any]]:
    """Mono float32 audio ``[n_samples]`` at ``sample_rate`` (None: the file's) from any file
    libsndfile reads (any rate and bit depth; channels averaged; resampled with soxr's
    high-quality filter).

    Returns:
        ``(audio, info)``: ``info`` has the file's ``sample_rate``, ``channels``, ``subtype``
        and ``seconds``.

    Raises:
        UnusableInputError: For an unreadable, truncated or empty file, or NaN/inf samples.
    """
    try:
        info = sf.info(str(path))
        audio, file_rate = sf.read(str(path), dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError, EOFError) as error:
        raise UnusableInputError(
            f"unreadable audio ({error}); libsndfile {sf.__libsndfile_version__} reads "
            f"{readable_formats()}"
        ) from error
    if _truncated(info.extra_info):
        raise UnusableInputError("truncated: the header promises more audio than the file holds")
    if audio.size == 0:
        raise UnusableInputError("no samples")
    if not np.all(np.isfinite(audio)):
        raise UnusableInputError("NaN or infinite samples")
    mono = audio.mean(axis=1)
    if sample_rate is not None and file_rate != sample_rate:
        mono = soxr.resample(mono, file_rate, sample_rate, "HQ").astype(np.float32)
    details = {
        "sample_rate": int(file_rate),
        "channels": int(audio.shape[1]),
        "subtype": info.subtype,
        "seconds": len(audio) / file_rate,
    }
    return mono, details


def check_usable(audio: np.ndarray, config: PrepareConfig) -> None:
    """Raise ``UnusableInputError`` for audio that is silent or shorter than one example."""
    if len(audio) < config.example_samples:
        raise UnusableInputError(
            f"too short ({len(audio) / config.sample_rate:.2f} s; examples are "
            f"{config.example_seconds:g} s)"
        )
    peak = float(np.max(np.abs(audio)))
    if peak < SILENCE_PEAK:
        raise UnusableInputError(f"silent (peak {20 * np.log10(max(peak, 1e-12)):.0f} dBFS)")


# ----------------------------------------------------------------------------------------------
# Chunks, features and examples.
# ----------------------------------------------------------------------------------------------
def chunk_bounds(n_samples: int, config: PrepareConfig) -> list[tuple[int, int]]:
    """``(start, stop)`` samples of the chunks of audio ``n_samples`` long: ``chunk_seconds``
    each, a tail shorter than one example joining the chunk before it."""
    size = round(config.chunk_seconds * config.sample_rate)
    starts = list(range(0, n_samples, size))
    if len(starts) > 1 and n_samples - starts[-1] < config.example_samples:
        starts.pop()
    return [(start, stop) for start, stop in zip(starts, [*starts[1:], n_samples], strict=True)]


def _features_of_chunks(
    chunks: list[np.ndarray], config: PrepareConfig, advance: Callable[[float], Any]
) -> list[dict]:
    """Features of each chunk, chunks of equal length computed in batches; ``advance`` is
    told the seconds of audio done after each batch."""
    out: list[dict] = [{}] * len(chunks)
    by_length: dict[int, list[int]] = {}
    for index, chunk in enumerate(chunks):
        by_length.setdefault(len(chunk), []).append(index)
    for indices in by_length.values():
        for first in range(0, len(indices), _FEATURE_BATCH):
            batch = indices[first : first + _FEATURE_BATCH]
            features = compute_features(
                np.stack([chunks[i] for i in batch]),
                config.sample_rate,
                config.frame_rate,
                config.f0_model,
                LOUDNESS_N_FFT,
            )
            for row, index in enumerate(batch):
                out[index] = {name: values[row] for name, values in features.items()}
            advance(sum(len(chunks[i]) for i in batch) / config.sample_rate)
    return out


def _windows(
    chunk: np.ndarray, features: dict[str, np.ndarray], config: PrepareConfig
) -> dict[str, np.ndarray]:
    """The examples of one chunk: windows of ``example_seconds`` every ``hop_seconds``."""
    hop = round(config.hop_seconds * config.sample_rate)
    hop_frames = round(config.hop_seconds * config.frame_rate)
    n = (len(chunk) - config.example_samples) // hop + 1
    audio = np.stack([chunk[i * hop : i * hop + config.example_samples] for i in range(n)])
    windows = {"audio": audio}
    for name, values in features.items():
        windows[name] = np.stack(
            [values[i * hop_frames : i * hop_frames + config.example_frames] for i in range(n)]
        )
    return windows


def examples_of_chunks(
    chunks: list[np.ndarray],
    config: PrepareConfig,
    advance: Callable[[float], Any] = lambda seconds: None,
) -> tuple[dict[str, np.ndarray], list[tuple[int, int]]]:
    """Examples ``{audio [n, example_samples], f0_hz / f0_confidence / loudness_db [n,
    example_frames]}`` of chunks (each at least one example long), and each chunk's
    ``(first, stop)`` example range."""
    features = _features_of_chunks(chunks, config, advance)
    parts = [_windows(c, f, config) for c, f in zip(chunks, features, strict=True)]
    ranges, first = [], 0
    for part in parts:
        ranges.append((first, first + len(part["audio"])))
        first += len(part["audio"])
    arrays = {
        name: np.concatenate([p[name] for p in parts]).astype(np.float32) for name in ARRAY_NAMES
    }
    return arrays, ranges


# ----------------------------------------------------------------------------------------------
# Units of work: one file, or one group of NSynth notes, each one shard.
# ----------------------------------------------------------------------------------------------
@dataclasses.dataclass
class Unit:
    """Input that becomes one shard: ``load`` returns its chunks (or raises ``UnusableInputError``),
    the skipped parts, and details for ``shard.json``."""

    key: str
    name: str
    seconds: float  # Of audio, as far as known before loading (for progress).
    load: Callable[[], tuple[list[np.ndarray], list[dict], dict[str, Any]]]


def _key(identity: dict[str, Any], config: PrepareConfig) -> str:
    text = json.dumps(
        {"input": identity, "config": config.to_dict(), "version": VERSION}, sort_keys=True
    )
    return hashlib.sha256(text.encode()).hexdigest()[:24]


def _file_identity(path: Path) -> dict[str, Any]:
    stat = path.stat()
    return {"path": str(path.resolve()), "size": stat.st_size, "mtime_ns": stat.st_mtime_ns}


def _file_unit(path: Path, config: PrepareConfig) -> Unit:
    def load() -> tuple[list[np.ndarray], list[dict], dict[str, Any]]:
        audio, details = load_audio(path, config.sample_rate)
        check_usable(audio, config)
        chunks = [audio[a:b] for a, b in chunk_bounds(len(audio), config)]
        return chunks, [], details

    try:
        seconds = sf.info(str(path)).duration
    except (sf.LibsndfileError, RuntimeError):
        seconds = 0.0
    return Unit(_key(_file_identity(path), config), str(path), seconds, load)


def _nsynth_units(path: Path, config: PrepareConfig) -> Iterator[Unit]:
    """Groups of ``NOTES_PER_SHARD`` notes of an NSynth file or folder (read once, lazily)."""
    from ddsp_jax.data.nsynth import read_notes

    subset = None if config.nsynth_subset == "all" else config.nsynth_subset
    identity = _file_identity(path) if path.is_file() else {"path": str(path.resolve())}
    notes = read_notes(path, subset)
    group = 0
    while True:
        batch = [note for _, note in zip(range(NOTES_PER_SHARD), notes, strict=False)]
        if not batch:
            return

        def load(batch: list = batch) -> tuple[list[np.ndarray], list[dict], dict[str, Any]]:
            chunks, skipped = [], []
            for note in batch:
                audio = note.audio
                try:
                    if not np.all(np.isfinite(audio)):
                        raise UnusableInputError("NaN or infinite samples")
                    if note.sample_rate != config.sample_rate:
                        audio = soxr.resample(audio, note.sample_rate, config.sample_rate, "HQ")
                    check_usable(audio, config)
                except UnusableInputError as reason:
                    skipped.append({"input": f"{path}:{note.note_str}", "reason": str(reason)})
                    continue
                chunks.append(np.asarray(audio[: config.example_samples], np.float32))
            if not chunks:
                raise UnusableInputError("no usable notes in this group")
            return chunks, skipped, {"notes": [n.note_str for n in batch]}

        yield Unit(
            _key({**identity, "group": group, "subset": config.nsynth_subset}, config),
            f"{path} notes {group * NOTES_PER_SHARD}-{group * NOTES_PER_SHARD + len(batch) - 1}",
            sum(len(n.audio) / n.sample_rate for n in batch),
            load,
        )
        group += 1


def units_of(inputs: Sequence[str | Path], config: PrepareConfig) -> Iterator[Unit]:
    """The units of ``inputs``: audio files, folders, globs and ``nsynth:PATH``."""
    files = [str(i) for i in inputs if not str(i).startswith(NSYNTH_PREFIX)]
    for path in find_audio_files(files) if files else []:
        yield _file_unit(path, config)
    for item in inputs:
        if str(item).startswith(NSYNTH_PREFIX):
            path = Path(str(item)[len(NSYNTH_PREFIX) :])
            if not path.exists():
                raise PrepareError(f"{path}: no such NSynth file or folder.")
            yield from _nsynth_units(path, config)


# ----------------------------------------------------------------------------------------------
# Writing.
# ----------------------------------------------------------------------------------------------
def _write_shard(directory: Path, arrays: dict[str, np.ndarray], info: dict[str, Any]) -> None:
    """Write a shard under a temporary name, then rename it into place."""
    temporary = directory.parent / f".{directory.name}.partial-{os.getpid()}"
    shutil.rmtree(temporary, ignore_errors=True)
    temporary.mkdir(parents=True)
    for name, values in arrays.items():
        np.save(temporary / f"{name}.npy", values)
    (temporary / "shard.json").write_text(json.dumps(info, indent=1) + "\n")
    shutil.rmtree(directory, ignore_errors=True)
    temporary.rename(directory)


def _write_json(path: Path, data: dict[str, Any]) -> None:
    temporary = path.with_name(f".{path.name}.partial-{os.getpid()}")
    temporary.write_text(json.dumps(data, indent=1) + "\n")
    temporary.replace(path)


def _split(shards: list[tuple[str, dict]], eval_fraction: float) -> dict[str, list]:
    """Whole chunks to eval, chosen by a hash of (input file name, chunk number), so that the
    choice is the same on every run and wherever the folder is; at least one chunk on each
    side when there are two or more."""
    chunks = [
        (hashlib.sha256(f"{Path(info['input']).name}#{i}".encode()).hexdigest(), key, start, stop)
        for key, info in shards
        for i, (start, stop) in enumerate(info["chunks"])
    ]
    n_eval = round(len(chunks) * eval_fraction)
    if eval_fraction > 0 and len(chunks) >= 2:
        n_eval = min(max(n_eval, 1), len(chunks) - 1)
    chosen = {c[0] for c in sorted(chunks)[:n_eval]}
    splits: dict[str, list] = {"train": [], "eval": []}
    for digest, key, start, stop in chunks:
        splits["eval" if digest in chosen else "train"].append([key, start, stop])
    return splits


def _statistics(dataset: "PreparedDataset") -> dict[str, Any]:
    """``feature_statistics`` of the training split (all of it when it is small; else a fixed
    sample of 2000 examples)."""
    index = dataset.index("train")
    if len(index) > 2000:
        index = index[np.random.default_rng(0).choice(len(index), 2000, replace=False)]
    columns = dataset.read(index, ("f0_hz", "f0_confidence", "loudness_db"))
    return feature_statistics(columns["f0_hz"], columns["f0_confidence"], columns["loudness_db"])


def prepare(
    inputs: Sequence[str | Path],
    out: str | Path,
    config: PrepareConfig,
    progress: bool = True,
) -> dict[str, Any]:
    """Prepare ``inputs`` into the dataset folder ``out``; returns its ``dataset.json``.

    Unusable inputs (unreadable, truncated, empty, NaN, silent, too short) are skipped and
    listed in ``dataset.json["skipped"]``; the rest goes on. Shards of an earlier run with
    the same inputs and settings are reused; shards no input produced any more are removed.

    Raises:
        PrepareError: When no input gives a single example, or an input names nothing.
    """
    out = Path(out)
    shard_root = out / SHARD_DIR
    shard_root.mkdir(parents=True, exist_ok=True)
    for partial in shard_root.glob(".*.partial-*"):  # Left by a killed run.
        shutil.rmtree(partial, ignore_errors=True)
    shards: list[tuple[str, dict]] = []
    skipped: list[dict[str, str]] = []
    nsynth = [i for i in inputs if str(i).startswith(NSYNTH_PREFIX)]
    files = [i for i in inputs if not str(i).startswith(NSYNTH_PREFIX)]
    units = list(units_of(files, config)) if files else []
    bar = _progress(progress, None if nsynth else sum(unit.seconds for unit in units))
    examples = 0
    try:
        for unit in itertools.chain(units, units_of(nsynth, config)):
            directory = shard_root / unit.key
            done = directory / "shard.json"
            if done.exists():
                info = json.loads(done.read_text())
                bar.update(info["seconds"])
            else:
                try:
                    chunks, skipped_parts, details = unit.load()
                except UnusableInputError as reason:
                    skipped.append({"input": unit.name, "reason": str(reason)})
                    bar.update(unit.seconds)
                    continue
                arrays, ranges = examples_of_chunks(chunks, config, bar.update)
                info = {
                    "input": unit.name,
                    "n_examples": len(arrays["audio"]),
                    "chunks": ranges,
                    "seconds": sum(len(c) for c in chunks) / config.sample_rate,
                    "skipped": skipped_parts,
                    "details": details,
                }
                _write_shard(directory, arrays, info)
            skipped.extend(info["skipped"])
            shards.append((unit.key, info))
            examples += info["n_examples"]
            bar.set_postfix(inputs=len(shards), examples=examples, skipped=len(skipped))
    finally:
        bar.close()
    if not shards:
        lines = "\n".join(f"  {s['input']}: {s['reason']}" for s in skipped)
        raise PrepareError(f"nothing usable in the inputs; every one was skipped:\n{lines}")
    keep = {key for key, _ in shards}
    for stale in shard_root.iterdir():
        if stale.name not in keep:
            shutil.rmtree(stale, ignore_errors=True)
    splits = _split(shards, config.eval_fraction)
    summary: dict[str, Any] = {
        "format": FORMAT,
        "version": VERSION,
        "config": config.to_dict(),
        "example_samples": config.example_samples,
        "example_frames": config.example_frames,
        "n_inputs": len(shards),
        "input_seconds": round(sum(info["seconds"] for _, info in shards), 3),
        "n_examples": {name: sum(b - a for _, a, b in ranges) for name, ranges in splits.items()},
        "splits": splits,
        "skipped": skipped,
    }
    summary["statistics"] = _statistics(PreparedDataset(out, info=summary))
    _write_json(out / DATASET_FILE, summary)
    return summary


def _progress(enabled: bool, total: float | None) -> Any:
    """A bar in seconds of audio (its rate: seconds of audio per second)."""
    from tqdm.auto import tqdm

    return tqdm(
        total=total,
        unit="s",
        desc="prepare (audio)",
        dynamic_ncols=True,
        disable=not enabled,
        bar_format="{l_bar}{bar}| {n:.0f}/{total_fmt} s "
        "[{elapsed}<{remaining}, {rate_fmt}{postfix}]",
    )


# ----------------------------------------------------------------------------------------------
# Reading.
# ----------------------------------------------------------------------------------------------
class PreparedDataset:
    """A prepared dataset folder, read through memory maps (nothing loaded up front)."""

    def __init__(self, path: str | Path, info: dict[str, Any] | None = None) -> None:
        self.path = Path(path)
        info_path = self.path / DATASET_FILE
        try:
            self.info = info if info is not None else json.loads(info_path.read_text())
        except FileNotFoundError:
            raise PrepareError(
                f"{self.path}: not a prepared dataset (no {DATASET_FILE}; make one with "
                "`ddsp prepare AUDIO... --out DATASET`)."
            ) from None
        except (OSError, ValueError) as error:
            raise PrepareError(f"{info_path}: unreadable ({error}).") from error
        if self.info.get("format") != FORMAT or self.info.get("version") != VERSION:
            raise PrepareError(
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
                    name: np.load(directory / f"{name}.npy", mmap_mode="r") for name in ARRAY_NAMES
                }
            except (OSError, ValueError) as error:
                raise PrepareError(
                    f"{directory}: damaged shard ({error}); re-run ddsp prepare."
                ) from error
        return self._open[number]

    def read(self, index: np.ndarray, names: Sequence[str] = ARRAY_NAMES) -> dict[str, np.ndarray]:
        """The examples at ``index`` rows ``[n, 2]``, as ``{name: [n, ...]}`` float32 arrays."""
        return {
            name: np.stack([self._shard(int(s))[name][int(r)] for s, r in index]).astype(np.float32)
            if len(index)
            else np.zeros((0,), np.float32)
            for name in names
        }

    def check_matches(self, sample_rate: int, n_samples: int, frame_rate: int) -> None:
        """Raise ``PrepareError`` unless the examples fit a model of these sizes."""
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
            raise PrepareError(
                f"{self.path}: prepared with {', '.join(mismatches)}; re-run ddsp prepare with "
                "matching --sample-rate/--example-seconds/--frame-rate, or change the model."
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
