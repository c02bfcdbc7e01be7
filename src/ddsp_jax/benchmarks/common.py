"""Timing and machine description shared by the benchmarks."""

import os
import platform
import resource
import statistics
import time
from collections.abc import Callable
from typing import Any

import jax


def block(tree: Any) -> Any:
    """Wait for every array in ``tree`` to be computed."""
    return jax.block_until_ready(tree)


def time_call(fn: Callable[[], Any], repeats: int, warmup: int = 1) -> dict[str, float]:
    """Compile-and-first-call time, then the median and minimum of ``repeats`` timed calls.

    Returns:
        ``first_call_seconds`` (includes compilation), ``median_seconds``, ``min_seconds``.
    """
    start = time.perf_counter()
    block(fn())
    first = time.perf_counter() - start
    for _ in range(warmup - 1):
        block(fn())
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        block(fn())
        times.append(time.perf_counter() - start)
    return {
        "first_call_seconds": first,
        "median_seconds": statistics.median(times),
        "min_seconds": min(times),
    }


def peak_rss_bytes() -> int:
    """Peak resident memory of this process so far (bytes)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def machine() -> dict[str, Any]:
    """Where the figures were measured."""
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            names = [line.split(":", 1)[1].strip() for line in f if line.startswith("model name")]
        cpu = names[0] if names else cpu
    except OSError:
        pass
    device = jax.devices()[0]
    return {
        "cpu": cpu,
        "cpu_count": os.cpu_count(),
        "jax": jax.__version__,
        "device": f"{device.platform}: {device.device_kind}",
        "python": platform.python_version(),
        "xla_flags": os.environ.get("XLA_FLAGS", ""),
    }
