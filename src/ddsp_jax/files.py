"""Writing files so that a failure never leaves a damaged one: each is written under a
temporary name beside its place, then renamed into it (a rename within a folder is atomic);
a failed write removes its temporary and leaves whatever was there before untouched.

``check_output`` tells a user of a bad output path before the work that would fill it.
"""

import contextlib
import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

AUDIO_FORMATS = {".wav": "WAV", ".flac": "FLAC", ".ogg": "OGG", ".aiff": "AIFF", ".aif": "AIFF"}


def temporary_path(path: Path) -> Path:
    """The hidden name beside ``path`` that a file is written under before the rename."""
    return path.with_name(f".{path.name}.partial")


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """A temporary path to write ``path``'s content to; renamed to ``path`` when the block
    ends without an exception, removed when it raises."""
    path = Path(path)
    temporary = temporary_path(path)
    try:
        yield temporary
        temporary.replace(path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


def write_atomically(path: str | Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file and a rename."""
    with atomic_path(path) as temporary:
        temporary.write_bytes(data)


def write_json(path: str | Path, data: Any, indent: int = 1) -> None:
    """Write ``data`` as JSON (one trailing newline) to ``path``, atomically."""
    write_atomically(path, (json.dumps(data, indent=indent) + "\n").encode())


def audio_format(path: str | Path) -> str:
    """soundfile's format name for ``path``'s extension.

    Raises:
        ValueError: An extension that names no audio format we write.
    """
    suffix = Path(path).suffix.lower()
    if suffix not in AUDIO_FORMATS:
        raise ValueError(
            f"{path}: cannot tell the audio format from the extension {suffix or '(none)'!r}; "
            f"use one of {', '.join(AUDIO_FORMATS)}."
        )
    return AUDIO_FORMATS[suffix]


def write_audio(path: str | Path, audio: np.ndarray, sample_rate: int, subtype: str) -> None:
    """Write ``audio`` (``[n_samples]`` or ``[n_samples, channels]``) to ``path`` atomically,
    in the format its extension names (``audio_format``) and soundfile's ``subtype``."""
    import soundfile

    format_name = audio_format(path)
    with atomic_path(path) as temporary:
        soundfile.write(temporary, audio, sample_rate, subtype=subtype, format=format_name)


def save_figure(figure: Any, path: str | Path, **options: Any) -> None:
    """``figure.savefig`` to ``path`` atomically, in the format its extension names."""
    suffix = Path(path).suffix.lstrip(".").lower() or "png"
    with atomic_path(path) as temporary:
        figure.savefig(temporary, format=suffix, **options)


def check_output(path: str | Path, needed_bytes: int = 0, folder: bool = False) -> None:
    """Check, before any work, that ``path`` can be written: a file (or with ``folder`` a
    folder) whose parent exists or can be made, is writable, and has ``needed_bytes`` free.

    Raises:
        OSError: With the reason and the path (what ``main`` prints as one line).
    """
    path = Path(path)
    if folder:
        if path.exists() and not path.is_dir():
            raise NotADirectoryError(20, "exists and is not a folder", str(path))
    elif path.is_dir():
        raise IsADirectoryError(21, "is a folder, not a file", str(path))
    existing = path if folder and path.is_dir() else path.parent
    while not existing.exists():
        existing = existing.parent
    if not existing.is_dir():
        raise NotADirectoryError(20, "a parent is not a folder", str(existing))
    if not os.access(existing, os.W_OK | os.X_OK):
        raise PermissionError(13, "cannot write into this folder", str(existing))
    if needed_bytes and shutil.disk_usage(existing).free < needed_bytes:
        free = shutil.disk_usage(existing).free
        raise OSError(
            28, f"{needed_bytes / 1e6:.1f} MB needed, {free / 1e6:.1f} MB free", str(existing)
        )
