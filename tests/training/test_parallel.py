"""Data-parallel training over a device mesh: four forced CPU devices train as one does,
checkpoints move between device counts, two processes over loopback train as one."""

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from ddsp_jax.training.examples import ExampleSource

TESTS = Path(__file__).parents[1]
CHECKS = TESTS / "parallel_checks.py"
LEARNING_RATE = 3e-3  # tiny_config's.


def run_checks(devices: int, *trainings: str, env: dict[str, str] | None = None) -> list[dict]:
    """``parallel_checks.py`` with ``devices`` forced CPU devices: one record per training."""
    environment = {
        **os.environ,
        "XLA_FLAGS": f"--xla_force_host_platform_device_count={devices}",
        "PYTHONPATH": str(TESTS),
        "JAX_PLATFORMS": "cpu",
        **(env or {}),
    }
    done = subprocess.run(
        [sys.executable, str(CHECKS), *trainings],
        env=environment,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]


def assert_same_training(a: dict, b: dict, steps: int) -> None:
    """The same losses within float32 rounding, and the same parameters: all but a few
    within 1e-5, every one within Adam's reach. The magnitude loss's gradients agree to
    ~4e-5 relative between device counts (float32 sums in another order); Adam moves an
    element by up to the learning rate per step whatever its gradient's size, so an element
    whose gradient is at that rounding level may differ by up to 2 · rate · steps."""
    np.testing.assert_allclose(a["losses"], b["losses"], rtol=1e-5)
    x, y = (np.concatenate([np.asarray(p) for p in r["params"]]) for r in (a, b))
    difference = np.abs(x - y)
    assert np.mean(difference > 1e-5) < 0.01
    assert difference.max() <= 2 * LEARNING_RATE * steps


@pytest.mark.slow
def test_four_devices_train_as_one_and_checkpoints_move_between_device_counts(tmp_path):
    runs = [str(tmp_path / name) for name in ("one", "four", "back", "micro1", "micro2")]
    one, four, four_then_one, one_two, one_then_four, micro_one, micro_two = run_checks(
        4,
        f"{runs[0]},0,4,new,1",  # The reference: 4 steps on one device.
        f"{runs[1]},4,2,new,1",  # 2 steps on 4 devices, checkpointed...
        f"{runs[1]},0,4,resume,1",  # ...resumed on one.
        f"{runs[2]},0,2,new,1",  # 2 steps on one device...
        f"{runs[2]},4,4,resume,1",  # ...resumed on 4.
        f"{runs[3]},0,2,new,2",  # Micro-batches: on one device,
        f"{runs[4]},2,2,new,2",  # and each of 2 devices' share split in 2.
    )
    assert (one["devices"], four["devices"], micro_two["devices"]) == (0, 4, 2)
    first_two = {**one, "losses": one["losses"][:2]}
    np.testing.assert_allclose(four["losses"], first_two["losses"], rtol=1e-5)
    assert four_then_one["losses"] == pytest.approx(one["losses"][2:], rel=1e-5)
    assert one_then_four["losses"] == pytest.approx(one["losses"][2:], rel=1e-5)
    assert one_two["losses"] == pytest.approx(one["losses"][:2], rel=1e-6)
    assert_same_training(one, {**four_then_one, "losses": one["losses"]}, 4)
    assert_same_training(one, {**one_then_four, "losses": one["losses"]}, 4)
    assert_same_training(micro_one, micro_two, 2)


