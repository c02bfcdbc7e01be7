"""Streaming benchmark: the compute per block of live timbre transfer, and its latency."""

import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from flax import nnx

from ddsp_jax.benchmarks.common import machine
from ddsp_jax.defaults import SAMPLE_RATE
from ddsp_jax.models.autoencoder import Autoencoder
from ddsp_jax.models.saved import SavedModel
from ddsp_jax.streaming import HostRateStream, TransferStream

HOST_RATES = (16000, 48000)
BLOCK_MS = (20, 10)


def _sung(seconds: float, sample_rate: int) -> np.ndarray:
    """A sung-like melody: a note every half second, vibrato, four harmonics, some breath."""
    t = np.arange(round(seconds * sample_rate)) / sample_rate
    f0 = 220.0 * 2 ** (np.floor(2 * t) % 8 / 12) * (1 + 0.01 * np.sin(2 * np.pi * 5.5 * t))
    phase = 2 * np.pi * np.cumsum(f0) / sample_rate
    voice = sum(np.sin(k * phase) / k for k in range(1, 5))
    breath = 0.02 * np.random.default_rng(0).standard_normal(len(t))
    return (0.2 * voice + breath).astype(np.float32)


def _engines(saved: SavedModel, f0_model: str, folder: Path) -> dict[str, Any]:
    """``engine name -> make(block_size)`` of a model-rate transfer stream: ``jax``
    (``TransferStream``) and, with the ``onnx`` extra, ``onnx`` (``OnnxStream`` of the
    model exported to ``folder``)."""
    engines: dict[str, Any] = {"jax": lambda block: TransferStream(saved, block, f0_model)}
    try:
        from ddsp_jax.deploy.onnx_export import OnnxStream, export_onnx
    except ModuleNotFoundError:
        return engines
    export_onnx(saved, folder, f0_model)
    engines["onnx"] = lambda block: OnnxStream(folder, block)
    return engines


def _time_blocks(stream: HostRateStream, audio: np.ndarray, blocks: int) -> np.ndarray:
    """Seconds of ``stream.process`` for each of ``blocks`` host blocks of ``audio``, after
    20 blocks that compile and settle."""
    host_block = stream.host_block
    for index in range(20):
        stream.process(audio[index * host_block : (index + 1) * host_block])
    times = np.zeros(blocks)
    for index in range(blocks):
        chunk = audio[index * host_block : (index + 1) * host_block]
        start = time.perf_counter()
        stream.process(chunk)
        times[index] = time.perf_counter() - start
    return times


def run(preset: str = "solo", f0_model: str = "tiny", blocks: int = 1000) -> dict[str, Any]:
    """Time live timbre transfer at the host's rate (``HostRateStream``) block by block:
    audio in (features by CREPE ``f0_model``), the model's audio out, for 20 and 10 ms blocks
    at 16 and 48 kHz, with the decoder and synth of ``preset`` (random parameters: the
    compute does not depend on them), in the Python engine (``TransferStream``) and, with
    the ``onnx`` extra, the exported graphs in onnxruntime (``OnnxStream``, a thread per
    core).

    Returns:
        ``records``: one per configuration with ``engine`` (``jax`` or ``onnx``), ``sample_rate``,
        ``block_ms``, ``compute_ms_median``, ``compute_ms_mean``, ``compute_ms_p99``,
        ``latency_ms`` (input to output, without the audio interface) and
        ``real_time_factor`` (block length over the mean compute); and ``machine``.
    """
    from ddsp_jax.training.config import PRESETS

    config = PRESETS[preset]
    model = Autoencoder(config.model, rngs=nnx.Rngs(0))
    saved = SavedModel(model, config.frame_rate, None, 0, Path("."))
    records = []
    with tempfile.TemporaryDirectory() as folder:
        for engine, make in _engines(saved, f0_model, Path(folder)).items():
            for host_rate in HOST_RATES:
                for block_ms in BLOCK_MS:
                    block = SAMPLE_RATE * block_ms // 1000
                    host_block = host_rate * block_ms // 1000
                    stream = HostRateStream(make(block), SAMPLE_RATE, host_rate, host_block)
                    times = _time_blocks(
                        stream, _sung(blocks * block_ms / 1000 + 1.0, host_rate), blocks
                    )
                    mean = float(np.mean(times)) * 1e3
                    records.append(
                        {
                            "engine": engine,
                            "sample_rate": host_rate,
                            "block_ms": block_ms,
                            "compute_ms_median": float(np.median(times)) * 1e3,
                            "compute_ms_mean": mean,
                            "compute_ms_p99": float(np.percentile(times, 99)) * 1e3,
                            "latency_ms": 1e3 * stream.latency / host_rate,
                            "real_time_factor": block_ms / mean,
                        }
                    )
    return {
        "benchmark": "stream",
        "preset": preset,
        "f0_model": f0_model,
        "blocks": blocks,
        "records": records,
        "machine": machine(),
    }
