"""Output faults: every one ends in one line naming the path, and no earlier file is damaged."""

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from flax import nnx

from crepe import needs_weights
from ddsp_jax import files
from ddsp_jax.cli import main
from ddsp_jax.models.autoencoder import Autoencoder
from ddsp_jax.models.saved import SavedModel, save_model
from test_streaming import model_config

SYNTH = ["synth", "--f0", "440", "--seconds", "0.2"]


def no_space(file, data):
    """Stands in for ``soundfile.SoundFile.write`` on a full disk: part of the samples, then
    ENOSPC (the file is left half written)."""
    file.buffer_write(np.zeros(10, np.float32).tobytes(), "float32")
    raise OSError(28, "No space left on device", file.name)


def only_line(text: str) -> str:
    lines = text.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in text, text
    return lines[0]


@pytest.mark.parametrize(
    ("where", "fault", "message"),
    [
        ("folder", None, "is a folder, not a file"),
        ("note", None, "cannot tell the audio format from the extension '(none)'"),
        ("file/a.wav", None, "a parent is not a folder"),
        ("a.wav", "read-only", "cannot write into this folder"),
        ("a.wav", "disk-full", "MB needed"),
        ("a.wav", "write-fails", "No space left on device"),
    ],
)
def test_a_synth_output_fault_is_one_line_and_keeps_the_earlier_file(
    where, fault, message, tmp_path, capsys, monkeypatch
):
    (tmp_path / "folder").mkdir()
    (tmp_path / "file").write_text("a regular file")
    earlier = np.full(100, 0.25)
    sf.write(tmp_path / "a.wav", earlier, 16000)
    if fault == "read-only":
        monkeypatch.setattr(files.os, "access", lambda *args: False)
    elif fault == "disk-full":
        monkeypatch.setattr(files.shutil, "disk_usage", lambda path: type("U", (), {"free": 10}))
    elif fault == "write-fails":
        monkeypatch.setattr(sf.SoundFile, "write", no_space)
    assert main([*SYNTH, "--out", str(tmp_path / where)]) == 1
    assert message in only_line(capsys.readouterr().err)
    assert np.array_equal(sf.read(tmp_path / "a.wav")[0], earlier)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.wav", "file", "folder"]


def test_an_unexpected_error_is_one_line_and_a_report(tmp_path, capsys, monkeypatch):
    from ddsp_jax.processors.graph import ProcessorGraph

    def broken(*args, **kwargs):
        raise RuntimeError("a bug")

    monkeypatch.setattr(ProcessorGraph, "get_signal", broken)
    assert main([*SYNTH, "--out", str(tmp_path / "a.wav")]) == 70
    line = only_line(capsys.readouterr().err)
    assert "unexpected RuntimeError: a bug" in line
    report = Path(line.split("report is in ")[1].split(";")[0])
    assert "Traceback" in report.read_text() and "a bug" in report.read_text()
    report.unlink()
    with pytest.raises(RuntimeError, match="a bug"):
        main(["--debug", *SYNTH, "--out", str(tmp_path / "a.wav")])


@needs_weights
def test_resynth_keeps_an_earlier_output_when_the_write_fails(tmp_path, capsys, monkeypatch):
    model = Autoencoder(model_config(8, "none", 700, 16, 1, 16, 6400), rngs=nnx.Rngs(3))
    folder = save_model(SavedModel(model, 250, None, 0, tmp_path), tmp_path / "model")
    t = np.arange(8000) / 16000
    sf.write(tmp_path / "in.wav", 0.3 * np.sin(2 * np.pi * 220 * t), 16000)
    earlier = np.full(50, -0.5)
    sf.write(tmp_path / "out.wav", earlier, 16000)
    monkeypatch.setattr(sf.SoundFile, "write", no_space)
    args = ["resynth", str(folder), str(tmp_path / "in.wav"), str(tmp_path / "out.wav")]
    assert main([*args, "--f0-model", "tiny"]) == 1
    assert "No space left on device" in only_line(capsys.readouterr().err)
    monkeypatch.undo()
    assert np.array_equal(sf.read(tmp_path / "out.wav")[0], earlier)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.wav", "model", "out.wav"]
    # A folder as the output is refused before any work.
    (tmp_path / "out").mkdir()
    assert main([*args[:3], str(tmp_path / "out")]) == 1
    assert "is a folder, not a file" in only_line(capsys.readouterr().err)


