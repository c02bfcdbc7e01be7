"""Loudness benchmark: A-weighted loudness of a batch of audio, jitted."""

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from ddsp_jax.benchmarks.common import machine, peak_rss_bytes, time_call
from ddsp_jax.core.spectral import compute_loudness
from ddsp_jax.defaults import FRAME_RATE, SAMPLE_RATE
from ddsp_jax.features.extract import LOUDNESS_N_FFT


def run(
    batch_size: int = 4,
    seconds: float = 4.0,
    sample_rate: int = SAMPLE_RATE,
    frame_rate: int = FRAME_RATE,
    n_fft: int = LOUDNESS_N_FFT,
    repeats: int = 10,
) -> dict[str, Any]:
    """Time ``compute_loudness`` on ``batch_size`` × ``seconds`` of noise (data preparation's
    settings by default: 250 Hz frames, ``n_fft`` 512).

    Returns:
        The settings, ``compile_seconds``, ``median_seconds``, ``min_seconds``,
        ``real_time_factor`` (seconds of audio per second of compute, median),
        ``frames_per_second``, ``peak_rss_bytes`` and ``machine``.
    """
    n_samples = round(seconds * sample_rate)
    rng = np.random.default_rng(0)
    audio = jnp.asarray(rng.uniform(-0.5, 0.5, (batch_size, n_samples)), jnp.float32)
    loudness = jax.jit(lambda audio: compute_loudness(audio, sample_rate, frame_rate, n_fft=n_fft))
    timing = time_call(lambda: loudness(audio), repeats=repeats, warmup=2)
    n_frames = loudness(audio).shape[1]
    return {
        "benchmark": "loudness",
        "batch_size": batch_size,
        "seconds": seconds,
        "sample_rate": sample_rate,
        "frame_rate": frame_rate,
        "n_fft": n_fft,
        "compile_seconds": timing["first_call_seconds"],
        "median_seconds": timing["median_seconds"],
        "min_seconds": timing["min_seconds"],
        "real_time_factor": batch_size * seconds / timing["median_seconds"],
        "frames_per_second": batch_size * n_frames / timing["median_seconds"],
        "peak_rss_bytes": peak_rss_bytes(),
        "machine": machine(),
    }
