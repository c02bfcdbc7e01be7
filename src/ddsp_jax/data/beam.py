"""``ddsp prepare --runner beam``: the preparation of ``data.preparation`` as an Apache Beam
pipeline (the ``beam`` extra), for corpora that outgrow one machine.

The transforms: list the inputs (on the launching machine: audio files found under the
inputs, and each ``nsynth:`` input), expand each input into its units (a file, or a group of
NSynth notes), redistribute them, decode and resample, chunk, compute f0 and the levels and
write each unit's shard, then one combine step over all shards that removes stale ones,
splits, computes the dataset statistics and writes ``dataset.json``. Its output equals the
local ``ddsp prepare``'s on the same inputs.

A shard's folder name is a hash of its input and the settings, and it is written under a
temporary name and renamed into place, so a retried bundle rewrites the same shard (or finds
it finished) and never adds examples twice. Every worker must reach ``out`` as a file path
(a shared or mounted file system).

Runner and options are Beam's own flags (``--beam-args "--runner=DirectRunner
--direct_num_workers=2 --direct_running_mode=multi_processing"``, or those of Dataflow, Flink
or Spark); the workers need ddsp-jax installed.
"""

import json
import shlex
import shutil
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from ddsp_jax.data.audio import InputError, UnusableInputError, find_audio_files
from ddsp_jax.data.dataset import DATASET_FILE, SHARD_DIR, SHARD_FILE, PrepareConfig, write_shard
from ddsp_jax.data.preparation import (
    NSYNTH_PREFIX,
    PrepareError,
    Unit,
    file_unit,
    finish_dataset,
    nsynth_units,
    shard_contents,
)
from ddsp_jax.files import check_output

ERROR_FILE = ".prepare-error"  # The combine step's refusal, for the launching process.

# What each unit gives the combine step: its place in the inputs' order, then ("shard", key,
# shard.json) or ("skipped", the skipped entry).
Result = tuple[tuple[int, ...], str, Any, Any]


def _units(item: tuple[int, str, str], config: PrepareConfig) -> Iterator[tuple[tuple, Unit]]:
    """The units of one listed input, each with its place in the inputs' order."""
    position, kind, path = item
    if kind == "file":
        yield (0, position), file_unit(Path(path), config)
    else:
        for group, unit in enumerate(nsynth_units(Path(path), config)):
            yield (1, position, group), unit


def _load(element: tuple[tuple, Unit], out: str) -> Result:
    """Decode, resample and chunk one unit: ``(order, "loaded", unit, its chunks)``, or its
    result when its shard is already written or the input is unusable."""
    order, unit = element
    shard = Path(out) / SHARD_DIR / unit.key / SHARD_FILE
    if shard.exists():
        return order, "shard", unit.key, json.loads(shard.read_text())
    try:
        return order, "loaded", unit, unit.load()
    except UnusableInputError as reason:
        return order, "skipped", {"input": unit.name, "reason": str(reason)}, None


def _features(element: Result, config: PrepareConfig) -> Result:
    """f0, loudness and power of a loaded unit's chunks, windowed into examples:
    ``(order, "examples", unit, (arrays, shard.json))``; other results pass."""
    order, kind, unit, loaded = element
    if kind != "loaded":
        return element
    return order, "examples", unit, shard_contents(unit, loaded, config)


def _write(element: Result, out: str) -> Result:
    """Write a unit's examples as its shard; other results pass."""
    order, kind, unit, contents = element
    if kind != "examples":
        return element
    arrays, info = contents
    write_shard(Path(out) / SHARD_DIR / unit.key, arrays, info)
    return order, "shard", unit.key, json.loads(json.dumps(info))  # As shard.json reads.


def _finish(results: list[Result], config: PrepareConfig, out: str) -> None:
    """The combine step: ``finish_dataset`` over every unit's result in the inputs' order;
    a refusal is written to ``ERROR_FILE`` for the launching process."""
    shards, skipped = [], []
    for _, kind, first, second in sorted(results, key=lambda result: result[0]):
        if kind == "skipped":
            skipped.append(first)
        else:
            skipped.extend(second["skipped"])
            shards.append((first, second))
    try:
        finish_dataset(Path(out), config, shards, skipped)
    except PrepareError as error:
        (Path(out) / ERROR_FILE).write_text(str(error))


def prepare_with_beam(
    inputs: Sequence[str | Path], out: str | Path, config: PrepareConfig, beam_args: str = ""
) -> dict[str, Any]:
    """Prepare ``inputs`` into ``out`` as ``data.preparation.prepare`` does, on a Beam
    runner chosen by ``beam_args`` (Beam's flags; default: the DirectRunner); returns
    ``dataset.json``.

    Raises:
        ImportError: Without Apache Beam (the ``beam`` extra).
        PrepareError: When no input gives a single example.
        InputError: When an input names nothing.
    """
    try:
        import apache_beam as beam
        from apache_beam.options.pipeline_options import PipelineOptions
    except ImportError as error:
        raise ImportError(
            "--runner beam needs Apache Beam: pip install 'ddsp-jax[beam]'."
        ) from error
    out = Path(out)
    files = [str(i) for i in inputs if not str(i).startswith(NSYNTH_PREFIX)]
    listed: list[tuple[int, str, str]] = [
        (position, "file", str(path))
        for position, path in enumerate(find_audio_files(files) if files else [])
    ]
    for position, item in enumerate(inputs):
        if str(item).startswith(NSYNTH_PREFIX):
            path = Path(str(item)[len(NSYNTH_PREFIX) :])
            if not path.exists():
                raise InputError(f"{path}: no such NSynth file or folder.")
            listed.append((position, "nsynth", str(path)))
    seconds = sum(file_unit(Path(p), config).seconds for _, kind, p in listed if kind == "file")
    check_output(out, round(1.1 * 4 * config.sample_rate * seconds), True)
    shard_root = out / SHARD_DIR
    shard_root.mkdir(parents=True, exist_ok=True)
    for partial in shard_root.glob(".*.partial-*"):  # Left by a killed run.
        shutil.rmtree(partial, ignore_errors=True)
    (out / ERROR_FILE).unlink(missing_ok=True)
    options = PipelineOptions(shlex.split(beam_args))
    with beam.Pipeline(options=options) as pipeline:
        _ = (
            pipeline
            | "List inputs" >> beam.Create(listed)
            | "Units" >> beam.FlatMap(_units, config)
            | "Spread units" >> beam.Reshuffle()
            | "Decode, resample, chunk" >> beam.Map(_load, str(out))
            | "f0 and levels" >> beam.Map(_features, config)
            | "Write shards" >> beam.Map(_write, str(out))
            | "All shards" >> beam.combiners.ToList()
            | "dataset.json" >> beam.Map(_finish, config, str(out))
        )
    if (out / ERROR_FILE).exists():
        message = (out / ERROR_FILE).read_text()
        (out / ERROR_FILE).unlink()
        raise PrepareError(message)
    return json.loads((out / DATASET_FILE).read_text())