COMMANDS = {
    "prepare": lambda out, wav: ["prepare", wav, "--out", out, "--f0-model", "tiny"],
    "train": lambda out, wav: ["train", "--preset", "quick", "--steps", "1", "--out", out],
    "eval": lambda out, wav: ["eval", "no-model", "--data", "no-data", "--out", out],
    "export": lambda out, wav: ["export", "no-run", "--out", out],
    "export-onnx": lambda out, wav: ["export", "no-run", "--out", out, "--format", "onnx"],
    "export-stablehlo": lambda out, wav: [
        "export",
        "no-run",
        "--format",
        "stablehlo",
        "--out",
        out,
    ],
}


@pytest.mark.parametrize("command", sorted(COMMANDS))
@pytest.mark.parametrize(
    ("fault", "message"),
    [
        ("regular-file", "exists and is not a folder"),
        ("read-only", "cannot write into this folder"),
    ],
)
def test_an_output_folder_that_cannot_be_written_is_refused_before_any_work(
    command, fault, message, tmp_path, capsys, monkeypatch
):
    sf.write(tmp_path / "in.wav", 0.3 * np.sin(np.arange(16000) / 5.0), 16000)
    out = tmp_path / "out"
    if fault == "regular-file":
        out.write_text("a regular file")
    else:
        monkeypatch.setattr(files.os, "access", lambda *args: False)
    # The inputs (model, run, data) do not exist: the output is checked first.
    assert main(COMMANDS[command](str(out), str(tmp_path / "in.wav"))) == 1
    line = only_line(capsys.readouterr().err)
    assert line.startswith(f"ddsp {command.split('-')[0]}: error: {message}"), line
    assert sorted(p.name for p in tmp_path.iterdir()) == (
        ["in.wav", "out"] if fault == "regular-file" else ["in.wav"]
    )


def test_prepare_without_room_for_its_shards_stops_before_reading_audio(
    tmp_path, capsys, monkeypatch
):
    sf.write(tmp_path / "in.wav", 0.3 * np.sin(np.arange(160000) / 5.0), 16000)
    monkeypatch.setattr(files.shutil, "disk_usage", lambda path: type("U", (), {"free": 10**5}))
    assert main(["prepare", str(tmp_path / "in.wav"), "--out", str(tmp_path / "d")]) == 1
    line = only_line(capsys.readouterr().err)
    assert "MB needed" in line and "0.1 MB free" in line
    assert not (tmp_path / "d").exists()


@pytest.fixture
def small_filesystem(tmp_path):
    """A real filesystem of 2 MiB (tmpfs), unmounted afterwards: disk-full is the kernel's
    ENOSPC, not a mock. Needs the right to mount (root in CI)."""
    mount_point = tmp_path / "small"
    mount_point.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mount_point)],
        capture_output=True,
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.decode().strip()}")
    yield mount_point
    subprocess.run(["umount", str(mount_point)], check=True)


def fill(folder: Path, leave: int = 0) -> None:
    """Fill the filesystem of ``folder`` up to ``leave`` free bytes, as another program would."""
    free = shutil.disk_usage(folder).free - leave
    with open(folder / "filler", "wb") as filler:
        while free > 0:
            try:
                free -= filler.write(bytes(min(free, 1 << 16)))
            except OSError:
                break


def test_prepare_on_a_real_filesystem_too_small_for_its_shards(small_filesystem, tmp_path, capsys):
    sf.write(tmp_path / "in.wav", 0.3 * np.sin(np.arange(960000) / 5.0), 16000)  # 60 s.
    out = small_filesystem / "data"
    assert main(["prepare", str(tmp_path / "in.wav"), "--out", str(out)]) == 1
    assert "MB needed" in only_line(capsys.readouterr().err)
    assert list(small_filesystem.iterdir()) == []


