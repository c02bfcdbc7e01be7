"""``ddsp live``: timbre transfer in real time, from a microphone or a file, to the speakers or
a file.

``LiveEngine`` owns one ``HostRateStream`` (``transfer_stream``'s engine at the host's
rate) and does one host block per audio callback: it mixes the input to mono, runs the
stream and writes every output channel, all into buffers made before the stream starts
(``warm_up`` also compiles every program first). It times each callback and counts the late
ones (longer than a block) and the under- and overflows PortAudio reports. Files are read
before the stream starts and written by a separate thread, so the callback never waits on
the disk.

Devices come from PortAudio through ``sounddevice`` (the ``live`` extra); ``run`` takes a
``stream_factory`` so that tests (and hosts without audio hardware) can drive the same
callback with a stand-in for ``sounddevice.Stream``.
"""

import dataclasses
import queue
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

import numpy as np

from ddsp_jax.files import temporary_path
from ddsp_jax.models.saved import SavedModel
from ddsp_jax.streaming import HostRateStream, TransferStream

Engine = Literal["jax", "onnx"]
ENGINES: tuple[Engine, ...] = ("jax", "onnx")

StreamFactory = Callable[..., Any]


class OutputError(OSError):
    """An output file that cannot be written."""


@dataclasses.dataclass
class LiveReport:
    """What a live run did.

    Attributes:
        blocks: Host blocks processed.
        late_blocks: Blocks whose processing took longer than a block lasts.
        underflows: Output underflows and input overflows PortAudio reported.
        compute_ms_median: Median processing time of a block (ms).
        compute_ms_max: Longest processing time of a block (ms).
        latency_ms: Input-to-output delay of the algorithm and buffers (ms), without the
            audio interface's own.
    """

    blocks: int
    late_blocks: int
    underflows: int
    compute_ms_median: float
    compute_ms_max: float
    latency_ms: float


class EngineUnavailableError(ImportError):
    """An engine whose extra is not installed."""


def transfer_stream(
    saved: SavedModel,
    block_size: int,
    engine: Engine = "jax",
    f0_model: str = "tiny",
    pitch_shift: float | str = 0.0,
    loudness_shift: float | str = 0.0,
    quiet_db: float = 20.0,
) -> Any:
    """Live timbre transfer at the model's rate with ``engine``: ``"jax"``, the Python
    engine (``streaming.TransferStream``), or ``"onnx"``, the model exported to ONNX
    (``deploy.export_onnx``, in a temporary folder) and run in onnxruntime
    (``deploy.OnnxStream``: the same output but for the noise's generator, at about two
    thirds of the cost per block; needs the ``onnx`` extra).

    Raises:
        EngineUnavailableError: ``"onnx"`` without the ``onnx`` extra.
    """
    settings = (pitch_shift, loudness_shift, quiet_db)
    if engine == "jax":
        return TransferStream(saved, block_size, f0_model, *settings)
    if engine != "onnx":
        raise ValueError(f"engine must be one of {ENGINES}, got {engine!r}.")
    try:
        from ddsp_jax.deploy.onnx_export import OnnxStream, export_onnx
    except ImportError as error:
        raise EngineUnavailableError(
            "the onnx engine needs the onnx extra: pip install 'ddsp-jax[onnx]'"
        ) from error
    with tempfile.TemporaryDirectory() as folder:
        export_onnx(saved, folder, f0_model)
        return OnnxStream(folder, block_size, *settings)


class LiveEngine:
    """One host block per call of ``callback`` (the signature of a ``sounddevice`` callback).

    Args:
        stream: The processing, at the host's rate and block size.
        input_audio: Mono audio ``[n_samples]`` at the host's rate to play instead of a
            device input, or None.
        output_channels: Channels to write (each gets the mono output).
    """

    def __init__(
        self,
        stream: HostRateStream,
        input_audio: np.ndarray | None = None,
        output_channels: int = 1,
    ) -> None:
        self.stream = stream
        self.block = stream.host_block
        self.input_audio = input_audio
        self.output_channels = output_channels
        self.finished = threading.Event()
        self._mono = np.zeros(self.block, np.float32)
        self._times = np.zeros(1 << 16, np.float64)
        self._position = 0
        self.blocks = self.late_blocks = self.underflows = 0
        self.sink: queue.SimpleQueue | None = None

    def warm_up(self) -> None:
        """Compile every program and fill every buffer, then start again from silence."""
        for _ in range(3):
            self.stream.process(self._mono)
        self.stream.reset()
        self.stream.stream.reset()

    def _next_input(self, indata: np.ndarray | None) -> None:
        if self.input_audio is None:
            np.mean(indata, axis=1, out=self._mono)
            # A NaN would stay in the resampler's filter memory: NaN and inf samples count as 0.
            np.nan_to_num(self._mono, copy=False, nan=0.0, posinf=0.0, neginf=0.0)
            return
        chunk = self.input_audio[self._position : self._position + self.block]
        self._mono[: len(chunk)] = chunk
        self._mono[len(chunk) :] = 0.0
        self._position += self.block
        if self._position >= len(self.input_audio) + self.stream.latency:
            self.finished.set()

    def callback(
        self,
        indata: np.ndarray | None,
        outdata: np.ndarray | None,
        frames: int,
        time_info: Any,
        status: Any,
    ) -> None:
        """Process one block: ``indata`` ``[frames, channels]`` (or None when the input is a
        file) to ``outdata`` ``[frames, output_channels]`` (or None when the output is a
        file: the block goes to ``sink``)."""
        start = time.perf_counter()
        if status:
            self.underflows += int(bool(getattr(status, "output_underflow", False)))
            self.underflows += int(bool(getattr(status, "input_overflow", False)))
        if frames != self.block:
            raise ValueError(f"the audio interface gave {frames} frames, not {self.block}.")
        self._next_input(indata)
        out = self.stream.process(self._mono)
        if outdata is not None:
            outdata[:] = out[:, None]
        if self.sink is not None:
            self.sink.put(out.copy())
        elapsed = time.perf_counter() - start
        self._times[self.blocks % len(self._times)] = elapsed
        self.blocks += 1
        self.late_blocks += int(elapsed > self.block / self.stream.host_rate)

    def report(self) -> LiveReport:
        times = self._times[: min(self.blocks, len(self._times))] * 1e3
        return LiveReport(
            blocks=self.blocks,
            late_blocks=self.late_blocks,
            underflows=self.underflows,
            compute_ms_median=float(np.median(times)) if len(times) else 0.0,
            compute_ms_max=float(np.max(times)) if len(times) else 0.0,
            latency_ms=1e3 * self.stream.latency / self.stream.host_rate,
        )


