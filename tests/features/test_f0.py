"""CREPE f0: accuracy on tones of known pitch, Viterbi decoding, any sample rate."""

import numpy as np
import pytest

from crepe import needs_weights
from ddsp_jax.features.f0 import (
    N_BINS,
    ViterbiDecoder,
    _decode,
    bins_to_cents,
    cents_to_hz,
    compute_f0,
    viterbi_bins,
)


def harmonic_tone(f0: float, sample_rate: int = 16000, seconds: float = 0.5) -> np.ndarray:
    t = np.arange(round(seconds * sample_rate)) / sample_rate
    return sum(0.3 / k * np.sin(2 * np.pi * k * f0 * t) for k in range(1, 6)).astype(np.float32)


def cents_error(f0: np.ndarray, reference: float) -> np.ndarray:
    return 1200.0 * np.log2(f0 / reference)


def test_bin_to_hz_conversion_matches_crepe():
    # CREPE's bin 0 is 1997.38 cents above 10 Hz (≈ 31.7 Hz); 360 bins of 20 cents up to
    # ≈ 2005.5 Hz (torchcrepe's MAX_FMAX is 2006 Hz).
    assert float(cents_to_hz(bins_to_cents(0.0))) == pytest.approx(31.70, abs=0.01)
    assert float(cents_to_hz(bins_to_cents(N_BINS - 1.0))) == pytest.approx(2005.5, abs=0.5)


@needs_weights
def test_tiny_crepe_tracks_tones_across_the_musical_range():
    midi = np.array([36, 45, 55, 64, 74, 84])
    frequencies = 440.0 * 2.0 ** ((midi - 69) / 12)
    audio = np.stack([harmonic_tone(f) for f in frequencies])
    f0, confidence = compute_f0(audio, 16000, capacity="tiny")
    assert f0.shape == confidence.shape == (6, 126)
    errors = np.abs(cents_error(f0[:, 4:-4], frequencies[:, None]))  # Skip edge frames.
    assert np.median(errors) <= 10.0, np.median(errors, axis=1)
    assert np.mean(errors <= 50.0) >= 0.97  # Raw pitch accuracy.
    assert np.median(confidence[:, 4:-4]) > 0.7


@needs_weights
@pytest.mark.parametrize("sample_rate", [8000, 44100])
def test_any_sample_rate_gives_the_same_frame_rate(sample_rate):
    f0, confidence = compute_f0(harmonic_tone(220.0, sample_rate), sample_rate, capacity="tiny")
    assert f0.shape == (126,) and confidence.shape == (126,)
    assert np.median(np.abs(cents_error(f0[4:-4], 220.0))) <= 10.0


@needs_weights
def test_silence_has_low_confidence():
    _, confidence = compute_f0(np.zeros(8000, np.float32), 16000, capacity="tiny")
    assert np.max(confidence) < 0.5


def test_viterbi_removes_a_single_frame_octave_jump():
    salience = np.full((20, N_BINS), 0.01, np.float32)
    salience[:, 100] = 0.9  # A steady note...
    salience[10, 160] = 0.95  # ...and one frame whose argmax jumps an octave (60 bins) up.
    assert np.argmax(salience, axis=-1)[10] == 160
    path = np.asarray(viterbi_bins(salience))
    np.testing.assert_array_equal(path, 100)
    # A real change of note is followed (it lasts, and it is within reach step by step).
    salience[12:, 100], salience[12:, 106] = 0.01, 0.9
    path = np.asarray(viterbi_bins(salience))
    assert path[:11].tolist() == [100] * 11 and path[-5:].tolist() == [106] * 5


def test_bad_input_is_refused_before_any_model_runs():
    with pytest.raises(ValueError, match="NaN"):
        compute_f0(np.array([0.0, np.nan, 0.0] * 400, np.float32), 16000)
    with pytest.raises(ValueError, match="with samples"):
        compute_f0(np.zeros(0, np.float32), 16000)
    with pytest.raises(ValueError, match="with samples"):
        compute_f0(np.zeros((1, 2, 100), np.float32), 16000)
    with pytest.raises(ValueError, match="sample_rate"):
        compute_f0(np.zeros(100, np.float32), 0)


