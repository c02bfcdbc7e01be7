"""Model folders (`ddsp export`) and resynthesis (`ddsp resynth`) of any audio."""

import dataclasses
import json
import subprocess
import sys
from pathlib import Path

import jax
import numpy as np
import pytest
import soundfile as sf
import soxr
from flax import nnx

from crepe import needs_weights
from ddsp_jax.cli import main
from ddsp_jax.data.procedural import render_notes, sung_melody
from ddsp_jax.features import compute_features
from ddsp_jax.inference import (
    SilentInputError,
    extract,
    frames_covering,
    model_for_length,
    play,
    resynthesize,
    synthesize,
    synthesize_blocks,
)
from ddsp_jax.models.autoencoder import render
from ddsp_jax.models.saved import ModelError, SavedModel, load_model
from ddsp_jax.serialization import to_dict
from ddsp_jax.training import Trainer
from ddsp_jax.training.config import DataConfig
from ddsp_jax.training.examples import ExampleSource
from ddsp_jax.training.export import export_model
from tiny import tiny_config


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A tiny model trained for 3 steps, and its export."""
    root = tmp_path_factory.mktemp("inference")
    config = tiny_config(
        steps=3, checkpoint_every=3, data=DataConfig(example_seconds=0.1, n_train=4)
    )
    trainer = Trainer(config, root / "run")
    trainer.start(resume=False)
    data = render_notes(4, 0, seconds=0.1, n_harmonics=8, room=False)
    examples = {k: data[k] for k in ("audio", "f0_hz", "loudness_db")}
    trainer.fit(ExampleSource(examples, 2, 0), progress=False)
    export_model(root / "run", root / "model")
    return trainer, examples, root


def tone(f0: float, seconds: float, sample_rate: int) -> np.ndarray:
    t = np.arange(round(seconds * sample_rate)) / sample_rate
    return sum(0.3 / k * np.sin(2 * np.pi * k * f0 * t) for k in range(1, 5)).astype(np.float32)


def test_export_then_load_gives_the_trained_model(run):
    trainer, examples, root = run
    saved = load_model(root / "model")
    assert saved.step == 3 and saved.config == trainer.config.model
    assert saved.training == to_dict(trainer.config) and saved.frame_rate == 250
    loaded = jax.tree.leaves(nnx.state(saved.model, nnx.Param))
    trained = jax.tree.leaves(trainer.params)
    assert len(loaded) == len(trained) > 10
    for a, b in zip(trained, loaded, strict=True):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    # Synthesis from the folder equals the in-memory model's (same features, same noise key).
    batch = {k: examples[k][:1] for k in ("f0_hz", "loudness_db")}
    expected = trainer.model()(batch, key=jax.random.key(0))["audio_synth"][0]
    audio = synthesize(saved, batch["f0_hz"][0], batch["loudness_db"][0])
    np.testing.assert_allclose(audio, np.asarray(expected), atol=1e-6)
    statistics = saved.statistics
    assert statistics["f0_model"] is None and len(statistics["loudness_db_quantiles"]) == 101
    assert 30 < statistics["mean_pitch_midi"] < 90


def test_model_folder_errors_name_what_is_missing(run, tmp_path):
    _, _, root = run
    with pytest.raises(ModelError, match="no such model folder"):
        load_model(tmp_path / "nothing")
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "model.json").write_text((root / "model" / "model.json").read_text())
    with pytest.raises(ModelError, match=r"missing params\.msgpack, dataset\.json"):
        load_model(broken)
    (broken / "params.msgpack").write_bytes(b"\x80")
    (broken / "dataset.json").write_text('{"statistics": null}')
    with pytest.raises(ModelError, match="does not fit the model"):
        load_model(broken)
    info = json.loads((root / "model" / "model.json").read_text())
    (broken / "model.json").write_text(json.dumps({**info, "version": 99}))
    with pytest.raises(ModelError, match="version 99"):
        load_model(broken)
    (broken / "model.json").write_text("[]")
    with pytest.raises(ModelError, match=r"model\.json: not a model description"):
        load_model(broken)
    (broken / "model.json").write_text(json.dumps({**info, "step": "abc"}))
    with pytest.raises(ModelError, match=r"model\.json: step must be an integer >= 0, got 'abc'"):
        load_model(broken)
    bad_config = {**info["config"], "model": {**info["config"]["model"], "decoder": []}}
    (broken / "model.json").write_text(json.dumps({**info, "config": bad_config}))
    with pytest.raises(ModelError, match=r"config\.model\.decoder: expected a table"):
        load_model(broken)
    with pytest.raises(ModelError, match="not a training run folder"):
        export_model(tmp_path, tmp_path / "out")


@needs_weights
@pytest.mark.parametrize(("sample_rate", "channels"), [(8000, 1), (44100, 2), (48000, 1)])
def test_resynth_keeps_the_input_rate_length_and_is_one_pass(run, sample_rate, channels):
    _, _, root = run
    saved = load_model(root / "model")
    audio = tone(330.0, 0.37, sample_rate)
    if channels == 2:
        audio = np.stack([audio, 0.5 * audio], axis=1)
    out, features = resynthesize(saved, audio, sample_rate, f0_model="tiny")
    assert out.shape == (len(audio),) and np.all(np.isfinite(out))
    assert np.max(np.abs(out)) > 0
    assert features["f0_hz"].shape == (frames_covering(len(audio), sample_rate, 250),)
    confident = features["f0_hz"][features["f0_confidence"] > 0.5]
    assert np.median(np.abs(1200 * np.log2(confident / 330.0))) < 20


def one_pass_resynthesis(saved, audio: np.ndarray, rate: int) -> np.ndarray:
    """Resynthesis computed on the whole signal at once: the plain reference of ``play``."""
    model_rate, frame_rate = saved.sample_rate, saved.frame_rate
    at_model_rate = soxr.resample(audio, rate, model_rate, "HQ") if rate != model_rate else audio
    n_frames = frames_covering(len(audio), rate, frame_rate)
    hop = model_rate // frame_rate
    padded = np.pad(at_model_rate, (0, n_frames * hop - len(at_model_rate)))
    features = compute_features(padded[None], model_rate, frame_rate, "tiny")
    conditioning = [features[name][:, :n_frames] for name in ("f0_hz", "loudness_db")]
    out = np.asarray(render(model_for_length(saved, n_frames * hop), *conditioning)[0])
    out = soxr.resample(out, model_rate, rate, "HQ") if rate != model_rate else out
    return np.pad(out, (0, max(0, len(audio) - len(out))))[: len(audio)]


@needs_weights
@pytest.mark.parametrize("rate", [16000, 44100])
def test_play_in_chunks_equals_the_one_pass_resynthesis(run, rate):
    _, _, root = run
    saved = load_model(root / "model")
    voice, _ = sung_melody([57.0, 60.0, 64.0, 62.0], 0.75, rate)
    written: list[np.ndarray] = []
    blocks = [voice[i : i + 3000] for i in range(0, len(voice), 3000)]
    play(saved, blocks, len(voice), rate, written.append, "tiny", chunk_seconds=0.4)
    assert all(block.dtype == np.float32 for block in written)
    out = np.concatenate(written)
    expected = one_pass_resynthesis(saved, voice, rate)
    assert out.shape == expected.shape == voice.shape
    np.testing.assert_allclose(out, expected, atol=1e-4 * np.max(np.abs(expected)))


def test_synthesis_blocks_join_to_the_one_pass_render(run):
    _, examples, root = run
    saved = load_model(root / "model")
    f0_hz = np.tile(examples["f0_hz"][0], 13)[:317]  # 317 frames: blocks of 100 and 17.
    loudness_db = np.tile(examples["loudness_db"][0], 13)[:317]
    blocks = list(synthesize_blocks(saved, f0_hz, loudness_db, block_frames=100))
    # The first block is shorter by the stream's latency, the last takes what remains.
    assert len(blocks) == 4 and max(len(b) for b in blocks[:-1]) == 6400
    expected = np.asarray(
        render(model_for_length(saved, 317 * 64), f0_hz[None], loudness_db[None])[0]
    )
    np.testing.assert_allclose(np.concatenate(blocks), expected, atol=1e-5 * np.abs(expected).max())


@needs_weights
def test_play_writes_nothing_for_silence_or_bad_samples(run):
    _, _, root = run
    saved = load_model(root / "model")
    written: list[np.ndarray] = []
    dc = np.full(16000, 0.3, np.float32)  # A constant offset carries no sound.
    with pytest.raises(SilentInputError, match="silent"):
        play(saved, [dc[:5000], dc[5000:]], 16000, 16000, written.append, "tiny")
    broken = tone(220.0, 1.0, 16000)
    broken[12000] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        play(saved, [broken[:8000], broken[8000:]], 16000, 16000, written.append, "tiny")
    for rate, length in ((0, 16000), (-44100, 16000), (16000, 0)):
        with pytest.raises(ValueError, match=r"(sample_rate|n_samples) must be a positive"):
            play(saved, [broken], length, rate, written.append, "tiny")
    assert written == []


@pytest.mark.slow
@needs_weights
def test_cli_resynth_and_its_bad_input(run, tmp_path, capsys):
    _, _, root = run
    model = str(root / "model")
    sf.write(tmp_path / "in.wav", tone(220.0, 0.5, 22050), 22050)
    assert (
        main(
            [
                "resynth",
                model,
                str(tmp_path / "in.wav"),
                str(tmp_path / "out.wav"),
                "--f0-model",
                "tiny",
            ]
        )
        == 0
    )
    out, rate = sf.read(tmp_path / "out.wav")
    assert rate == 22050 and out.shape == (11025,)
    assert "Resynthesised" in capsys.readouterr().out

    sf.write(tmp_path / "silent.wav", np.zeros(8000), 16000)
    assert main(["resynth", model, str(tmp_path / "silent.wav"), str(tmp_path / "s.wav")]) == 0
    assert "no notes were detected" in capsys.readouterr().out
    assert not np.any(sf.read(tmp_path / "s.wav")[0])

    (tmp_path / "text.wav").write_text("not audio")
    assert main(["resynth", model, str(tmp_path / "text.wav"), str(tmp_path / "t.wav")]) == 1
    assert "text.wav: unreadable audio" in capsys.readouterr().err
    sf.write(tmp_path / "short.wav", 0.5 * np.sin(np.arange(20)), 16000)
    assert main(["resynth", model, str(tmp_path / "short.wav"), str(tmp_path / "t.wav")]) == 1
    assert "shorter than one frame" in capsys.readouterr().err
    assert main(["resynth", str(tmp_path), str(tmp_path / "in.wav"), str(tmp_path / "t.wav")]) == 1
    assert "missing model.json" in capsys.readouterr().err


def test_extract_refuses_audio_shorter_than_a_frame_or_not_finite(run):
    _, _, root = run
    with pytest.raises(ValueError, match="shorter than one frame"):
        extract(load_model(root / "model"), np.ones(10, np.float32))
    with pytest.raises(ValueError, match="NaN"):
        extract(load_model(root / "model"), np.full(1000, np.inf, np.float32))


def test_cli_export(run, tmp_path, capsys):
    _, _, root = run
    assert main(["export", str(root / "run"), "--out", str(tmp_path / "m"), "--step", "3"]) == 0
    assert load_model(tmp_path / "m").step == 3
    assert main(["export", str(root / "run"), "--out", str(tmp_path / "m2"), "--step", "2"]) == 1
    assert "ddsp export: error" in capsys.readouterr().err
    assert dataclasses.is_dataclass(load_model(tmp_path / "m").config)


def test_octave_shift_minimises_the_distance_to_the_training_mean():
    from ddsp_jax.adjustments import octave_shift

    assert octave_shift(50.0, 75.0) == 24  # 74 is 1 away; 86 would be 11.
    assert octave_shift(80.0, 60.0) == -24
    assert octave_shift(60.0, 65.0) == 0
    assert octave_shift(60.0, 67.0) == 12
    for mean in (40.0, 55.5, 71.0):
        shift = octave_shift(mean, 62.0)
        assert all(abs(mean + shift - 62.0) <= abs(mean + s - 62.0) for s in range(-48, 49, 12))


def test_quantile_mapping_takes_the_targets_distribution():
    from ddsp_jax.adjustments import quantile_map

    rng = np.random.default_rng(0)
    values = rng.uniform(-50.0, -20.0, 20000)
    mask = np.ones_like(values, bool)
    mask[:100] = False
    target = np.percentile(rng.uniform(-30.0, -10.0, 20000), np.linspace(0, 100, 101))
    mapped = quantile_map(values, mask, target)
    np.testing.assert_allclose(
        np.percentile(mapped[mask], np.linspace(0, 100, 101)), target, atol=0.3
    )
    assert np.all(np.diff(mapped[np.argsort(values)]) >= -1e-6)  # Monotone.


def test_adjust_quiets_only_non_note_frames_and_autotunes_notes():
    from ddsp_jax.adjustments import adjust

    n = 200
    confidence = np.where(np.arange(n) < 150, 0.95, 0.1).astype(np.float32)
    loudness = np.full(n, -30.0, np.float32)
    midi = 60.2 + 0.3 * np.sin(2 * np.pi * np.arange(n) / 50)  # Whole vibrato cycles.
    f0_hz = (440 * 2 ** ((midi - 69) / 12)).astype(np.float32)
    features = {"f0_hz": f0_hz, "f0_confidence": confidence, "loudness_db": loudness}
    adjusted, report = adjust(features, None, pitch_shift=0.0, loudness_shift=0.0, quiet_db=20.0)
    assert report["note_frames"] == 150
    np.testing.assert_allclose(adjusted["loudness_db"][:150], -30.0)
    np.testing.assert_allclose(adjusted["loudness_db"][150:], -50.0)
    np.testing.assert_allclose(adjusted["f0_hz"], f0_hz, rtol=1e-5)
    tuned, _ = adjust(features, None, 12.0, 0.0, quiet_db=0.0, autotune_amount=1.0)
    tuned_midi = 69 + 12 * np.log2(tuned["f0_hz"] / 440)
    # The notes land on the input's own tuning (60.2 → 72.2 after an octave); the rest shifts.
    np.testing.assert_allclose(tuned_midi[:150], 72.2, atol=0.02)
    np.testing.assert_allclose(tuned_midi[150:], midi[150:] + 12, atol=1e-3)
    with pytest.raises(ValueError, match="training statistics"):
        adjust(features, None)


@pytest.mark.slow
@needs_weights
def test_cli_transfer_of_a_sung_melody(run, tmp_path, capsys):
    _, _, root = run
    saved = load_model(root / "model")
    voice, _ = sung_melody([50.0, 52.0], 0.5, 44100)
    sf.write(tmp_path / "voice.wav", voice, 44100)
    args = ["transfer", str(root / "model"), str(tmp_path / "voice.wav"), str(tmp_path / "o.wav")]
    args += ["--f0-model", "tiny", "--plot", str(tmp_path / "t.png"), "--autotune", "0.5"]
    assert main(args) == 0
    out = capsys.readouterr().out
    shift = 12 * round((saved.statistics["mean_pitch_midi"] - 51.0) / 12)  # Sung mean: 51.
    assert f"Pitch shift {shift:+g} semitones" in out and "loudness quantile map" in out
    audio, rate = sf.read(tmp_path / "o.wav")
    assert rate == 44100 and audio.shape == (44100,) and np.all(np.isfinite(audio))
    assert (tmp_path / "t.png").stat().st_size > 10000
    with pytest.raises(SystemExit):
        main([*args[:4], "--autotune", "2"])


@needs_weights
def test_transfer_reports_and_warns_when_the_output_does_not_follow_loudness(
    run, tmp_path, capsys, monkeypatch
):
    import ddsp_jax.inference as inference

    _, _, root = run
    saved = load_model(root / "model")
    rate = saved.sample_rate
    voice, _ = sung_melody([55.0, 57.0, 59.0], 0.4, rate)
    n_frames = frames_covering(len(voice), rate, saved.frame_rate)
    padded = np.pad(voice, (0, n_frames * rate // saved.frame_rate - len(voice)))
    unchanged = {"pitch_shift": 0.0, "loudness_shift": 0.0, "quiet_db": 0.0}
    for gain, expected_db in ((1.0, 0.0), (0.01, -40.0)):
        # A "model" that plays the input back: its loudness is the conditioning's (× gain).
        monkeypatch.setattr(
            inference, "synthesize_blocks", lambda *_, g=gain, **__: iter([g * padded])
        )
        report = inference.transfer(saved, voice, rate, "tiny", **unchanged)[3]
        assert report["loudness_error_db"] == pytest.approx(expected_db, abs=0.5)
    sf.write(tmp_path / "voice.wav", voice, rate)
    args = ["transfer", str(root / "model"), str(tmp_path / "voice.wav"), str(tmp_path / "o.wav")]
    args += ["--f0-model", "tiny", "--pitch-shift", "0", "--loudness-shift", "0", "--quiet", "0"]
    assert main(args) == 0
    assert "Warning: on the note frames the output is 40 dB quieter" in capsys.readouterr().err


def test_f0_loudness_metrics_are_zero_on_identical_features_and_catch_mismatches():
    from ddsp_jax.training.evaluate import example_metrics, summarize

    n = 100
    original = {
        "f0_hz": np.full(n, 220.0),
        "f0_confidence": np.where(np.arange(n) < 80, 0.95, 0.2),
        "loudness_db": np.linspace(-40.0, -20.0, n),
    }
    same = example_metrics(original, original)
    assert same == {
        "loudness_l1_db": 0.0,
        "f0_l1_cents": 0.0,
        "raw_pitch_accuracy": 1.0,
        "outlier": False,
    }
    sharp = {
        **original,
        "f0_hz": np.full(n, 220.0 * 2 ** (30 / 1200)),
        "loudness_db": original["loudness_db"] + 3,
    }
    off = example_metrics(original, sharp)
    assert off["f0_l1_cents"] == pytest.approx(30.0) and off["raw_pitch_accuracy"] == 1.0
    assert off["loudness_l1_db"] == pytest.approx(3.0)
    wrong = example_metrics(original, {**original, "f0_hz": np.full(n, 220.0 * 2.5)})
    assert wrong["outlier"] and wrong["raw_pitch_accuracy"] == 0.0
    unpitched = example_metrics({**original, "f0_confidence": np.zeros(n)}, original)
    assert unpitched["f0_l1_cents"] is None
    summary = summarize([same, off, wrong, unpitched])
    assert summary["n_pitched"] == 3 and summary["f0_outlier_ratio"] == pytest.approx(1 / 3)
    assert summary["f0_l1_cents"] == pytest.approx(15.0)  # Outliers left out.
    assert summary["loudness_l1_db"] == pytest.approx(0.75)


@needs_weights
def test_resynthesis_metrics_of_audio_against_itself_and_another_instrument():
    from ddsp_jax.features.extract import compute_features
    from ddsp_jax.training.evaluate import resynthesis_metrics

    config = tiny_config()
    t = np.arange(1600 * 4) / 16000
    clarinet = sum(0.4 / k * np.sin(2 * np.pi * k * 220 * t) for k in (1, 3, 5, 7))
    other = 0.05 * np.sin(2 * np.pi * 330 * t)  # Another pitch, 18 dB quieter.
    audio = np.stack([clarinet, clarinet]).astype(np.float32)
    original = {k: v[:, :100] for k, v in compute_features(audio, 16000, 250, "tiny").items()}
    itself, _ = resynthesis_metrics(config, audio, original, "tiny")
    assert itself["loudness_l1_db"] == 0.0 and itself["f0_l1_cents"] == 0.0
    assert itself["raw_pitch_accuracy"] == 1.0
    mismatched = np.stack([other, other]).astype(np.float32)
    worse, _ = resynthesis_metrics(config, mismatched, original, "tiny")
    assert worse["loudness_l1_db"] > 10.0 and worse["raw_pitch_accuracy"] < 0.1


@pytest.mark.slow
@needs_weights
def test_cli_eval_writes_metrics_and_a_figure(run, tmp_path, capsys):
    from ddsp_jax.data.preparation import PrepareConfig, prepare

    _, _, root = run
    for i, f0 in enumerate((220.0, 330.0)):
        sf.write(tmp_path / f"{i}.wav", tone(f0, 1.0, 16000), 16000)
    config = PrepareConfig(f0_model="tiny", example_seconds=0.1, hop_seconds=0.1)
    prepare([tmp_path / "0.wav", tmp_path / "1.wav"], tmp_path / "ds", config, progress=False)
    args = [
        "eval",
        str(root / "model"),
        "--data",
        str(tmp_path / "ds"),
        "--out",
        str(tmp_path / "e"),
    ]
    assert main([*args, "--max-examples", "6"]) == 0
    out = capsys.readouterr().out
    assert "spectral loss, untrained" in out
    assert "% of confident frames within 50 cents" in out
    assert "% of pitched examples (f0 L1 > 1200 cents)" in out
    metrics = json.loads((tmp_path / "e" / "metrics.json").read_text())
    assert metrics["n_examples"] == 6 and len(metrics["per_example"]) == 6
    for key in ("spectral_loss", "untrained_spectral_loss", "loudness_l1_db"):
        assert np.isfinite(metrics[key])
    assert (tmp_path / "e" / "resynthesis.png").exists()
    # A training run folder works too; a dataset for another model size does not.
    assert (
        main(
            [
                "eval",
                str(root / "run"),
                "--data",
                str(tmp_path / "ds"),
                "--out",
                str(tmp_path / "r"),
            ]
        )
        == 0
    )
    capsys.readouterr()
    other = PrepareConfig(f0_model="tiny", example_seconds=0.2, hop_seconds=0.2)
    prepare([tmp_path / "0.wav"], tmp_path / "ds2", other, progress=False)
    assert main(["eval", str(root / "model"), "--data", str(tmp_path / "ds2")]) == 1
    assert "example samples 3200 (the model needs 1600)" in capsys.readouterr().err


@pytest.mark.slow
@needs_weights
def test_bench_transfer_scores_how_the_output_follows_the_melody(run, capsys):
    _, _, root = run
    assert main(["bench", "transfer", "--model", str(root / "model")]) == 0
    out = capsys.readouterr().out
    for key in ("within_50_cents", "pitch_shift_semitones", "loudness_error_db"):
        assert key in out


def peak_memory_of_resynth(model: str, audio: str, out: str) -> int:
    """Peak resident memory (bytes) of ``ddsp resynth`` in a fresh process."""
    code = (
        "from ddsp_jax.cli import main; "
        "from ddsp_jax.benchmarks.common import peak_rss_bytes; "
        f"assert main(['resynth', {model!r}, {audio!r}, {out!r}, '--f0-model', 'tiny']) == 0; "
        "print(peak_rss_bytes())"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=600
    )
    return int(result.stdout.strip().splitlines()[-1])


@pytest.mark.slow
@needs_weights
def test_resynth_memory_does_not_grow_with_the_input(run, tmp_path):
    _, _, root = run
    peaks = {}
    for seconds in (25, 100):
        voice, _ = sung_melody([57.0, 60.0, 64.0, 62.0] * (seconds // 4), 1.0, 44100)
        sf.write(tmp_path / f"{seconds}.wav", np.stack([voice, voice], axis=1), 44100)
        peaks[seconds] = peak_memory_of_resynth(
            str(root / "model"), str(tmp_path / f"{seconds}.wav"), str(tmp_path / "out.wav")
        )
        assert sf.info(tmp_path / "out.wav").frames == len(voice)
    # Reading, features and synthesis go a chunk at a time: 75 s more audio would hold 53 MB
    # more at once (26 MB of stereo float32 input, 27 MB of CREPE salience) and more for the
    # synthesis; a chunked run differs by the allocator's noise (10-20 MB between runs).
    assert peaks[100] - peaks[25] < 40e6, peaks


def test_the_loudness_advice_follows_how_the_model_was_trained():
    from ddsp_jax.inference import loudness_advice

    def trained(source: str, steps: int, step: int) -> SavedModel:
        training = {"data": {"source": source}, "steps": steps}
        return SavedModel(None, 250, None, step, Path("m"), training)  # type: ignore[arg-type]

    assert "isolated notes" in loudness_advice(trained("nsynth:notes.tfrecord", 100, 100))
    assert "step 400 of its run's 30000" in loudness_advice(trained("data/violin", 30000, 400))
    assert "may not span" in loudness_advice(trained("data/violin", 3000, 3000))
