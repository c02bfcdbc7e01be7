"""``ddsp app``: timbre transfer in the browser, served from this machine.

A Starlette application (the ``app`` extra) with two hand-written pages. ``/``: choose a
model, upload or record a sound, set magenta's timbre-transfer controls, then hear, download
and see the result; the work itself is ``inference.play``, as ``ddsp transfer`` runs it.
``/play``: the model played live in the browser (``app.live``).

Bounds: one transfer runs at a time (a FIFO queue whose position each waiting request sees;
the page stays served meanwhile, the transfer running in a worker thread), uploads are
limited in size and in seconds of audio, a transfer is stopped past a time limit, and each
request works in its own temporary folder, removed once its result has expired. The server
serves its own assets, the vendored web runtime, the live exports of the models it lists
and the results of its jobs by their random ids, nothing else of the file system; models
are chosen by name among those it lists.
"""

import collections
import contextlib
import dataclasses
import json
import secrets
import shutil
import tempfile
import threading
import time
from collections.abc import AsyncIterator, Iterator
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from ddsp_jax.app.live import (
    EXPORT_FILES,
    VENDOR_FILES,
    LiveError,
    LiveExports,
    note_rules,
    vendor_folder,
    vendored,
)
from ddsp_jax.data.audio import UnusableInputError, audio_blocks, audio_info
from ddsp_jax.features.notes import CONFIDENT
from ddsp_jax.models.saved import SavedModel, load_model

STATIC_FILES = {
    "index.html": "text/html",
    "play.html": "text/html",
    "common.js": "text/javascript",
    "app.js": "text/javascript",
    "play.js": "text/javascript",
    "synth-worklet.mjs": "text/javascript",
    "worklet-scope.mjs": "text/javascript",
    "style.css": "text/css",
}
PLOT_SECONDS = 60.0  # The figure shows the first minute, as ``ddsp transfer --plot``.


@dataclasses.dataclass(frozen=True)
class AppConfig:
    """The server's limits.

    Attributes:
        models: A folder whose model folders (``ddsp export``'s) are offered; None: the
            instruments that come with the package.
        max_upload_bytes: The largest upload accepted.
        max_seconds: The longest audio accepted (s).
        time_limit: A transfer running longer is stopped (s).
        keep_seconds: How long a result stays downloadable (s).
    """

    models: Path | None = None
    max_upload_bytes: int = 50 * 1024 * 1024
    max_seconds: float = 300.0
    time_limit: float = 600.0
    keep_seconds: float = 3600.0


class JobError(Exception):
    """What the page shows when a transfer cannot be done."""


@dataclasses.dataclass
class Job:
    """One transfer: its settings, where it stands and its folder."""

    id: str
    model: str
    settings: dict[str, Any]
    folder: Path
    input_name: str
    state: str = "queued"  # queued, running, done, error
    stage: str = ""
    fraction: float = 0.0
    message: str = ""
    report: dict[str, Any] | None = None
    finished: float | None = None

    def public(self, position: int | None) -> dict[str, Any]:
        """What the page polls."""
        out: dict[str, Any] = {
            "id": self.id,
            "state": self.state,
            "stage": self.stage,
            "fraction": round(self.fraction, 3),
            "message": self.message,
        }
        if position is not None:
            out["position"] = position
        if self.state == "done":
            out["audio"] = f"/api/jobs/{self.id}/output.wav"
            out["plot"] = f"/api/jobs/{self.id}/plot.png"
            out["report"] = self.report
        return out


def model_summaries(models: Path | None) -> dict[str, tuple[Path, dict[str, Any]]]:
    """The models offered, by name: each model folder under ``models`` (or the bundled
    instruments) with what the page shows of it."""
    if models is None:
        from ddsp_jax.instruments import bundled_instruments

        folders = {instrument.name: path for instrument, path, _ in bundled_instruments()}
    else:
        folders = {
            path.name: path
            for path in sorted(Path(models).iterdir())
            if (path / "model.json").is_file()
        }
    out = {}
    for name, path in folders.items():
        try:
            statistics = json.loads((path / "dataset.json").read_text()).get("statistics") or {}
            config = json.loads((path / "model.json").read_text())
        except (OSError, ValueError, KeyError, TypeError):
            continue  # Not a readable model folder: not offered.
        quantiles = statistics.get("f0_midi_quantiles") or []
        out[name] = (
            path,
            {
                "name": name,
                "sample_rate": config["config"]["model"]["synth"]["sample_rate"],
                "mean_pitch_midi": statistics.get("mean_pitch_midi"),
                "pitch_range_midi": [quantiles[0], quantiles[-1]] if quantiles else None,
                "note_loudness_db_quantiles": statistics.get("note_loudness_db_quantiles"),
            },
        )
    return out