@needs_weights
def test_salience_in_chunks_equals_the_network_on_all_frames_at_once():
    import jax.numpy as jnp

    from ddsp_jax.core.spectral import frames_at_rate
    from ddsp_jax.features.f0 import crepe_salience, load_crepe

    model = load_crepe("tiny")
    audio = harmonic_tone(330.0, seconds=1.3)[None]  # 326 frames: two chunks of 200.
    chunked = crepe_salience(model, audio, 250, "center", chunk_frames=200)
    frames = frames_at_rate(jnp.asarray(audio), 1024, 16000, 250, "center")[0]
    whole = np.asarray(model(frames))
    assert chunked.shape == (1, 326, N_BINS)
    np.testing.assert_allclose(chunked[0], whole, atol=1e-5)


def plain_convolution(x, kernel, padding, stride=1):
    import jax
    import jax.numpy as jnp

    padded = jnp.pad(x, ((0, 0), padding, (0, 0)))
    return jax.lax.conv_general_dilated(
        padded, kernel, (stride,), "VALID", dimension_numbers=("NWC", "WIO", "NWC")
    )


def random_layer(length, channels_in, channels_out, taps=64):
    import jax

    x = jax.random.normal(jax.random.key(0), (3, length, channels_in))
    kernel = jax.random.normal(jax.random.key(1), (taps, channels_in, channels_out))
    return x, kernel, jax.random.normal(jax.random.key(2), (channels_out,))


@pytest.mark.parametrize("length", [63, 32, 16, 8, 1])
def test_short_convolution_equals_the_convolution_of_the_padded_input(length):
    from ddsp_jax.features.f0 import short_convolution

    x, kernel, bias = random_layer(length, 5, 7)
    fast = short_convolution(x, kernel, bias)
    assert fast.shape == (3, length, 7)
    plain = plain_convolution(x, kernel, (31, 32)) + bias
    np.testing.assert_allclose(fast, plain, rtol=1e-5, atol=1e-4)


@pytest.mark.parametrize("phases", [1, 2, 4, 8])
def test_phased_convolution_equals_the_convolution_of_the_padded_input(phases):
    from ddsp_jax.features.f0 import phased_convolution

    x, kernel, bias = random_layer(128, 6, 3)
    fast = phased_convolution(x, kernel, bias, phases)
    assert fast.shape == (3, 128, 3)
    plain = plain_convolution(x, kernel, (31, 32)) + bias
    np.testing.assert_allclose(fast, plain, rtol=1e-5, atol=1e-4)


def test_first_convolution_equals_the_strided_convolution():
    from ddsp_jax.features.f0 import first_convolution

    x, kernel, bias = random_layer(1024, 1, 4, taps=512)
    fast = first_convolution(x, kernel, bias)
    assert fast.shape == (3, 256, 4)
    plain = plain_convolution(x, kernel, (254, 254), stride=4) + bias
    np.testing.assert_allclose(fast, plain, rtol=1e-5, atol=1e-4)


@needs_weights
@pytest.mark.parametrize("capacity", ["tiny", "full"])
def test_crepe_fast_path_equals_its_plain_convolutions(capacity):
    import jax.numpy as jnp

    from ddsp_jax.core.implementation import use_implementation
    from ddsp_jax.features.f0 import load_crepe

    model = load_crepe(capacity)
    rng = np.random.default_rng(0)
    tone = harmonic_tone(196.0, seconds=0.1)[:1024]
    frames = jnp.asarray(np.stack([tone, rng.normal(size=1024).astype(np.float32)]))
    with use_implementation("reference"):
        plain = np.asarray(model(frames))
    fast = np.asarray(model(frames))
    np.testing.assert_allclose(fast, plain, atol=2e-5)
    assert np.argmax(fast[0]) == np.argmax(plain[0])


def test_interpolation_is_linear_in_cents_and_holds_beyond_the_ends():
    from ddsp_jax.features.f0 import interpolate_f0

    centres = np.array([0.0, 160.0, 320.0])
    f0 = np.array([[100.0, 200.0, 400.0]])  # One octave per 160 samples.
    confidence = np.array([[0.2, 0.6, 1.0]])
    moved, moved_confidence = interpolate_f0(f0, confidence, centres, np.array([-64, 80, 240, 999]))
    np.testing.assert_allclose(moved[0], [100.0, 100.0 * 2**0.5, 200.0 * 2**0.5, 400.0], rtol=1e-6)
    np.testing.assert_allclose(moved_confidence[0], [0.2, 0.4, 0.8, 1.0], rtol=1e-6)


