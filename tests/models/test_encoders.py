"""The z encoder and the paper's autoencoder with it: shapes, gradients, training, and z
through resynthesis, transfer and the command line."""

import dataclasses
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import soundfile as sf
from flax import nnx

from ddsp_jax.cli import main
from ddsp_jax.data.procedural import render_notes
from ddsp_jax.inference import encode_z, synthesize, timbre_z
from ddsp_jax.models import (
    Autoencoder,
    InstanceNorm,
    MfccEncoderConfig,
    MfccTimeDistributedRnnEncoder,
    SavedModel,
    save_model,
)
from ddsp_jax.models.autoencoder import render
from ddsp_jax.training import PRESETS
from ddsp_jax.training.config import model_config
from tiny import tiny_config, train_and_score

ENCODER = MfccEncoderConfig(rnn_channels=8, z_dims=4, z_time_steps=250)


def z_config(**changes):
    """The tiny training config with a z encoder (0.1 s examples at 16 kHz, 250 Hz frames)."""
    model = model_config(8, "none", 200, 16, 1, 16, 1600, encoder=ENCODER)
    return tiny_config(model=model, **changes)


def notes(n: int, seed: int) -> dict[str, np.ndarray]:
    data = render_notes(n, seed, seconds=0.1, n_harmonics=8, room=False, n_instruments=2)
    return {k: data[k] for k in ("audio", "f0_hz", "loudness_db")}


def test_instance_norm_gives_each_channel_zero_mean_and_unit_variance_over_time(rng):
    x = jnp.asarray(rng.normal(3.0, 5.0, size=(2, 50, 6)), jnp.float32)
    y = np.asarray(InstanceNorm(6)(x))
    np.testing.assert_allclose(y.mean(axis=1), 0.0, atol=1e-5)
    np.testing.assert_allclose(y.std(axis=1), 1.0, atol=1e-4)


def test_the_encoder_gives_z_per_frame_with_gradients(rng):
    encoder = MfccTimeDistributedRnnEncoder(ENCODER, rngs=nnx.Rngs(0))
    audio = jnp.asarray(rng.normal(size=(2, 4000)), jnp.float32) * 0.1
    z = encoder(audio, n_frames=63)
    assert z.shape == (2, 63, 4) and np.all(np.isfinite(z))
    assert not np.allclose(z[0], z[1])  # Each example its own z.
    graphdef, params = nnx.split(encoder, nnx.Param)

    def loss(params, audio):
        return jnp.sum(nnx.merge(graphdef, params)(audio, 63) ** 2)

    grads, audio_grad = jax.grad(loss, argnums=(0, 1))(params, audio)
    for gradient in [*jax.tree.leaves(grads), audio_grad]:
        assert np.all(np.isfinite(gradient)) and np.any(gradient != 0.0)


def test_the_paper_autoencoder_preset_has_magentas_encoder():
    config = PRESETS["nsynth_ae"].model
    assert config.encoder == MfccEncoderConfig(rnn_channels=512, z_dims=16, z_time_steps=125)
    assert dict(zip(config.decoder.input_keys, config.decoder.input_sizes, strict=True)) == {
        "f0_scaled": 1,
        "ld_scaled": 1,
        "z": 16,
    }
    assert config.synth.n_harmonics == 100 and config.synth.reverb == "none"


def test_a_decoder_reading_z_needs_an_encoder_of_its_size():
    base = model_config(8, "none", 200, 16, 1, 16, 1600, encoder=ENCODER)
    with pytest.raises(ValueError, match="the decoder reads z, which needs an encoder"):
        dataclasses.replace(base, encoder=None)
    with pytest.raises(ValueError, match="makes z of 5 values per frame"):
        dataclasses.replace(base, encoder=dataclasses.replace(ENCODER, z_dims=5))
    with pytest.raises(ValueError, match="z_time_steps must be one of"):
        MfccEncoderConfig(z_time_steps=100)


def test_the_autoencoder_takes_z_from_the_audio_or_as_given(rng):
    model = Autoencoder(z_config().model, rngs=nnx.Rngs(0))
    data = notes(2, seed=0)
    batch = {k: jnp.asarray(v) for k, v in data.items()}
    key = jax.random.key(0)
    own = model(batch, key=key)["audio_synth"]
    z = model.encode(batch["audio"], 25)
    np.testing.assert_allclose(model({**batch, "z": z}, key=key)["audio_synth"], own, atol=1e-6)
    other = model({**batch, "z": z[::-1]}, key=key)["audio_synth"]
    assert np.max(np.abs(np.asarray(other - own))) > 1e-4
    with pytest.raises(ValueError, match="takes z from the audio: the batch needs 'audio'"):
        model({"f0_hz": batch["f0_hz"], "loudness_db": batch["loudness_db"]}, key=key)


