"""Writing files so that a failure never leaves a damaged one: each is written under a
temporary name beside its place, then renamed into it (a rename within a folder is atomic)."""

from pathlib import Path


def temporary_path(path: Path) -> Path:
    """The hidden name beside ``path`` that a file is written under before the rename."""
    return path.with_name(f".{path.name}.partial")


def write_atomically(path: str | Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through ``temporary_path`` and a rename."""
    path = Path(path)
    temporary = temporary_path(path)
    temporary.write_bytes(data)
    temporary.replace(path)
