"""Synthesis benchmark: harmonic + filtered noise + reverb forward pass, jitted."""

import functools
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from ddsp_jax.benchmarks.common import (
    machine,
    merge_implementations,
    peak_rss_bytes,
    time_calls,
)
from ddsp_jax.core.implementation import use_implementation
from ddsp_jax.defaults import FRAME_RATE, SAMPLE_RATE
from ddsp_jax.processors import ProcessorGraph, ProcessorGraphConfig


def run(
    batch_size: int = 4,
    seconds: float = 4.0,
    sample_rate: int = SAMPLE_RATE,
    frame_rate: int = FRAME_RATE,
    n_harmonics: int = 100,
    n_noise_bands: int = 65,
    reverb_length: int = 16000,
    repeats: int = 10,
    implementations: tuple[str, ...] = ("fast",),
) -> dict[str, Any]:
    """Time the standard graph's forward pass on random controls, on each code path in
    ``implementations`` (timed calls interleaved; see ``merge_implementations``).

    Returns:
        The settings, ``compile_seconds`` (first call), ``median_seconds``, ``min_seconds``,
        ``real_time_factor`` (seconds of audio per second of compute, median),
        ``peak_rss_bytes`` and ``machine``.
    """
    n_samples = round(seconds * sample_rate)
    n_frames = round(seconds * frame_rate)
    config = ProcessorGraphConfig(
        sample_rate=sample_rate,
        n_samples=n_samples,
        n_harmonics=n_harmonics,
        n_noise_bands=n_noise_bands,
        reverb_length=reverb_length,
    )
    graph = ProcessorGraph(config, rngs=nnx.Rngs(0))
    rng = np.random.default_rng(0)
    controls = {
        "f0_hz": jnp.asarray(rng.uniform(100, 400, (batch_size, n_frames, 1)), jnp.float32),
        "amplitudes": jnp.asarray(rng.normal(size=(batch_size, n_frames, 1)), jnp.float32),
        "harmonic_distribution": jnp.asarray(
            rng.normal(size=(batch_size, n_frames, n_harmonics)), jnp.float32
        ),
        "noise_magnitudes": jnp.asarray(
            rng.normal(size=(batch_size, n_frames, n_noise_bands)), jnp.float32
        ),
    }
    graphdef, state = nnx.split(graph)

    @functools.partial(jax.jit, static_argnums=0)
    def forward(implementation, state, controls, key):
        # The path is a static argument: a jitted function keeps the path of its trace.
        with use_implementation(implementation):
            return nnx.merge(graphdef, state)(controls, key=key)["audio"]

    key = jax.random.key(0)
    paths = {
        name: functools.partial(forward, name, state, controls, key) for name in implementations
    }
    timings = time_calls(paths, repeats=repeats, warmup=2)
    audio_seconds = batch_size * n_samples / sample_rate
    figures = {}
    for name, timing in timings.items():
        real_time_factor = audio_seconds / timing["median_seconds"]
        figures[name] = {
            "benchmark": "synth",
            "batch_size": batch_size,
            "seconds": seconds,
            "sample_rate": sample_rate,
            "n_harmonics": n_harmonics,
            "n_noise_bands": n_noise_bands,
            "reverb_length": reverb_length,
            "compile_seconds": timing["first_call_seconds"],
            "median_seconds": timing["median_seconds"],
            "min_seconds": timing["min_seconds"],
            "real_time_factor": real_time_factor,
            "peak_rss_bytes": peak_rss_bytes(),
        }
    return {**merge_implementations(figures, "median_seconds"), "machine": machine()}
