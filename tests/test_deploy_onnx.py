import json
import subprocess
import sys
from pathlib import Path

import jax
import numpy as np
import pytest
import soundfile

from ddsp_jax.cli import main
from ddsp_jax.core.noise import NOISE_CHUNK, uniform_noise
from ddsp_jax.deploy import ExportError
from ddsp_jax.deploy.onnx_export import (
    GraphBuilder,
    OnnxStream,
    _windows,
    export_onnx,
    load_onnx,
    synth_graph,
    transfer_graph,
)
from ddsp_jax.models.saved import save_model
from ddsp_jax.streaming import Stream, TransferStream
from test_streaming import melody, saved_model

ort = pytest.importorskip("onnxruntime")
onnx = pytest.importorskip("onnx")


def stream_noise(start: int, count: int) -> np.ndarray:
    """The Python engine's noise (key 0) for samples ``[start, start + count)``."""
    return np.asarray(
        uniform_noise(jax.random.key(0), 1, count, start // NOISE_CHUNK, start % NOISE_CHUNK)
    )[0]


@pytest.mark.parametrize("reverb", ["ir", "none"])
def test_the_onnx_block_step_renders_what_the_python_stream_renders(reverb):
    saved = saved_model(reverb)
    model, states, plan = synth_graph(saved)
    runner = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    f0, loudness = melody(100)
    f0[42] = np.nan  # A block with a value that is not finite is silent; the stream goes on.
    state = {s.name: s.initial.copy() for s in states}
    python = Stream(saved, plan.hop)
    hop, start = plan.hop, 0
    for count in [1, 5, 3, 2, 1, 7, 5, 5, 4, 1, 2] * 2:  # Blocks of any number of frames.
        frames = slice(start, start + count)
        audio, *next_state = runner.run(
            None,
            {
                **state,
                "f0_hz": f0[frames],
                "loudness_db": loudness[frames],
                "noise": stream_noise(start * hop, count * hop),
            },
        )
        state = dict(zip(state, next_state, strict=True))
        # All frames of a block with a bad value become silent frames: as many bad frames.
        bad = np.where(np.isfinite(f0[frames]).all(), f0[frames], np.nan)
        expected = np.concatenate(
            [
                python.process(
                    f0_hz=bad[j : j + 1], loudness_db=loudness[start + j : start + j + 1]
                )
                for j in range(count)
            ]
        )
        assert np.max(np.abs(audio - expected)) < 1e-5 * 2.0, start  # Peaks are about 2.
        if start <= 42 < start + count:
            assert not audio.any()
        start += count
    assert start == 72
    assert np.max(np.abs(audio)) > 0.05


@pytest.mark.parametrize(
    ("pitch_shift", "loudness_shift", "quiet_db"), [(3.0, -6.0, 0.0), ("auto", "auto", 20.0)]
)
def test_onnx_transfer_streams_like_the_python_transfer_stream(
    tmp_path, pitch_shift, loudness_shift, quiet_db
):
    saved = saved_model()
    saved.statistics = {"mean_pitch_midi": 45.0, "note_loudness_db_quantiles": [-40, -25, -10]}
    export_onnx(saved, tmp_path / "onnx", "tiny")
    block = 320
    settings = (pitch_shift, loudness_shift, quiet_db)
    onnx_stream = OnnxStream(tmp_path / "onnx", block, *settings, noise=stream_noise)
    python = TransferStream(saved, block, "tiny", *settings)
    assert onnx_stream.latency == python.latency
    t = np.arange(16000) / 16000
    voice = 0.3 * np.sin(2 * np.pi * 220 * t * (1 + 0.02 * np.sin(2 * np.pi * 3 * t)))
    breath = 0.05 * np.random.default_rng(0).uniform(-1, 1, len(t))
    voice = np.where((t > 0.4) & (t < 0.6), breath, voice).astype(np.float32)  # Not a note.
    outputs = [
        (onnx_stream.process(voice[i : i + block]), python.process(voice[i : i + block]))
        for i in range(0, len(voice), block)
    ]
    got, expected = (np.concatenate(side) for side in zip(*outputs, strict=True))
    peak = np.max(np.abs(expected))
    assert peak > 0.05
    np.testing.assert_allclose(onnx_stream.shifts(), python.shifts(), atol=1e-3)
    if pitch_shift == "auto":
        assert python.shifts()[0] == -12.0  # 57 - 12 = 45.
    # CREPE's f0 differs by float32 rounding (~1e-5 relative), which the phase integrates:
    # the difference grows with time, about 5e-4 of the peak after a second.
    error = np.abs(got - expected)
    assert np.max(error) < 2e-3 * peak


def test_the_onnx_features_are_the_streaming_features(tmp_path):
    import onnx

    from ddsp_jax.deploy.onnx_export import features_graph
    from ddsp_jax.features.streaming import StreamingFeatures

    t = np.arange(16000) / 16000
    rng = np.random.default_rng(0)
    audio = 0.3 * np.sin(2 * np.pi * (220 + 30 * np.sin(2 * np.pi * t)) * t) * (1 + 0.5 * t)
    audio = (audio + 0.01 * rng.normal(size=t.size)).astype(np.float32)
    graph = features_graph("tiny", 512)
    onnx.checker.check_model(graph)
    runner = ort.InferenceSession(graph.SerializeToString(), providers=["CPUExecutionProvider"])
    streaming = StreamingFeatures(320, 250, "tiny")
    blocks = [streaming.process(audio[i : i + 320]) for i in range(0, len(audio), 320)]
    expected = {name: np.concatenate([b[name] for b in blocks]) for name in blocks[0]}
    padded = np.concatenate([np.zeros(512, np.float32), audio])
    windows = np.lib.stride_tricks.sliding_window_view(padded, 1024)[::64]
    found = np.stack(runner.run(None, {"audio": windows[: len(expected["f0_hz"])]}), axis=1)
    cents = 1200 * np.abs(np.log2(found[:, 1] / expected["f0_hz"]))
    assert cents.max() < 0.1
    assert np.abs(found[:, 0] - expected["loudness_db"]).max() < 1e-3
    assert np.abs(found[:, 2] - expected["f0_confidence"]).max() < 1e-5


@pytest.mark.parametrize(("shape", "count", "width"), [((2, 414), 128, 287), ((2, 3, 9), 4, 6)])
def test_onnx_windows_are_the_sliding_windows(shape, count, width):
    g = GraphBuilder()
    g("Identity", _windows(g, "x", len(shape), shape[-1], count, width), name="y")
    output = [*shape[:-1], count, width]
    graph = g.model([("x", np.float32, list(shape))], [("y", np.float32, output)], "", {})
    runner = ort.InferenceSession(graph.SerializeToString(), providers=["CPUExecutionProvider"])
    x = np.random.default_rng(0).normal(size=shape).astype(np.float32)
    expected = np.lib.stride_tricks.sliding_window_view(x, width, axis=-1)[..., :count, :]
    np.testing.assert_array_equal(runner.run(None, {"x": x})[0], expected)


def test_the_transfer_graph_is_the_features_adjusted_then_the_synth(tmp_path):
    out = export_onnx(saved_model(), tmp_path / "onnx", "tiny")
    synth, features, metadata = load_onnx(out)
    graphs = [onnx.load(out / name) for name in ("synth.onnx", "features.onnx")]
    transfer = ort.InferenceSession(
        transfer_graph(*graphs).SerializeToString(), providers=["CPUExecutionProvider"]
    )
    phase = np.arange(3 * 1024) / 9.0
    tone = sum(np.sin(k * phase) / k for k in (1, 2, 3))  # 283 Hz with two harmonics.
    frames = 0.2 * tone.reshape(3, 1024).astype(np.float32)
    frames[1] = np.random.default_rng(1).uniform(-0.05, 0.05, 1024)  # Not a note.
    states = metadata["synth"]["state"]
    state = {s["name"]: np.full(s["shape"], s["initial"], s["dtype"]) for s in states}
    noise = np.random.default_rng(0).uniform(-1, 1, 3 * metadata["hop"]).astype(np.float32)
    outputs = features.run(None, {"audio": frames})
    found = dict(zip(metadata["features"]["outputs"], outputs, strict=True))
    notes = (found["f0_confidence"] >= 0.85) & (found["loudness_db"] > -60.0)
    assert notes.tolist() == [True, False, True]
    loudness = found["loudness_db"] - 6.0 - np.where(notes, 0.0, 20.0)
    conditioning = {
        "f0_hz": found["f0_hz"] * np.float32(1.5),
        "loudness_db": np.maximum(loudness, -80.0).astype(np.float32),
    }
    expected = synth.run(None, {**state, **conditioning, "noise": noise})
    adjustments = {
        "f0_scale": np.array(1.5, np.float32),
        "loudness_shift": np.array(-6.0, np.float32),
        "quiet_db": np.array(20.0, np.float32),
    }
    names = [output.name for output in synth.get_outputs()] + ["notes", "found_f0_hz"]
    got = transfer.run(names, {**state, "features/audio": frames, **adjustments, "noise": noise})
    assert np.max(np.abs(expected[0])) > 0.01
    for value, reference in zip(got, [*expected, notes, found["f0_hz"]], strict=True):
        np.testing.assert_allclose(value, reference, rtol=1e-5, atol=1e-6)


def test_an_onnx_folder_that_does_not_match_its_metadata_is_refused(tmp_path):
    out = export_onnx(saved_model(), tmp_path / "onnx", None)
    _, features, metadata = load_onnx(out)
    assert metadata["features"]["outputs"] == ["loudness_db"]
    assert [i.name for i in features.get_inputs()] == ["audio"]
    (out / "metadata.json").write_text(json.dumps({**metadata, "hop": 128}))
    with pytest.raises(ExportError, match=r"synth.onnx: made for hop 64; metadata.json says 128"):
        load_onnx(out)
    metadata["synth"]["state"][0]["shape"] = [1, 7]
    (out / "metadata.json").write_text(json.dumps(metadata))
    with pytest.raises(ExportError, match=r"synth.onnx: its inputs .* do not match"):
        load_onnx(out)
    (out / "synth.onnx").write_bytes(b"not a graph")
    with pytest.raises(ExportError, match=r"synth\.onnx: onnxruntime cannot load it"):
        load_onnx(out)


def test_export_command_writes_onnx_graphs(tmp_path, capsys):
    model = save_model(saved_model(), tmp_path / "model")
    out = tmp_path / "exported"
    assert main(["export", str(model), "--out", str(out), "--format", "onnx"]) == 0
    assert "synth.onnx, features.onnx, metadata.json" in capsys.readouterr().out
    assert sorted(p.name for p in Path(out).iterdir()) == [
        "features.onnx",
        "metadata.json",
        "synth.onnx",
    ]


def test_the_documented_onnx_host_loop_runs_without_jax(tmp_path):
    text = (Path(__file__).parents[1] / "docs" / "deployment.md").read_text()
    section = text[text.index("## Exported graphs (ONNX)") :]
    start = section.index("```python\n") + len("```python\n")
    example = section[start : section.index("```", start)]
    export_onnx(saved_model(), tmp_path / "exported" / "violin", "tiny")
    t = np.arange(8000) / 16000
    soundfile.write(tmp_path / "melody.wav", 0.3 * np.sin(2 * np.pi * 330 * t), 16000)
    check = "\nimport sys\nassert 'jax' not in sys.modules and 'ddsp_jax' not in sys.modules\n"
    subprocess.run([sys.executable, "-c", example + check], cwd=tmp_path, check=True)
    out, rate = soundfile.read(tmp_path / "out.wav")
    assert rate == 16000 and len(out) == (8000 + 512 - 1024) // 64 * 64 + 64
    assert np.max(np.abs(out)) > 0.01
