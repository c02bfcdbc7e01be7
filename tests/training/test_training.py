import dataclasses
import json
import os
import signal
import subprocess
import sys
import time

import jax
import numpy as np
import optax
import pytest
from flax import nnx

from ddsp_jax.cli import main
from ddsp_jax.data.procedural import render_notes
from ddsp_jax.serialization import to_dict
from ddsp_jax.training import PRESETS, Trainer, TrainingError, read_metrics, restore_model
from ddsp_jax.training.config import DataConfig, LossConfig, OptimizerConfig, load, override
from ddsp_jax.training.examples import ExampleSource, load_npz, split
from ddsp_jax.training.metrics import METRICS_FILE, TENSORBOARD_DIR, MetricsLog
from tiny import tiny_config


def notes(n: int, seed: int = 0, seconds: float = 0.1) -> dict[str, np.ndarray]:
    data = render_notes(n, seed, seconds=seconds, n_harmonics=8, room=False)
    return {k: data[k] for k in ("audio", "f0_hz", "loudness_db")}


def params_of(trainer: Trainer) -> list[np.ndarray]:
    return [np.asarray(leaf) for leaf in jax.tree.leaves(trainer.params)]


def tensorboard_scalars(run_dir) -> dict[str, dict[int, float]]:
    """``{tag: {step: value}}`` as TensorBoard shows a run: a later event of a step replaces an
    earlier one, and a session restart at step S (``purge_step``) hides the events at or after
    S written before it."""
    from tensorboardX.proto import event_pb2

    scalars: dict[str, dict[int, float]] = {}
    for path in sorted((run_dir / TENSORBOARD_DIR).glob("events.out.tfevents.*")):
        data, offset = path.read_bytes(), 0
        while offset + 12 <= len(data):  # TFRecord framing: length, CRC, data, CRC.
            length = int.from_bytes(data[offset : offset + 8], "little")
            event = event_pb2.Event.FromString(data[offset + 12 : offset + 12 + length])
            offset += 16 + length
            if event.HasField("session_log") and event.session_log.status == 1:  # START
                for values in scalars.values():
                    for step in [s for s in values if s >= event.step]:
                        del values[step]
            for value in event.summary.value:
                scalars.setdefault(value.tag, {})[event.step] = value.simple_value
    return scalars


def tensorboard_summaries(run_dir) -> tuple[dict, set[int]]:
    """The audio ``{(step, tag): (sample rate, samples)}`` and the steps with an image in a
    run's TensorBoard events."""
    from tensorboardX.proto import event_pb2

    audio, images = {}, set()
    for path in sorted((run_dir / TENSORBOARD_DIR).glob("events.out.tfevents.*")):
        data, offset = path.read_bytes(), 0
        while offset + 12 <= len(data):
            length = int.from_bytes(data[offset : offset + 8], "little")
            event = event_pb2.Event.FromString(data[offset + 12 : offset + 12 + length])
            offset += 16 + length
            for value in event.summary.value:
                if value.HasField("audio"):
                    key = (event.step, value.tag)
                    audio[key] = (value.audio.sample_rate, value.audio.length_frames)
                if value.HasField("image"):
                    images.add(event.step)
    return audio, images


def uninterrupted(config, examples, run_dir) -> tuple[Trainer, list[float]]:
    """A run of ``config.steps`` in one go over ``examples`` (batch 2, seed 0); its losses."""
    trainer = Trainer(config, run_dir)
    trainer.start(resume=False)
    history = trainer.fit(ExampleSource(examples, 2, 0), progress=False)
    return trainer, [h["loss"] for h in history]


def test_tiny_model_overfits_one_note(tmp_path):
    config = tiny_config(steps=40, batch_size=1, checkpoint_every=40)
    config = dataclasses.replace(
        config, optimizer=dataclasses.replace(config.optimizer, learning_rate=1e-2)
    )
    trainer = Trainer(config, tmp_path / "run")
    trainer.start(resume=False)
    note = notes(1)
    history = trainer.fit(ExampleSource(note, 1, 0), progress=False)
    first, last = history[0]["loss"], np.mean([h["loss"] for h in history[-5:]])
    assert last < 0.5 * first, (first, last)


