import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ddsp_jax import core


def test_next_fast_fft_size_is_the_smallest_5_smooth_size():
    def smooth(n: int) -> bool:
        for prime in (2, 3, 5):
            while n % prime == 0:
                n //= prime
        return n == 1

    for n in range(1, 3000):
        size = core.next_fast_fft_size(n)
        assert size >= n and smooth(size)
        assert not any(smooth(m) for m in range(n, size))
    assert core.next_fast_fft_size(64000 + 16000 - 1) == 80000  # A 1 s reverb on 4 s.


def test_fft_convolve_single_ir_is_linear_not_circular(rng):
    audio = rng.normal(size=(3, 1000)).astype(np.float32)
    ir = rng.normal(size=(3, 300)).astype(np.float32)
    full = np.stack([np.convolve(a, h) for a, h in zip(audio, ir, strict=True)])
    valid = core.fft_convolve(audio, ir, padding="valid", delay_compensation=0)
    np.testing.assert_allclose(valid, full, atol=1e-4)
    same = core.fft_convolve(audio, ir, padding="same", delay_compensation=0)
    np.testing.assert_allclose(same, full[:, :1000], atol=1e-4)
    # A circular convolution of the same length would wrap the tail onto the start.
    circular = np.real(np.fft.ifft(np.fft.fft(audio, 1000) * np.fft.fft(ir, 1000)))
    assert np.abs(circular - full[:, :1000]).max() > 1.0


def test_fft_convolve_per_frame_irs_overlap_add(rng):
    n_frames, block, ir_size = 8, 125, 200  # Each block's tail rings into later blocks.
    audio = rng.normal(size=(2, n_frames * block)).astype(np.float32)
    irs = rng.normal(size=(2, n_frames, ir_size)).astype(np.float32)
    expected = np.zeros((2, n_frames * block + ir_size - 1))
    for b in range(2):
        for j in range(n_frames):
            segment = audio[b, j * block : (j + 1) * block]
            expected[b, j * block : (j + 1) * block + ir_size - 1] += np.convolve(
                segment, irs[b, j]
            )
    out = core.fft_convolve(audio, irs, padding="valid", delay_compensation=0)
    np.testing.assert_allclose(out, expected, atol=1e-4)


def test_fft_convolve_shares_a_batch_one_ir_and_compensates_delay(rng):
    audio = rng.normal(size=(4, 256)).astype(np.float32)
    delay = np.zeros((1, 9), np.float32)
    delay[0, 4] = 1.0  # A pure delay of 4 samples = the default compensation 9 // 2.
    np.testing.assert_allclose(core.fft_convolve(audio, delay), audio, atol=1e-6)


def test_fft_convolve_rejects_bad_shapes():
    with pytest.raises(ValueError, match="audio must have shape"):
        core.fft_convolve(jnp.ones(100), jnp.ones((1, 10)))
    with pytest.raises(ValueError, match="batch size"):
        core.fft_convolve(jnp.ones((2, 100)), jnp.ones((3, 10)))
    with pytest.raises(ValueError, match="padding"):
        core.fft_convolve(jnp.ones((1, 100)), jnp.ones((1, 10)), padding="full")
    with pytest.raises(ValueError, match="more than"):
        core.fft_convolve(jnp.ones((1, 100)), jnp.ones((1, 101, 10)))


def test_fft_convolve_frames_that_do_not_divide_the_audio(rng):
    # 44.1 kHz audio with 250 Hz frames: 176.4 samples per frame. Blocks of 176 samples take
    # the IR of the frame they start in.
    n_samples, n_frames, ir_size = 8820, 50, 16
    audio = rng.normal(size=(1, n_samples)).astype(np.float32)
    irs = rng.normal(size=(1, n_frames, ir_size)).astype(np.float32)
    out = core.fft_convolve(audio, irs, padding="valid", delay_compensation=0)
    expected = np.zeros(n_samples + 176 + ir_size)
    for start in range(0, n_samples, 176):
        frame = start * n_frames // n_samples
        segment = audio[0, start : start + 176]
        expected[start : start + len(segment) + ir_size - 1] += np.convolve(segment, irs[0, frame])
    np.testing.assert_allclose(out[0], expected[: n_samples + ir_size - 1], atol=1e-4)