@pytest.mark.slow
def test_a_batch_that_does_not_divide_among_the_devices_is_refused(tmp_path):
    environment = {
        **os.environ,
        "XLA_FLAGS": "--xla_force_host_platform_device_count=4",
        "JAX_PLATFORMS": "cpu",
    }
    command = [sys.executable, "-m", "ddsp_jax.cli", "train", "--preset", "quick"]
    for flags, message in (
        (["--batch-size", "6", "--devices", "4"], "batch_size 6 does not divide among 4 devices"),
        (["--devices", "8"], "--devices 8: only 4 device(s) are available"),
        (
            ["--batch-size", "4", "--devices", "2", "--set", "micro_batches=4"],
            "each of the 2 devices gets 2 examples, which do not split into micro_batches 4",
        ),
    ):
        done = subprocess.run(
            [*command, *flags, "--out", str(tmp_path / "run")],
            env=environment,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 1
        errors = [line for line in done.stderr.splitlines() if line.startswith("ddsp train")]
        assert len(errors) == 1 and errors[0].startswith(f"ddsp train: error: {message}")


def test_each_process_reads_its_share_of_every_batch_in_the_global_order():
    examples = {"x": np.arange(10)}
    whole = ExampleSource(examples, 4, seed=3)
    shares = [ExampleSource(examples, 4, seed=3, share=(2 * i, 2 * i + 2)) for i in range(2)]
    for _ in range(5):  # Crosses epochs.
        batch = whole.next_batch()["x"]
        parts = [share.next_batch()["x"] for share in shares]
        np.testing.assert_array_equal(np.concatenate(parts), batch)
        assert all(share.state() == whole.state() for share in shares)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.mark.slow
def test_two_processes_over_loopback_train_as_one_process_with_four_devices(tmp_path):
    port = free_port()
    logs = [(tmp_path / f"out{i}.txt", tmp_path / f"err{i}.txt") for i in range(2)]
    commands = []
    for process, (out, err) in enumerate(logs):
        environment = {
            **os.environ,
            "XLA_FLAGS": "--xla_force_host_platform_device_count=2",
            "PYTHONPATH": str(TESTS),
            "JAX_PLATFORMS": "cpu",
            "JAX_COORDINATOR_ADDRESS": f"127.0.0.1:{port}",
            "JAX_NUM_PROCESSES": "2",
            "JAX_PROCESS_ID": str(process),
        }
        with out.open("w") as stdout, err.open("w") as stderr:  # Files: no pipe can fill.
            commands.append(
                subprocess.Popen(
                    [sys.executable, str(CHECKS), f"{tmp_path / 'two'},4,3,new,1"],
                    env=environment,
                    stdout=stdout,
                    stderr=stderr,
                )
            )
    outputs = []
    for command, (out, err) in zip(commands, logs, strict=True):
        try:
            command.wait(timeout=240)
        finally:
            for other in commands:
                if other.poll() is None and command.returncode is None:
                    other.kill()
        assert command.returncode == 0, err.read_text()[-3000:]
        lines = [line for line in out.read_text().splitlines() if line.startswith("{")]
        outputs.append(json.loads(lines[-1]))
    (single,) = run_checks(4, f"{tmp_path / 'one'},4,3,new,1")
    assert outputs[0]["devices"] == outputs[1]["devices"] == 4
    assert outputs[0] == outputs[1]  # Each process holds the same replicated parameters.
    assert_same_training(single, outputs[0], 3)
    records = (tmp_path / "two" / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(line)["step"] for line in records] == [1, 2, 3]  # Written once.


def test_bench_train_refuses_devices_the_machine_does_not_have(capsys):
    import jax

    from ddsp_jax.cli import main

    too_many = jax.device_count() + 1
    with pytest.raises(SystemExit) as exit_info:
        main(["bench", "train", "--devices", str(too_many)])
    assert exit_info.value.code == 2
    assert f"--devices {too_many}: only {jax.device_count()} device(s)" in capsys.readouterr().err


def test_a_time_budget_with_several_processes_is_refused(tmp_path, monkeypatch, capsys):
    import jax

    from ddsp_jax.cli import main
    from ddsp_jax.training import parallel

    monkeypatch.setattr(parallel, "initialize_distributed", lambda *args: True)
    monkeypatch.setattr(jax, "process_count", lambda: 2)
    out = tmp_path / "run"
    assert main(["train", "--preset", "quick", "--minutes", "1", "--out", str(out)]) == 1
    (line,) = capsys.readouterr().err.splitlines()
    assert line.startswith("ddsp train: error: --minutes times the steps on each process")
    assert not out.exists()