@pytest.mark.slow
def test_exact_resume_and_checkpoint_round_trip(tmp_path):
    config = tiny_config(steps=8, checkpoint_every=4)
    examples = notes(6)

    straight, losses_straight = uninterrupted(config, examples, tmp_path / "straight")

    interrupted = Trainer(config, tmp_path / "resumed")
    interrupted.start(resume=False)
    source = ExampleSource(examples, 2, 0)
    first_half = interrupted.fit(source, until_step=4, progress=False)
    saved_params = params_of(interrupted)
    interrupted.close()
    del interrupted  # The process "dies" after its step-4 checkpoint.

    resumed = Trainer(config, tmp_path / "resumed")
    resumed.start(resume=True)
    fresh_source = ExampleSource(examples, 2, 0)
    assert resumed.restore(fresh_source) == 4
    for restored, saved in zip(params_of(resumed), saved_params, strict=True):
        np.testing.assert_array_equal(restored, saved)  # Checkpoint round trip.
    assert fresh_source.state() == source.state()
    second_half = resumed.fit(fresh_source, progress=False)
    losses_resumed = [h["loss"] for h in first_half + second_half]
    # Same compiled step, same inputs (data order and noise keys depend on seed and step):
    # the losses match bit for bit.
    assert losses_resumed == losses_straight
    for a, b in zip(params_of(resumed), params_of(straight), strict=True):
        np.testing.assert_array_equal(a, b)
    assert [m["step"] for m in read_metrics(tmp_path / "resumed")] == list(range(1, 9))
    assert resumed.checkpoints.all_steps() == [4, 8]
    tensorboard_losses = tensorboard_scalars(tmp_path / "resumed")["loss"]
    assert list(tensorboard_losses) == list(range(1, 9))
    np.testing.assert_allclose(list(tensorboard_losses.values()), losses_straight, rtol=1e-6)


class SignalOnBatch:
    """An ``ExampleSource`` that sends this process ``signum`` as it hands out batch ``at``."""

    def __init__(self, source: ExampleSource, at: int, signum: int) -> None:
        self.source, self.at, self.signum, self.count = source, at, signum, 0

    def next_batch(self) -> dict[str, np.ndarray]:
        self.count += 1
        if self.count == self.at:
            os.kill(os.getpid(), self.signum)
        return self.source.next_batch()

    def state(self) -> dict:
        return self.source.state()

    def restore(self, state: dict) -> None:
        self.source.restore(state)


@pytest.mark.slow
def test_ctrl_c_stops_after_the_step_in_flight_and_checkpoints_it(tmp_path):
    signum = signal.SIGINT  # SIGTERM, the same path, is sent to a real process in test_demo.
    config = tiny_config(steps=6, checkpoint_every=100)
    examples = notes(6)
    _, losses_straight = uninterrupted(config, examples, tmp_path / "straight")

    stopped = Trainer(config, tmp_path / "stopped")
    stopped.start(resume=False)
    handler_before = signal.getsignal(signum)
    first_part = stopped.fit(
        SignalOnBatch(ExampleSource(examples, 2, 0), 3, signum), progress=False
    )
    assert stopped.stopped_by == signum
    assert stopped.step == 3 and len(first_part) == 3  # The step in flight completes.
    assert stopped.checkpoints.all_steps() == [3]  # Saved although checkpoint_every is 100.
    assert signal.getsignal(signum) is handler_before
    stopped.close()

    resumed = Trainer(config, tmp_path / "stopped")
    resumed.start(resume=True)
    source = ExampleSource(examples, 2, 0)
    assert resumed.restore(source) == 3
    rest = resumed.fit(SignalOnBatch(source, 3, signum), progress=False)  # During step 6 of 6:
    assert resumed.stopped_by is None and resumed.step == 6  # the run is complete, not stopped.
    assert [h["loss"] for h in first_part + rest] == losses_straight  # Nothing lost.


