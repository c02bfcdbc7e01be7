"""Audio inputs: finding audio files, reading any format libsndfile reads, and the checks
that tell a usable file from a damaged one."""

import glob
import re
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf
import soxr

# Extensions picked up when walking a folder; files named explicitly are always tried.
AUDIO_EXTENSIONS = frozenset(
    {".wav", ".wave", ".flac", ".ogg", ".oga", ".opus", ".mp3", ".aif", ".aiff", ".aifc"}
    | {".au", ".snd", ".caf", ".w64", ".rf64"}
)


class InputError(ValueError):
    """An input path or pattern that names no file."""


class UnusableInputError(ValueError):
    """One input file (or note) that cannot be used; the message says why."""


def readable_formats() -> str:
    """The formats the installed libsndfile reads, e.g. ``"AIFF, FLAC, MP3, OGG, WAV, ..."``."""
    return ", ".join(sorted(sf.available_formats()))


def find_audio_files(inputs: Sequence[str | Path]) -> list[Path]:
    """The files named by ``inputs``: files, folders (searched recursively for audio
    extensions) and glob patterns, in order without repeats.

    Raises:
        InputError: For an input that names nothing, or when no audio file is found.
    """
    found: dict[Path, None] = {}
    for item in inputs:
        text = str(item)
        if glob.has_magic(text):
            matches = [Path(m) for m in sorted(glob.glob(text, recursive=True))]
            if not matches:
                raise InputError(f"{text}: the pattern matches no files.")
        else:
            matches = [Path(text)]
        for match in matches:
            if match.is_dir():
                for path in sorted(match.rglob("*")):
                    if path.is_file() and path.suffix.lower() in AUDIO_EXTENSIONS:
                        found.setdefault(path, None)
            elif match.is_file():
                found.setdefault(match, None)
            else:
                raise InputError(f"{match}: no such file or folder.")
    if inputs and not found:
        raise InputError(
            f"no audio files found in {', '.join(str(i) for i in inputs)} "
            f"(looked for {', '.join(sorted(AUDIO_EXTENSIONS))})."
        )
    return list(found)


# libsndfile's log line for a data chunk whose stated length runs past the end of the file.
_DATA_LENGTH = re.compile(r"^data\s*:\s*(\d+)\s*\(should be (\d+)\)", re.MULTILINE)
_UNKNOWN_LENGTH = 0xFFFFFFF0  # Streaming writers (pipes, recorders) put 0xFFFFFFFF here.


def _truncated(log: str) -> bool:
    """Whether libsndfile's header log says the audio data was cut short: its stated length
    exceeds what the file holds, unless the length is a streaming writer's placeholder."""
    match = _DATA_LENGTH.search(log)
    if match is None:
        return False
    stated, present = int(match.group(1)), int(match.group(2))
    return present < stated < _UNKNOWN_LENGTH


def audio_info(path: str | Path) -> dict[str, Any]:
    """What a file holds, checked before reading it: ``sample_rate``, ``channels``,
    ``subtype``, ``frames`` (samples per channel) and ``seconds``.

    Raises:
        UnusableInputError: For an unreadable, truncated or empty file.
    """
    try:
        info = sf.info(str(path))
    except (sf.LibsndfileError, RuntimeError, EOFError) as error:
        raise UnusableInputError(
            f"unreadable audio ({error}); libsndfile {sf.__libsndfile_version__} reads "
            f"{readable_formats()}"
        ) from error
    if _truncated(info.extra_info):
        raise UnusableInputError("truncated: the header promises more audio than the file holds")
    if info.frames == 0:
        raise UnusableInputError("no samples")
    return {
        "sample_rate": int(info.samplerate),
        "channels": int(info.channels),
        "subtype": info.subtype,
        "frames": int(info.frames),
        "seconds": info.frames / info.samplerate,
    }


def audio_blocks(path: str | Path, block_size: int = 1 << 16) -> Iterator[np.ndarray]:
    """The file's audio as consecutive mono float32 blocks ``[≤ block_size]`` at its own
    rate (channels averaged), read a block at a time: memory does not grow with the file.

    Raises:
        UnusableInputError: For a file that cannot be read to its end, or NaN/inf samples.
    """
    try:
        with sf.SoundFile(str(path)) as file:
            for block in file.blocks(block_size, dtype="float32", always_2d=True):
                if not np.all(np.isfinite(block)):
                    raise UnusableInputError("NaN or infinite samples")
                yield block.mean(axis=1)
    except (sf.LibsndfileError, RuntimeError, EOFError) as error:
        raise UnusableInputError(f"unreadable audio ({error})") from error


def load_audio(path: str | Path, sample_rate: int | None) -> tuple[np.ndarray, dict[str, Any]]:
    """Mono float32 audio ``[n_samples]`` at ``sample_rate`` (None: the file's) from any file
    libsndfile reads (any rate and bit depth; channels averaged; resampled with soxr's
    high-quality filter).

    Returns:
        ``(audio, info)``: ``info`` has the file's ``sample_rate``, ``channels``, ``subtype``
        and ``seconds``.

    Raises:
        UnusableInputError: For an unreadable, truncated or empty file, or NaN/inf samples.
    """
    details = audio_info(path)
    mono = np.concatenate(list(audio_blocks(path)))
    if len(mono) == 0:
        raise UnusableInputError("no samples")
    del details["frames"]
    details["seconds"] = len(mono) / details["sample_rate"]
    if sample_rate is not None and details["sample_rate"] != sample_rate:
        mono = soxr.resample(mono, details["sample_rate"], sample_rate, "HQ").astype(np.float32)
    return mono, details
