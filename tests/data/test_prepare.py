"""`ddsp prepare`: any audio files → examples with f0 and loudness, bad files listed."""

import dataclasses
import json

import numpy as np
import pytest
import soundfile as sf

from conftest import tone
from crepe import needs_weights
from ddsp_jax.data import preparation as prep
from ddsp_jax.data.audio import InputError
from ddsp_jax.data.dataset import DatasetError, PrepareConfig, PreparedDataset
from ddsp_jax.data.preparation import PrepareError, prepare

TINY = PrepareConfig(f0_model="tiny", eval_fraction=0.1)


def build_folder(root) -> None:
    """Good files of several formats and every kind of bad file."""
    root.mkdir()
    (root / "sub").mkdir()
    stereo = np.stack([tone(220.0, 6.0, 44100), 0.5 * tone(220.0, 6.0, 44100)], axis=1)
    sf.write(root / "sub" / "stereo.flac", stereo, 44100, subtype="PCM_16")
    sf.write(root / "u8.wav", tone(330.0, 5.0, 16000), 16000, subtype="PCM_U8")
    sf.write(root / "pcm24.wav", tone(440.0, 5.0, 48000), 48000, subtype="PCM_24")
    sf.write(root / "sub" / "a.ogg", tone(262.0, 4.2, 22050), 22050, format="OGG")
    sf.write(root / "b.mp3", tone(294.0, 4.2, 24000), 24000, format="MP3")
    sf.write(root / "c.aiff", tone(349.0, 4.2, 32000), 32000, subtype="PCM_16")
    sf.write(root / "short.wav", tone(440.0, 0.5, 16000), 16000)
    sf.write(root / "truncated.wav", tone(440.0, 5.0, 16000), 16000)
    data = (root / "truncated.wav").read_bytes()
    (root / "truncated.wav").write_bytes(data[: len(data) // 2])
    (root / "text.wav").write_text("not audio at all\n" * 20)
    (root / "empty.wav").write_bytes(b"")
    sf.write(root / "silent.wav", np.zeros(80000), 16000)
    sf.write(root / "dc.wav", np.full(80000, 0.3), 16000)  # A constant offset: no sound.
    nan = tone(440.0, 5.0, 16000)
    nan[100] = np.nan
    sf.write(root / "nan.wav", nan, 16000, subtype="FLOAT")
    (root / "notes.txt").write_text("ignored: not an audio extension")


BAD = {
    "short.wav": "too short",
    "truncated.wav": "truncated",
    "text.wav": "unreadable",
    "empty.wav": "unreadable",
    "silent.wav": "silent",
    "dc.wav": "no usable signal",
    "nan.wav": "NaN",
}


@pytest.mark.slow
@needs_weights
def test_prepare_a_folder_of_mixed_formats_and_bad_files(tmp_path):
    build_folder(tmp_path / "in")
    info = prepare([tmp_path / "in"], tmp_path / "ds", TINY, progress=False)
    # 6 s → 3 examples of 4 s every 1 s; 5 s → 2, twice; 4.2 s → 1, three times.
    assert info["n_examples"]["train"] + info["n_examples"]["eval"] == 10
    assert info["n_examples"]["eval"] >= 1 and info["n_inputs"] == 6
    reasons = {s["input"].split("/")[-1]: s["reason"] for s in info["skipped"]}
    assert set(reasons) == set(BAD)
    for name, word in BAD.items():
        assert word in reasons[name], reasons[name]
    assert "WAV" in reasons["text.wav"] and "FLAC" in reasons["text.wav"]  # Readable formats.
    assert json.loads((tmp_path / "ds" / "dataset.json").read_text()) == info

    dataset = PreparedDataset(tmp_path / "ds")
    index = np.concatenate([dataset.index("train"), dataset.index("eval")])
    examples = dataset.read(index)
    assert examples["audio"].shape == (10, 64000)
    for name in ("f0_hz", "f0_confidence", "loudness_db"):
        assert examples[name].shape == (10, 1000) and np.all(np.isfinite(examples[name]))
    # Each example holds one steady tone of a known pitch.
    for f0, confidence in zip(examples["f0_hz"], examples["f0_confidence"], strict=True):
        confident = f0[confidence > 0.5]
        assert len(confident) > 900
        pitches = (220.0, 262.0, 294.0, 330.0, 349.0, 440.0)
        nearest = min(pitches, key=lambda f: abs(np.median(confident) - f))
        assert np.median(np.abs(1200 * np.log2(confident / nearest))) < 20.0
    stats = info["statistics"]
    assert 55.0 < stats["mean_pitch_midi"] < 69.0
    assert len(stats["loudness_db_quantiles"]) == 101
    assert stats["loudness_db_quantiles"] == sorted(stats["loudness_db_quantiles"])


@needs_weights
def test_rerun_reuses_shards_and_a_killed_run_leaves_nothing_readable(tmp_path, monkeypatch):
    build_folder(tmp_path / "in")
    first = prepare([tmp_path / "in"], tmp_path / "ds", TINY, progress=False)
    shards = sorted(p.name for p in (tmp_path / "ds" / "shards").iterdir())
    # A killed run's half-written shard (no rename happened) is cleaned up, not read.
    (tmp_path / "ds" / "shards" / f".{shards[0]}.partial-999").mkdir()

    def no_features(*args, **kwargs):
        raise AssertionError("a finished shard was recomputed")

    monkeypatch.setattr(prep, "compute_features", no_features)
    second = prepare([tmp_path / "in"], tmp_path / "ds", TINY, progress=False)
    assert second == first
    assert sorted(p.name for p in (tmp_path / "ds" / "shards").iterdir()) == shards


@needs_weights
def test_shards_hold_what_each_input_gives_alone_while_the_next_loads_in_a_thread(tmp_path):
    from ddsp_jax.data.audio import load_audio

    folder = tmp_path / "in"
    folder.mkdir()
    for name, f0, rate in (
        ("a.wav", 220.0, 44100),
        ("b.flac", 330.0, 48000),
        ("c.wav", 247.0, 16000),
    ):
        sf.write(folder / name, tone(f0, 5.5, rate), rate)
    info = prepare([folder], tmp_path / "ds", TINY, progress=False)
    assert info["n_inputs"] == 3
    for shard in (tmp_path / "ds" / "shards").iterdir():
        written = json.loads((shard / "shard.json").read_text())
        audio, _ = load_audio(written["input"], TINY.sample_rate)
        chunks = [audio[a:b] for a, b in prep.chunk_bounds(len(audio), TINY)]
        alone, ranges = prep.examples_of_chunks(chunks, TINY)
        assert [list(r) for r in ranges] == written["chunks"]
        for name, values in alone.items():
            np.testing.assert_array_equal(np.load(shard / f"{name}.npy"), values, err_msg=name)


@needs_weights
def test_a_shard_is_renamed_into_place_only_when_complete(tmp_path, monkeypatch):
    sf.write(tmp_path / "a.wav", tone(220.0, 5.0, 16000), 16000)
    saved = []
    original = np.save

    def save_then_die(path, values):
        saved.append(path)
        if len(saved) == 3:
            raise KeyboardInterrupt  # Killed while writing the shard.
        original(path, values)

    monkeypatch.setattr(prep.np, "save", save_then_die)
    with pytest.raises(KeyboardInterrupt):
        prepare([tmp_path / "a.wav"], tmp_path / "ds", TINY, progress=False)
    monkeypatch.setattr(prep.np, "save", original)
    shard_root = tmp_path / "ds" / "shards"
    assert [p.name for p in shard_root.iterdir() if not p.name.startswith(".")] == []
    assert not (tmp_path / "ds" / "dataset.json").exists()
    with pytest.raises(DatasetError, match="not a prepared dataset"):
        PreparedDataset(tmp_path / "ds")
    info = prepare([tmp_path / "a.wav"], tmp_path / "ds", TINY, progress=False)
    assert info["n_examples"]["train"] + info["n_examples"]["eval"] == 2
    assert [p.name for p in shard_root.iterdir() if p.name.startswith(".")] == []


def test_nothing_usable_is_an_error_listing_every_file(tmp_path):
    (tmp_path / "text.wav").write_text("hello")
    sf.write(tmp_path / "silent.wav", np.zeros(80000), 16000)
    with pytest.raises(PrepareError, match=r"(?s)nothing usable.*text\.wav.*silent\.wav"):
        prepare([tmp_path / "text.wav", tmp_path / "silent.wav"], tmp_path / "ds", TINY, False)
    with pytest.raises(InputError, match="no such file"):
        prepare([tmp_path / "missing.wav"], tmp_path / "ds", TINY, False)
    with pytest.raises(InputError, match="matches no files"):
        prepare([str(tmp_path / "*.mp3")], tmp_path / "ds", TINY, False)


def test_chunks_keep_eval_examples_apart_from_training_ones():
    config = PrepareConfig(chunk_seconds=20.0)
    # 47 s: chunks 0-20, 20-40, 40-47 s; a 2 s tail would join the chunk before it.
    assert prep.chunk_bounds(47 * 16000, config) == [
        (0, 320000),
        (320000, 640000),
        (640000, 752000),
    ]
    assert prep.chunk_bounds(42 * 16000, config)[-1] == (320000, 672000)
    shards = [("k1", {"input": "a.wav", "chunks": [[0, 17], [17, 34], [34, 38]]})]
    shards.append(("k2", {"input": "b.wav", "chunks": [[0, 17]]}))
    splits = prep._split(shards, 0.25)
    assert len(splits["eval"]) == 1 and len(splits["train"]) == 3
    assert prep._split(shards, 0.25) == splits  # The same choice on every run.
    assert prep._split(shards, 0.0)["eval"] == []
    assert prep._split(shards, 1.0)["train"] == []  # An evaluation-only dataset.


def test_settings_are_checked():
    with pytest.raises(ValueError, match="whole number"):
        PrepareConfig(sample_rate=44100, frame_rate=250, hop_seconds=0.001)
    with pytest.raises(ValueError, match="f0_model"):
        PrepareConfig(f0_model="large")
    with pytest.raises(ValueError, match=r"eval_fraction must be in \[0, 1\]"):
        PrepareConfig(eval_fraction=1.5)


@needs_weights
def test_a_dataset_for_another_model_size_is_refused(tmp_path):
    sf.write(tmp_path / "a.wav", tone(220.0, 5.0, 16000), 16000)
    prepare([tmp_path / "a.wav"], tmp_path / "ds", TINY, progress=False)
    dataset = PreparedDataset(tmp_path / "ds")
    dataset.check_matches(16000, 64000, 250)
    with pytest.raises(DatasetError, match=r"frame rate 250 \(the model needs 100\)"):
        dataset.check_matches(16000, 64000, 100)
    evaluation_only = dataclasses.replace(TINY, eval_fraction=1.0)
    prepare([tmp_path / "a.wav"], tmp_path / "held-out", evaluation_only, progress=False)
    held_out = PreparedDataset(tmp_path / "held-out")
    assert len(held_out.index("train")) == 0 and len(held_out.index("eval")) > 0
    assert held_out.info["statistics"] == dataset.info["statistics"]  # Of its eval examples.


SHORT = PrepareConfig(f0_model="tiny", example_seconds=0.1, hop_seconds=0.1)


def write_tiny_config(path, **data) -> None:
    from ddsp_jax.serialization import to_dict
    from ddsp_jax.training.config import DataConfig
    from tiny import tiny_config

    config = tiny_config(data=DataConfig(example_seconds=0.1, **data), steps=4)
    path.write_text(json.dumps(to_dict(config)))


@needs_weights
def test_training_streams_a_prepared_dataset(tmp_path):
    from ddsp_jax.data.dataset import Column
    from ddsp_jax.training.config import DataConfig
    from ddsp_jax.training.examples import ExampleSource, load_training_data
    from tiny import tiny_config

    for i, f0 in enumerate((220.0, 330.0, 440.0)):
        sf.write(tmp_path / f"{i}.wav", tone(f0, 1.0, 16000), 16000)
    prepare([tmp_path / f"{i}.wav" for i in range(3)], tmp_path / "ds", SHORT, progress=False)
    config = tiny_config(data=DataConfig(source=str(tmp_path / "ds")))
    data = load_training_data(config, tmp_path / "run")
    assert all(isinstance(column, Column) for column in data.train.values())
    assert len(data.train["audio"]) == 20 and len(data.test["audio"]) == 10  # One 1 s chunk.
    in_memory = {k: v[np.arange(len(v))] for k, v in data.train.items()}
    lazy, eager = ExampleSource(data.train, 4, seed=1), ExampleSource(in_memory, 4, seed=1)
    for _ in range(6):  # Crosses an epoch.
        a, b = lazy.next_batch(), eager.next_batch()
        for name in a:
            np.testing.assert_array_equal(a[name], b[name])
    assert a["audio"].shape == (4, 1600) and a["f0_hz"].shape == (4, 25)
    synth = dataclasses.replace(config.model.synth, n_samples=16000)
    other = dataclasses.replace(config, model=dataclasses.replace(config.model, synth=synth))
    with pytest.raises(DatasetError, match=r"example samples 1600 \(the model needs 16000\)"):
        load_training_data(other, tmp_path / "run")


@pytest.mark.slow
@needs_weights
def test_cli_prepares_then_trains_on_nsynth_and_on_a_folder(tmp_path, capsys):
    from test_nsynth import example, notes, write_tfrecord

    from ddsp_jax.cli import main

    path = tmp_path / "nsynth-test.tfrecord"
    write_tfrecord(path, [example(n) for n in notes()])
    write_tiny_config(tmp_path / "tiny.json", nsynth_subset="all")
    args = ["train", "--config", str(tmp_path / "tiny.json"), "--out", str(tmp_path / "run")]
    assert main([*args, "--data", f"nsynth:{path}", "--f0-model", "tiny"]) == 0
    out = capsys.readouterr().out
    assert "4 training examples, loss on 1 held-out" in out and "Trained 4 steps" in out
    info = json.loads((tmp_path / "run" / "dataset" / "dataset.json").read_text())
    assert info["config"]["f0_model"] == "tiny" and info["n_inputs"] == 1
    # Resuming reuses the prepared notes.
    resume = ["train", "--out", str(tmp_path / "run"), "--resume", "--steps", "6"]
    assert main(resume) == 0 and "Trained 6 steps" in capsys.readouterr().out

    build_folder(tmp_path / "in")
    good = ("sub/stereo.flac", "u8.wav", "pcm24.wav", "sub/a.ogg", "b.mp3", "c.aiff")
    for name in good:  # Keep the test short: two 1 s files instead.
        (tmp_path / "in" / name).unlink()
    sf.write(tmp_path / "in" / "a.wav", tone(220.0, 1.0, 16000), 16000)
    sf.write(tmp_path / "in" / "b.flac", tone(330.0, 1.0, 44100), 44100)
    prep_args = ["prepare", str(tmp_path / "in"), "--out", str(tmp_path / "ds"), "--f0-model"]
    prep_args += ["tiny", "--example-seconds", "0.1", "--hop-seconds", "0.1"]
    assert main(prep_args) == 0
    out = capsys.readouterr().out
    # short.wav (0.5 s) holds five 0.1 s examples; the other bad files are skipped.
    assert "Prepared 25 examples (" in out and "Skipped 6:" in out
    assert "of audio" in out and "2.5 s of audio" in out
    for name in set(BAD) - {"short.wav"}:
        assert name in out
    args = ["train", "--config", str(tmp_path / "tiny.json"), "--out", str(tmp_path / "run2")]
    args += ["--set", "eval_every=2", "--set", "eval_f0_model=tiny"]
    assert main([*args, "--data", str(tmp_path / "ds")]) == 0
    logged = [json.loads(line) for line in (tmp_path / "run2" / "metrics.jsonl").open()]
    assert [r["step"] for r in logged if "eval_raw_pitch_accuracy" in r] == [2, 4]
    assert all(np.isfinite(r["eval_loudness_l1_db"]) for r in logged if "eval_loss" in r)
    n_train = json.loads((tmp_path / "ds" / "dataset.json").read_text())["n_examples"]["train"]
    assert f"{n_train} training examples" in capsys.readouterr().out
    assert main(["prepare", str(tmp_path / "in" / "text.wav"), "--out", str(tmp_path / "x")]) == 1
    assert "nothing usable" in capsys.readouterr().err


def test_a_constant_offset_is_no_signal_and_an_empty_folder_says_so(tmp_path):
    from ddsp_jax.data.audio import InputError, find_audio_files
    from ddsp_jax.features import is_silent

    assert is_silent(np.full((16000, 2), 0.3)) and not is_silent(0.3 + 0.01 * np.eye(1000)[0])
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "notes.txt").write_text("no audio here")
    with pytest.raises(InputError, match=r"no audio files found in .*empty \(looked for"):
        find_audio_files([tmp_path / "empty"])