def _number(form: dict[str, str], name: str, low: float, high: float, default: float) -> float:
    text = form.get(name, "")
    try:
        value = float(text) if text != "" else default
    except ValueError:
        raise JobError(f"{name} must be a number, got {text!r}.") from None
    if not (low <= value <= high):
        raise JobError(f"{name} must be between {low:g} and {high:g}, got {value:g}.")
    return value


def transfer_settings(form: dict[str, str]) -> dict[str, Any]:
    """``inference.adjust``'s settings from the page's form (checked, named in errors)."""
    pitch = form.get("pitch_shift", "auto") or "auto"
    loudness = form.get("loudness_shift", "auto") or "auto"
    return {
        "pitch_shift": "auto" if pitch == "auto" else _number(form, "pitch_shift", -48, 48, 0),
        "loudness_shift": (
            "auto" if loudness == "auto" else _number(form, "loudness_shift", -60, 60, 0)
        ),
        "quiet_db": _number(form, "quiet_db", 0, 80, 20),
        "autotune_amount": _number(form, "autotune_amount", 0, 1, 0),
        "note_threshold": _number(form, "note_threshold", 0, 1, CONFIDENT),
    }


class Transfers:
    """The queue of transfers and the worker thread that runs them one at a time."""

    def __init__(self, config: AppConfig) -> None:
        self.config = config
        self.root = Path(tempfile.mkdtemp(prefix="ddsp-app-"))
        self.models = model_summaries(config.models)
        self.live = LiveExports(
            self.root / "live", {name: path for name, (path, _) in self.models.items()}
        )
        self.jobs: dict[str, Job] = {}
        self.queue: collections.deque[str] = collections.deque()
        self._loaded: dict[str, SavedModel] = {}
        self._lock = threading.Condition()
        self._closed = False
        self._worker = threading.Thread(target=self._run, name="ddsp-app-worker", daemon=True)
        self._worker.start()

    def submit(self, model: str, settings: dict[str, Any], name: str, data: bytes) -> Job:
        """Queue a transfer of the uploaded ``data`` (a file called ``name``).

        Raises:
            JobError: For an unknown model or an upload beyond the limits.
        """
        if model not in self.models:
            raise JobError(f"no model called {model!r}; choose one of {', '.join(self.models)}.")
        if len(data) > self.config.max_upload_bytes:
            raise JobError(self.too_large())
        self.expire()
        job_id = secrets.token_hex(16)
        folder = self.root / job_id
        folder.mkdir()
        suffix = "".join(Path(name).suffixes[-1:])[:10] or ".audio"
        (folder / f"input{suffix}").write_bytes(data)
        job = Job(job_id, model, settings, folder, Path(name).name)
        with self._lock:
            self.jobs[job_id] = job
            self.queue.append(job_id)
            self._lock.notify()
        return job

    def too_large(self) -> str:
        megabytes = self.config.max_upload_bytes / 1024 / 1024
        return f"the upload is larger than {megabytes:g} MB."

    def status(self, job_id: str) -> dict[str, Any] | None:
        job = self.jobs.get(job_id)
        if job is None:
            return None
        with self._lock:
            position = list(self.queue).index(job_id) + 1 if job_id in self.queue else None
        return job.public(position)

    def result(self, job_id: str, name: str) -> Path | None:
        """The file ``name`` (``output.wav`` or ``plot.png``) of a finished job, or None."""
        job = self.jobs.get(job_id)
        if job is None or job.state != "done" or name not in ("output.wav", "plot.png"):
            return None
        path = job.folder / name
        return path if path.is_file() else None

    def expire(self) -> None:
        """Remove the folders of jobs finished more than ``keep_seconds`` ago."""
        now = time.monotonic()
        for job_id, job in list(self.jobs.items()):
            if job.finished is not None and now - job.finished > self.config.keep_seconds:
                shutil.rmtree(job.folder, ignore_errors=True)
                self.jobs.pop(job_id, None)

    def close(self) -> None:
        """Stop the worker and remove every job's folder."""
        with self._lock:
            self._closed = True
            self._lock.notify()
        self._worker.join(timeout=5)
        shutil.rmtree(self.root, ignore_errors=True)

    def _run(self) -> None:
        while True:
            with self._lock:
                while not self.queue and not self._closed:
                    self._lock.wait()
                if self._closed:
                    return
                job = self.jobs[self.queue.popleft()]
                job.state = "running"
            try:
                self._transfer(job)
                job.state = "done"
            except JobError as error:
                job.state, job.message = "error", str(error)
            except Exception as error:
                job.state, job.message = "error", f"the transfer failed: {error}"
            finally:
                job.finished = time.monotonic()
                for path in job.folder.glob("input*"):
                    path.unlink(missing_ok=True)

    def _model(self, name: str) -> SavedModel:
        if name not in self._loaded:
            self._loaded[name] = load_model(self.models[name][0])
        return self._loaded[name]

    def _transfer(self, job: Job) -> None:
        from ddsp_jax import plots
        from ddsp_jax.files import audio_writer
        from ddsp_jax.inference import LOUDNESS_WARNING_DB, SilentInputError, loudness_advice, play

        config = self.config
        source = next(job.folder.glob("input*"))
        try:
            details = audio_info(source)
        except UnusableInputError as error:
            raise JobError(
                f"{job.input_name} is not audio this server can read ({error})."
            ) from None
        n_samples, rate = details["frames"], details["sample_rate"]
        if n_samples / rate > config.max_seconds:
            raise JobError(
                f"{job.input_name} is {n_samples / rate:.0f} s long; the limit is "
                f"{config.max_seconds:g} s."
            )
        saved = self._model(job.model)
        f0_model = (saved.statistics or {}).get("f0_model") or "full"
        started = time.monotonic()

        def report(stage: str, fraction: float) -> None:
            job.stage, job.fraction = stage, fraction
            if time.monotonic() - started > config.time_limit:
                raise JobError(f"the transfer took longer than {config.time_limit:g} s.")

        kept = round(PLOT_SECONDS * rate)
        heads: tuple[list[np.ndarray], list[np.ndarray]] = ([], [])

        def keep(block: np.ndarray, into: list[np.ndarray]) -> np.ndarray:
            if sum(len(b) for b in into) < kept:
                into.append(block)
            return block

        try:
            with audio_writer(job.folder / "output.wav", rate) as sink:
                rendering = play(
                    saved,
                    (keep(block, heads[0]) for block in audio_blocks(source)),
                    n_samples,
                    rate,
                    lambda block: sink.write(keep(block, heads[1])),
                    f0_model,
                    job.settings,
                    on_progress=report,
                )
        except (SilentInputError, UnusableInputError, ValueError) as error:
            raise JobError(f"{job.input_name}: {str(error).rstrip('.')}.") from None
        frames = round(PLOT_SECONDS * saved.frame_rate)
        plots.transfer(
            np.concatenate(heads[0])[:kept],
            np.concatenate(heads[1])[:kept],
            rate,
            {name: values[:frames] for name, values in rendering.features.items()},
            {name: values[:frames] for name, values in rendering.adjusted.items()},
            saved.frame_rate,
            job.folder / "plot.png",
        )
        report_out = dict(rendering.report or {})
        error_db = report_out.get("loudness_error_db", 0.0)
        if abs(error_db) > LOUDNESS_WARNING_DB:
            side = "quieter" if error_db < 0 else "louder"
            report_out["warning"] = (
                f"On the note frames the output is {abs(error_db):.0f} dB {side} than the "
                f"loudness it was given: the model does not follow this input's dynamics; "
                f"{loudness_advice(saved)}."
            )
        job.report = report_out


