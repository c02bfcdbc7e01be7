"""Features of audio given block by block equal the offline features."""

import numpy as np
import pytest

from crepe import needs_weights
from ddsp_jax.core.spectral import compute_loudness
from ddsp_jax.features.f0 import compute_f0
from ddsp_jax.features.streaming import StreamingFeatures


def melody(seconds: float = 1.5, sample_rate: int = 16000) -> np.ndarray:
    t = np.arange(int(seconds * sample_rate)) / sample_rate
    f0 = 220.0 * 2 ** (np.floor(t * 4) / 12) * (1 + 0.01 * np.sin(2 * np.pi * 5 * t))
    phase = 2 * np.pi * np.cumsum(f0) / sample_rate
    envelope = 0.3 + 0.2 * np.sin(2 * np.pi * 1.3 * t)
    return (envelope * (np.sin(phase) + 0.3 * np.sin(2 * phase))).astype(np.float32)


def stream(features: StreamingFeatures, audio: np.ndarray) -> dict[str, np.ndarray]:
    block = features.block_size
    pieces = [
        features.process(audio[i : i + block]) for i in range(0, len(audio) - block + 1, block)
    ]
    return {name: np.concatenate([p[name] for p in pieces]) for name in pieces[0]}


@needs_weights
@pytest.mark.parametrize("block_size", [100, 320])
def test_streamed_features_equal_the_offline_ones(block_size):
    audio = melody()
    features = StreamingFeatures(block_size, f0_model="tiny")
    assert features.latency == 512
    streamed = stream(features, audio)
    n = len(streamed["f0_hz"])
    # Every frame whose window the blocks completed: (samples - 512) / 64 + 1 of them.
    assert n == (len(audio) // block_size * block_size - 512) // 64 + 1
    f0, confidence = compute_f0(audio, 16000, capacity="tiny", viterbi=False)
    loudness = np.asarray(compute_loudness(audio, 16000, 250, 512))
    np.testing.assert_allclose(streamed["f0_hz"], f0[:n], rtol=1e-4)
    np.testing.assert_allclose(streamed["f0_confidence"], confidence[:n], atol=1e-4)
    np.testing.assert_allclose(streamed["loudness_db"], loudness[:n], atol=1e-3)


def test_loudness_only_has_half_the_latency_and_refuses_a_wrong_block():
    features = StreamingFeatures(64, f0_model=None)
    assert features.latency == 256
    audio = melody(0.5)
    streamed = stream(features, audio)
    loudness = np.asarray(compute_loudness(audio, 16000, 250, 512))
    n = len(streamed["loudness_db"])
    assert n == (len(audio) - 256) // 64 + 1
    np.testing.assert_allclose(streamed["loudness_db"], loudness[:n], atol=1e-3)
    with pytest.raises(ValueError, match=r"a block must be \[64\] samples, got \(63,\)"):
        features.process(np.zeros(63))
