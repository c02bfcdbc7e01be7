"""ddsp live: the host-rate path, the callback driven by a stand-in stream, file to file;
the streaming programs exported as StableHLO."""

import json
import threading
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from flax import nnx

from conftest import tone
from crepe import needs_weights
from ddsp_jax import live
from ddsp_jax.cli import main
from ddsp_jax.models import Autoencoder, SavedModel, save_model
from ddsp_jax.streaming import HostRateStream
from ddsp_jax.training.config import model_config


class Delay:
    """A model-rate processor that returns its input ``latency`` samples late."""

    def __init__(self, block_size: int, latency: int) -> None:
        self.block_size, self.latency = block_size, latency
        self._history = np.zeros(latency + block_size, np.float32)

    def process(self, block: np.ndarray) -> np.ndarray:
        self._history = np.concatenate([self._history[self.block_size :], block])
        return self._history[: self.block_size].copy()

    def reset(self) -> None:
        self._history[:] = 0.0


@pytest.mark.parametrize(("host_rate", "host_block"), [(16000, 320), (44100, 882), (48000, 960)])
def test_host_rate_stream_delays_a_tone_by_its_stated_latency(host_rate, host_block):
    stream = HostRateStream(Delay(320, 160), 16000, host_rate, host_block)
    audio = tone(300.0, 1.0, host_rate).astype(np.float32)
    out = np.concatenate(
        [
            stream.process(audio[i : i + host_block]).copy()
            for i in range(0, len(audio) - host_block + 1, host_block)
        ]
    )
    latency = stream.latency
    assert latency >= 160 * host_rate // 16000
    settled = slice(host_rate // 4, len(out) - latency)  # After the resamplers' start.
    # 44.1 kHz holds no whole number of 16 kHz samples: the true delay is within half a
    # host sample of the stated one, which moves a 300 Hz tone by up to 2π·300·0.5/44100.
    rounding = 0.0 if host_rate % 16000 == 0 else 2 * np.pi * 300.0 * 0.5 / host_rate
    np.testing.assert_allclose(out[latency:][settled], audio[settled], atol=2e-3 + rounding)


def test_nan_from_the_input_device_counts_as_silence():
    engine = live.LiveEngine(HostRateStream(Delay(320, 160), 16000, 48000, 960))
    audio = tone(300.0, 0.5, 48000).astype(np.float32)
    outputs = []
    for index in range(25):
        block = audio[index * 960 : (index + 1) * 960, None].copy()
        if index == 3:
            block[100:200] = np.nan
        out = np.zeros((960, 1), np.float32)
        engine.callback(block, out, 960, None, None)
        outputs.append(out[:, 0])
    assert np.all(np.isfinite(np.concatenate(outputs)))
    assert np.max(np.abs(outputs[-1])) > 0.1  # Still sounding after the NaN.


def saved_model_folder(folder: Path) -> Path:
    config = model_config(8, "ir", 700, 16, 1, 16, 6400)
    model = Autoencoder(config, rngs=nnx.Rngs(3))
    return save_model(SavedModel(model, 250, None, 0, folder), folder)


class FakeStream:
    """Stands in for a sounddevice stream: calls the callback block by block in a thread."""

    def __init__(self, kind: str, blocks: int, audio: np.ndarray, **settings) -> None:
        self.kind, self.settings, self.audio, self.blocks = kind, settings, audio, blocks
        self.written: list[np.ndarray] = []

    def __enter__(self) -> "FakeStream":
        self.thread = threading.Thread(target=self._play)
        self.thread.start()
        return self

    def _play(self) -> None:
        block, callback = self.settings["blocksize"], self.settings["callback"]
        for index in range(self.blocks):
            indata = np.stack([self.audio[index * block : (index + 1) * block]] * 2, axis=1)
            outdata = np.zeros((block, 2), np.float32)
            if self.kind == "duplex":
                callback(indata, outdata, block, None, None)
                self.written.append(outdata.copy())
            else:
                callback(indata, block, None, None)

    def __exit__(self, *exc) -> None:
        self.thread.join()


@needs_weights
@pytest.mark.slow
def test_the_callback_runs_the_host_rate_stream_on_each_block(tmp_path):
    from ddsp_jax.models import load_model
    from ddsp_jax.streaming import TransferStream

    saved = load_model(saved_model_folder(tmp_path / "model"))
    audio = tone(330.0, 1.0, 48000).astype(np.float32)
    made = []

    def factory(kind, **settings):
        made.append(FakeStream(kind, 20, audio, **settings))
        return made[-1]

    def engine() -> live.LiveEngine:
        stream = HostRateStream(TransferStream(saved, 320), 16000, 48000, 960)
        result = live.LiveEngine(stream, output_channels=2)
        result.warm_up()
        return result

    duplex = engine()
    report = live.run(duplex, factory, 3, 4, None, seconds=5.0)
    assert report.blocks == 20 and report.underflows == 0
    assert made[0].settings["device"] == (3, 4) and made[0].settings["channels"] == (1, 2)
    reference = engine()
    expected = [reference.stream.process(audio[i * 960 : (i + 1) * 960]).copy() for i in range(20)]
    for written, block in zip(made[0].written, expected, strict=True):
        np.testing.assert_array_equal(written[:, 0], block)
        np.testing.assert_array_equal(written[:, 1], block)
    assert np.max(np.abs(np.concatenate(expected))) > 0.0

    to_file = engine()
    live.run(to_file, factory, 3, None, tmp_path / "out.wav", seconds=5.0)
    written, rate = sf.read(tmp_path / "out.wav", dtype="float32")
    assert rate == 48000
    np.testing.assert_array_equal(written, np.concatenate(expected))


@needs_weights
def test_live_file_to_file_writes_the_input_length_and_reports(tmp_path, capsys):
    model = saved_model_folder(tmp_path / "model")
    sf.write(tmp_path / "in.wav", tone(262.0, 1.2, 44100), 44100)
    out = tmp_path / "out.wav"
    code = main(
        [
            "live",
            str(model),
            "--input",
            str(tmp_path / "in.wav"),
            "--output",
            str(out),
            "--no-realtime",
        ]
    )
    assert code == 0
    printed = capsys.readouterr().out
    assert "at 44100 Hz, blocks of 882 samples (20.0 ms); latency" in printed
    assert " late, 0 under/overflows; compute " in printed
    written, rate = sf.read(out, dtype="float32")
    assert rate == 44100 and len(written) == int(1.2 * 44100)
    assert np.all(np.isfinite(written)) and np.max(np.abs(written)) > 0.0


@needs_weights
def test_the_live_callback_compiles_nothing_after_warm_up(tmp_path):
    import jax

    from ddsp_jax.models import load_model

    saved = load_model(saved_model_folder(tmp_path / "model"))
    saved.statistics = {"mean_pitch_midi": 50.0, "note_loudness_db_quantiles": [-40, -25, -10]}
    stream = live.transfer_stream(saved, 320, pitch_shift="auto", loudness_shift="auto")
    engine = live.LiveEngine(
        HostRateStream(stream, 16000, 44100, 882), tone(262.0, 1.0, 44100).astype(np.float32)
    )
    engine.warm_up()
    compiles = []

    def listen(event: str, *args, **kwargs) -> None:
        if "compile" in event:
            compiles.append(event)

    jax.monitoring.register_event_duration_secs_listener(listen)
    try:
        for _ in range(40):  # Notes heard in frames of every count a block can complete.
            engine.callback(None, None, 882, None, None)
    finally:
        jax.monitoring.unregister_event_duration_listener(listen)
    assert stream.shifts()[0] == -12.0  # Notes were heard: MIDI 60 - 12 is nearest 50.
    assert compiles == []


@needs_weights
def test_live_with_the_onnx_engine_plays_what_the_python_engine_plays(tmp_path):
    pytest.importorskip("onnxruntime")
    model = saved_model_folder(tmp_path / "model")
    sf.write(tmp_path / "in.wav", tone(262.0, 1.2, 44100), 44100)
    written = {}
    for engine in ("jax", "onnx"):
        out = tmp_path / f"{engine}.wav"
        args = ["--input", str(tmp_path / "in.wav"), "--output", str(out), "--no-realtime"]
        assert main(["live", str(model), *args, "--engine", engine]) == 0
        written[engine], rate = sf.read(out, dtype="float32")
        assert rate == 44100 and len(written[engine]) == int(1.2 * 44100)
    # The same transfer; only the noise's generator differs (its part here is small).
    assert np.max(np.abs(written["jax"])) > 0.05
    assert np.corrcoef(written["jax"], written["onnx"])[0, 1] > 0.999


def test_live_refuses_settings_it_cannot_run(tmp_path, capsys):
    with pytest.raises(SystemExit):
        main(["live", "model", "--input", "in.wav", "--output", "out.wav"])
    assert "has no audio clock: add --no-realtime" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["live", "model", "--output", "out.flac"])
    assert "live writes WAV files" in capsys.readouterr().err
    sf.write(tmp_path / "in.wav", tone(262.0, 0.2, 16000), 16000)
    args = ["live", str(tmp_path / "none"), "--input", str(tmp_path / "in.wav")]
    assert main([*args, "--output", str(tmp_path / "o.wav"), "--no-realtime"]) == 1
    assert "no such model folder" in capsys.readouterr().err
    model = saved_model_folder(tmp_path / "model")
    blocked = tmp_path / "blocked"
    blocked.write_text("a file where a folder should be")
    args = ["live", str(model), "--input", str(tmp_path / "in.wav"), "--no-realtime"]
    assert main([*args, "--output", str(blocked / "out.wav")]) == 1
    assert f"cannot write {blocked / 'out.wav'}" in capsys.readouterr().err
    assert main(["export", str(model), "--format", "stablehlo", "--out", str(blocked)]) == 1
    assert f"ddsp export: error: exists and is not a folder ({blocked})" in capsys.readouterr().err


