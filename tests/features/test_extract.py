"""Features of long audio computed chunk by chunk equal those of the whole signal; power and
the level a model reads."""

import numpy as np
import pytest

from crepe import needs_weights
from ddsp_jax.data.procedural import sung_melody
from ddsp_jax.features import compute_features, features_in_chunks, level_conditioning


def melody_with_a_rest(sample_rate: int) -> np.ndarray:
    """A sung melody of 6 s with a second of silence after its second note."""
    voice, _ = sung_melody([55.0, 59.0, 62.0, 57.0, 60.0, 55.0], 1.0, sample_rate)
    voice[sample_rate * 2 : sample_rate * 3] = 0.0
    return voice


def in_blocks(audio: np.ndarray, size: int) -> list[np.ndarray]:
    return [audio[i : i + size] for i in range(0, len(audio), size)]


@needs_weights
@pytest.mark.parametrize(("chunk_frames", "block"), [(100, 777), (400, 4096), (5000, 100000)])
def test_chunks_give_the_whole_signals_features_at_16_khz(chunk_frames, block):
    audio = melody_with_a_rest(16000)
    n_frames = len(audio) * 250 // 16000 - 3  # Fewer frames than the signal holds, too.
    whole = compute_features(audio[None], 16000, 250, "tiny")
    chunked = features_in_chunks(
        in_blocks(audio, block), 16000, n_frames, 250, "tiny", chunk_frames=chunk_frames
    )
    assert sorted(chunked) == ["f0_confidence", "f0_hz", "loudness_db", "power_db"]
    for name, values in chunked.items():
        assert values.shape == (n_frames,) and values.dtype == np.float32
        # The same arithmetic frame by frame; CREPE's batches differ in size only.
        np.testing.assert_allclose(values, whole[name][0, :n_frames], rtol=1e-5, atol=1e-5)


@needs_weights
@pytest.mark.parametrize(("sample_rate", "frame_rate"), [(44100, 250), (22050, 100)])
def test_chunks_at_other_rates_agree_wherever_there_is_sound(sample_rate, frame_rate):
    audio = melody_with_a_rest(sample_rate)
    n_frames = -(-len(audio) * frame_rate // sample_rate)
    whole = compute_features(audio[None], sample_rate, frame_rate, "tiny")
    chunked = features_in_chunks(
        in_blocks(audio, 5000), sample_rate, n_frames, frame_rate, "tiny", chunk_frames=150
    )
    loudness = whole["loudness_db"][0, :n_frames]
    np.testing.assert_allclose(chunked["loudness_db"], loudness, atol=1e-4)
    # Resampling chunk by chunk rounds differently in the last bits; CREPE scales each frame
    # to unit variance, so frames of near-silence (the rest) amplify that: compare the
    # frames with sound. There a near-tie of two Viterbi paths (at a note's end) can still
    # go the other way, so f0 agrees on almost every frame, confidence on all.
    sound = loudness > -70.0
    assert sound.mean() > 0.7
    confidence = whole["f0_confidence"][0, :n_frames]
    np.testing.assert_allclose(chunked["f0_confidence"][sound], confidence[sound], atol=1e-3)
    close = np.isclose(chunked["f0_hz"], whole["f0_hz"][0, :n_frames], rtol=1e-3)
    assert close[sound].mean() > 0.99


def test_levels_only_and_a_signal_shorter_than_its_frames():
    audio = np.sin(np.arange(1000) / 5.0).astype(np.float32)
    chunked = features_in_chunks([audio], 16000, 40, 250, None, chunk_frames=16)
    assert list(chunked) == ["loudness_db", "power_db"]
    whole = compute_features(np.pad(audio, (0, 40 * 64 - 1000))[None], 16000, 250, None)
    for name in ("loudness_db", "power_db"):
        np.testing.assert_allclose(chunked[name], whole[name][0, :40], atol=1e-5)
    with pytest.raises(ValueError, match="n_frames"):
        features_in_chunks([audio], 16000, 0, 250, None)


def test_power_is_the_mean_square_of_each_frame_in_db():
    t = np.arange(16000) / 16000
    audio = (0.5 * np.sin(2 * np.pi * 500.0 * t)).astype(np.float32)  # 16 periods per frame.
    power = compute_features(audio[None], 16000, 250, None)["power_db"][0]
    np.testing.assert_allclose(power[10:-10], 10 * np.log10(0.5**2 / 2), atol=1e-3)  # -9.03 dB
    assert (
        compute_features(np.zeros((1, 4000), np.float32), 16000, 250, None)["power_db"].max() == -80
    )


def test_a_power_model_reads_power_where_a_loudness_model_reads_loudness():
    features = {"f0_hz": np.ones(3), "loudness_db": np.zeros(3), "power_db": np.full(3, -6.0)}
    np.testing.assert_array_equal(level_conditioning(features, "power_db")["loudness_db"], -6.0)
    np.testing.assert_array_equal(level_conditioning(features, "loudness_db")["loudness_db"], 0.0)
    with pytest.raises(ValueError, match="level_feature must be one of loudness_db, power_db"):
        level_conditioning(features, "rms")
