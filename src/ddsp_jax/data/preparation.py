"""``ddsp prepare``: audio files or NSynth notes → a prepared dataset (``data.dataset``).

Each input file (or group of ``NOTES_PER_SHARD`` NSynth notes) becomes one shard. As
magenta's ``prepare_tfrecord``, audio is cut into chunks (20 s) before windowing into examples
(4 s every 1 s), and whole chunks go to the eval split, so no eval example overlaps a training
one. f0 (CREPE) and loudness are computed per chunk. A shard's key hashes the input's path,
size and modification time and the settings, so a re-run reuses every finished shard and only
``dataset.json`` is rebuilt.
"""

import collections
import dataclasses
import functools
import hashlib
import itertools
import json
import shutil
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Executor, Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf
import soxr

from ddsp_jax.data.audio import InputError, UnusableInputError, find_audio_files, load_audio
from ddsp_jax.data.dataset import (
    ARRAY_NAMES,
    DATASET_FILE,
    FORMAT,
    SHARD_DIR,
    SHARD_FILE,
    VERSION,
    PrepareConfig,
    PreparedDataset,
    write_shard,
)
from ddsp_jax.features.extract import LOUDNESS_N_FFT, compute_features
from ddsp_jax.features.notes import SILENCE_PEAK, feature_statistics, signal_peak
from ddsp_jax.files import check_output, write_json

NSYNTH_PREFIX = "nsynth:"
NOTES_PER_SHARD = 256
_FEATURE_BATCH = 8  # Chunks whose features are computed together.


class PrepareError(ValueError):
    """Inputs that give nothing usable."""


def check_usable(audio: np.ndarray, config: PrepareConfig) -> None:
    """Raise ``UnusableInputError`` for audio that is silent or shorter than one example."""
    if len(audio) < config.example_samples:
        raise UnusableInputError(
            f"too short ({len(audio) / config.sample_rate:.2f} s; examples are "
            f"{config.example_seconds:g} s)"
        )
    peak = signal_peak(audio)
    if peak < SILENCE_PEAK:
        raise UnusableInputError(
            f"no usable signal: silent once any constant offset is removed (peak "
            f"{20 * np.log10(max(peak, 1e-12)):.0f} dBFS)"
        )


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
                config.f0_rate,
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


def _load_file(
    path: Path, config: PrepareConfig
) -> tuple[list[np.ndarray], list[dict], dict[str, Any]]:
    """A file unit's ``load``: its chunks at the configured rate."""
    audio, details = load_audio(path, config.sample_rate)
    check_usable(audio, config)
    chunks = [audio[a:b] for a, b in chunk_bounds(len(audio), config)]
    return chunks, [], details


def _load_notes(
    batch: list, path: Path, config: PrepareConfig
) -> tuple[list[np.ndarray], list[dict], dict[str, Any]]:
    """An NSynth unit's ``load``: each usable note of ``batch`` as one chunk."""
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


def file_unit(path: Path, config: PrepareConfig) -> Unit:
    """The unit of one audio file."""
    load = functools.partial(_load_file, path, config)
    try:
        seconds = sf.info(str(path)).duration
    except (sf.LibsndfileError, RuntimeError):
        seconds = 0.0
    return Unit(_key(_file_identity(path), config), str(path), seconds, load)


def nsynth_units(path: Path, config: PrepareConfig) -> Iterator[Unit]:
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
        load = functools.partial(_load_notes, batch, path, config)
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
        yield file_unit(path, config)
    for item in inputs:
        if str(item).startswith(NSYNTH_PREFIX):
            path = Path(str(item)[len(NSYNTH_PREFIX) :])
            if not path.exists():
                raise InputError(f"{path}: no such NSynth file or folder.")
            yield from nsynth_units(path, config)


def _split(shards: list[tuple[str, dict]], eval_fraction: float) -> dict[str, list]:
    """Whole chunks to eval, chosen by a hash of (input file name, chunk number), so that the
    choice is the same on every run and wherever the folder is; at least one chunk on each
    side when there are two or more, unless ``eval_fraction`` is 1 (all to eval)."""
    chunks = [
        (hashlib.sha256(f"{Path(info['input']).name}#{i}".encode()).hexdigest(), key, start, stop)
        for key, info in shards
        for i, (start, stop) in enumerate(info["chunks"])
    ]
    n_eval = round(len(chunks) * eval_fraction)
    if 0 < eval_fraction < 1 and len(chunks) >= 2:
        n_eval = min(max(n_eval, 1), len(chunks) - 1)
    chosen = {c[0] for c in sorted(chunks)[:n_eval]}
    splits: dict[str, list] = {"train": [], "eval": []}
    for digest, key, start, stop in chunks:
        splits["eval" if digest in chosen else "train"].append([key, start, stop])
    return splits


