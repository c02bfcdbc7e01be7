"""NSynth readers on small files in NSynth's schema, written here (no download exists)."""

import io
import json
import struct
import tarfile
from pathlib import Path

import google_crc32c
import numpy as np
import pytest
import soundfile as sf

from ddsp_jax.data.nsynth import NSynthError, read_notes

# (note_str, pitch, instrument_source): GANSynth keeps acoustic (0) pitches 24-84.
LABELS = [
    ("guitar_acoustic_000-024-100", 24, 0),
    ("guitar_acoustic_000-084-050", 84, 0),
    ("guitar_acoustic_000-085-050", 85, 0),
    ("keyboard_electronic_001-060-100", 60, 1),
    ("bass_synthetic_002-023-075", 23, 2),
]
N_SAMPLES = 1600  # Short notes keep the files small; the readers take any length.


def notes() -> list[dict]:
    rng = np.random.default_rng(0)
    return [
        {
            "note_str": name,
            "pitch": pitch,
            "velocity": int(name[-3:]),
            "instrument_family": i % 3,
            "instrument_source": source,
            "qualities": [int(q) for q in rng.integers(0, 2, 10)],
            "sample_rate": 16000,
            "audio": rng.uniform(-0.9, 0.9, N_SAMPLES).astype(np.float32),
        }
        for i, (name, pitch, source) in enumerate(LABELS)
    ]


# A tf.train.Example encoder from the protobuf wire format, and TFRecord framing.
def varint(n: int) -> bytes:
    n &= (1 << 64) - 1
    out = bytearray()
    while True:
        out.append((n & 0x7F) | (0x80 if n > 0x7F else 0))
        n >>= 7
        if not n:
            return bytes(out)


def field(number: int, payload: bytes) -> bytes:
    return varint(number << 3 | 2) + varint(len(payload)) + payload


def feature(value) -> bytes:
    if isinstance(value, str):
        return field(1, field(1, value.encode()))  # BytesList
    if isinstance(value, np.ndarray):
        return field(2, field(1, value.astype("<f4").tobytes()))  # FloatList, packed
    values = value if isinstance(value, list) else [value]
    return field(3, field(1, b"".join(varint(v) for v in values)))  # Int64List, packed


def example(note: dict) -> bytes:
    entries = b"".join(
        field(1, field(1, k.encode()) + field(2, feature(v))) for k, v in note.items()
    )
    return field(1, entries)


def masked_crc(data: bytes) -> int:
    crc = google_crc32c.value(data)
    return (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF


def write_tfrecord(path, records: list[bytes]) -> None:
    with open(path, "wb") as f:
        for data in records:
            length = struct.pack("<Q", len(data))
            f.write(length + struct.pack("<I", masked_crc(length)))
            f.write(data + struct.pack("<I", masked_crc(data)))


def wav_bytes(audio: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    sf.write(buffer, audio, 16000, format="WAV", subtype="FLOAT")
    return buffer.getvalue()


def labels_json(notes: list[dict]) -> bytes:
    return json.dumps(
        {n["note_str"]: {k: v for k, v in n.items() if k != "audio"} for n in notes}
    ).encode()


def write_json_wav_tar(path, notes: list[dict], labels_last: bool = True) -> None:
    files = [(f"nsynth-test/audio/{n['note_str']}.wav", wav_bytes(n["audio"])) for n in notes]
    labels = ("nsynth-test/examples.json", labels_json(notes))
    files = [*files, labels] if labels_last else [labels, *files]
    with tarfile.open(path, "w:gz") as archive:
        for name, data in files:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))


def check_round_trip(read: list, written: list[dict]) -> None:
    by_name = {n.note_str: n for n in read}
    assert sorted(by_name) == sorted(n["note_str"] for n in written)
    for expected in written:
        note = by_name[expected["note_str"]]
        for key in ("pitch", "velocity", "instrument_family", "instrument_source"):
            assert getattr(note, key) == expected[key], key
        assert list(note.qualities) == expected["qualities"]
        assert note.sample_rate == 16000
        np.testing.assert_array_equal(note.audio, expected["audio"])


def test_tfrecord_round_trip_and_gansynth_subset(tmp_path):
    written = notes()
    path = tmp_path / "nsynth-test.tfrecord"
    write_tfrecord(path, [example(n) for n in written])
    check_round_trip(list(read_notes(path)), written)
    subset = [n.note_str for n in read_notes(path, subset="gansynth")]
    assert subset == ["guitar_acoustic_000-024-100", "guitar_acoustic_000-084-050"]


