"""Output faults: every one ends in one line naming the path, and no earlier file is damaged."""

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


def no_space(path, *args, **kwargs):
    """Stands in for ``soundfile.write`` on a full disk: half a file, then ENOSPC."""
    Path(path).write_bytes(b"RIFF" + bytes(100))
    raise OSError(28, "No space left on device", str(path))


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
        monkeypatch.setattr(sf, "write", no_space)
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
    monkeypatch.setattr(sf, "write", no_space)
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