@pytest.mark.parametrize("window_size", [0, 65, 128])
def test_frequency_impulse_response_is_linear_phase(window_size):
    rng = np.random.default_rng(3)
    magnitudes = jnp.asarray(rng.uniform(size=(2, 5, 65)), jnp.float32)
    ir = np.asarray(core.frequency_impulse_response(magnitudes, window_size))
    size = 128 if window_size == 0 else window_size
    assert ir.shape == (2, 5, size)
    centre = size // 2
    k = np.arange(1, (size - 1) // 2 + 1)
    np.testing.assert_allclose(ir[..., centre + k], ir[..., centre - k], atol=1e-7)


def test_flat_frequency_filter_passes_noise_unchanged(rng):
    # A flat response designs a unit impulse at the group delay, which is compensated: white
    # noise passes with its power (and every sample) unchanged up to float32 rounding.
    noise = rng.uniform(-1, 1, size=(2, 16000)).astype(np.float32)
    out = np.asarray(core.frequency_filter(noise, jnp.ones((2, 250, 65))))
    assert np.mean(out**2) == pytest.approx(np.mean(noise**2), rel=1e-5)
    np.testing.assert_allclose(out, noise, atol=1e-5)


def test_low_pass_frequency_filter_attenuates_the_stop_band(rng):
    sr, n = 16000, 64000
    noise = rng.uniform(-1, 1, size=(1, n)).astype(np.float32)
    bands = np.linspace(0, sr / 2, 65)
    low_pass = (bands <= 2000.0).astype(np.float32)
    out = np.asarray(core.frequency_filter(noise, jnp.asarray(low_pass)[None], window_size=257))
    freqs = np.fft.rfftfreq(n, 1 / sr)
    power_in = np.abs(np.fft.rfft(noise[0])) ** 2
    power_out = np.abs(np.fft.rfft(out[0])) ** 2
    pass_band = freqs < 1500
    stop_band = freqs > 3000
    pass_gain_db = 10 * np.log10(power_out[pass_band].sum() / power_in[pass_band].sum())
    stop_gain_db = 10 * np.log10(power_out[stop_band].sum() / power_in[stop_band].sum())
    assert abs(pass_gain_db) < 0.5
    assert stop_gain_db < -40.0


def test_time_varying_filter_follows_its_frames(rng):
    # First half passes everything, second half nothing.
    noise = rng.uniform(-1, 1, size=(1, 8000)).astype(np.float32)
    magnitudes = np.ones((1, 100, 33), np.float32)
    magnitudes[:, 50:] = 0.0
    out = np.asarray(jax.jit(core.frequency_filter)(noise, magnitudes))
    np.testing.assert_allclose(out[0, :3900], noise[0, :3900], atol=1e-5)
    assert np.abs(out[0, 4100:]).max() < 1e-6


@pytest.mark.parametrize(
    ("n_frames", "window_size", "padding"), [(250, 0, "same"), (7, 65, "valid"), (1, 128, "same")]
)
def test_frequency_filter_equals_convolving_with_the_designed_impulse_responses(
    rng, n_frames, window_size, padding
):
    """``frequency_filter`` multiplies by the designed filters' spectra directly (no impulse
    response or FFT of it); the result is the convolution with those impulse responses,
    including frame counts that do not divide the audio (7 frames over 16000 samples)."""
    audio = rng.uniform(-1, 1, size=(2, 16000)).astype(np.float32)
    magnitudes = jnp.asarray(rng.uniform(size=(2, n_frames, 65)), jnp.float32)
    irs = core.frequency_impulse_response(magnitudes, window_size)
    expected = core.fft_convolve(audio, irs, padding=padding)
    out = core.frequency_filter(audio, magnitudes, window_size, padding=padding)
    assert out.shape == expected.shape
    np.testing.assert_allclose(out, expected, atol=2e-6 * float(jnp.max(jnp.abs(expected))))


def test_filtered_blocks_overlap_added_are_the_frequency_filter(rng):
    audio = rng.normal(size=(2, 640)).astype(np.float32)
    magnitudes = rng.uniform(0.0, 1.0, (2, 10, 33)).astype(np.float32)
    blocks = core.filter_blocks(audio.reshape(2, 10, 64), magnitudes, window_size=31)
    assert blocks.shape == (2, 10, 64 + 31 - 1)
    joined = core.overlap_add(blocks, 64)[:, 15 : 15 + 640]  # Drop the 15-sample delay.
    expected = core.frequency_filter(audio, magnitudes, window_size=31)
    np.testing.assert_allclose(joined, expected, atol=1e-6)


def sine_db(audio: np.ndarray, frequency: float, sample_rate: int = 16000) -> float:
    """Level (dB) of ``frequency`` in ``audio``, by projection on its sine and cosine."""
    t = np.arange(audio.shape[-1]) / sample_rate
    c, s = np.cos(2 * np.pi * frequency * t), np.sin(2 * np.pi * frequency * t)
    amplitude = 2 * np.hypot(np.mean(audio * c), np.mean(audio * s))
    return 20 * np.log10(amplitude)


def test_sinc_low_pass_passes_below_and_stops_above_its_cutoff():
    t = np.arange(16000) / 16000
    low, high = np.sin(2 * np.pi * 500 * t), np.sin(2 * np.pi * 6000 * t)
    audio = jnp.asarray(np.stack([low + high]), jnp.float32)
    out = np.asarray(core.sinc_filter(audio, jnp.array([2000.0]), 512, sample_rate=16000))
    middle = out[0, 1000:-1000]
    assert abs(sine_db(middle, 500) - sine_db(low[1000:-1000], 500)) < 0.05
    assert sine_db(middle, 6000) < -45.0
    relative = core.sinc_filter(audio, jnp.array([0.25]), 512)  # 2 kHz of 8 kHz.
    np.testing.assert_allclose(relative, out, atol=1e-6)


def test_sinc_high_pass_and_low_pass_add_up_to_the_input(rng):
    audio = jnp.asarray(rng.normal(size=(2, 4000)), jnp.float32)
    cutoff = jnp.array([1000.0, 3000.0])
    low = core.sinc_filter(audio, cutoff, 256, sample_rate=16000)
    high = core.sinc_filter(audio, cutoff, 256, sample_rate=16000, high_pass=True)
    np.testing.assert_allclose(low + high, audio, atol=1e-5)
    t = np.arange(16000) / 16000
    hum = jnp.asarray(np.sin(2 * np.pi * 100 * t)[None], jnp.float32)
    removed = core.sinc_filter(hum, jnp.array([2000.0]), 512, 16000, high_pass=True)
    assert sine_db(np.asarray(removed)[0, 1000:-1000], 100) < -45.0


def test_sinc_filter_cutoff_can_change_every_frame():
    t = np.arange(16000) / 16000
    tone = jnp.asarray(np.sin(2 * np.pi * 3000 * t)[None], jnp.float32)
    cutoff = jnp.asarray(np.repeat([1000.0, 6000.0], 50)[None], jnp.float32)  # 100 frames.
    out = np.asarray(core.sinc_filter(tone, cutoff, 256, sample_rate=16000))[0]
    assert sine_db(out[1000:7000], 3000) < -40.0  # Cutoff 1 kHz: stopped.
    assert abs(sine_db(out[9000:15000], 3000)) < 0.1  # Cutoff 6 kHz: passed.


def test_sinc_filter_gradient_in_its_cutoff_is_finite_and_non_zero(rng):
    audio = jnp.asarray(rng.normal(size=(1, 2000)), jnp.float32)

    def energy(cutoff: jax.Array) -> jax.Array:
        return jnp.sum(core.sinc_filter(audio, cutoff, 128, sample_rate=16000) ** 2)

    gradient = jax.grad(energy)(jnp.array([3000.0]))
    assert np.all(np.isfinite(gradient)) and float(gradient[0]) > 0.0  # More band, more energy.