def test_tfrecord_crc_errors_and_truncation_are_reported(tmp_path):
    path = tmp_path / "bad.tfrecord"
    write_tfrecord(path, [example(n) for n in notes()[:2]])
    data = bytearray(path.read_bytes())
    first_length = struct.unpack("<Q", data[:8])[0]
    data[12 + first_length + 4 + 12 + 100] ^= 0x01  # One bit inside record 1's data.
    path.write_bytes(bytes(data))
    with pytest.raises(NSynthError, match=r"bad\.tfrecord: record 1: data CRC mismatch"):
        list(read_notes(path))
    good = tmp_path / "good.tfrecord"
    write_tfrecord(good, [example(n) for n in notes()[:2]])
    truncated = tmp_path / "truncated.tfrecord"
    truncated.write_bytes(good.read_bytes()[:-50])
    with pytest.raises(NSynthError, match=r"truncated\.tfrecord: record 1 is truncated"):
        list(read_notes(truncated))
    other = tmp_path / "other.tfrecord"
    write_tfrecord(other, [field(1, field(1, field(1, b"x") + field(2, feature(3))))])
    with pytest.raises(NSynthError, match=r"other\.tfrecord: record 0: not an NSynth example"):
        list(read_notes(other))


@pytest.mark.parametrize("labels_last", [True, False])
def test_json_wav_tar_is_read_in_place(tmp_path, labels_last):
    written = notes()
    path = tmp_path / "nsynth-test.jsonwav.tar.gz"
    write_json_wav_tar(path, written, labels_last)
    check_round_trip(list(read_notes(path)), written)
    assert len(list(read_notes(path, subset="gansynth"))) == 2
    assert not (tmp_path / "nsynth-test").exists()  # Nothing extracted.


def test_json_wav_folder_and_bad_inputs(tmp_path):
    written = notes()
    folder = tmp_path / "nsynth-test"
    (folder / "audio").mkdir(parents=True)
    (folder / "examples.json").write_bytes(labels_json(written))
    for n in written:
        (folder / "audio" / f"{n['note_str']}.wav").write_bytes(wav_bytes(n["audio"]))
    check_round_trip(list(read_notes(tmp_path)), written)

    (folder / "audio" / f"{written[1]['note_str']}.wav").write_bytes(b"not audio")
    with pytest.raises(NSynthError, match=r"guitar_acoustic_000-084-050\.wav: unreadable"):
        list(read_notes(folder))
    (folder / "audio" / f"{written[1]['note_str']}.wav").unlink()
    with pytest.raises(NSynthError, match=r"guitar_acoustic_000-084-050\.wav is missing"):
        list(read_notes(folder))

    partial = tmp_path / "partial.tar.gz"
    write_json_wav_tar(partial, written)
    with tarfile.open(partial) as archive, tarfile.open(tmp_path / "less.tar", "w") as less:
        for member in archive.getmembers():
            if not member.name.endswith(written[0]["note_str"] + ".wav"):
                less.addfile(member, archive.extractfile(member))
    with pytest.raises(NSynthError, match=r"1 labelled notes have no WAV"):
        list(read_notes(tmp_path / "less.tar"))
    (tmp_path / "empty.tar").write_bytes(b"")
    with pytest.raises(NSynthError, match=r"empty\.tar"):
        list(read_notes(tmp_path / "empty.tar"))
    with pytest.raises(NSynthError, match="does not exist"):
        list(read_notes(tmp_path / "missing.tfrecord"))


def test_a_tar_whose_names_climb_out_of_the_archive_writes_nothing_outside(tmp_path):
    written = notes()
    path = tmp_path / "inside" / "nsynth.tar.gz"
    path.parent.mkdir()
    with tarfile.open(path, "w:gz") as archive:
        members = [(f"../../escape/{n['note_str']}.wav", wav_bytes(n["audio"])) for n in written]
        members.append(("/abs/examples.json", labels_json(written)))
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    # Members are read in memory by their base names: the notes, and no file anywhere.
    check_round_trip(list(read_notes(path)), written)
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["inside", "nsynth.tar.gz"]
    assert not Path("/abs").exists()
