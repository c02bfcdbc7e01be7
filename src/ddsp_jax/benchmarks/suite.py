"""What ``ddsp bench NAME`` runs: one entry per benchmark, all taking the same options.

Importing this module is cheap (the command line builds its parser from ``BENCHMARKS``);
each benchmark imports its work when it runs.
"""

import dataclasses
from collections.abc import Callable
from typing import Any


class BenchmarkError(RuntimeError):
    """A benchmark that cannot run here (missing weights, model or SoundFont)."""


@dataclasses.dataclass(frozen=True)
class BenchOptions:
    """The options of ``ddsp bench`` (each benchmark reads those it uses).

    Attributes:
        batch_size: Examples per call (synth, train, matmuls, loudness, gru).
        seconds: Audio per example (synth, loudness) or in all (f0).
        repeats: Timed runs after warm-up (stream: 100 × repeats blocks per configuration).
        impl: ``fast``, ``reference`` or ``both`` code paths (synth, train, f0).
        preset: Training preset whose shapes to use (train, matmuls, gru, stream).
        micro_batches: Micro-batches per step (train, matmuls).
        devices: Devices each train step's batch is split over (None: one, no mesh).
        f0_model: CREPE size (f0, transfer, stream).
        soundfont: Also score SoundFont notes: a path or ``"auto"`` (f0).
        model: Model or run folder (transfer).
        network_rate: Frames per second CREPE runs at, None for the 250 Hz frames (f0).
    """

    batch_size: int = 4
    seconds: float = 4.0
    repeats: int = 10
    impl: str = "fast"
    preset: str = "nsynth"
    micro_batches: int = 1
    f0_model: str = "tiny"
    soundfont: str | None = None
    model: str | None = None
    network_rate: int | None = None
    devices: int | None = None

    def __post_init__(self) -> None:
        if self.batch_size <= 0 or self.seconds <= 0 or self.repeats <= 0:
            raise ValueError("--batch-size, --seconds and --repeats must be positive.")
        if self.micro_batches <= 0 or self.batch_size % self.micro_batches:
            raise ValueError("--micro-batches must be positive and divide --batch-size.")
        if self.network_rate is not None and self.network_rate <= 0:
            raise ValueError("--network-rate must be positive.")
        if self.devices is not None:  # The same rules as ddsp train --devices.
            from ddsp_jax.training.parallel import DataParallel

            DataParallel.over(self.devices).check_batch(self.batch_size, self.micro_batches)


def _synth(options: BenchOptions) -> dict[str, Any]:
    from ddsp_jax.benchmarks import synth
    from ddsp_jax.benchmarks.common import implementations

    return synth.run(
        batch_size=options.batch_size,
        seconds=options.seconds,
        repeats=options.repeats,
        implementations=implementations(options.impl),
    )


def _train(options: BenchOptions) -> dict[str, Any]:
    from ddsp_jax.benchmarks import train
    from ddsp_jax.benchmarks.common import implementations

    return train.run(
        preset=options.preset,
        batch_size=options.batch_size,
        repeats=options.repeats,
        implementations=implementations(options.impl),
        micro_batches=options.micro_batches,
        devices=options.devices,
    )


def _matmuls(options: BenchOptions) -> dict[str, Any]:
    from ddsp_jax.benchmarks import matmuls

    return matmuls.run(
        preset=options.preset,
        batch_size=options.batch_size,
        repeats=options.repeats,
        micro_batches=options.micro_batches,
    )


def _loudness(options: BenchOptions) -> dict[str, Any]:
    from ddsp_jax.benchmarks import loudness

    return loudness.run(
        batch_size=options.batch_size, seconds=options.seconds, repeats=options.repeats
    )


def _gru(options: BenchOptions) -> dict[str, Any]:
    from ddsp_jax.benchmarks import gru

    return gru.run(preset=options.preset, batch_size=options.batch_size, repeats=options.repeats)


def _f0(options: BenchOptions) -> dict[str, Any]:
    from ddsp_jax.benchmarks import f0
    from ddsp_jax.benchmarks.common import implementations
    from ddsp_jax.data.soundfont import SoundFontError
    from ddsp_jax.features.torch_weights import WeightsError

    try:
        return f0.run(
            capacity=options.f0_model,
            seconds=options.seconds,
            repeats=options.repeats,
            soundfont=options.soundfont,
            network_rate=options.network_rate,
            implementations=implementations(options.impl),
        )
    except (WeightsError, SoundFontError) as error:
        raise BenchmarkError(str(error)) from error


def _transfer(options: BenchOptions) -> dict[str, Any]:
    from ddsp_jax.benchmarks import transfer
    from ddsp_jax.models.saved import ModelError

    if options.model is None:
        raise BenchmarkError("bench transfer needs --model MODEL (a model or run folder).")
    try:
        return transfer.run(options.model, f0_model=options.f0_model)
    except ModelError as error:
        raise BenchmarkError(str(error)) from error


def _stream(options: BenchOptions) -> dict[str, Any]:
    from ddsp_jax.benchmarks import stream
    from ddsp_jax.features.torch_weights import WeightsError

    try:
        return stream.run(options.preset, options.f0_model, blocks=100 * options.repeats)
    except WeightsError as error:
        raise BenchmarkError(str(error)) from error


BENCHMARKS: dict[str, Callable[[BenchOptions], dict[str, Any]]] = {
    "synth": _synth,
    "train": _train,
    "matmuls": _matmuls,
    "loudness": _loudness,
    "f0": _f0,
    "gru": _gru,
    "transfer": _transfer,
    "stream": _stream,
}
ALL_BENCHMARKS = ("synth", "train", "matmuls", "loudness", "f0", "gru")  # ``ddsp bench all``.


def run_benchmark(name: str, options: BenchOptions) -> dict[str, Any]:
    """The figures of benchmark ``name`` (a key of ``BENCHMARKS``), with ``machine``.

    Raises:
        BenchmarkError: Where it cannot run.
    """
    return BENCHMARKS[name](options)


def run_all(options: BenchOptions, report: Callable[[str, dict[str, Any]], None]) -> dict:
    """Every benchmark of ``ALL_BENCHMARKS`` in one process, ``report(name, figures)`` after
    each; one that cannot run gives ``{"error": why}``. The machine is recorded once."""
    from ddsp_jax.benchmarks.common import machine

    result: dict[str, Any] = {}
    for name in ALL_BENCHMARKS:
        try:
            result[name] = run_benchmark(name, options)
        except BenchmarkError as error:
            result[name] = {"error": str(error)}
        result[name].pop("machine", None)
        report(name, result[name])
    result["machine"] = machine()
    return result
