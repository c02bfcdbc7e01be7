"""The live page's side of ``ddsp app``: the offered models as ONNX exports and the web
runtime that plays them in the browser.

``/play`` runs a model's streaming synthesis (``deploy.onnx_export.synth_graph``) in
onnxruntime-web inside an AudioWorklet, conditioned by the keyboard, Web MIDI or the
microphone (``features.onnx`` in the page). Each model is exported once, on the first
request for it, into the server's temporary folder. The runtime's files are npm's
``onnxruntime-web``, vendored at build time with its version pinned and its licence kept
(``tools/vendor_web.py``); they are served from the package, so the page needs no network.
"""

import threading
from importlib import resources
from pathlib import Path
from typing import Any

from ddsp_jax.core.units import DB_RANGE
from ddsp_jax.features.notes import CONFIDENT, NOTE_MIN_LOUDNESS_DB

EXPORT_FILES = {
    "synth.onnx": "application/octet-stream",
    "features.onnx": "application/octet-stream",
    "metadata.json": "application/json",
}
VENDOR_FILES = {
    "ort.wasm.bundle.min.mjs": "text/javascript",
    "ort-wasm-simd-threaded.wasm": "application/wasm",
    "NOTICE.txt": "text/plain",
}
LIVE_F0_MODEL = "tiny"  # The microphone's CREPE in the page: ~5 ms a frame in wasm.


class LiveError(Exception):
    """Why a model cannot be played live; what the page shows."""


def vendor_folder() -> Any:
    """The vendored web runtime's folder in the package (a ``Traversable``)."""
    return resources.files("ddsp_jax.app") / "static" / "vendor"


def vendored() -> bool:
    """Whether the package holds every file of the web runtime."""
    return all((vendor_folder() / name).is_file() for name in VENDOR_FILES)


def note_rules() -> dict[str, float]:
    """What the page needs to adjust the microphone's features as ``ddsp live`` does: a
    note frame's least f0 confidence and loudness, and the loudness floor (dB)."""
    return {
        "confident": CONFIDENT,
        "note_min_loudness_db": NOTE_MIN_LOUDNESS_DB,
        "floor_db": -DB_RANGE,
    }


class LiveExports:
    """Each model's ONNX export, made once on demand under ``root`` (one model at a time;
    requests for other models' files are served meanwhile).

    Args:
        root: A folder of the server's own.
        folders: The offered model folders by name.
    """

    def __init__(self, root: Path, folders: dict[str, Path]) -> None:
        self.root = root
        self.folders = folders
        self._lock = threading.Lock()
        self._failed: dict[str, str] = {}

    def file(self, model: str, name: str) -> Path:
        """The file ``name`` (one of ``EXPORT_FILES``) of ``model``'s export.

        Raises:
            KeyError: For an unknown model or file name.
            LiveError: When the model cannot be exported (the reason, naming it).
        """
        if model not in self.folders or name not in EXPORT_FILES:
            raise KeyError(f"{model}/{name}")
        folder = self.root / model
        if (folder / "metadata.json").is_file():  # Written last: the export is complete.
            return folder / name
        with self._lock:
            if model in self._failed:
                raise LiveError(self._failed[model])
            if not (folder / "metadata.json").is_file():
                try:
                    self._export(model, folder)
                except LiveError as error:
                    self._failed[model] = str(error)
                    raise
        return folder / name

    def _export(self, model: str, folder: Path) -> None:
        try:
            from ddsp_jax.deploy.onnx_export import export_onnx
        except ImportError as error:
            raise LiveError(
                f"playing live needs the onnx package ({error}): pip install 'ddsp-jax[app]'."
            ) from None
        from ddsp_jax.deploy.stablehlo import ExportError
        from ddsp_jax.models.saved import load_model

        try:
            export_onnx(load_model(self.folders[model]), folder, f0_model=LIVE_F0_MODEL)
        except (ExportError, ValueError, OSError) as error:
            raise LiveError(f"{model} cannot be played live: {error}") from None
