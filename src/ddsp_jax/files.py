"""Writing files so that a failure never leaves a damaged one: each is written under a
temporary name beside its place, then renamed into it (a rename within a folder is atomic);
a failed write removes its temporary and leaves whatever was there before untouched.

``check_output`` tells a user of a bad output path before the work that would fill it.
"""

import contextlib
import errno
import json
import os
import shutil
from collections.abc import Iterator, Sequence
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


def write_files(folder: str | Path, contents: dict[str, bytes], stale: Sequence[str] = ()) -> None:
    """Write the files of one folder so that a failure changes none of them: each is written
    under its temporary name first, and only when all are written are they renamed into
    place, in ``contents``' order (the file a reader checks first, e.g. a folder's metadata,
    goes last); then the files named in ``stale`` (an earlier version's that this one does
    not have) are removed. A failed write removes the temporaries."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    temporaries = [temporary_path(folder / name) for name in contents]
    try:
        for temporary, data in zip(temporaries, contents.values(), strict=True):
            temporary.write_bytes(data)
    except BaseException:
        for temporary in temporaries:
            temporary.unlink(missing_ok=True)
        raise
    for temporary, name in zip(temporaries, contents, strict=True):
        temporary.replace(folder / name)
    for name in stale:
        (folder / name).unlink(missing_ok=True)


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


def _audio_write_error(error: Exception, path: Path) -> OSError:
    """libsndfile's failed write as the ``OSError`` of the system call under it (its errno,
    e.g. ENOSPC on a full disk; EIO when unknown)."""
    import soundfile

    code = getattr(getattr(soundfile, "_ffi", None), "errno", 0) or errno.EIO
    return OSError(code, f"{os.strerror(code)} (libsndfile: {error})", str(path))


@contextlib.contextmanager
def audio_writer(
    path: str | Path, sample_rate: int, channels: int = 1, subtype: str = "FLOAT"
) -> Iterator[Any]:
    """A ``soundfile.SoundFile`` open for writing blocks, in the format ``path``'s extension
    names (``audio_format``), under the temporary name: renamed to ``path`` when the block
    ends without an exception, removed when it raises. ``subtype`` is used where the format
    has it, else the format's default (FLAC: 16-bit, OGG: Vorbis). A failed write raises
    ``OSError`` with the system's reason (libsndfile's own error says only "System
    error")."""
    import soundfile

    format_name = audio_format(path)
    if not soundfile.check_format(format_name, subtype):
        subtype = soundfile.default_subtype(format_name)
    with atomic_path(path) as temporary:
        try:
            with soundfile.SoundFile(
                temporary, "w", sample_rate, channels, subtype, format=format_name
            ) as file:
                try:
                    yield file
                except soundfile.LibsndfileError as error:
                    raise _audio_write_error(error, Path(path)) from error
        except soundfile.LibsndfileError as error:  # Opening, or the header on closing.
            raise _audio_write_error(error, Path(path)) from error


def write_audio(path: str | Path, audio: np.ndarray, sample_rate: int, subtype: str) -> None:
    """Write ``audio`` (``[n_samples]`` or ``[n_samples, channels]``) to ``path`` atomically,
    in the format its extension names (``audio_format``) and soundfile's ``subtype``."""
    audio = np.asarray(audio)
    with audio_writer(path, sample_rate, 1 if audio.ndim == 1 else audio.shape[1], subtype) as f:
        f.write(audio)


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