def test_metrics_of_a_killed_run_are_replaced_on_resume(tmp_path):
    with MetricsLog(tmp_path, step=0) as log:
        for step in range(1, 7):  # Killed after step 6; its last checkpoint was step 4.
            log.write({"step": step, "loss": float(step), "nonfinite": False})
    with MetricsLog(tmp_path, step=4) as log:
        for step in range(5, 9):
            log.write({"step": step, "loss": 10.0 * step})
    expected = {1: 1.0, 2: 2.0, 3: 3.0, 4: 4.0, 5: 50.0, 6: 60.0, 7: 70.0, 8: 80.0}
    assert {m["step"]: m["loss"] for m in read_metrics(tmp_path)} == expected
    scalars = tensorboard_scalars(tmp_path)
    assert scalars["loss"] == expected
    assert "nonfinite" not in scalars  # Flags are not plotted.


def test_no_recompilation_after_the_first_step(tmp_path):
    trainer = Trainer(tiny_config(steps=4, checkpoint_every=100), tmp_path)
    trainer.start(resume=False)
    trainer.fit(ExampleSource(notes(4), 2, 0), progress=False)
    assert trainer.train_step._cache_size() == 1


def test_nonfinite_step_is_skipped_then_the_run_stops(tmp_path):
    config = tiny_config(steps=6, checkpoint_every=2, max_nonfinite_steps=3)
    trainer = Trainer(config, tmp_path)
    trainer.start(resume=False)
    good = notes(2)
    trainer.fit(ExampleSource(good, 2, 0), until_step=2, progress=False)
    before = params_of(trainer)
    bad = {k: v.copy() for k, v in good.items()}
    bad["audio"][0, 10] = np.nan
    with pytest.raises(TrainingError, match=r"3 non-finite steps.*Last good checkpoint: step 2"):
        trainer.fit(ExampleSource(bad, 2, 0), progress=False)
    for a, b in zip(params_of(trainer), before, strict=True):
        np.testing.assert_array_equal(a, b)  # Skipped steps change nothing.
    assert trainer.step == 2
    logged = read_metrics(tmp_path)
    assert [m.get("nonfinite", False) for m in logged] == [False, False, True, True, True]
    assert trainer.checkpoints.latest_step() == 2


def test_run_folder_is_not_overwritten(tmp_path):
    (tmp_path / "old.txt").write_text("keep me")
    with pytest.raises(TrainingError, match="--resume"):
        Trainer(tiny_config(), tmp_path).start(resume=False)
    assert (tmp_path / "old.txt").read_text() == "keep me"
    with pytest.raises(TrainingError, match="does not exist"):
        Trainer(tiny_config(), tmp_path / "missing").start(resume=True)


def test_resume_refuses_a_different_config(tmp_path):
    Trainer(tiny_config(), tmp_path).start(resume=False)
    with pytest.raises(TrainingError, match="batch_size"):
        Trainer(tiny_config(batch_size=3), tmp_path).start(resume=True)
    Trainer(tiny_config(steps=99), tmp_path).start(resume=True)  # More steps are fine.
    assert json.loads((tmp_path / "config.json").read_text())["steps"] == 99


def test_a_run_saved_before_a_setting_existed_resumes_with_its_default(tmp_path):
    Trainer(tiny_config(), tmp_path).start(resume=False)
    saved = json.loads((tmp_path / "config.json").read_text())
    del saved["optimizer"]["warmup_steps"]
    (tmp_path / "config.json").write_text(json.dumps(saved))
    Trainer(tiny_config(), tmp_path).start(resume=True)
    with pytest.raises(TrainingError, match=r"\['optimizer'\]"):
        warm = dataclasses.replace(tiny_config().optimizer, warmup_steps=10)
        Trainer(tiny_config(optimizer=warm), tmp_path).start(resume=True)


