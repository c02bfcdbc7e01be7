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


def sine(frequency: float, amplitude: float, sample_rate: int = 16000, seconds: float = 1.0):
    t = np.arange(round(seconds * sample_rate)) / sample_rate
    return (amplitude * np.sin(2 * np.pi * frequency * t)).astype(np.float32)


def test_loudness_matches_magentas_reference_values():
    # magenta/ddsp 3.7 spectral_ops.compute_loudness (16 kHz, 250 Hz frames, center padding,
    # ref_db 0, range 80): 440 Hz sine of amplitude 0.5 reads 15.72 dB at frame 125 of 251
    # with n_fft 2048 and 9.69 dB with n_fft 512; silence reads the −80 dB floor.
    audio = sine(440.0, 0.5)
    loudness = core.compute_loudness(audio, n_fft=2048)
    assert loudness.shape == (251,)
    assert float(loudness[125]) == pytest.approx(15.72, abs=0.01)
    assert float(core.compute_loudness(audio, n_fft=512)[125]) == pytest.approx(9.69, abs=0.01)
    np.testing.assert_array_equal(core.compute_loudness(np.zeros((2, 16000))), -80.0)
    # ref_db shifts the level; the floor stays at -range_db.
    shifted = core.compute_loudness(audio, n_fft=512, ref_db=20.0, range_db=60.0)
    assert float(shifted[125]) == pytest.approx(9.69 - 20.0, abs=0.01)
    assert float(core.compute_loudness(audio * 0, range_db=60.0)[0]) == -60.0


def test_a_weighting_matches_the_standard():
    # IEC 61672-1 A-weighting table (dB): 100 Hz −19.1, 1 kHz 0.0, 10 kHz −2.5.
    weights = core.a_weighting(np.array([100.0, 1000.0, 10000.0, 0.0]))
    np.testing.assert_allclose(weights[:3], [-19.1, 0.0, -2.5], atol=0.05)
    assert weights[3] == -80.0  # DC floored, as librosa.A_weighting(min_db=-80).


def test_loudness_gradient_is_finite_and_nonzero_also_on_silence(rng):
    audio = jnp.asarray(rng.normal(size=(2, 4000)) * 0.1, jnp.float32)
    audio = audio.at[1].set(0.0)
    grad = jax.grad(lambda a: jnp.sum(core.compute_loudness(a)))(audio)
    assert np.all(np.isfinite(grad))
    assert np.abs(grad[0]).max() > 0
    assert np.all(grad[1] == 0)  # At the floor nothing changes the output.


@pytest.mark.parametrize("sample_rate", [22050, 44100, 48000])
def test_loudness_at_any_sample_rate_keeps_the_frame_rate(sample_rate):
    audio = sine(1000.0, 0.5, sample_rate, seconds=2.0)
    loudness = np.asarray(core.compute_loudness(audio, sample_rate, n_fft=2048))
    assert loudness.shape == (1 + 2 * 250,)  # One frame per 1/250 s, plus the centred last.
    steady = loudness[10:-10]
    assert steady.max() - steady.min() < 0.05  # A steady tone reads steady, hop or no hop.
    # A-weighting at 1 kHz is 0 dB, so the level is that of the mean power per bin.
    expected = 10 * np.log10(0.25 / 2 * 2048 * (3 / 8) * 2048 / 2 / (2048 // 2 + 1))
    assert float(np.median(steady)) == pytest.approx(expected, abs=0.1)


def test_frame_counts_of_each_padding():
    assert core.frame_starts(16000, 512, 16000, 250, "center")[1].shape == (251,)
    assert core.frame_starts(16000, 512, 16000, 250, "same")[1].shape == (250,)
    assert core.frame_starts(16000, 512, 16000, 250, "valid")[1].shape == (243,)
    left, starts = core.frame_starts(44100, 1024, 44100, 250, "center")
    assert left == 512 and starts[:3].tolist() == [0, 176, 352]  # 176.4-sample hop.
    for padding in ("center", "same", "valid"):
        n_frames = core.frame_starts(16000, 512, 16000, 250, padding)[1].shape[0]
        assert core.compute_power(sine(440.0, 0.5), padding=padding).shape == (n_frames,)
    with pytest.raises(ValueError, match="padding"):
        core.compute_loudness(np.zeros(1000), padding="reflect")
    with pytest.raises(ValueError, match="shorter than one frame"):
        core.compute_loudness(np.zeros(100), padding="valid")


def test_rms_energy_and_power_of_a_sine():
    # 500 Hz at 16 kHz: a 512-sample frame holds 16 whole periods, so RMS = A / sqrt(2).
    audio = sine(500.0, 0.5)
    rms = np.asarray(core.compute_rms_energy(audio))
    np.testing.assert_allclose(rms[5:-5], 0.5 / np.sqrt(2), rtol=1e-4)
    power = np.asarray(core.compute_power(audio))
    np.testing.assert_allclose(power[5:-5], 20 * np.log10(0.5 / np.sqrt(2)), atol=1e-3)
    assert float(core.compute_power(np.zeros(16000))[0]) == -80.0
    grad = jax.grad(lambda a: jnp.sum(core.compute_rms_energy(a)))(jnp.zeros((1, 2000)))
    assert np.all(np.isfinite(grad))