@needs_weights
def test_crepe_at_100_hz_interpolated_to_250_hz_follows_a_vibrato():
    from ddsp_jax.benchmarks.f0 import vibrato_tones

    tones, true_f0 = vibrato_tones(np.array([48, 64, 76]), seconds=1.0)
    f0_250, confidence_250 = compute_f0(tones, 16000, 250, capacity="tiny")
    f0_100, confidence_100 = compute_f0(tones, 16000, 250, capacity="tiny", network_rate=100)
    assert f0_100.shape == f0_250.shape == true_f0.shape
    errors = np.abs(1200 * np.log2(f0_100[:, 4:-4] / true_f0[:, 4:-4]))
    errors_250 = np.abs(1200 * np.log2(f0_250[:, 4:-4] / true_f0[:, 4:-4]))
    assert np.median(errors) < np.median(errors_250) + 1.0 and np.max(errors) < 30.0
    assert np.abs(confidence_100 - confidence_250)[:, 4:-4].max() < 0.1


def wandering_salience(n_frames: int, seed: int = 0) -> np.ndarray:
    """Salience of a pitch that wanders by up to 2 bins a frame, with noise everywhere and
    stretches of 500 frames out of every 1500 without a pitch."""
    rng = np.random.default_rng(seed)
    salience = rng.uniform(0.0, 0.05, (n_frames, N_BINS)).astype(np.float32)
    path = np.clip(150 + np.cumsum(rng.integers(-2, 3, n_frames)), 10, 340)
    for frame in np.nonzero((np.arange(n_frames) // 500) % 3 != 2)[0]:
        salience[frame, path[frame] - 2 : path[frame] + 3] += [0.2, 0.6, 0.9, 0.6, 0.2]
    return salience


def dense_viterbi(salience: np.ndarray) -> np.ndarray:
    """CREPE's Viterbi in float64 over all 360 × 360 transitions (the plain reference)."""
    distance = np.abs(np.arange(N_BINS)[:, None] - np.arange(N_BINS)[None, :])
    transition = np.maximum(12 - distance, 0.0)
    transition /= transition.sum(axis=1, keepdims=True)
    with np.errstate(divide="ignore"):
        log_transition = np.log(transition)
    emission = np.log(salience / salience.sum(axis=1, keepdims=True) + 1e-12)
    score, back = emission[0] - np.log(N_BINS), []
    for frame in range(1, len(salience)):
        candidates = score[:, None] + log_transition
        back.append(candidates.argmax(axis=0))
        score = candidates.max(axis=0) + emission[frame]
    path = [int(score.argmax())]
    for pointers in reversed(back):
        path.append(int(pointers[path[-1]]))
    return np.array(path[::-1])


def test_viterbi_equals_the_dense_float64_reference_over_long_inputs():
    salience = wandering_salience(3000)
    np.testing.assert_array_equal(np.asarray(viterbi_bins(salience)), dense_viterbi(salience))


@pytest.mark.parametrize("chunk", [1, 7, 100, 3000])
def test_viterbi_decoder_in_chunks_equals_the_whole_input_decoding(chunk):
    salience = wandering_salience(3000, seed=1)
    f0_hz, confidence = (np.asarray(x)[0] for x in _decode(salience[None], True))
    decoder = ViterbiDecoder()
    parts = [decoder.push(salience[i : i + chunk]) for i in range(0, len(salience), chunk)]
    parts.append(decoder.finish())
    np.testing.assert_array_equal(np.concatenate([f for f, _ in parts]), f0_hz)
    np.testing.assert_array_equal(np.concatenate([c for _, c in parts]), confidence)
    # Frames are returned as soon as the paths merge: little is pending after a chunk.
    decoder.push(salience[:1000])
    assert len(decoder._salience) < 50


def test_viterbi_decoder_bounds_what_it_keeps_when_paths_do_not_merge():
    flat = np.full((400, N_BINS), 1.0, np.float32)  # No pitch anywhere: paths never merge.
    decoder = ViterbiDecoder(max_pending=150)
    decided = sum(len(decoder.push(flat[i : i + 50])[0]) for i in range(0, 400, 50))
    assert len(decoder._salience) <= 150 and decided == 400 - len(decoder._salience)
    assert decided + len(decoder.finish()[0]) == 400
