"""Training metrics: a JSON-lines log in the run folder, mirrored to TensorBoard when
``tensorboardX`` is installed (the ``tensorboard`` extra)."""

import importlib.util
import json
import time
from pathlib import Path
from typing import Any

from ddsp_jax.files import write_atomically

METRICS_FILE = "metrics.jsonl"
TENSORBOARD_DIR = "tensorboard"
SUMMARIES_DIR = "summaries"  # A run's summary figures, one PNG per evaluation.


def tensorboard_available() -> bool:
    """Whether ``tensorboardX`` can be imported."""
    return importlib.util.find_spec("tensorboardX") is not None


class MetricsLog:
    """Appends one record per step to ``metrics.jsonl`` and, if available, TensorBoard.

    Opening the log at ``step`` drops records logged after it: a killed run may have logged
    past its last checkpoint, and the resumed run logs those steps again. TensorBoard is told
    the same (``purge_step``), so its curves show no duplicates either. With ``enabled``
    False (a process other than the first of a multi-host run) it writes nothing.
    """

    def __init__(
        self, run_dir: str | Path, step: int, tensorboard: bool = True, enabled: bool = True
    ) -> None:
        self.path = Path(run_dir) / METRICS_FILE
        self._file = None
        self._writer = None
        if not enabled:
            return
        _truncate(self.path, step)
        self._file = self.path.open("a")
        if tensorboard and tensorboard_available():
            from tensorboardX import SummaryWriter

            # tensorboardX names event files by the second; a run resumed within the same
            # second would overwrite its predecessor's file without a finer suffix.
            self._writer = SummaryWriter(
                str(Path(run_dir) / TENSORBOARD_DIR),
                purge_step=step + 1,
                flush_secs=10,
                filename_suffix=f".{time.time_ns()}",
            )

    def write(self, record: dict[str, Any]) -> None:
        """Log ``record`` (it must have ``step``; its numeric values but ``time``, the Unix
        time, become TensorBoard scalars)."""
        if self._file is None:
            return
        self._file.write(json.dumps(record) + "\n")
        self._file.flush()
        if self._writer is not None:
            for name, value in record.items():
                if (
                    name not in ("step", "time")
                    and isinstance(value, int | float)
                    and not isinstance(value, bool)
                ):
                    self._writer.add_scalar(name, value, record["step"])

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
        if self._writer is not None:
            self._writer.close()

    def __enter__(self) -> "MetricsLog":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def _truncate(path: Path, step: int) -> None:
    """Drop records logged after ``step``."""
    if not path.exists():
        return
    kept = [
        line
        for line in path.read_text().splitlines()
        if line.strip() and json.loads(line)["step"] <= step
    ]
    write_atomically(path, "".join(line + "\n" for line in kept).encode())


def read_metrics(run_dir: str | Path) -> list[dict[str, Any]]:
    """The metrics of a run folder, one dict per logged step."""
    path = Path(run_dir) / METRICS_FILE
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def write_summary(
    run_dir: str | Path,
    step: int,
    audio: dict[str, Any],
    sample_rate: int,
    figure: Any,
    tensorboard: bool = True,
) -> Path:
    """Write held-out examples' ``audio`` (name → mono ``[n_samples]`` in [-1, 1]) and a
    ``figure`` (a matplotlib figure, then closed) for ``step``: the figure as
    ``summaries/step-NNNNNN.png`` in the run folder and, when ``tensorboardX`` is installed
    and ``tensorboard``, both in TensorBoard beside the scalars (an event file of their own).
    Returns the PNG's path."""
    from ddsp_jax.plots import save

    if tensorboard and tensorboard_available():
        from tensorboardX import SummaryWriter

        folder = str(Path(run_dir) / TENSORBOARD_DIR)
        with SummaryWriter(folder, filename_suffix=f".summary.{time.time_ns()}") as writer:
            for name, samples in audio.items():
                writer.add_audio(name, samples, step, sample_rate=sample_rate)
            writer.add_figure("summary", figure, step, close=False)
    path = Path(run_dir) / SUMMARIES_DIR / f"step-{step:06d}.png"
    path.parent.mkdir(parents=True, exist_ok=True)
    return save(figure, path)