def dataset_statistics(
    dataset: "PreparedDataset", level_feature: str = "loudness_db"
) -> dict[str, Any]:
    """``feature_statistics`` of the training split (of the eval split in an evaluation-only
    dataset; all of it when it is small, else a fixed sample of 2000 examples), with
    ``level_feature`` (``loudness_db`` or ``power_db``) as the loudness."""
    index = dataset.index("train")
    if len(index) == 0:
        index = dataset.index("eval")
    if len(index) > 2000:
        index = index[np.random.default_rng(0).choice(len(index), 2000, replace=False)]
    columns = dataset.read(index, ("f0_hz", "f0_confidence", level_feature))
    return feature_statistics(columns["f0_hz"], columns["f0_confidence"], columns[level_feature])


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
        PrepareError: When no input gives a single example.
        InputError: When an input names nothing.
    """
    out = Path(out)
    nsynth = [i for i in inputs if str(i).startswith(NSYNTH_PREFIX)]
    files = [i for i in inputs if not str(i).startswith(NSYNTH_PREFIX)]
    units = list(units_of(files, config)) if files else []
    # Shards hold the audio at the model's rate as float32, and its features.
    check_output(out, round(1.1 * 4 * config.sample_rate * sum(u.seconds for u in units)), True)
    shard_root = out / SHARD_DIR
    shard_root.mkdir(parents=True, exist_ok=True)
    for partial in shard_root.glob(".*.partial-*"):  # Left by a killed run.
        shutil.rmtree(partial, ignore_errors=True)
    shards: list[tuple[str, dict]] = []
    skipped: list[dict[str, str]] = []
    bar = _progress(progress, None if nsynth else sum(unit.seconds for unit in units))
    examples = 0
    # Reading and resampling the next input, and writing the last shard, run in threads
    # while CREPE works on this input (file I/O, soxr and numpy's saving release the GIL).
    loader = ThreadPoolExecutor(1, thread_name_prefix="prepare-load")
    writer = ThreadPoolExecutor(1, thread_name_prefix="prepare-write")
    writing: Future | None = None
    try:
        every_unit = itertools.chain(units, units_of(nsynth, config))
        for unit, loading in _loaded_ahead(every_unit, loader, shard_root):
            directory = shard_root / unit.key
            if loading is None:
                info = json.loads((directory / SHARD_FILE).read_text())
                bar.update(info["seconds"])
            else:
                try:
                    chunks, skipped_parts, details = loading.result()
                except UnusableInputError as reason:
                    skipped.append({"input": unit.name, "reason": str(reason)})
                    bar.update(unit.seconds)
                    continue
                arrays, info = shard_contents(
                    unit, (chunks, skipped_parts, details), config, bar.update
                )
                if writing is not None:
                    writing.result()
                writing = writer.submit(write_shard, directory, arrays, info)
            skipped.extend(info["skipped"])
            shards.append((unit.key, info))
            examples += info["n_examples"]
            bar.set_postfix(inputs=len(shards), examples=examples, skipped=len(skipped))
        if writing is not None:
            writing.result()
    finally:
        loader.shutdown(cancel_futures=True)
        writer.shutdown()
        bar.close()
    return finish_dataset(out, config, shards, skipped)


def shard_contents(
    unit: Unit,
    loaded: tuple[list[np.ndarray], list[dict], dict[str, Any]],
    config: PrepareConfig,
    advance: Callable[[float], Any] = lambda seconds: None,
) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """The arrays and ``shard.json`` of ``unit`` from what its ``load`` gave."""
    chunks, skipped_parts, details = loaded
    arrays, ranges = examples_of_chunks(chunks, config, advance)
    info = {
        "input": unit.name,
        "n_examples": len(arrays["audio"]),
        "chunks": ranges,
        "seconds": sum(len(c) for c in chunks) / config.sample_rate,
        "skipped": skipped_parts,
        "details": details,
    }
    return arrays, info


def finish_dataset(
    out: Path, config: PrepareConfig, shards: list[tuple[str, dict]], skipped: list[dict]
) -> dict[str, Any]:
    """Remove shards no input gave, split, compute the statistics and write
    ``dataset.json`` for the ``shards`` ``(key, shard.json)`` and the ``skipped`` inputs,
    each in the inputs' order; returns ``dataset.json``.

    Raises:
        PrepareError: When there is no shard.
    """
    shard_root = out / SHARD_DIR
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
    dataset = PreparedDataset(out, info=summary)
    summary["statistics"] = dataset_statistics(dataset)
    summary["power_statistics"] = dataset_statistics(dataset, "power_db")
    write_json(out / DATASET_FILE, summary)
    return summary


def _loaded_ahead(
    units: Iterator[Unit], loader: Executor, shard_root: Path
) -> Iterator[tuple[Unit, Future | None]]:
    """Each unit with its ``load`` running in ``loader`` (None for a unit whose shard is
    already written), the next unit's started before this one is handed out."""
    pending: collections.deque[tuple[Unit, Future | None]] = collections.deque()
    for unit in units:
        finished = (shard_root / unit.key / SHARD_FILE).exists()
        pending.append((unit, None if finished else loader.submit(unit.load)))
        if len(pending) > 1:
            yield pending.popleft()
    yield from pending


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
