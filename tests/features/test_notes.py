import numpy as np

from ddsp_jax.features.notes import feature_statistics, note_frames


def test_note_frames_fill_short_gaps_only():
    confidence = np.full((2, 300), 0.95, np.float32)
    confidence[0, 100:110] = 0.3  # A vibrato dip: 10 frames, filled.
    confidence[1, 100:140] = 0.3  # A rest: 40 frames, kept.
    loudness = np.full((2, 300), -30.0, np.float32)
    loudness[:, 250:] = -70.0  # Too quiet to be a note.
    notes = note_frames(confidence, loudness)
    assert notes[0, :250].all() and not notes[0, 250:].any()
    assert notes[1, :100].all() and not notes[1, 100:140].any() and notes[1, 140:250].all()


def test_feature_statistics_of_note_frames_only():
    f0 = np.full((2, 200), 220.0, np.float32)
    f0[1] = 440.0
    confidence = np.full((2, 200), 0.95, np.float32)
    confidence[:, 150:] = 0.1  # Unpitched: left out of the pitch and note-loudness figures.
    loudness = np.full((2, 200), -20.0, np.float32)
    loudness[:, 150:] = -50.0
    stats = feature_statistics(f0, confidence, loudness)
    assert stats["note_frame_fraction"] == 0.75
    assert stats["mean_pitch_midi"] == 63.0  # Mean of MIDI 57 and 69.
    assert stats["note_loudness_db_quantiles"][0] == stats["note_loudness_db_quantiles"][-1] == -20
    assert stats["loudness_db_quantiles"][0] == -50.0
    silent = feature_statistics(f0, np.zeros_like(confidence), loudness)
    assert silent["mean_pitch_midi"] is None and silent["note_frame_fraction"] == 0.0
