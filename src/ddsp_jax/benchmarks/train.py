"""Training-step benchmark: one jitted optimisation step at a preset's shapes."""

import dataclasses
import tempfile
import time
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from ddsp_jax.benchmarks.common import (
    machine,
    merge_implementations,
    on_implementation,
    peak_rss_bytes,
    time_calls,
)
from ddsp_jax.benchmarks.flops import decoder_matmul_flops_per_frame
from ddsp_jax.training.config import PRESETS
from ddsp_jax.training.parallel import DataParallel
from ddsp_jax.training.trainer import Trainer

PEAK = "matmul peak"
SETTLE_SECONDS = 0.5  # Pause before each timed call (see ``time_calls``).


def matmul_peak(size: int = 2048, calls: int = 5) -> tuple[Callable[[], list[jax.Array]], float]:
    """This process's matmul ceiling: a function running a jitted float32 ``size × size``
    matmul ``calls`` times, and the FLOPs of one run of it (time it with the work it is
    compared against, so that both see the same machine)."""
    rng = np.random.default_rng(0)
    a = jnp.asarray(rng.normal(size=(size, size)), jnp.float32)
    b = jnp.asarray(rng.normal(size=(size, size)), jnp.float32)
    matmul = jax.jit(jnp.matmul)

    def multiply() -> list[jax.Array]:
        return [matmul(a, b) for _ in range(calls)]

    return multiply, 2.0 * size**3 * calls


def run(
    preset: str = "nsynth",
    batch_size: int = 4,
    repeats: int = 5,
    implementations: tuple[str, ...] = ("fast",),
    micro_batches: int = 1,
    devices: int | None = None,
) -> dict[str, Any]:
    """Time the train step of ``preset`` at ``batch_size`` on random data, on each code path
    in ``implementations`` (timed steps interleaved; see ``merge_implementations``), with the
    batch split into ``micro_batches`` (see ``TrainConfig.micro_batches``) and, with
    ``devices``, over that many devices (``training.parallel``; on CPU, devices forced with
    ``XLA_FLAGS=--xla_force_host_platform_device_count=N`` share the machine's cores).

    Returns:
        ``compile_seconds`` (the first step: trace, compile or compilation-cache hit, run),
        ``first_step_seconds`` (model and optimizer initialisation plus the first step: the
        time to the first training step after imports), ``step_seconds`` (median),
        ``examples_per_second``, ``peak_rss_bytes``, ``decoder_flops_per_step`` (the
        decoder's matrix products, forward + backward: three times
        ``decoder_matmul_flops_per_frame`` per frame; XLA's cost analysis counts
        the GRU's scan body once, not once per frame), ``matmul_peak_flops`` (a 2048² float32
        matmul timed between the steps), ``roofline_fraction`` (decoder FLOPs per second over
        that peak) and ``machine``.
    """
    config = dataclasses.replace(
        PRESETS[preset], batch_size=batch_size, micro_batches=micro_batches
    )
    rng = np.random.default_rng(0)
    n_samples, n_frames = config.model.synth.n_samples, config.n_frames
    host = {
        "audio": (rng.normal(size=(batch_size, n_samples)) * 0.1).astype(np.float32),
        "f0_hz": rng.uniform(100, 400, (batch_size, n_frames)).astype(np.float32),
        "loudness_db": rng.uniform(-60, -10, (batch_size, n_frames)).astype(np.float32),
    }
    parallel = None if devices is None else DataParallel.over(devices)
    if parallel is None:
        batch = {name: jnp.asarray(values) for name, values in host.items()}
    else:
        batch = parallel.shard_batch(host)
    paths, init_seconds = {}, {}
    for name in implementations:
        start = time.perf_counter()
        trainer = Trainer(config, tempfile.mkdtemp(prefix="ddsp-bench-"), parallel)
        init_seconds[name] = time.perf_counter() - start
        state = {"params": trainer.params, "opt_state": trainer.opt_state, "step": 0}

        def step(trainer: Trainer = trainer, state: dict = state) -> Any:
            state["params"], state["opt_state"], out = trainer.run_step(
                state["params"], state["opt_state"], batch, state["step"]
            )
            state["step"] += 1
            return out

        paths[name] = on_implementation(name, step)
    peak_call, peak_call_flops = matmul_peak()
    # The matmul ceiling is timed between the steps, so that the machine's drift over the
    # run hits both alike (on a shared machine it moves by ±25 % within an hour).
    timings = time_calls(
        {**paths, PEAK: peak_call}, repeats=repeats, warmup=2, settle_seconds=SETTLE_SECONDS
    )
    peak = peak_call_flops / timings.pop(PEAK)["median_seconds"]

    flops_per_frame = decoder_matmul_flops_per_frame(config.model.decoder)
    decoder_flops = 3 * flops_per_frame * batch_size * n_frames
    figures = {
        name: {
            "benchmark": "train",
            "preset": preset,
            "batch_size": batch_size,
            "micro_batches": micro_batches,
            "devices": 1 if parallel is None else parallel.n_devices,
            "compile_seconds": timing["first_call_seconds"],
            "first_step_seconds": init_seconds[name] + timing["first_call_seconds"],
            "step_seconds": timing["median_seconds"],
            "examples_per_second": batch_size / timing["median_seconds"],
            "peak_rss_bytes": peak_rss_bytes(),
            "decoder_flops_per_step": decoder_flops,
            "matmul_peak_flops": peak,
            "roofline_fraction": decoder_flops / timing["median_seconds"] / peak,
        }
        for name, timing in timings.items()
    }
    return {**merge_implementations(figures, "step_seconds"), "machine": machine()}
