"""NSynth without TensorFlow: its TFRecord and json/wav distributions, and the GANSynth subset.

NSynth (Engel et al., 2017) notes are 4 s of 16 kHz mono audio with labels. The TFRecord files
hold one ``tf.train.Example`` per note (features ``note_str``, ``pitch``, ``velocity``,
``instrument_family``, ``instrument_source``, ``qualities``, ``sample_rate``, ``audio``);
they are parsed here from the protobuf wire format, and every record's CRC-32C checksums are
verified (a damaged record is an error naming the file and record, never silent garbage).
The json/wav distribution is a tar of ``examples.json`` and ``audio/<note_str>.wav``, read
from the tar (compressed or not) without extracting it, or from an extracted folder.
"""

import dataclasses
import io
import json
import struct
import tarfile
from collections.abc import Callable, Iterator
from pathlib import Path

import google_crc32c
import numpy as np
import soundfile as sf

SAMPLE_RATE = 16000
N_SAMPLES = 64000
ACOUSTIC = 0  # instrument_source: 0 acoustic, 1 electronic, 2 synthetic.
GANSYNTH_PITCHES = (24, 84)  # Inclusive MIDI range of the GANSynth subset.


class NSynthError(ValueError):
    """A file that is not valid NSynth data (the message names the file and the problem)."""


@dataclasses.dataclass(frozen=True)
class Note:
    """One NSynth note: ``audio`` ``[n_samples]`` float32 at ``sample_rate`` (Hz)."""

    note_str: str
    pitch: int  # MIDI
    velocity: int  # MIDI
    instrument_family: int
    instrument_source: int
    qualities: tuple[int, ...]
    sample_rate: int
    audio: np.ndarray


def in_gansynth_subset(note: Note) -> bool:
    """GANSynth's subset (Engel et al., 2019): acoustic instruments, MIDI pitch 24-84."""
    low, high = GANSYNTH_PITCHES
    return note.instrument_source == ACOUSTIC and low <= note.pitch <= high


