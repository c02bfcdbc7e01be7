import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from PIL import Image

from ddsp_jax.cli import main
from ddsp_jax.demo import FIGURES, SUMMARY_FILE, demo_config
from ddsp_jax.models import load_model
from ddsp_jax.training import PRESETS


@pytest.mark.slow
def test_demo_with_a_tiny_budget_writes_every_promised_file(tmp_path, capsys):
    out = tmp_path / "demo"
    assert main(["demo", "--out", str(out), "--steps", "5"]) == 0
    printed = capsys.readouterr().out
    summary = json.loads((out / SUMMARY_FILE).read_text())
    for key in ("loss_untrained", "loss_trained", "steps", "wall_seconds", "examples_per_second"):
        assert key in summary and np.isfinite(summary[key]), key
    assert summary["steps"] == 5
    for name in FIGURES:
        with Image.open(out / name) as image:
            image.verify()
        assert str(out.resolve() / name) in printed
    synth = demo_config().model.synth
    assert len(summary["wavs"]) == 6
    for name in summary["wavs"]:
        info = sf.info(out / name)
        assert (info.samplerate, info.frames) == (synth.sample_rate, synth.n_samples), name
    assert (out / "run" / "checkpoints" / "5").is_dir()
    # A second demo replaces the first; a folder that is not a demo is left alone.
    assert main(["demo", "--out", str(out), "--steps", "2"]) == 0
    assert json.loads((out / SUMMARY_FILE).read_text())["steps"] == 2
    other = tmp_path / "mine"
    other.mkdir()
    (other / "notes.txt").write_text("x")
    with pytest.raises(SystemExit):
        main(["demo", "--out", str(other), "--steps", "2"])
    assert (other / "notes.txt").exists()


@pytest.mark.slow
def test_ctrl_c_stops_the_demo_without_writing_results(tmp_path, capsys, monkeypatch):
    import ddsp_jax.demo

    def interrupted_source(*args, **kwargs):
        source = real_source(*args, **kwargs)
        draw = source.next_batch

        def next_batch():
            if source.state() != first_state:  # The second batch: Ctrl-C.
                os.kill(os.getpid(), signal.SIGINT)
            return draw()

        first_state = source.state()
        source.next_batch = next_batch
        return source

    real_source = ddsp_jax.demo.batch_source
    monkeypatch.setattr(ddsp_jax.demo, "batch_source", interrupted_source)
    out = tmp_path / "demo"
    assert main(["demo", "--out", str(out), "--steps", "5"]) == 1
    assert "stopped by SIGINT after step 2 of 5: no results written" in capsys.readouterr().err
    assert not (out / SUMMARY_FILE).exists() and not (out / FIGURES[0]).exists()


def test_datarax_engine_without_the_extra_says_what_to_install(tmp_path, capsys):
    try:
        import datarax  # noqa: F401
    except ImportError:
        pass
    else:
        pytest.skip("the datarax extra is installed (its engine is tested in tests/integrations)")
    with pytest.raises(SystemExit):
        main(["demo", "--engine", "datarax", "--out", str(tmp_path / "demo"), "--steps", "2"])
    assert "pip install 'ddsp-jax[datarax]'" in capsys.readouterr().err
    assert not (tmp_path / "demo" / SUMMARY_FILE).exists()


def tiny_training_files(tmp_path: Path) -> tuple[Path, Path]:
    """An npz of six short procedural notes and a TOML shrinking the quick preset's model."""
    from ddsp_jax.data.procedural import render_notes

    frame_rate = PRESETS["quick"].frame_rate
    notes = render_notes(6, 0, seconds=0.1, frame_rate=frame_rate, n_harmonics=8, room=False)
    data = tmp_path / "notes.npz"
    np.savez(data, **{k: notes[k] for k in ("audio", "f0_hz", "loudness_db")})
    settings = tmp_path / "tiny.toml"
    settings.write_text(
        "checkpoint_every = 2\n[loss]\nfft_sizes = [256, 64]\n"
        "[model.decoder]\nch = 16\nrnn_channels = 16\nlayers_per_stack = 1\n"
        'output_splits = [["amplitudes", 1], ["harmonic_distribution", 8], '
        '["noise_magnitudes", 65]]\n'
        "[model.synth]\nn_samples = 1600\nn_harmonics = 8\nreverb_length = 200\n"
    )
    return data, settings


