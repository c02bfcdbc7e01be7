"""SoundFont notes: NSynth's layout, real instrument audio, CREPE's accuracy on it.

These run where libfluidsynth, pyfluidsynth and a General MIDI SoundFont are installed
(`.ci/run` installs Debian's libfluidsynth3 and fluid-soundfont-gm); elsewhere they skip,
saying what is missing.
"""

import numpy as np
import pytest

from crepe import needs_weights
from ddsp_jax.data.nsynth import read_notes
from ddsp_jax.data.soundfont import (
    SoundFontError,
    _gm_family_and_source,
    find_soundfont,
    note_label,
    render_soundfont,
)


def renderer_missing() -> str | None:
    try:
        import fluidsynth  # noqa: F401

        find_soundfont()
    except (ImportError, OSError, SoundFontError) as error:
        return str(error)
    return None


MISSING = renderer_missing()
needs_soundfont = pytest.mark.skipif(
    MISSING is not None, reason=f"no SoundFont renderer: {MISSING}"
)


def test_general_midi_programs_map_to_nsynth_families_and_sources():
    assert _gm_family_and_source(0) == ("keyboard", "acoustic")
    assert _gm_family_and_source(4) == ("keyboard", "electronic")
    assert _gm_family_and_source(40) == ("string", "acoustic")
    assert _gm_family_and_source(56) == ("brass", "acoustic")
    assert _gm_family_and_source(71) == ("reed", "acoustic")
    assert _gm_family_and_source(73) == ("flute", "acoustic")
    assert _gm_family_and_source(81) == ("synth_lead", "synthetic")
    label = note_label(40, 60, 100)
    assert label["note_str"] == "string_acoustic_040-060-100"
    assert label["instrument_family"] == 8 and label["instrument_source"] == 0


def test_a_missing_soundfont_says_what_to_install(tmp_path):
    with pytest.raises(SoundFontError, match="no such SoundFont"):
        find_soundfont(tmp_path / "missing.sf2")


@needs_soundfont
def test_rendered_notes_are_nsynth_notes(tmp_path):
    labels = render_soundfont(tmp_path / "sf", [0, 81], [48, 60], [100], progress=False)
    assert len(labels) == 4
    notes = list(read_notes(tmp_path / "sf"))
    assert len(notes) == 4
    assert {n.note_str for n in notes} == set(labels)
    for note in notes:
        assert note.sample_rate == 16000 and note.audio.shape == (64000,)
        held = np.sqrt(np.mean(note.audio[1600:48000] ** 2))
        tail = np.sqrt(np.mean(note.audio[-3200:] ** 2))
        assert held > 1e-3 and tail < held / 10  # Sounding while held, released after 3 s.
    # GANSynth keeps the acoustic piano (program 0), not the synth lead (81).
    kept = list(read_notes(tmp_path / "sf", subset="gansynth"))
    assert sorted(n.note_str for n in kept) == sorted(k for k in labels if k.startswith("key"))


@needs_soundfont
@needs_weights
def test_crepe_tracks_soundfont_notes_across_midi_36_to_84():
    from ddsp_jax.benchmarks.f0 import FRAME_RATE, SAMPLE_RATE, _accuracy, soundfont_notes
    from ddsp_jax.features.f0 import compute_f0

    notes, midi = soundfont_notes()
    f0_hz, _ = compute_f0(notes, SAMPLE_RATE, FRAME_RATE, capacity="tiny")
    true_f0 = np.broadcast_to(440.0 * 2.0 ** ((midi[:, None] - 69) / 12), f0_hz.shape)
    accuracy = _accuracy(f0_hz, true_f0)
    assert accuracy["median_error_cents"] <= 10.0, accuracy
    assert accuracy["raw_pitch_accuracy"] >= 0.97, accuracy


@needs_soundfont
def test_cli_renders_a_pitch_range(tmp_path, capsys):
    from ddsp_jax.cli import main

    args = ["render-soundfont", "--out", str(tmp_path / "sf"), "--programs", "56"]
    assert main([*args, "--pitches", "60:62", "--velocities", "80"]) == 0
    assert "Rendered 3 notes" in capsys.readouterr().out
    assert len(list((tmp_path / "sf" / "audio").glob("brass_acoustic_056-06?-080.wav"))) == 3
    bad = ["render-soundfont", str(tmp_path / "none.sf2"), "--out", str(tmp_path / "x")]
    assert main(bad) == 1
    assert "no such SoundFont" in capsys.readouterr().err