@needs_weights
@pytest.mark.slow
def test_bench_stream_records_every_configuration():
    from ddsp_jax.benchmarks import stream

    result = stream.run("quick", "tiny", blocks=20)
    keys = {"engine", "sample_rate", "block_ms", "compute_ms_median", "compute_ms_p99"}
    configurations = [(16000, 20), (16000, 10), (48000, 20), (48000, 10)]
    assert [(r["engine"], r["sample_rate"], r["block_ms"]) for r in result["records"]] == [
        (engine, *configuration) for engine in ("jax", "onnx") for configuration in configurations
    ]
    for record in result["records"]:
        assert keys <= set(record)
        assert 0 < record["compute_ms_median"] <= record["compute_ms_p99"]
        assert record["latency_ms"] > 0


@pytest.mark.slow
@needs_weights
def test_exported_stablehlo_programs_stream_like_the_python_engine(tmp_path, capsys):
    from ddsp_jax.deploy import ExportError, load_stablehlo
    from ddsp_jax.features.streaming import StreamingFeatures
    from ddsp_jax.models import load_model
    from ddsp_jax.streaming import Stream

    model = saved_model_folder(tmp_path / "model")
    out = tmp_path / "exported"
    assert main(["export", str(model), "--out", str(out), "--format", "stablehlo"]) == 0
    assert "synth.stablehlo, features.stablehlo, initial_state.npz" in capsys.readouterr().out
    metadata = json.loads((out / "metadata.json").read_text())
    assert metadata["block_size"] == 320 and metadata["max_frames"] == 5
    assert metadata["features"]["latency"] == 512

    synth, features_program, state, _ = load_stablehlo(out)
    saved = load_model(model)
    stream, features = Stream(saved, 320), StreamingFeatures(320)
    audio = tone(262.0, 0.5, 16000).astype(np.float32)
    for block in range(20):
        chunk = audio[block * 320 : (block + 1) * 320]
        expected_features = features.process(chunk)
        n = len(expected_features["f0_hz"])
        f0 = np.zeros((5, 1), np.float32)
        loudness = np.full((5, 1), -80.0, np.float32)
        f0[:n, 0], loudness[:n, 0] = expected_features["f0_hz"], expected_features["loudness_db"]
        due = stream.frames_due
        expected = stream.process(f0_hz=f0[:due, 0], loudness_db=loudness[:due, 0])
        got, state = synth.call(state, f0, loudness, np.int32(due))
        np.testing.assert_allclose(np.asarray(got), expected, atol=1e-6)
    exported = features_program.call(features._buffers[0])
    direct = features.frames_function()(features._buffers[0])
    for name in ("f0_hz", "f0_confidence", "loudness_db"):
        np.testing.assert_allclose(np.asarray(exported[name]), np.asarray(direct[name]), rtol=1e-5)
    metadata["block_size"] = 640  # Metadata that does not match its program is named.
    (out / "metadata.json").write_text(json.dumps(metadata))
    with pytest.raises(ExportError, match=r"synth.stablehlo: its inputs .* block of 640 samples"):
        load_stablehlo(out)
