"""Models conditioned on frame power instead of loudness (``model.level_feature =
"power_db"``): prepared datasets' power column, training, statistics, transfer and exports."""

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from flax import nnx

from conftest import tone
from crepe import needs_weights
from ddsp_jax.core.spectral import compute_power
from ddsp_jax.data import PrepareConfig, prepare
from ddsp_jax.data.dataset import DatasetError, PreparedDataset
from ddsp_jax.features import compute_features, feature_statistics
from ddsp_jax.inference import extract
from ddsp_jax.models import Autoencoder, SavedModel
from ddsp_jax.training.config import DataConfig
from ddsp_jax.training.examples import load_training_data, procedural_split
from ddsp_jax.training.export import training_statistics
from test_streaming import saved_model
from tiny import tiny_config, train_and_score

SHORT = PrepareConfig(f0_model="tiny", example_seconds=0.1, hop_seconds=0.1)


def power_config(**changes):
    config = tiny_config(**changes)
    return dataclasses.replace(
        config, model=dataclasses.replace(config.model, level_feature="power_db")
    )


def power_model(saved: SavedModel) -> SavedModel:
    """``saved`` with the same parameters, conditioned on power."""
    config = dataclasses.replace(saved.config, level_feature="power_db")
    model = Autoencoder(config, rngs=nnx.Rngs(0))
    nnx.update(model, nnx.state(saved.model))
    return SavedModel(model, saved.frame_rate, saved.statistics, saved.step, saved.path)


def test_an_unknown_level_feature_is_refused():
    with pytest.raises(ValueError, match="level_feature must be loudness_db or power_db"):
        dataclasses.replace(tiny_config().model, level_feature="rms_db")


@pytest.mark.slow
@needs_weights
def test_a_prepared_dataset_has_power_and_a_power_model_trains_on_it(tmp_path):
    for i, amplitude in enumerate((0.1, 0.2, 0.4)):
        sf.write(tmp_path / f"{i}.wav", tone(220.0 * (i + 1), 1.0, 16000, amplitude), 16000)
    summary = prepare(
        [tmp_path / f"{i}.wav" for i in range(3)], tmp_path / "ds", SHORT, progress=False
    )
    dataset = PreparedDataset(tmp_path / "ds")
    examples = dataset.read(dataset.index("train"))
    # Sines of amplitudes A / k have power Σ (A / k)² / 2 in every full frame.
    harmonics = np.sum(1.0 / np.arange(1, 5) ** 2)
    every = dataset.read(np.concatenate([dataset.index("train"), dataset.index("eval")]))
    levels = np.unique(np.round(np.median(every["power_db"][:, 5:-5], axis=1), 1))
    expected = 10 * np.log10(np.array([0.1, 0.2, 0.4]) ** 2 / 2 * harmonics)
    np.testing.assert_allclose(levels, expected, atol=0.06)
    columns = dataset.read(dataset.index("train"), ("f0_hz", "f0_confidence", "power_db"))
    assert summary["power_statistics"] == feature_statistics(
        columns["f0_hz"], columns["f0_confidence"], columns["power_db"]
    )

    config = power_config(data=DataConfig(source=str(tmp_path / "ds")))
    data = load_training_data(config, tmp_path / "run")
    index = np.arange(len(data.train["audio"]))
    np.testing.assert_array_equal(data.train["loudness_db"][index], examples["power_db"])
    assert (
        training_statistics(config, tmp_path / "run")["note_loudness_db_quantiles"]
        == (summary["power_statistics"]["note_loudness_db_quantiles"])
    )

    for shard in (tmp_path / "ds" / "shards").iterdir():  # As prepared before power existed.
        (shard / "power_db.npy").unlink()
    with pytest.raises(DatasetError, match=r"no power_db in its examples .* re-run ddsp prepare"):
        load_training_data(config, tmp_path / "run")
    loudness = tiny_config(data=DataConfig(source=str(tmp_path / "ds")))
    assert len(load_training_data(loudness, tmp_path / "run").test["audio"]) == 10


@pytest.mark.slow
def test_a_power_model_trains_on_procedural_notes_conditioned_on_their_power(tmp_path):
    data = DataConfig(example_seconds=0.1, n_train=8, n_test=4)
    config = power_config(data=data, steps=30, checkpoint_every=30)
    train, test = procedural_split(config)
    power = compute_power(train["audio"], 16000, config.frame_rate, 512)[:, : config.n_frames]
    np.testing.assert_allclose(train["loudness_db"], power, atol=1e-4)
    before, after, _ = train_and_score(config, tmp_path / "run", train, test)
    assert after < 0.8 * before
    statistics = training_statistics(config, tmp_path / "run")
    f0 = train["f0_hz"]
    assert statistics["mean_loudness_db"] == pytest.approx(
        feature_statistics(f0, np.ones_like(f0), train["loudness_db"])["mean_loudness_db"]
    )


@needs_weights
def test_transfer_features_of_a_power_model_are_power():
    saved = power_model(saved_model())
    t = np.arange(8000) / 16000
    audio = (0.3 * np.sin(2 * np.pi * 330.0 * t)).astype(np.float32)
    features = extract(saved, audio, "tiny")
    whole = compute_features(audio[None], 16000, 250, None)
    n_frames = len(features["f0_hz"])
    np.testing.assert_allclose(features["loudness_db"], whole["power_db"][0, :n_frames], atol=1e-4)
    assert not np.allclose(features["loudness_db"], whole["loudness_db"][0, :n_frames], atol=1)


@needs_weights
def test_the_onnx_export_of_a_power_model_streams_like_the_python_engine(tmp_path):
    pytest.importorskip("onnxruntime")
    from ddsp_jax.deploy.onnx_export import OnnxStream, export_onnx
    from ddsp_jax.streaming import TransferStream
    from test_deploy_onnx import stream_noise

    saved = power_model(saved_model())
    export_onnx(saved, tmp_path / "onnx", "tiny")
    metadata = json.loads((tmp_path / "onnx" / "metadata.json").read_text())
    assert metadata["level_feature"] == "power_db"
    assert "frame power" in metadata["synth"]["inputs"]["loudness_db"]
    onnx_stream = OnnxStream(tmp_path / "onnx", 320, noise=stream_noise)
    python = TransferStream(saved, 320, "tiny")
    t = np.arange(8000) / 16000
    voice = (0.3 * np.sin(2 * np.pi * 220 * t)).astype(np.float32)
    got, expected = (
        np.concatenate([stream.process(voice[i : i + 320]) for i in range(0, len(voice), 320)])
        for stream in (onnx_stream, python)
    )
    peak = np.max(np.abs(expected))
    assert peak > 0.05
    assert np.max(np.abs(got - expected)) < 2e-3 * peak


def test_the_stablehlo_export_says_which_level_the_model_reads(tmp_path):
    from ddsp_jax.deploy import export_stablehlo

    export_stablehlo(power_model(saved_model()), tmp_path / "hlo", 320, None)
    metadata = json.loads((tmp_path / "hlo" / "metadata.json").read_text())
    assert metadata["level_feature"] == "power_db"
    assert "power_db" in metadata["inputs"]["loudness_db"]
    assert Path(tmp_path / "hlo" / "synth.stablehlo").stat().st_size > 0
