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
    CONTROL_SECONDS,
    PEAK_LEVEL,
    SoundFontError,
    _gm_family_and_source,
    find_soundfont,
    note_label,
    phrase_score,
    render_phrases,
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
    for program in ("key", "synth_lead"):  # Each program's loudest note peaks at -1 dBFS.
        peaks = [np.abs(n.audio).max() for n in notes if n.note_str.startswith(program)]
        assert max(peaks) == pytest.approx(PEAK_LEVEL, rel=1e-6)
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
@needs_weights
def test_phrase_scores_give_the_f0_crepe_hears_inside_notes():
    from ddsp_jax.benchmarks.f0 import FRAME_RATE, SAMPLE_RATE, _accuracy, soundfont_phrases
    from ddsp_jax.features.f0 import compute_f0

    phrases, true_f0 = soundfont_phrases(per_program=1)
    assert phrases.shape[0] == true_f0.shape[0] == 4
    scored = np.isfinite(true_f0)
    assert 0.3 < scored.mean() < 0.95  # Rests, onsets and releases are left out.
    f0_hz, _ = compute_f0(phrases, SAMPLE_RATE, FRAME_RATE, capacity="tiny")
    accuracy = _accuracy(f0_hz, true_f0)
    assert accuracy["median_error_cents"] <= 10.0, accuracy
    assert accuracy["raw_pitch_accuracy"] >= 0.9, accuracy  # 0.94 measured (tiny).


@needs_soundfont
def test_cli_renders_a_pitch_range(tmp_path, capsys):
    from ddsp_jax.cli import main

    args = ["render-soundfont", "--out", str(tmp_path / "sf"), "--programs", "56"]
    assert main([*args, "--pitches", "60:62", "--velocities", "80"]) == 0
    assert "Rendered 3 notes" in capsys.readouterr().out
    assert len(list((tmp_path / "sf" / "audio").glob("brass_acoustic_056-06?-080.wav"))) == 3
    phrases = ["render-soundfont", "--out", str(tmp_path / "ph"), "--programs", "56", "--phrases"]
    assert main([*phrases, "2", "--phrase-seconds", "2"]) == 0
    assert "Rendered 2 phrases of 2 s" in capsys.readouterr().out
    assert len(list((tmp_path / "ph").glob("phrase-056-00?.wav"))) == 2
    bad = ["render-soundfont", str(tmp_path / "none.sf2"), "--out", str(tmp_path / "x")]
    assert main(bad) == 1
    assert "no such SoundFont" in capsys.readouterr().err


def test_phrase_scores_are_monophonic_melodies_within_the_requested_ranges():
    pitches = [55, 57, 59, 60, 62]
    score = phrase_score(pitches, (40, 110), 60.0, np.random.default_rng(0))
    starts = np.array([n.start for n in score])
    ends = starts + np.array([n.duration for n in score])
    assert len(score) > 40
    assert np.all(ends[:-1] <= starts[1:] + 1e-9)  # One note at a time.
    assert ends[-1] <= 60.0 - 0.5 + 1e-9  # Room for the last release.
    assert np.allclose(starts / CONTROL_SECONDS, np.round(starts / CONTROL_SECONDS))
    assert {n.pitch for n in score} <= set(pitches) and len({n.pitch for n in score}) > 2
    assert all(40 <= n.velocity <= 110 for n in score)
    assert all(50 <= min(n.expression_start, n.expression_end) <= 127 for n in score)
    gaps = starts[1:] - ends[:-1]
    assert np.any(gaps < 1e-6) and np.any(gaps > 0.05)  # Legato and rests.
    vibrato = [n for n in score if n.vibrato_cents > 0]
    assert vibrato and all(n.duration > 0.5 and n.vibrato_cents <= 40 for n in vibrato)
    again = phrase_score(pitches, (40, 110), 60.0, np.random.default_rng(0))
    assert again == score
    with pytest.raises(SoundFontError, match="pitches in 0-127"):
        phrase_score([60, 130], (40, 110), 10.0, np.random.default_rng(0))


@needs_soundfont
def test_rendered_phrases_play_their_score(tmp_path):
    import soundfile as sf

    scores = render_phrases(
        tmp_path / "a", [73, 56], range(60, 73), [40, 110], 1, 8.0, 0, progress=False
    )
    assert sorted(scores) == ["phrase-056-000.wav", "phrase-073-000.wav"]
    checked = 0
    for name, score in scores.items():
        audio, sample_rate = sf.read(tmp_path / "a" / name, dtype="float32")
        assert sample_rate == 16000 and audio.shape == (128000,)
        for note in score:
            if note["duration"] < 0.3:
                continue
            # The middle 0.25 s of the note: its strongest partial is a harmonic of the
            # scored pitch (vibrato is at most ±40 cents; a 64k-point FFT resolves 0.25 Hz).
            middle = round((note["start"] + note["duration"] / 2) * sample_rate)
            window = audio[middle - 2000 : middle + 2000] * np.hanning(4000)
            peak_hz = np.argmax(np.abs(np.fft.rfft(window, 1 << 16))) * sample_rate / (1 << 16)
            f0_hz = 440.0 * 2.0 ** ((note["pitch"] - 69) / 12)
            harmonic = max(1, round(peak_hz / f0_hz))
            assert abs(1200 * np.log2(peak_hz / (harmonic * f0_hz))) < 45, (name, note)
            checked += 1
        assert np.abs(audio).max() == pytest.approx(PEAK_LEVEL, rel=1e-6)  # One per program.
        # After the last note's release the phrase is silent.
        assert np.sqrt(np.mean(audio[-1600:] ** 2)) < 1e-2 * np.sqrt(np.mean(audio**2))
    assert checked >= 6
    again = render_phrases(
        tmp_path / "b", [73], range(60, 73), [40, 110], 1, 8.0, 0, progress=False
    )
    assert again["phrase-073-000.wav"] == scores["phrase-073-000.wav"]
    np.testing.assert_array_equal(
        sf.read(tmp_path / "b" / "phrase-073-000.wav")[0],
        sf.read(tmp_path / "a" / "phrase-073-000.wav")[0],
    )
