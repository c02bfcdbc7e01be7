"""Instruments that come with the package: found by name, listed, reproducible."""

import json
from pathlib import Path

import jax
import numpy as np
import pytest
from flax import nnx

from ddsp_jax import instruments
from ddsp_jax.cli import build_parser
from ddsp_jax.cli import main as ddsp
from ddsp_jax.features import compute_features
from ddsp_jax.features.notes import NOTE_MIN_LOUDNESS_DB
from ddsp_jax.inference import resynthesize
from ddsp_jax.instruments import INFO_FILE, INSTRUMENTS, bundled_instruments, make
from ddsp_jax.models import Autoencoder, SavedModel, load_model, save_model
from ddsp_jax.training.config import model_config


def tiny_model() -> SavedModel:
    model = Autoencoder(model_config(8, "ir", 700, 16, 1, 16, 6400), rngs=nnx.Rngs(3))
    return SavedModel(model, 250, None, 7, Path("."))


@pytest.fixture
def shipped(tmp_path, monkeypatch) -> Path:
    """A package whose instruments folder holds a (tiny, untrained) trumpet."""
    folder = save_model(tiny_model(), tmp_path / "trumpet")
    info = {
        "name": "trumpet",
        "instrument": "trumpet",
        "pitch_range_midi": [54, 84],
        "training_data": "30 phrases",
        "licence": instruments.SOUNDFONT_LICENCE,
        "steps": 7,
        "held_out": {"f0_l1_cents": 12.5, "loudness_l1_db": 2.5, "raw_pitch_accuracy": 0.97},
        "transfer": {"within_50_cents": 0.95},
    }
    (folder / INFO_FILE).write_text(json.dumps(info))
    monkeypatch.setattr(instruments.resources, "files", lambda package: tmp_path)
    return folder


def test_a_shipped_instrument_loads_by_name_and_a_folder_of_that_name_comes_first(
    shipped, tmp_path, monkeypatch
):
    assert load_model("trumpet").path == shipped
    assert load_model("trumpet").step == 7
    monkeypatch.chdir(tmp_path / "trumpet")
    (Path("trumpet")).mkdir()  # ./trumpet exists and is not a model: it is what is meant.
    with pytest.raises(ValueError, match="not a complete model folder"):
        load_model("trumpet")
    assert instruments.bundled_instrument("violin") is None  # Not shipped here.


def test_ddsp_models_lists_what_is_shipped(shipped, capsys, monkeypatch):
    assert ddsp(["models"]) == 0
    out = capsys.readouterr().out
    assert "trumpet: trumpet, MIDI 54-84, 7 steps" in out
    assert "f0 L1 12.5 cents" in out and "97.0 %" in out and "Frank Wen" in out
    monkeypatch.setattr(instruments, "INSTRUMENTS", {})
    assert ddsp(["models"]) == 0
    assert "No instruments come with this copy" in capsys.readouterr().out


def test_float16_parameters_load_as_float32_at_half_the_size(tmp_path):
    saved = tiny_model()
    full = save_model(saved, tmp_path / "full")
    half = save_model(saved, tmp_path / "half", float16=True)
    size = (half / "params.msgpack").stat().st_size
    assert size < 0.6 * (full / "params.msgpack").stat().st_size
    loaded = nnx.to_pure_dict(nnx.state(load_model(half).model, nnx.Param))
    original = nnx.to_pure_dict(nnx.state(saved.model, nnx.Param))
    for ours, theirs in zip(jax.tree.leaves(loaded), jax.tree.leaves(original), strict=True):
        assert ours.dtype == np.float32
        np.testing.assert_array_equal(ours, np.asarray(theirs).astype(np.float16))


@pytest.mark.parametrize("name", sorted(INSTRUMENTS))
def test_the_recipe_of_each_instrument_parses(name, tmp_path, capsys):
    assert make.main([name, "--dry-run", "--work", str(tmp_path)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 7 and all(line.startswith("ddsp ") for line in lines)
    assert f"--programs {INSTRUMENTS[name].program}" in lines[0]
    assert "--minutes 60" in lines[4] and "--eval-fraction 1" in lines[3]
    parser = build_parser()
    commands = make.recipe(INSTRUMENTS[name], tmp_path, ("--minutes", "60"))
    for command in commands:
        assert parser.parse_args(command).handler is not None
    # A rerun skips what is done: here the training phrases were rendered.
    assert [make.made(command) for command in commands] == [None] * 7
    (tmp_path / "phrases").mkdir()
    (tmp_path / "phrases" / "phrases.json").write_text("{}")
    assert make.made(commands[0]) == tmp_path / "phrases" / "phrases.json"
    assert make.made(commands[1]) is None


def test_the_recipe_trains_for_a_number_of_steps_instead_of_minutes(tmp_path, capsys):
    assert make.main(["flute", "--dry-run", "--work", str(tmp_path), "--steps", "6000"]) == 0
    train = capsys.readouterr().out.splitlines()[4]
    assert "--steps 6000 --set optimizer.learning_rate=0.001 --set seed=1" in train
    assert "--minutes" not in train


@pytest.mark.parametrize("name", [instrument.name for instrument, _, _ in bundled_instruments()])
def test_a_shipped_instrument_plays_a_tone_at_its_pitch_and_loudness(name):
    saved = load_model(name)
    low, high = INSTRUMENTS[name].pitches
    f0_hz = 440.0 * 2 ** (((low + high) // 2 - 69) / 12)
    sample_rate = 16000
    t = np.arange(2 * sample_rate) / sample_rate
    envelope = np.minimum(1.0, t / 0.5) * np.linspace(1.0, 0.3, len(t))  # Swell, then fade.
    tone = (0.3 * envelope * np.sin(2 * np.pi * f0_hz * t)).astype(np.float32)
    out, _ = resynthesize(saved, tone, sample_rate, f0_model="tiny")
    heard = compute_features(out[None], sample_rate, saved.frame_rate, "tiny")
    given = compute_features(tone[None], sample_rate, saved.frame_rate, None)
    # The tone sounds wherever it is loud enough; CREPE's confidence on a pure sine below
    # ~260 Hz (under 0.8) is no guide to that.
    notes = given["loudness_db"][0] > NOTE_MIN_LOUDNESS_DB
    pitched = notes & (heard["f0_confidence"][0] >= 0.5)
    cents = 1200 * np.log2(heard["f0_hz"][0][pitched] / f0_hz)
    assert pitched.sum() > 0.5 * notes.sum() and abs(np.median(cents)) <= 20.0
    error = heard["loudness_db"][0][notes] - given["loudness_db"][0][notes]
    assert np.median(np.abs(error)) <= 3.0  # The output follows the swell and the fade.


@pytest.mark.parametrize("name", [instrument.name for instrument, _, _ in bundled_instruments()])
def test_a_shipped_instrument_records_the_commands_its_recipe_gives(name):
    """``python -m ddsp_jax.instruments.make NAME`` with the recorded length reproduces it."""
    info = json.loads((instruments.bundled_instrument(name) / INFO_FILE).read_text())
    train = info["commands"][4].split()
    option = "--minutes" if "--minutes" in train else "--steps"
    length = (option, train[train.index(option) + 1])
    commands = make.recipe(INSTRUMENTS[name], Path("instruments") / name, length)
    assert info["commands"] == [" ".join(["ddsp", *command]) for command in commands]
    assert info["steps"] == load_model(name).step
