"""``ddsp prepare --runner beam``: the Beam pipeline writes the local preparation's dataset,
and a shard written twice (a retried bundle) is one shard."""

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from conftest import tone
from crepe import needs_weights
from ddsp_jax.data import PrepareConfig, prepare
from ddsp_jax.data.beam import _features, _load, _write
from ddsp_jax.data.dataset import SHARD_DIR, SHARD_FILE, PreparedDataset, write_shard
from ddsp_jax.data.preparation import file_unit

SHORT = PrepareConfig(f0_model="tiny", example_seconds=0.1, hop_seconds=0.1, chunk_seconds=0.5)


def small_folder(root: Path) -> None:
    """Three tones and three files that are not usable."""
    root.mkdir()
    for i, f0 in enumerate((220.0, 330.0, 440.0)):
        sf.write(root / f"tone{i}.wav", tone(f0, 1.0 + 0.2 * i, 22050), 22050)
    sf.write(root / "short.wav", tone(440.0, 0.05, 16000), 16000)
    sf.write(root / "silent.wav", np.zeros(16000), 16000)
    (root / "text.wav").write_text("not audio\n" * 10)


def shards(folder: Path) -> dict[str, dict[str, np.ndarray]]:
    """Every array of every shard of a dataset folder, by shard and name."""
    return {
        shard.name: {array.stem: np.load(array) for array in shard.glob("*.npy")}
        for shard in (folder / SHARD_DIR).iterdir()
    }


@needs_weights
def test_the_beam_pipeline_writes_the_local_preparations_dataset(tmp_path):
    pytest.importorskip("apache_beam")
    from ddsp_jax.data.beam import prepare_with_beam

    small_folder(tmp_path / "in")
    local = prepare([tmp_path / "in"], tmp_path / "local", SHORT, progress=False)
    beam = prepare_with_beam(
        [tmp_path / "in"],
        tmp_path / "beam",
        SHORT,
        "--runner=DirectRunner --direct_num_workers=2 --direct_running_mode=multi_threading",
    )
    assert beam == local
    assert json.loads((tmp_path / "beam" / "dataset.json").read_text()) == local
    assert [Path(s["input"]).name for s in beam["skipped"]] == [
        "short.wav",
        "silent.wav",
        "text.wav",
    ]
    assert PreparedDataset(tmp_path / "beam").index("train").shape[1] == 2
    expected, found = shards(tmp_path / "local"), shards(tmp_path / "beam")
    assert sorted(found) == sorted(expected) and len(found) == 3
    for key, arrays in expected.items():
        assert sorted(found[key]) == sorted(arrays)
        for name, values in arrays.items():
            np.testing.assert_array_equal(found[key][name], values)
    again = prepare_with_beam([tmp_path / "in"], tmp_path / "beam", SHORT)  # Reuses shards.
    assert again == local


@needs_weights
def test_a_unit_written_twice_is_one_shard(tmp_path):
    small_folder(tmp_path / "in")
    unit = file_unit(tmp_path / "in" / "tone0.wav", SHORT)
    out = str(tmp_path / "out")

    def bundle() -> tuple:
        return _write(_features(_load(((0, 0), unit), out), SHORT), out)

    first = bundle()
    directory = tmp_path / "out" / SHARD_DIR / unit.key
    before = {p.name: p.stat().st_mtime_ns for p in directory.iterdir()}
    second = bundle()  # A retried bundle.
    assert first == second
    assert {p.name: p.stat().st_mtime_ns for p in directory.iterdir()} == before
    arrays = {name: np.load(directory / f"{name}.npy") for name in ("audio", "f0_hz")}
    write_shard(directory, {k: v[:1] for k, v in arrays.items()}, {"late": True})
    assert json.loads((directory / SHARD_FILE).read_text()) == first[3]  # The first copy stays.
    assert [p.name for p in directory.parent.iterdir()] == [unit.key]  # No temporary left.
