import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ddsp_jax import core


def test_stft_matches_numpy_reference(rng):
    audio = rng.normal(size=(2, 1000)).astype(np.float32)
    size, hop = 256, 64
    spectrum = np.asarray(core.stft(audio, size=size, overlap=0.75))
    n_frames = -(-1000 // hop)  # tf.signal.stft(pad_end=True): ceil(n / hop) frames.
    assert spectrum.shape == (2, n_frames, size // 2 + 1)
    padded = np.pad(audio, ((0, 0), (0, (n_frames - 1) * hop + size - 1000)))
    window = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(size) / size)  # Periodic Hann.
    for j in (0, 5, n_frames - 1):
        expected = np.fft.rfft(padded[:, j * hop : j * hop + size] * window)
        np.testing.assert_allclose(spectrum[:, j], expected, atol=1e-3)


def test_stft_parseval(rng):
    # With 75 % overlap periodic Hann windows sum to 1.5 (their squares to 0.375 * 4 ...):
    # check Parseval frame by frame instead, exactly.
    audio = rng.normal(size=(1, 4096)).astype(np.float32)
    size = 512
    frames = np.asarray(core.frame(jnp.asarray(audio), size, 128))
    window = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(size) / size)
    mag = np.asarray(core.compute_mag(audio, size))
    weights = np.full(size // 2 + 1, 2.0)
    weights[[0, -1]] = 1.0
    energy_freq = (weights * mag**2).sum(axis=-1) / size
    energy_time = ((frames * window) ** 2).sum(axis=-1)
    np.testing.assert_allclose(energy_freq, energy_time, rtol=1e-4)


def test_sine_peak_and_log_magnitude():
    sr, f = 16000, 1000.0
    audio = jnp.sin(2 * jnp.pi * f * jnp.arange(16000) / sr)[None] * 0.5
    mag = np.asarray(core.compute_mag(audio, 1024))
    assert np.argmax(mag[0, 10]) == pytest.approx(f * 1024 / sr)
    # A Hann-windowed sine of amplitude A peaks at A * size / 4.
    assert mag[0, 10].max() == pytest.approx(0.5 * 1024 / 4, rel=1e-3)
    expected = np.log(np.where(mag <= 0.0, 1e-5, mag))  # magenta's safe_log.
    np.testing.assert_allclose(core.compute_logmag(audio, 1024), expected, rtol=1e-5)


def test_magnitude_gradient_is_finite_on_silence_and_nan_stays_visible():
    grad = jax.grad(lambda x: core.compute_mag(x, 64).sum())(jnp.zeros((1, 256)))
    assert np.all(np.isfinite(grad))
    assert np.isnan(core.compute_mag(jnp.zeros((1, 256)).at[0, 5].set(jnp.nan), 64)).any()


def test_mel_filterbank_properties():
    weights = core.mel_weight_matrix(64, 1025, 16000.0, 80.0, 7600.0)
    assert weights.shape == (1025, 64)
    np.testing.assert_array_equal(weights[0], 0.0)  # DC gets no weight.
    assert np.all(weights.max(axis=0) > 0.5)  # Every band sees some bins.
    peaks = np.argmax(weights, axis=0)
    assert np.all(np.diff(peaks) >= 0)  # Bands ascend in frequency.
    mel = core.compute_mel(jnp.ones((1, 4096)), bins=64)
    assert mel.shape == (1, 8, 64)  # fft_size 2048, hop 512.


def test_mfcc_is_orthonormal_dct_of_logmel(rng):
    audio = jnp.asarray(rng.normal(size=(2, 4000)), jnp.float32)
    logmel = np.asarray(core.compute_logmel(audio, 20.0, 8000.0, 128, 1024), np.float64)
    mfcc = np.asarray(core.compute_mfcc(audio, mfcc_bins=13), np.float64)
    n = 128
    k = np.arange(13)
    basis = np.cos(np.pi * k[None, :] * (2 * np.arange(n)[:, None] + 1) / (2 * n))
    expected = logmel @ basis * 2 / np.sqrt(2 * n)  # tf.signal's scaling of the DCT-II.
    np.testing.assert_allclose(mfcc, expected, rtol=1e-4, atol=1e-3)
    with pytest.raises(ValueError, match="mfcc_bins"):
        core.compute_mfcc(audio, mfcc_bins=200)


def test_spectral_bad_input():
    with pytest.raises(ValueError, match="overlap"):
        core.stft(jnp.ones((1, 100)), 64, overlap=1.0)
    with pytest.raises(ValueError, match="audio must have shape"):
        core.stft(jnp.ones((1, 2, 100)), 64)