def test_learning_rate_follows_the_optax_schedule(tmp_path):
    config = PRESETS["quick"]
    trainer = Trainer(config, tmp_path)
    optimizer = config.optimizer
    schedule = optax.exponential_decay(
        optimizer.learning_rate, optimizer.decay_steps, optimizer.decay_rate
    )
    for step in (0, 1, 200, 400, 123456):
        trainer.step = step
        assert trainer.learning_rate() == pytest.approx(float(schedule(step)), rel=1e-6)
    warm = dataclasses.replace(config, optimizer=dataclasses.replace(optimizer, warmup_steps=100))
    trainer = Trainer(warm, tmp_path / "warm")
    warmup = optax.linear_schedule(optimizer.learning_rate / 100, optimizer.learning_rate, 99)
    for step in (0, 1, 50, 99, 100, 300):
        trainer.step = step
        expected = float(warmup(step)) * float(schedule(step)) / optimizer.learning_rate
        assert trainer.learning_rate() == pytest.approx(expected, rel=1e-6)


def test_example_source_is_deterministic_and_restorable():
    examples = {"x": np.arange(10)}
    source = ExampleSource(examples, 4, seed=3)
    batches = [source.next_batch()["x"].tolist() for _ in range(5)]
    assert sorted(batches[0] + batches[1] + batches[2][:2]) == list(range(10))  # One epoch.
    again = ExampleSource(examples, 4, seed=3)
    again.next_batch()
    state = again.state()
    restored = ExampleSource(examples, 4, seed=3)
    restored.restore(state)
    assert [restored.next_batch()["x"].tolist() for _ in range(4)] == batches[1:]


def test_config_files_and_overrides(tmp_path):
    path = tmp_path / "config.toml"
    path.write_text("steps = 7\n[optimizer]\nlearning_rate = 0.01\n[loss]\nfft_sizes = [512, 64]\n")
    config = load(path, base=PRESETS["quick"])
    assert (config.steps, config.optimizer.learning_rate, config.loss.fft_sizes) == (
        7,
        0.01,
        (512, 64),
    )
    assert config.model == PRESETS["quick"].model
    config = override(config, ["batch_size=3", "model.synth.reverb=none"])
    assert config.batch_size == 3 and config.model.synth.reverb == "none"
    assert load(_write_json(tmp_path, to_dict(config))) == config  # JSON round trip.
    with pytest.raises(ValueError, match="no setting 'momentum'"):
        override(config, ["optimizer.momentum=0.9"])
    with pytest.raises(ValueError, match=r"section\.name=value"):
        override(config, ["steps"])
    (tmp_path / "bad.toml").write_text("steps = [")
    with pytest.raises(ValueError, match=r"bad\.toml"):
        load(tmp_path / "bad.toml")
    with pytest.raises(ValueError, match="batch_size"):
        override(config, ["batch_size=0"])


def _write_json(tmp_path, data):
    path = tmp_path / "config.json"
    path.write_text(json.dumps(data))
    return path


def test_npz_validation_names_the_file_and_problem(tmp_path):
    examples = notes(4)
    good = tmp_path / "good.npz"
    np.savez(good, **examples)
    loaded = load_npz(good, 1600, 25)
    train, test = split(loaded, 0.25, seed=0)
    assert len(train["audio"]) == 3 and len(test["audio"]) == 1

    nan = {k: v.copy() for k, v in examples.items()}
    nan["f0_hz"][1, 3] = np.inf
    cases = {
        "nan.npz": (nan, "f0_hz has NaN or infinite values in 1 examples"),
        "keys.npz": ({"audio": examples["audio"]}, r"missing arrays \['f0_hz', 'loudness_db'\]"),
        "length.npz": ({**examples, "audio": examples["audio"][:, :1000]}, "audio has shape"),
    }
    for name, (arrays, message) in cases.items():
        np.savez(tmp_path / name, **arrays)
        with pytest.raises(ValueError, match=message) as error:
            load_npz(tmp_path / name, 1600, 25)
        assert name in str(error.value)
    (tmp_path / "text.npz").write_text("not a zip")
    with pytest.raises(ValueError, match=r"text\.npz: cannot read"):
        load_npz(tmp_path / "text.npz", 1600, 25)