@pytest.mark.slow
def test_train_command_trains_resumes_and_reports_bad_data(tmp_path, capsys):
    data, settings = tiny_training_files(tmp_path)
    run = tmp_path / "run"
    args = ["train", "--preset", "quick", "--config", str(settings), "--data", str(data)]
    assert main([*args, "--out", str(run), "--steps", "2", "--batch-size", "2"]) == 0
    assert "held-out loss" in capsys.readouterr().out
    assert main(["train", "--out", str(run), "--steps", "4", "--resume", "--lr", "0.1"]) == 1
    assert "--lr cannot be used with it" in capsys.readouterr().err  # Not silently ignored.
    assert main(["train", "--out", str(run), "--steps", "4", "--resume"]) == 0
    assert "Resuming" in capsys.readouterr().out
    assert load_model(run / "model").step == 4  # The model folder of the finished run.
    lines = (run / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(line)["step"] for line in lines] == [1, 2, 3, 4]
    assert main([*args, "--out", str(run), "--steps", "2"]) == 1  # Exists, no --resume.
    assert "--resume" in capsys.readouterr().err
    bad = dict(np.load(data))
    bad["loudness_db"][2, 1] = np.nan
    np.savez(tmp_path / "bad.npz", **bad)
    args[-1] = str(tmp_path / "bad.npz")
    assert main([*args, "--out", str(tmp_path / "run2"), "--steps", "2"]) == 1
    assert "bad.npz: loudness_db has NaN" in capsys.readouterr().err


@pytest.mark.slow
def test_train_with_a_time_budget_fits_its_steps_and_ends_with_the_model_folder(tmp_path, capsys):
    data, settings = tiny_training_files(tmp_path)
    run = tmp_path / "run"
    args = ["train", "--preset", "quick", "--config", str(settings), "--data", str(data)]
    began = time.monotonic()
    assert main([*args, "--out", str(run), "--batch-size", "2", "--minutes", "0.3"]) == 0
    elapsed = time.monotonic() - began
    out = capsys.readouterr().out
    saved = json.loads((run / "config.json").read_text())
    steps = saved["steps"]
    assert f"{steps} steps at" in out and steps > 20
    # The preset's schedule (decay over its 350 steps) scaled to the steps that fit.
    assert saved["optimizer"]["decay_steps"] == steps
    metrics = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [m["step"] for m in metrics] == list(range(1, len(metrics) + 1))
    assert len(metrics) == steps or "out of time" in out
    assert load_model(run / "model").step == len(metrics)
    assert elapsed < 18 + 15  # The budget, with room for a loaded machine's jitter.
    with pytest.raises(SystemExit):
        main([*args, "--out", str(run), "--minutes", "0.3", "--steps", "3"])
    assert "cannot be used with --steps" in capsys.readouterr().err
    assert main(["train", "--out", str(run), "--resume", "--minutes", "1"]) == 1
    assert "--minutes cannot be used with it" in capsys.readouterr().err


@pytest.mark.slow
def test_sigterm_stops_ddsp_train_with_a_checkpoint_that_resumes(tmp_path, capsys):
    data, settings = tiny_training_files(tmp_path)
    run = tmp_path / "run"
    command = [sys.executable, "-m", "ddsp_jax.cli", "train", "--preset", "quick"]
    command += ["--config", str(settings), "--data", str(data), "--out", str(run)]
    command += ["--steps", "100000", "--batch-size", "2"]  # checkpoint_every is 2 in the TOML.
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    metrics = run / "metrics.jsonl"
    deadline = time.monotonic() + 200
    try:
        while not (metrics.exists() and len(metrics.read_text().splitlines()) >= 3):
            assert process.poll() is None, process.communicate()  # It ended: say why.
            assert time.monotonic() < deadline, "no 3 steps in 200 s"
            time.sleep(0.05)
        process.send_signal(signal.SIGTERM)
        out, err = process.communicate(timeout=120)
    finally:
        if process.poll() is None:  # Never leave a 100000-step run behind.
            process.kill()
    assert process.returncode == 128 + signal.SIGTERM, err
    steps = [json.loads(line)["step"] for line in metrics.read_text().splitlines()]
    assert f"Stopped by SIGTERM after step {steps[-1]}, checkpointed" in out
    assert steps == list(range(1, len(steps) + 1))
    # The last step is saved whether or not it falls on checkpoint_every.
    saved = [int(p.name) for p in (run / "checkpoints").iterdir() if p.name.isdigit()]
    assert max(saved) == steps[-1]
    assert main(["train", "--out", str(run), "--steps", str(steps[-1] + 1), "--resume"]) == 0
    assert f"from step {steps[-1]}" in capsys.readouterr().out
