"""Fine-tuning: a run that starts from another model's parameters, and frozen parts."""

import dataclasses
import json

import jax
import numpy as np
import pytest
from flax import nnx
from test_training import notes

from crepe import needs_weights
from ddsp_jax.cli import main
from ddsp_jax.models.saved import SavedModel, save_model
from ddsp_jax.training import Trainer
from ddsp_jax.training.config import InitConfig, model_config
from ddsp_jax.training.examples import ExampleSource
from ddsp_jax.training.finetune import parameter_path
from tiny import tiny_config


def leaves(state) -> dict[str, np.ndarray]:
    flat = jax.tree.flatten_with_path(state)[0]
    return {parameter_path(path): np.asarray(leaf) for path, leaf in flat}


@pytest.fixture(scope="module")
def source_model(tmp_path_factory):
    """A tiny model trained 30 steps on some notes, saved as a model folder."""
    folder = tmp_path_factory.mktemp("source")
    config = tiny_config(steps=30, checkpoint_every=30)
    trainer = Trainer(config, folder / "run")
    trainer.start(resume=False)
    trainer.fit(ExampleSource(notes(4, seed=0), 2, 0), progress=False)
    saved = SavedModel(trainer.model(), config.frame_rate, None, trainer.step, folder / "run")
    return save_model(saved, folder / "model"), trainer


@pytest.mark.slow
def test_fine_tuning_starts_from_the_source_models_loss_and_goes_down(source_model, tmp_path):
    folder, source = source_model
    other = notes(4, seed=1)
    config = tiny_config(steps=10, init=InitConfig(from_model=str(folder)))
    tuned = Trainer(config, tmp_path / "tuned")
    fresh = Trainer(tiny_config(steps=10), tmp_path / "fresh")
    start = tuned.evaluate(other)
    assert start == pytest.approx(source.evaluate(other), rel=1e-6)
    assert abs(start - fresh.evaluate(other)) > 0.1 * start
    for name, value in leaves(source.params).items():
        np.testing.assert_array_equal(leaves(tuned.params)[name], value)
    tuned.start(resume=False)
    tuned.fit(ExampleSource(other, 2, 0), progress=False)
    assert tuned.evaluate(other) < start


def test_init_keys_take_only_the_named_parts(source_model, tmp_path):
    folder, source = source_model
    config = tiny_config(init=InitConfig(from_model=str(folder), keys=("decoder.rnn",)))
    tuned = leaves(Trainer(config, tmp_path / "run").params)
    fresh = leaves(Trainer(tiny_config(), tmp_path / "fresh").params)
    trained = leaves(source.params)
    for name, value in tuned.items():
        expected = trained[name] if name.startswith("decoder.rnn.") else fresh[name]
        np.testing.assert_array_equal(value, expected, err_msg=name)


def test_frozen_parts_do_not_change_and_the_rest_trains(tmp_path):
    config = tiny_config(steps=4, init=InitConfig(freeze=("decoder.rnn", "processor_graph")))
    trainer = Trainer(config, tmp_path / "run")
    before = leaves(trainer.params)
    trainer.start(resume=False)
    trainer.fit(ExampleSource(notes(4), 2, 0), progress=False)
    after = leaves(trainer.params)
    frozen = [n for n in before if n.startswith(("decoder.rnn.", "processor_graph."))]
    assert frozen and len(frozen) < len(before)
    for name in before:
        changed = not np.array_equal(before[name], after[name])
        assert changed != (name in frozen), name


def test_parts_and_shapes_that_do_not_fit_are_refused_naming_them(source_model, tmp_path):
    folder, _ = source_model
    with pytest.raises(ValueError, match=r"--init-keys 'decoder\.gru' names no part of the"):
        Trainer(tiny_config(init=InitConfig(str(folder), keys=("decoder.gru",))), tmp_path / "a")
    with pytest.raises(ValueError, match="--freeze 'encoder' names no part"):
        Trainer(tiny_config(init=InitConfig(freeze=("encoder",))), tmp_path / "b")
    wider = tiny_config(model=model_config(12, "ir", 200, 16, 1, 16, 1600))
    wider = dataclasses.replace(wider, init=InitConfig(from_model=str(folder)))
    message = r"decoder\.heads\.harmonic_distribution\.bias is \(8,\) in \S+ and \(12,\)"
    with pytest.raises(ValueError, match=message):
        Trainer(wider, tmp_path / "c")
    missing = tiny_config(init=InitConfig(from_model=str(tmp_path / "none")))
    with pytest.raises(ValueError, match=r"--init-from: .*none: no such model folder"):
        Trainer(missing, tmp_path / "d")


@pytest.mark.slow
def test_ddsp_train_fine_tunes_from_a_model_folder(source_model, tmp_path, capsys):
    folder, _ = source_model
    config = tmp_path / "tiny.json"
    tiny = dataclasses.replace(tiny_config(steps=3, checkpoint_every=3), init=InitConfig())
    from ddsp_jax.serialization import to_dict

    config.write_text(json.dumps(to_dict(tiny)))
    np.savez(tmp_path / "other.npz", **notes(6, seed=2))
    args = ["train", "--config", str(config), "--data", str(tmp_path / "other.npz")]
    run = tmp_path / "run"
    code = main([*args, "--out", str(run), "--init-from", str(folder), "--freeze", "decoder.rnn"])
    assert code == 0, capsys.readouterr().err
    saved = json.loads((run / "config.json").read_text())["init"]
    assert saved == {"from_model": str(folder), "keys": [], "freeze": ["decoder.rnn"]}
    code = main(
        [*args, "--out", str(tmp_path / "bad"), "--init-from", str(folder), "--init-keys", "nope"]
    )
    assert code == 1
    assert (
        "ddsp train: error: --init-keys 'nope' names no part of the model"
        in capsys.readouterr().err
    )


@pytest.mark.slow
@needs_weights
def test_the_crepe_embedding_loss_is_chosen_in_the_loss_config(tmp_path):
    plain = tiny_config(steps=2, checkpoint_every=2)
    loss = dataclasses.replace(plain.loss, crepe_embedding_weight=1.0)
    with_crepe = dataclasses.replace(plain, loss=loss)
    data = notes(2)
    spectral = Trainer(plain, tmp_path / "a").evaluate(data)
    trainer = Trainer(with_crepe, tmp_path / "b")
    assert trainer.evaluate(data) > spectral  # The same model, one more term.
    trainer.start(resume=False)
    history = trainer.fit(ExampleSource(data, 2, 0), progress=False)
    assert all(np.isfinite(h["loss"]) for h in history)
    at_22k = model_config(8, "ir", 200, 16, 1, 16, 2205, 22050)
    with pytest.raises(ValueError, match="compares 16 kHz audio; this model is 22050 Hz"):
        dataclasses.replace(with_crepe, model=at_22k, frame_rate=250)


@pytest.mark.slow
def test_a_run_with_frozen_parts_exports_from_its_checkpoint(tmp_path):
    from ddsp_jax.training.export import model_of_run

    config = tiny_config(steps=2, checkpoint_every=2, init=InitConfig(freeze=("decoder.rnn",)))
    trainer = Trainer(config, tmp_path / "run")
    trainer.start(resume=False)
    trainer.fit(ExampleSource(notes(4), 2, 0), progress=False)
    trainer.close()
    saved = model_of_run(tmp_path / "run")
    assert saved.step == 2
    for name, value in leaves(trainer.params).items():
        np.testing.assert_array_equal(leaves(nnx.state(saved.model, nnx.Param))[name], value)