@pytest.mark.slow
def test_held_out_evaluation_is_logged_every_n_steps(tmp_path):
    from ddsp_jax.training.evaluate import HeldOutEvaluation

    config = tiny_config(steps=4, eval_every=2)
    trainer = Trainer(config, tmp_path / "run")
    trainer.start(resume=False)
    held_out = notes(2, seed=1)
    history = trainer.fit(
        ExampleSource(notes(4), 2, 0),
        progress=False,
        evaluation=HeldOutEvaluation(config, held_out),
    )
    evaluated = [r["step"] for r in history if "eval_loss" in r]
    assert evaluated == [2, 4]
    last = history[-1]
    assert last["eval_loss"] == pytest.approx(trainer.evaluate(held_out), rel=1e-5)
    assert np.isfinite(last["eval_loudness_l1_db"]) and "eval_f0_l1_cents" not in last
    logged = read_metrics(tmp_path / "run")
    assert [r["step"] for r in logged if "eval_loss" in r] == [2, 4]
    with pytest.raises(ValueError, match="eval_f0_model"):
        tiny_config(eval_f0_model="large")
    # Each evaluation's summary: a figure in summaries/ and, in TensorBoard, the first two
    # examples' target and resynthesis as audio and the figure as an image.
    summaries = sorted(p.name for p in (tmp_path / "run" / "summaries").iterdir())
    assert summaries == ["step-000002.png", "step-000004.png"]
    assert (tmp_path / "run" / "summaries" / "step-000004.png").stat().st_size > 10_000
    audio, images = tensorboard_summaries(tmp_path / "run")
    assert sorted(audio) == [
        (step, f"example_{i}/{what}")
        for step in (2, 4)
        for i in (0, 1)
        for what in ("resynthesis", "target")
    ]
    assert images == {2, 4}
    rate, samples = audio[(4, "example_0/target")]
    assert rate == 16000 and samples == held_out["audio"].shape[1]


def test_held_out_evaluation_warns_once_when_the_model_has_lost_the_pitch(capsys):
    from types import SimpleNamespace

    from ddsp_jax.training.evaluate import EARLY_STEPS, HeldOutEvaluation

    config = tiny_config(eval_f0_model="tiny", eval_summaries=0)
    held_out = notes(2, seed=1, seconds=1.0)
    noise = np.random.default_rng(0).normal(0, 0.1, held_out["audio"].shape).astype(np.float32)
    plays = {"noise": noise, "the notes": held_out["audio"]}

    def trainer(step: int, playing: str) -> SimpleNamespace:
        audio = plays[playing]
        return SimpleNamespace(step=step, resynthesize=lambda examples: (audio, np.zeros(2)))

    evaluation = HeldOutEvaluation(config, held_out)
    assert evaluation(trainer(EARLY_STEPS, "the notes"))["eval_raw_pitch_accuracy"] > 0.9
    assert evaluation(trainer(EARLY_STEPS - 1, "noise"))["eval_raw_pitch_accuracy"] < 0.5
    assert capsys.readouterr().err == ""  # Early steps may still be finding the pitch.
    for step in (EARLY_STEPS, 2 * EARLY_STEPS):
        evaluation(trainer(step, "noise"))
    warning = capsys.readouterr().err.strip().splitlines()
    assert len(warning) == 1 and warning[0].startswith(f"warning: at step {EARLY_STEPS} ")
    assert "--set seed=1" in warning[0]