def create_app(config: AppConfig) -> Any:
    """The Starlette application of ``config`` (its ``state.transfers`` holds the queue).

    Raises:
        ImportError: Without the ``app`` extra.
    """
    try:
        from starlette.applications import Starlette
        from starlette.concurrency import run_in_threadpool
        from starlette.requests import Request
        from starlette.responses import FileResponse, JSONResponse, Response
        from starlette.routing import Route
    except ImportError as error:
        raise ImportError("ddsp app needs its extra: pip install 'ddsp-jax[app]'.") from error

    transfers = Transfers(config)
    static = resources.files("ddsp_jax.app") / "static"

    def error(status: int, message: str) -> JSONResponse:
        return JSONResponse({"error": message}, status_code=status)

    async def asset(request: Request) -> Response:
        page = "play.html" if request.url.path == "/play" else "index.html"
        name = request.path_params.get("name", page)
        if name not in STATIC_FILES:  # Only the pages' own files, by exact name.
            return error(404, "not found")
        return Response((static / name).read_bytes(), media_type=STATIC_FILES[name])

    async def vendor_asset(request: Request) -> Response:
        name = request.path_params["name"]
        path = vendor_folder() / name
        if name not in VENDOR_FILES or not path.is_file():
            return error(404, "not found")
        return Response(path.read_bytes(), media_type=VENDOR_FILES[name])

    async def live_file(request: Request) -> Response:
        model, name = request.path_params["model"], request.path_params["name"]
        try:
            path = await run_in_threadpool(transfers.live.file, model, name)
        except KeyError:
            return error(404, "not found")
        except LiveError as problem:
            return error(400, str(problem))
        return FileResponse(path, media_type=EXPORT_FILES[name])

    async def models(request: Request) -> JSONResponse:
        return JSONResponse(
            {
                "models": [summary for _, summary in transfers.models.values()],
                "limits": {
                    "max_upload_bytes": config.max_upload_bytes,
                    "max_seconds": config.max_seconds,
                },
                "live": {"vendored": vendored(), **note_rules()},
            }
        )

    async def submit(request: Request) -> JSONResponse:
        length = request.headers.get("content-length")
        if length is not None and length.isdigit() and int(length) > config.max_upload_bytes:
            return error(413, transfers.too_large())
        try:
            form = await request.form(max_part_size=config.max_upload_bytes)
        except Exception as problem:
            return error(400, f"the form could not be read ({problem}).")
        upload = form.get("audio")
        if upload is None or isinstance(upload, str):
            return error(400, "choose or record a sound first.")
        data = await upload.read(config.max_upload_bytes + 1)
        fields = {key: value for key, value in form.items() if isinstance(value, str)}
        try:
            settings = transfer_settings(fields)
            job = transfers.submit(fields.get("model", ""), settings, upload.filename or "", data)
        except JobError as problem:
            status = 413 if len(data) > config.max_upload_bytes else 400
            return error(status, str(problem))
        return JSONResponse(transfers.status(job.id), status_code=202)

    async def job_status(request: Request) -> JSONResponse:
        status = transfers.status(request.path_params["job"])
        return error(404, "no such job") if status is None else JSONResponse(status)

    async def job_file(request: Request) -> Response:
        name = request.path_params["name"]
        path = transfers.result(request.path_params["job"], name)
        if path is None:
            return error(404, "not found")
        filename = "transfer.wav" if name == "output.wav" else "transfer.png"
        return FileResponse(path, filename=filename if name == "output.wav" else None)

    @contextlib.asynccontextmanager
    async def lifespan(app: Any) -> AsyncIterator[None]:
        yield
        transfers.close()

    app = Starlette(
        routes=[
            Route("/", asset),
            Route("/play", asset),
            Route("/static/{name}", asset),
            Route("/static/vendor/{name}", vendor_asset),
            Route("/api/models", models),
            Route("/api/models/{model}/live/{name}", live_file),
            Route("/api/transfer", submit, methods=["POST"]),
            Route("/api/jobs/{job}", job_status),
            Route("/api/jobs/{job}/{name}", job_file),
        ],
        lifespan=lifespan,
        max_body_size=config.max_upload_bytes + (1 << 20),  # The form's own fields besides.
    )
    app.state.transfers = transfers
    return app


@contextlib.contextmanager
def serving(app: Any, host: str = "127.0.0.1", port: int = 0) -> Iterator[str]:
    """Serve ``app`` with uvicorn in a background thread while the block runs; yields its
    address (``http://host:port``; ``port`` 0 picks a free one).

    Raises:
        RuntimeError: When the server does not start within 30 s.
    """
    import uvicorn

    server = uvicorn.Server(uvicorn.Config(app, host=host, port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, name="ddsp-app-server", daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the app's server did not start.")
        time.sleep(0.02)
    bound = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://{host}:{bound}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