def _open_output(path: Path, rate: int) -> Any:
    """A mono float WAV open for writing under a temporary name beside ``path`` (opened before
    the stream starts, so that an unwritable location fails at once)."""
    import soundfile as sf

    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        return sf.SoundFile(temporary_path(path), "w", rate, 1, subtype="FLOAT", format="WAV")
    except (OSError, sf.LibsndfileError) as error:
        raise OutputError(f"cannot write {path}: {error}") from error


def _write_blocks(out: Any, path: Path, blocks: queue.SimpleQueue) -> None:
    """Write blocks from ``blocks`` until None arrives, then rename the file into place
    (the writer thread)."""
    with out:
        while (block := blocks.get()) is not None:
            out.write(block)
    Path(out.name).replace(path)


def render_file(engine: LiveEngine, output: Path) -> LiveReport:
    """Run the engine over its whole input file as fast as it can and write ``output``
    aligned with the input (the latency removed, the input's length)."""
    assert engine.input_audio is not None
    engine.sink = queue.SimpleQueue()
    while not engine.finished.is_set():
        engine.callback(None, None, engine.block, None, None)
    blocks = [engine.sink.get() for _ in range(engine.sink.qsize())]
    audio = np.concatenate(blocks)[engine.stream.latency :][: len(engine.input_audio)]
    with _open_output(output, engine.stream.host_rate) as out:
        out.write(audio)
    Path(out.name).replace(output)
    return engine.report()


def sounddevice_stream(kind: str, **settings: Any) -> Any:
    """A ``sounddevice`` stream of ``kind`` (``duplex``, ``input`` or ``output``)."""
    import sounddevice as sd

    classes = {"duplex": sd.Stream, "input": sd.InputStream, "output": sd.OutputStream}
    return classes[kind](**settings)


def run(
    engine: LiveEngine,
    stream_factory: StreamFactory,
    input_device: Any,
    output_device: Any,
    output_file: Path | None,
    seconds: float | None,
) -> LiveReport:
    """Play in real time until the input file ends, ``seconds`` pass, or Ctrl-C.

    ``stream_factory(kind, **settings)`` opens the audio stream: ``sounddevice_stream``, or a
    stand-in that calls the callback as PortAudio would; the devices are None for a file on
    that side.
    """
    writer = None
    if output_file is not None:
        out = _open_output(output_file, engine.stream.host_rate)
        engine.sink = queue.SimpleQueue()
        writer = threading.Thread(target=_write_blocks, args=(out, output_file, engine.sink))
        writer.start()

    def callback(*args: Any) -> None:
        if input_device is not None and output_device is not None:
            indata, outdata, frames, time_info, status = args
        elif input_device is not None:
            (indata, frames, time_info, status), outdata = args, None
        else:
            (outdata, frames, time_info, status), indata = args, None
        engine.callback(indata, outdata, frames, time_info, status)

    if input_device is not None and output_device is not None:
        kind, device, channels = (
            "duplex",
            (input_device, output_device),
            (1, engine.output_channels),
        )
    elif input_device is not None:
        kind, device, channels = "input", input_device, 1
    else:
        kind, device, channels = "output", output_device, engine.output_channels
    stream = stream_factory(
        kind,
        samplerate=engine.stream.host_rate,
        blocksize=engine.block,
        device=device,
        channels=channels,
        dtype="float32",
        callback=callback,
    )
    try:
        with stream:
            engine.finished.wait(timeout=seconds)
    except KeyboardInterrupt:
        pass
    finally:
        if writer is not None:
            assert engine.sink is not None
            engine.sink.put(None)
            writer.join()
    return engine.report()
