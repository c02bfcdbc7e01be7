"""f0 benchmark: CREPE's CPU (or accelerator) cost per second of audio."""

from typing import Any

import numpy as np

from ddsp_jax.benchmarks.common import machine, time_call
from ddsp_jax.features.f0 import compute_f0


def run(capacity: str = "tiny", seconds: float = 1.0, repeats: int = 3) -> dict[str, Any]:
    """Time ``compute_f0`` (250 Hz frames, Viterbi) on a ``seconds``-long 16 kHz tone.

    Returns:
        ``compile_seconds`` (first call), ``median_seconds``, ``seconds_per_audio_second``,
        ``frames_per_second`` and ``machine``.
    """
    t = np.arange(round(seconds * 16000)) / 16000
    audio = (0.5 * np.sin(2 * np.pi * 220.0 * t)).astype(np.float32)
    timing = time_call(lambda: compute_f0(audio, 16000, capacity=capacity), repeats=repeats)
    n_frames = 1 + round(seconds * 250)
    return {
        "benchmark": "f0",
        "capacity": capacity,
        "audio_seconds": seconds,
        "compile_seconds": timing["first_call_seconds"],
        "median_seconds": timing["median_seconds"],
        "seconds_per_audio_second": timing["median_seconds"] / seconds,
        "frames_per_second": n_frames / timing["median_seconds"],
        "machine": machine(),
    }