@pytest.mark.slow
def test_micro_batches_give_the_full_batch_update(tmp_path):
    """Gradients averaged over 2 micro-batches of 2 equal the gradient of the batch of 4:
    the loss is a mean over the batch. The noise synth is silenced (its initial bias puts it
    ~1e-7 of full scale) because each micro-batch draws its own noise, and the loss is on
    linear magnitudes only (the log of near-silent bins would still see that noise)."""
    base = tiny_config(batch_size=4, loss=LossConfig(fft_sizes=(256, 64), logmag_weight=0.0))
    synth = dataclasses.replace(base.model.synth, noise_initial_bias=-100.0)
    model = dataclasses.replace(base.model, synth=synth)
    batch = {
        key: jax.numpy.asarray(value[:4])
        for key, value in notes(4, seconds=0.1).items()
        if key in ("audio", "f0_hz", "loudness_db")
    }
    results = []
    for micro_batches in (1, 2):
        config = dataclasses.replace(base, model=model, micro_batches=micro_batches)
        trainer = Trainer(config, tmp_path / f"micro{micro_batches}")
        params, _, out = trainer.run_step(trainer.params, trainer.opt_state, batch, 0)
        results.append((float(out["loss"]), float(out["grad_norm"]), jax.tree.leaves(params)))
    (loss, grad_norm, params), (micro_loss, micro_grad_norm, micro_params) = results
    np.testing.assert_allclose(micro_loss, loss, rtol=1e-5)
    np.testing.assert_allclose(micro_grad_norm, grad_norm, rtol=1e-4)
    for ours, expected in zip(micro_params, params, strict=True):
        np.testing.assert_allclose(ours, expected, rtol=1e-4, atol=1e-6)
    with pytest.raises(ValueError, match="multiple of micro_batches"):
        dataclasses.replace(base, micro_batches=3)