@needs_weights
def test_resynth_on_a_filesystem_filled_during_the_work_keeps_the_earlier_output(
    small_filesystem, tmp_path, capsys, monkeypatch
):
    import ddsp_jax.inference as inference

    model = Autoencoder(model_config(8, "none", 700, 16, 1, 16, 6400), rngs=nnx.Rngs(3))
    folder = save_model(SavedModel(model, 250, None, 0, tmp_path), tmp_path / "model")
    sf.write(tmp_path / "in.wav", 0.3 * np.sin(2 * np.pi * 220 * np.arange(32000) / 16000), 16000)
    earlier = np.full(50, -0.5)
    sf.write(small_filesystem / "out.wav", earlier, 16000)
    play = inference.play

    def play_while_the_disk_fills(*args, **kwargs):
        fill(small_filesystem, leave=4096)  # Less than the 128 KB output.
        return play(*args, **kwargs)

    monkeypatch.setattr(inference, "play", play_while_the_disk_fills)
    args = ["resynth", str(folder), str(tmp_path / "in.wav"), str(small_filesystem / "out.wav")]
    assert main([*args, "--f0-model", "tiny"]) == 1
    assert "No space left on device" in only_line(capsys.readouterr().err)
    assert np.array_equal(sf.read(small_filesystem / "out.wav")[0], earlier)
    assert sorted(p.name for p in small_filesystem.iterdir()) == ["filler", "out.wav"]


def test_export_to_a_full_filesystem_is_one_line_and_keeps_the_earlier_export(
    small_filesystem, tmp_path, capsys
):
    model = Autoencoder(model_config(8, "none", 700, 16, 1, 16, 6400), rngs=nnx.Rngs(3))
    folder = save_model(SavedModel(model, 250, None, 0, tmp_path), tmp_path / "model")
    out = small_filesystem / "exported"
    args = ["export", str(folder), "--out", str(out), "--format", "stablehlo", "--f0-model", "none"]
    assert main([*args, "--block", "320"]) == 0
    earlier = {p.name: p.read_bytes() for p in out.iterdir()}
    assert sorted(earlier) == ["initial_state.npz", "metadata.json", "synth.stablehlo"]
    capsys.readouterr()
    fill(small_filesystem, leave=8192)
    assert main([*args, "--block", "160"]) == 1
    assert "No space left on device" in only_line(capsys.readouterr().err)
    # Nothing is renamed into place until every file is written: the earlier export stands.
    assert {p.name: p.read_bytes() for p in out.iterdir()} == earlier


def test_write_files_changes_no_file_unless_every_file_is_written(tmp_path, monkeypatch):
    files.write_files(tmp_path, {"a": b"1", "b": b"2", "old": b"x"})
    real_write = Path.write_bytes

    def second_write_fails(path, data):
        if path.name == ".b.partial":
            raise OSError(28, "No space left on device", str(path))
        return real_write(path, data)

    monkeypatch.setattr(Path, "write_bytes", second_write_fails)
    with pytest.raises(OSError, match="No space"):
        files.write_files(tmp_path, {"a": b"new", "b": b"new"}, stale=["old"])
    monkeypatch.undo()
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == {
        "a": b"1",
        "b": b"2",
        "old": b"x",
    }
    files.write_files(tmp_path, {"a": b"3", "b": b"4"}, stale=["old"])
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == {"a": b"3", "b": b"4"}


@pytest.mark.parametrize("suffix", [".wav", ".flac", ".ogg", ".aiff"])
def test_every_audio_extension_the_output_check_accepts_can_be_written(suffix, tmp_path):
    t = np.arange(16000) / 16000
    tone = (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
    files.write_audio(tmp_path / f"a{suffix}", tone, 16000, "FLOAT")  # Float where it exists.
    audio, rate = sf.read(tmp_path / f"a{suffix}", dtype="float32")
    assert rate == 16000 and len(audio) == len(tone)
    assert np.max(np.abs(audio - tone)) < (0.05 if suffix == ".ogg" else 1e-4)
    assert sorted(p.name for p in tmp_path.iterdir()) == [f"a{suffix}"]