# ----------------------------------------------------------------------------------------------
# TFRecord.
# ----------------------------------------------------------------------------------------------
def _masked_crc(data: bytes) -> int:
    """TFRecord's checksum: CRC-32C, rotated right by 15 bits, plus 0xA282EAD8 (mod 2^32)."""
    crc = google_crc32c.value(data)
    return (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF


def read_tfrecord(path: str | Path) -> Iterator[bytes]:
    """The records of a TFRecord file, each checked against both of its CRCs.

    Raises:
        NSynthError: On a truncated record or a CRC mismatch (naming the file and record).
    """
    path = Path(path)
    with path.open("rb") as file:
        index = 0
        while header := file.read(12):
            if len(header) < 12:
                raise NSynthError(f"{path}: record {index} is truncated (incomplete header).")
            length, length_crc = struct.unpack("<QI", header)
            if _masked_crc(header[:8]) != length_crc:
                raise NSynthError(f"{path}: record {index}: length CRC mismatch (corrupt file).")
            data = file.read(length)
            footer = file.read(4)
            if len(data) < length or len(footer) < 4:
                raise NSynthError(f"{path}: record {index} is truncated.")
            if _masked_crc(data) != struct.unpack("<I", footer)[0]:
                raise NSynthError(f"{path}: record {index}: data CRC mismatch (corrupt file).")
            yield data
            index += 1


def _varint(buffer: bytes, position: int) -> tuple[int, int]:
    result, shift = 0, 0
    while True:
        if position >= len(buffer):
            raise ValueError("truncated varint")
        byte = buffer[position]
        position += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, position
        shift += 7


def _fields(buffer: bytes) -> Iterator[tuple[int, int, bytes | int]]:
    """``(field number, wire type, value)`` of a protobuf message: bytes for length-delimited
    fields, ints for varints, raw little-endian bytes for fixed-width ones."""
    position = 0
    while position < len(buffer):
        key, position = _varint(buffer, position)
        number, wire_type = key >> 3, key & 7
        if wire_type == 0:
            value, position = _varint(buffer, position)
        elif wire_type == 2:
            length, position = _varint(buffer, position)
            value = buffer[position : position + length]
            if len(value) < length:
                raise ValueError("truncated field")
            position += length
        elif wire_type in (1, 5):
            size = 8 if wire_type == 1 else 4
            value = buffer[position : position + size]
            position += size
        else:
            raise ValueError(f"unsupported wire type {wire_type}")
        yield number, wire_type, value


def _feature_values(feature: bytes) -> list[bytes] | np.ndarray:
    """A ``tf.train.Feature``'s values: bytes, float32 or int64 (packed or not)."""
    for kind, _, values in _fields(feature):
        if kind == 1:  # BytesList
            return [v for number, _, v in _fields(values) if number == 1]
        if kind == 2:  # FloatList
            parts = [v for number, _, v in _fields(values) if number == 1]
            return np.frombuffer(b"".join(parts), "<f4")
        if kind == 3:  # Int64List
            ints: list[int] = []
            for number, wire_type, v in _fields(values):
                if number != 1:
                    continue
                if wire_type == 2:  # Packed.
                    position = 0
                    while position < len(v):
                        value, position = _varint(v, position)
                        ints.append(value)
                else:
                    ints.append(v)
            return np.array([i - (1 << 64) if i >= 1 << 63 else i for i in ints], np.int64)
    return []


def parse_example(record: bytes) -> dict[str, list[bytes] | np.ndarray]:
    """A serialised ``tf.train.Example`` as ``{feature name: values}``."""
    features: dict[str, list[bytes] | np.ndarray] = {}
    for number, _, example_features in _fields(record):
        if number != 1:
            continue
        for entry_number, _, entry in _fields(example_features):
            if entry_number != 1:
                continue
            key, value = None, b""
            for field, _, content in _fields(entry):
                if field == 1:
                    key = content.decode()
                elif field == 2:
                    value = content
            if key is not None:
                features[key] = _feature_values(value)
    return features


_TFRECORD_FEATURES = (
    "note_str",
    "pitch",
    "velocity",
    "instrument_family",
    "instrument_source",
    "qualities",
    "sample_rate",
    "audio",
)


def _note_from_example(features: dict, where: str) -> Note:
    missing = [name for name in _TFRECORD_FEATURES if name not in features]
    if missing:
        raise NSynthError(f"{where}: not an NSynth example (missing {missing}).")
    try:
        return Note(
            note_str=features["note_str"][0].decode(),
            pitch=int(features["pitch"][0]),
            velocity=int(features["velocity"][0]),
            instrument_family=int(features["instrument_family"][0]),
            instrument_source=int(features["instrument_source"][0]),
            qualities=tuple(int(q) for q in features["qualities"]),
            sample_rate=int(features["sample_rate"][0]),
            audio=np.asarray(features["audio"], np.float32),
        )
    except (IndexError, ValueError, TypeError, AttributeError, UnicodeDecodeError) as error:
        message = f"{where}: not an NSynth example ({type(error).__name__}: {error})."
        raise NSynthError(message) from error


def read_tfrecord_notes(path: str | Path) -> Iterator[Note]:
    """The notes of an NSynth TFRecord file, in file order (CRCs verified).

    Raises:
        NSynthError: On a corrupt or truncated record or a record that is not an NSynth
            example.
    """
    for index, record in enumerate(read_tfrecord(path)):
        where = f"{path}: record {index}"
        try:
            features = parse_example(record)
        except (ValueError, TypeError, IndexError, UnicodeDecodeError, struct.error) as error:
            raise NSynthError(f"{where}: not a tf.train.Example ({error}).") from error
        yield _note_from_example(features, where)


# ----------------------------------------------------------------------------------------------
# json/wav.
# ----------------------------------------------------------------------------------------------
def _note_from_json(label: dict, audio: np.ndarray, sample_rate: int, where: str) -> Note:
    try:
        return Note(
            note_str=str(label["note_str"]),
            pitch=int(label["pitch"]),
            velocity=int(label["velocity"]),
            instrument_family=int(label["instrument_family"]),
            instrument_source=int(label["instrument_source"]),
            qualities=tuple(int(q) for q in label["qualities"]),
            sample_rate=sample_rate,
            audio=audio,
        )
    except (KeyError, TypeError, ValueError) as error:
        raise NSynthError(f"{where}: bad label ({error!r}).") from error


def _read_wav(data: bytes | Path, where: str) -> tuple[np.ndarray, int]:
    try:
        audio, sample_rate = sf.read(io.BytesIO(data) if isinstance(data, bytes) else data)
    except (sf.LibsndfileError, RuntimeError, TypeError) as error:
        raise NSynthError(f"{where}: unreadable audio ({error}).") from error
    if audio.ndim != 1:
        raise NSynthError(f"{where}: expected mono audio, got {audio.shape[1]} channels.")
    return audio.astype(np.float32), int(sample_rate)


def read_json_wav_notes(path: str | Path) -> Iterator[Note]:
    """The notes of an NSynth json/wav distribution.

    ``path`` is the tar (``.tar``, ``.tar.gz``, ...) or a folder holding ``examples.json`` and
    ``audio/``, at any depth (as in ``nsynth-train/``). A tar is streamed, never extracted
    or seeked: one pass finds ``examples.json`` (stopping there), a second yields the notes
    in the tar's order. A folder yields them in ``examples.json``'s order.

    Raises:
        NSynthError: When ``examples.json`` is missing or invalid, a labelled note's WAV is
            missing or unreadable, or the tar is damaged.
    """
    path = Path(path)
    if path.is_dir():
        labels_path = next(path.rglob("examples.json"), None)
        if labels_path is None:
            raise NSynthError(f"{path}: no examples.json in this folder.")
        labels = _load_labels(labels_path.read_bytes(), str(labels_path))
        for name, label in labels.items():
            wav = labels_path.parent / "audio" / f"{name}.wav"
            if not wav.exists():
                raise NSynthError(f"{path}: {wav} is missing.")
            audio, sample_rate = _read_wav(wav, str(wav))
            yield _note_from_json(label, audio, sample_rate, str(wav))
        return
    labels = None
    for name, data in _stream_tar(path):
        if name == "examples.json":
            labels = _load_labels(data(), f"{path}: examples.json")
            break
    if labels is None:
        raise NSynthError(f"{path}: no examples.json in this tar.")
    seen = set()
    for name, data in _stream_tar(path):
        note_name = name.removesuffix(".wav")
        if not name.endswith(".wav") or note_name not in labels:
            continue
        where = f"{path}: audio/{name}"
        audio, sample_rate = _read_wav(data(), where)
        seen.add(note_name)
        yield _note_from_json(labels[note_name], audio, sample_rate, where)
    missing = sorted(set(labels) - seen)
    if missing:
        raise NSynthError(
            f"{path}: {len(missing)} labelled notes have no WAV (first: {missing[0]}.wav)."
        )


def _stream_tar(path: Path) -> Iterator[tuple[str, Callable[[], bytes]]]:
    """``(file name, read)`` for each regular file of a tar, read sequentially."""
    try:
        with tarfile.open(path, "r|*") as archive:
            for member in archive:
                if member.isfile():
                    file = archive.extractfile(member)
                    assert file is not None  # A regular file.
                    yield Path(member.name).name, file.read
    except (tarfile.TarError, OSError, EOFError) as error:
        raise NSynthError(f"{path}: not a readable tar ({error}).") from error


def _load_labels(data: bytes, where: str) -> dict[str, dict]:
    try:
        labels = json.loads(data)
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise NSynthError(f"{where}: examples.json is not valid JSON ({error}).") from error
    if not isinstance(labels, dict):
        raise NSynthError(f"{where}: examples.json must map note names to labels.")
    return labels


def read_notes(path: str | Path, subset: str | None = None) -> Iterator[Note]:
    """NSynth notes from a TFRecord file, a json/wav tar or an extracted folder.

    Args:
        path: ``*.tfrecord``, a tar, or a folder.
        subset: ``"gansynth"`` keeps only GANSynth's subset (``in_gansynth_subset``).
    """
    if subset not in (None, "gansynth"):
        raise ValueError(f"subset must be None or 'gansynth', got {subset!r}.")
    path = Path(path)
    if not path.exists():
        raise NSynthError(f"{path} does not exist.")
    is_tfrecord = path.is_file() and ".tfrecord" in path.name
    notes = read_tfrecord_notes(path) if is_tfrecord else read_json_wav_notes(path)
    for note in notes:
        if subset is None or in_gansynth_subset(note):
            yield note