@pytest.mark.slow
def test_resume_falls_back_from_a_damaged_latest_checkpoint(tmp_path, capsys):
    config = tiny_config(steps=8, checkpoint_every=4)
    examples = notes(6)
    _, losses_straight = uninterrupted(config, examples, tmp_path / "straight")
    uninterrupted(config, examples, tmp_path / "run")[0].close()
    latest = tmp_path / "run" / "checkpoints" / "8"
    biggest = max((p for p in latest.rglob("*") if p.is_file()), key=lambda p: p.stat().st_size)
    biggest.write_bytes(biggest.read_bytes()[: biggest.stat().st_size // 2])  # Truncated.
    unfinished = tmp_path / "run" / "checkpoints" / "12.orbax-checkpoint-tmp-1"
    unfinished.mkdir()  # What a write stopped by a full disk leaves.

    resumed = Trainer(config, tmp_path / "run")
    resumed.start(resume=True)
    source = ExampleSource(examples, 2, 0)
    assert resumed.restore(source) == 4
    warning = capsys.readouterr().err
    assert "warning: checkpoint step 8 cannot be read" in warning and "from step 4" in warning
    assert (tmp_path / "run" / "damaged-checkpoints" / "8").is_dir()
    assert not unfinished.exists()
    history = resumed.fit(source, progress=False)
    assert [h["loss"] for h in history] == losses_straight[4:]  # As if step 8 never was.
    assert resumed.checkpoints.all_steps() == [4, 8]
    assert [m["step"] for m in read_metrics(tmp_path / "run")] == list(range(1, 9))


def test_resume_of_a_run_stopped_before_its_first_checkpoint_starts_from_step_0(tmp_path, capsys):
    config = tiny_config(steps=8, checkpoint_every=4)
    first = Trainer(config, tmp_path / "run")
    first.start(resume=False)
    first.close()

    resumed = Trainer(config, tmp_path / "run")
    resumed.start(resume=True)
    assert resumed.restore(ExampleSource(notes(2), 2, 0)) == 0
    assert "has no checkpoint yet" in capsys.readouterr().err
    resumed.close()


@pytest.mark.parametrize(
    ("setting", "message"),
    [
        ("optimizer.learning_rate=fast", "optimizer.learning_rate: expected a number, got 'fast'"),
        ("optimizer.learning_rate=[1, 2]", "optimizer.learning_rate: expected a number"),
        ("optimizer.learning_rate=-1", "learning_rate must be a positive number, got -1.0"),
        ("optimizer.decay_steps=0", "decay_steps must be a positive integer"),
        ("steps=1.5", "steps: expected an integer, got 1.5"),
        ("batch_size=true", "batch_size: expected an integer, got True"),
        ("frame_rate=-250", "frame_rate must be a positive integer"),
        ("engine=torch", "engine: expected one of 'jax', 'datarax', got 'torch'"),
        ("tensorboard=maybe", "tensorboard: expected true or false, got 'maybe'"),
        ("loss.fft_sizes=[]", "fft_sizes must name at least one FFT size"),
        ("loss.fft_sizes=[512, -1]", "each of fft_sizes must be a positive integer, got -1"),
        ("loss.mag_weight=-1", "mag_weight must be a number >= 0"),
        ("data.test_fraction=1", "test_fraction must be in [0, 1)"),
        ("data.f0_model=medium", "f0_model must be tiny or full, got 'medium'"),
        ("data=3", "data: expected a table of DataConfig settings, got 3"),
        ("model.decoder.ch=0", "ch must be a positive integer"),
    ],
)
def test_a_bad_setting_is_refused_naming_its_key_and_value(setting, message):
    with pytest.raises(ValueError) as error:
        override(PRESETS["quick"], [setting])
    assert message in str(error.value)


def test_a_config_file_with_a_bad_value_names_the_file_and_the_key(tmp_path):
    path = tmp_path / "bad.toml"
    path.write_text('[optimizer]\nlearning_rate = "fast"\n')
    with pytest.raises(ValueError, match=r"bad\.toml: optimizer\.learning_rate: expected a number"):
        load(path)


def test_a_checkpoint_that_cannot_fit_stops_with_one_error_and_keeps_the_earlier_ones(
    tmp_path, monkeypatch
):
    from ddsp_jax.training import checkpoints as module

    state = {"w": np.arange(1000, dtype=np.float32)}
    store = module.Checkpoints(tmp_path / "checkpoints", keep=3)
    store.save(1, state, {"step": 1})
    usage = module.shutil.disk_usage(tmp_path)
    monkeypatch.setattr(module.shutil, "disk_usage", lambda path: usage._replace(free=1000))
    with pytest.raises(OSError, match=r"no room for the checkpoint of step 2: 1\.\d MB needed"):
        store.save(2, state, {"step": 2})
    monkeypatch.undo()

    def broken(*args, **kwargs):
        (tmp_path / "checkpoints" / "3.orbax-checkpoint-tmp-7").mkdir()
        raise ValueError("OUT_OF_RANGE: Failed writing\nmore detail")

    monkeypatch.setattr(store.manager, "save", broken)
    with pytest.raises(OSError, match=r"checkpoint of step 3 \(ValueError: OUT_OF_RANGE: Failed"):
        store.save(3, state, {"step": 3})
    monkeypatch.undo()
    assert store.all_steps() == [1]
    assert sorted(p.name for p in (tmp_path / "checkpoints").iterdir()) == ["1"]
    restored, _ = store.restore(1, state)
    np.testing.assert_array_equal(restored["w"], state["w"])
    store.close()


def test_a_checkpoint_beyond_the_file_size_limit_is_refused_before_writing(tmp_path):
    script = (
        "import resource, numpy as np\n"
        "resource.setrlimit(resource.RLIMIT_FSIZE, (100_000, resource.RLIM_INFINITY))\n"
        "from ddsp_jax.training.checkpoints import Checkpoints\n"
        f"store = Checkpoints({str(tmp_path / 'c')!r}, keep=1)\n"
        "try:\n"
        "    store.save(1, {'w': np.zeros(100_000, np.float32)}, {'step': 1})\n"
        "except OSError as error:\n"
        "    print(error)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True
    )
    assert "the file-size limit (ulimit -f: 100000 bytes) is below" in result.stdout


@pytest.mark.slow
def test_a_training_process_killed_with_sigkill_resumes_to_the_same_run(tmp_path):
    config = tiny_config(
        steps=10, checkpoint_every=2, data=DataConfig(n_train=4, n_test=2, example_seconds=0.1)
    )
    (tmp_path / "config.json").write_text(json.dumps(to_dict(config)))
    train = ["train", "--config", str(tmp_path / "config.json")]
    assert main([*train, "--out", str(tmp_path / "straight")]) == 0
    # SIGKILL at a step drawn at random (printed for a rerun): nothing gets to clean up.
    kill_after = int(np.random.default_rng().integers(2, 9))
    print(f"killing after step {kill_after}")
    code = f"from ddsp_jax.cli import main; main({[*train, '--out', str(tmp_path / 'killed')]!r})"
    process = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.DEVNULL)
    metrics = tmp_path / "killed" / METRICS_FILE
    deadline = time.monotonic() + 240
    while not (metrics.exists() and len(metrics.read_text().splitlines()) >= kill_after):
        assert process.poll() is None and time.monotonic() < deadline
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=30)
    assert main(["train", "--out", str(tmp_path / "killed"), "--resume"]) == 0
    losses = [
        {m["step"]: m["loss"] for m in read_metrics(tmp_path / run)}
        for run in ("straight", "killed")
    ]
    assert losses[0] == losses[1] and sorted(losses[1]) == list(range(1, 11))
    for straight, killed in zip(
        jax.tree.leaves(nnx.state(restore_model(tmp_path / "straight", config)[0], nnx.Param)),
        jax.tree.leaves(nnx.state(restore_model(tmp_path / "killed", config)[0], nnx.Param)),
        strict=True,
    ):
        np.testing.assert_array_equal(np.asarray(straight), np.asarray(killed))


