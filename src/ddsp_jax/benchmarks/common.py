"""Timing and machine description shared by the benchmarks."""

import os
import platform
import re
import resource
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jax


def block(tree: Any) -> Any:
    """Wait for every array in ``tree`` to be computed."""
    return jax.block_until_ready(tree)


def time_calls(
    fns: dict[str, Callable[[], Any]], repeats: int, warmup: int = 1, settle_seconds: float = 0.0
) -> dict[str, dict[str, float]]:
    """``time_call`` for several functions, their timed calls interleaved (one of each in
    turn), so that a shared machine's drift affects all alike and ratios stay fair.

    ``settle_seconds`` is a pause before each timed call, so that the clean-up after a large
    program (the runtime freeing and unmapping its buffers, after its results are ready)
    does not land in the next call's time: right after a batch-32 train step a 2048² matmul
    runs ~10 % slower than after a 0.5 s pause.

    Returns:
        Per name: ``first_call_seconds`` (includes compilation), ``median_seconds``,
        ``min_seconds``.
    """
    first = {}
    for name, fn in fns.items():
        start = time.perf_counter()
        block(fn())
        first[name] = time.perf_counter() - start
    for _ in range(warmup - 1):
        for fn in fns.values():
            block(fn())
    times: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            time.sleep(settle_seconds)
            start = time.perf_counter()
            block(fn())
            times[name].append(time.perf_counter() - start)
    return {
        name: {
            "first_call_seconds": first[name],
            "median_seconds": statistics.median(times[name]),
            "min_seconds": min(times[name]),
        }
        for name in fns
    }


def time_call(fn: Callable[[], Any], repeats: int, warmup: int = 1) -> dict[str, float]:
    """Compile-and-first-call time, then the median and minimum of ``repeats`` timed calls.

    Returns:
        ``first_call_seconds`` (includes compilation), ``median_seconds``, ``min_seconds``.
    """
    return time_calls({"": fn}, repeats, warmup)[""]


def peak_rss_bytes() -> int:
    """Peak resident memory of this process so far (bytes): Linux's ``VmHWM`` where there is
    one (the rusage peak of a process started from a large one counts the parent's memory
    at the fork, which exec keeps), else the rusage peak."""
    try:
        status = Path("/proc/self/status").read_text()
    except OSError:
        status = ""
    match = re.search(r"VmHWM:\s+(\d+) kB", status)
    kilobytes = int(match.group(1)) if match else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return kilobytes * 1024


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


def implementations(choice: str) -> tuple[str, ...]:
    """The code paths to time for ``--impl``: ``fast``, ``reference``, or ``both``."""
    return ("reference", "fast") if choice == "both" else (choice,)


def on_implementation(implementation: str, fn: Callable[[], Any]) -> Callable[[], Any]:
    """``fn`` called with the hot spots on ``implementation`` (it matters when ``fn``'s
    programs are traced: its first call)."""
    from ddsp_jax.core.implementation import use_implementation

    def call() -> Any:
        with use_implementation(implementation):  # type: ignore[arg-type]
            return fn()

    return call


def merge_implementations(figures: dict[str, dict[str, Any]], seconds_key: str) -> dict[str, Any]:
    """One result from per-path figures: the fast path's (or the only one's), with
    ``implementation``; with both, ``reference`` (its figures) and ``speedup`` (reference
    over fast ``seconds_key``, timed interleaved in one run). Each path's ``peak_rss_bytes``
    is the process's peak so far, so with both it covers both."""
    if len(figures) == 1:
        ((name, result),) = figures.items()
        return {"implementation": name, **result}
    return {
        "implementation": "fast",
        **figures["fast"],
        "reference": figures["reference"],
        "speedup": figures["reference"][seconds_key] / figures["fast"][seconds_key],
    }