@pytest.mark.slow
def test_an_autoencoder_with_z_trains_on_procedural_notes(tmp_path):
    config = z_config(steps=40, checkpoint_every=40)
    before, after, trainer = train_and_score(
        config, tmp_path / "run", notes(8, seed=0), notes(4, seed=1)
    )
    assert after < 0.8 * before
    encoder_params = nnx.state(trainer.model().encoder, nnx.Param)
    assert all(np.all(np.isfinite(leaf)) for leaf in jax.tree.leaves(encoder_params))


@pytest.fixture(scope="module")
def z_model(tmp_path_factory) -> tuple[SavedModel, Path]:
    folder = tmp_path_factory.mktemp("z") / "model"
    model = Autoencoder(z_config().model, rngs=nnx.Rngs(1))
    saved = SavedModel(model, 250, None, 0, folder)
    save_model(saved, folder)
    return saved, folder


def test_synthesis_with_z_streams_as_the_one_pass_render(z_model):
    saved, _ = z_model
    data = notes(1, seed=3)
    audio = np.tile(data["audio"][0], 3)
    f0, loudness = (np.tile(data[k][0], 3) for k in ("f0_hz", "loudness_db"))
    z = encode_z(saved, audio, len(f0))
    assert z.shape == (75, 4)
    streamed = synthesize(saved, f0, loudness, z=z)
    from ddsp_jax.inference import model_for_length

    model = model_for_length(saved, len(audio))
    whole = render(model, f0[None], loudness[None], jnp.asarray(z)[None])[0]
    np.testing.assert_allclose(streamed, whole, atol=1e-5)
    held = timbre_z(saved, data["audio"][0], 10)
    np.testing.assert_allclose(held, np.broadcast_to(held[0], (10, 4)))
    with pytest.raises(ValueError, match="this model has an encoder"):
        synthesize(saved, f0, loudness)


@pytest.mark.slow
def test_resynth_and_transfer_take_z_from_the_input_or_the_timbre_file(z_model, tmp_path, capsys):
    _, folder = z_model
    t = np.arange(8000) / 16000
    melody = (0.3 * np.sin(2 * np.pi * 330 * t) * np.minimum(1, 20 * t)).astype(np.float32)
    timbre = (0.2 * np.sign(np.sin(2 * np.pi * 200 * t))).astype(np.float32)  # A square wave.
    sf.write(tmp_path / "in.wav", melody, 16000)
    sf.write(tmp_path / "timbre.wav", timbre, 16000)
    base = [str(folder), str(tmp_path / "in.wav")]
    assert main(["resynth", *base, str(tmp_path / "own.wav"), "--f0-model", "tiny"]) == 0
    args = ["--f0-model", "tiny", "--timbre", str(tmp_path / "timbre.wav")]
    assert main(["resynth", *base, str(tmp_path / "timbre_out.wav"), *args]) == 0
    shifts = ["--pitch-shift", "0", "--loudness-shift", "0"]  # The model has no statistics.
    assert main(["transfer", *base, str(tmp_path / "transfer.wav"), *args, *shifts]) == 0
    own, timbred = (sf.read(tmp_path / name)[0] for name in ("own.wav", "timbre_out.wav"))
    assert len(own) == len(timbred) == 8000 and np.all(np.isfinite(timbred))
    assert np.max(np.abs(own - timbred)) > 1e-4  # Another z, another sound.
    capsys.readouterr()
    bad = [*base, str(tmp_path / "x.wav"), "--timbre", str(tmp_path / "none.wav")]
    assert main(["resynth", *bad]) == 1
    assert "--timbre " in capsys.readouterr().err


def test_live_and_exports_refuse_a_model_with_a_z_encoder(z_model, tmp_path, capsys):
    from ddsp_jax.streaming import TransferStream

    saved, folder = z_model
    with pytest.raises(ValueError, match="live transfer needs a model conditioned on f0"):
        TransferStream(saved, 320)
    assert main(["export", str(folder), "--format", "stablehlo", "--out", str(tmp_path / "s")]) == 1
    assert "a StableHLO export needs a model conditioned on f0" in capsys.readouterr().err


def test_timbre_needs_a_model_with_an_encoder(tmp_path, capsys):
    model = Autoencoder(tiny_config().model, rngs=nnx.Rngs(0))
    folder = save_model(SavedModel(model, 250, None, 0, tmp_path), tmp_path / "model")
    sf.write(tmp_path / "in.wav", np.zeros(1600, np.float32) + 0.1, 16000)
    args = ["resynth", str(folder), str(tmp_path / "in.wav"), str(tmp_path / "o.wav")]
    assert main([*args, "--timbre", str(tmp_path / "in.wav"), "--f0-model", "tiny"]) == 1
    assert "a timbre takes a model with a z encoder" in capsys.readouterr().err