class SleepOnBatch:
    """A batch source that sleeps until ``until`` (a ``time.monotonic()`` value) when asked
    for its ``n``-th batch."""

    def __init__(self, source: ExampleSource, n: int, until: float) -> None:
        self.source, self.n, self.until, self.count = source, n, until, 0

    def next_batch(self) -> dict[str, np.ndarray]:
        self.count += 1
        if self.count == self.n:
            time.sleep(max(0.0, self.until - time.monotonic()))
        return self.source.next_batch()

    def state(self) -> dict[str, int]:
        return self.source.state()


@pytest.mark.slow
def test_past_its_deadline_fit_starts_no_step_and_checkpoints_where_it_is(tmp_path):
    config = tiny_config(steps=50, checkpoint_every=100)
    trainer = Trainer(config, tmp_path / "run")
    trainer.start(resume=False)
    source = ExampleSource(notes(4), 2, 0)
    trainer.fit(source, until_step=1, progress=False)  # Compiled: later steps take ms.
    deadline = time.monotonic() + 1.0
    history = trainer.fit(SleepOnBatch(source, 3, deadline), progress=False, deadline=deadline)
    assert trainer.out_of_time and trainer.stopped_by is None
    assert len(history) == 3 and trainer.step == 4  # The step of the late batch completes.
    assert trainer.checkpoints.all_steps() == [1, 4]
    trainer.close()


@pytest.mark.slow
def test_a_budget_too_short_for_one_step_is_refused_and_one_that_fits_scales_the_schedule(
    tmp_path,
):
    from ddsp_jax.training.budget import fit_to_budget

    config = tiny_config(steps=100, optimizer=OptimizerConfig(decay_steps=50))
    examples = notes(4)
    trainer = Trainer(config, tmp_path / "run")
    with pytest.raises(ValueError, match="leaves no time for a step"):
        fit_to_budget(trainer, examples, examples, None, time.monotonic())
    assert trainer.config == config and not (tmp_path / "run").exists()  # Untouched.
    costs = fit_to_budget(trainer, examples, examples, None, time.monotonic() + 30)
    steps = trainer.config.steps
    assert steps >= 1 and costs.run_seconds(trainer.config, steps) <= 30
    assert trainer.config.optimizer.decay_steps == round(50 * steps / 100)
    trainer.close()


@pytest.mark.slow
def test_the_cpu_preset_learns_procedural_notes(tmp_path):
    from ddsp_jax.training.examples import procedural_split

    settings = ["model.synth.n_samples=16000", "data.example_seconds=1.0", "data.n_train=16"]
    settings += ["data.n_test=4", "batch_size=4", "steps=60", "eval_every=0"]
    config = override(PRESETS["solo-cpu"], settings)
    train, test = procedural_split(config)
    trainer = Trainer(config, tmp_path / "run")
    trainer.start(resume=False)
    untrained = trainer.evaluate(test)
    trainer.fit(ExampleSource(train, config.batch_size, 0), progress=False)
    assert trainer.evaluate(test) < 0.8 * untrained
    trainer.close()
