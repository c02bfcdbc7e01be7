import dataclasses

import jax
import numpy as np
import pytest

from ddsp_jax.training import program_cache
from ddsp_jax.training.config import LossConfig, OptimizerConfig
from ddsp_jax.training.trainer import Trainer
from tiny import tiny_config


@pytest.fixture
def cache_dir(tmp_path):
    program_cache.enable(tmp_path / "programs")
    yield tmp_path / "programs"
    program_cache.enable(None)


def two_steps(config, run_dir) -> tuple[list[float], list[np.ndarray], int]:
    """Losses and final parameters of two train steps on fixed notes, and the number of
    programs the train step compiled."""
    trainer = Trainer(config, run_dir)
    rng = np.random.default_rng(0)
    n_samples, n_frames = config.model.synth.n_samples, config.n_frames
    batch = {
        "audio": rng.normal(size=(config.batch_size, n_samples)).astype(np.float32) * 0.1,
        "f0_hz": rng.uniform(100, 400, (config.batch_size, n_frames)).astype(np.float32),
        "loudness_db": rng.uniform(-60, -10, (config.batch_size, n_frames)).astype(np.float32),
    }
    batch = jax.tree.map(jax.numpy.asarray, batch)
    params, opt_state, losses = trainer.params, trainer.opt_state, []
    for step in range(2):
        params, opt_state, out = trainer.run_step(params, opt_state, batch, step)
        losses.append(float(out["loss"]))
    final = [np.asarray(p) for p in jax.tree.leaves(params)]
    return losses, final, trainer.train_step._cache_size()


@pytest.mark.slow
def test_a_stored_train_step_gives_the_traced_one_s_results(tmp_path, cache_dir, monkeypatch):
    config = tiny_config()
    program_cache.enable(None)
    expected_losses, expected_params, _ = two_steps(config, tmp_path / "plain")
    program_cache.enable(cache_dir)

    losses, params, programs = two_steps(config, tmp_path / "first")  # Traces and stores.
    entries = list(cache_dir.iterdir())
    assert len(entries) == 1 and programs == 1
    with monkeypatch.context() as patch:  # A warm run must not trace the train step.
        patch.setattr(jax.export, "export", lambda *a, **k: pytest.fail("traced again"))
        warm_losses, warm_params, warm_programs = two_steps(config, tmp_path / "second")
    assert warm_programs == 1  # The second step reuses the first step's program.
    for run_losses, run_params in ((losses, params), (warm_losses, warm_params)):
        assert run_losses == expected_losses
        for ours, theirs in zip(run_params, expected_params, strict=True):
            np.testing.assert_array_equal(ours, theirs)

    # The learning rate is an argument: another schedule or length shares the program.
    slower = dataclasses.replace(config, optimizer=OptimizerConfig(learning_rate=1e-4), steps=7)
    assert two_steps(slower, tmp_path / "slower")[0][1] != expected_losses[1]
    assert len(list(cache_dir.iterdir())) == 1
    # Other settings are another program; a damaged entry is traced again and replaced.
    other = dataclasses.replace(config, loss=LossConfig(fft_sizes=(256, 128)))
    assert two_steps(other, tmp_path / "other")[0] != expected_losses
    assert len(list(cache_dir.iterdir())) == 2
    entries[0].write_bytes(b"not a program")
    assert two_steps(config, tmp_path / "damaged")[0] == expected_losses
    assert entries[0].stat().st_size > 1000


def test_outputs_that_differ_from_the_declared_structure_are_an_error(cache_dir):
    double = program_cache.cached_jit(
        lambda x: (x, 2 * x), name="double", settings="", output_like=lambda x: x
    )
    with pytest.raises(TypeError, match="double's outputs"):
        double(jax.numpy.ones(3))


@pytest.mark.slow
def test_a_program_that_cannot_be_stored_is_traced_with_a_warning(tmp_path, cache_dir, monkeypatch):
    def refuse(*args, **kwargs):
        raise ValueError("cannot export a host callback")

    config = tiny_config()
    program_cache.enable(None)
    expected = two_steps(config, tmp_path / "plain")
    program_cache.enable(cache_dir)
    monkeypatch.setattr(jax.export, "export", refuse)
    with pytest.warns(UserWarning, match="traced on every run.*host callback"):
        losses, params, programs = two_steps(config, tmp_path / "refused")
    assert losses == expected[0] and programs == 1
    for ours, theirs in zip(params, expected[1], strict=True):
        np.testing.assert_array_equal(ours, theirs)
    assert not cache_dir.exists()


def test_the_key_follows_the_settings_that_change_a_trace():
    leaves = [np.zeros((2, 3), np.float32), np.int32(0)]
    tree = jax.tree.structure((leaves[0], leaves[1]))
    key = program_cache._key("step", "config", leaves, tree)
    assert program_cache._key("step", "config", leaves, tree) == key
    assert program_cache._key("step", "other config", leaves, tree) != key
    assert program_cache._key("step", "config", [leaves[0].astype(np.float16)], tree) != key
    with jax.default_matmul_precision("highest"):  # Changes the traced program's dots.
        assert program_cache._key("step", "config", leaves, tree) != key
