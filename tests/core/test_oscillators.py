import jax
import jax.numpy as jnp
import numpy as np
import pytest
from long_double import long_double_reference

from conftest import SAMPLE_RATES, relative_error_db
from ddsp_jax import core
from ddsp_jax.core.oscillators import harmonic_frames


def spectrum_amplitudes(audio: np.ndarray) -> np.ndarray:
    """Sine amplitudes per bin of a rectangular-window FFT over whole periods."""
    return np.abs(np.fft.rfft(audio)) * 2.0 / len(audio)


def test_harmonics_at_k_f0_with_requested_amplitudes_and_nothing_above_nyquist():
    sr, f0, n_harmonics, amplitude = 16000, 1000.0, 12, 0.8
    n_frames, n_samples = 500, 32000  # 2 s; analyse the last second (whole periods).
    distribution = 1.0 / np.arange(1, n_harmonics + 1)
    audio = core.harmonic_synthesis(
        jnp.full((1, n_frames, 1), f0),
        jnp.full((1, n_frames, 1), amplitude),
        jnp.broadcast_to(jnp.asarray(distribution, jnp.float32), (1, n_frames, n_harmonics)),
        n_samples=n_samples,
        sample_rate=sr,
    )
    spectrum = spectrum_amplitudes(np.asarray(audio[0, sr:], np.float64))  # 1 Hz bins.
    below = np.arange(1, n_harmonics + 1) * f0 < sr / 2  # Harmonics 1..7; 8 is at Nyquist.
    expected = amplitude * distribution[below] / distribution[below].sum()
    peaks = spectrum[(np.arange(1, below.sum() + 1) * f0).astype(int)]
    np.testing.assert_allclose(peaks, expected, rtol=1e-4)
    assert spectrum[int(sr / 2)] < 1e-6  # Harmonic 8 sits exactly at Nyquist: silenced.
    others = spectrum.copy()
    others[(np.arange(1, below.sum() + 1) * f0).astype(int)] = 0.0
    assert others.max() < 1e-5
    # Parseval: all the power is in the requested harmonics.
    power = np.mean(np.asarray(audio[0, sr:], np.float64) ** 2)
    assert power == pytest.approx(np.sum(expected**2) / 2.0, rel=1e-4)


def test_renormalisation_is_exact():
    rng = np.random.default_rng(0)
    distribution = jnp.asarray(rng.uniform(0.1, 1.0, size=(2, 5, 20)), jnp.float32)
    f0 = jnp.asarray([[[300.0]] * 5, [[900.0]] * 5])
    normalised = np.asarray(core.normalize_harmonics(distribution, f0, 16000))
    k = np.arange(1, 21)
    for batch, f in enumerate((300.0, 900.0)):
        keep = k * f < 8000
        np.testing.assert_allclose(normalised[batch].sum(axis=-1), 1.0, rtol=1e-6)
        np.testing.assert_array_equal(normalised[batch][:, ~keep], 0.0)
        expected = np.asarray(distribution[batch][:, keep])
        expected = expected / expected.sum(axis=-1, keepdims=True)
        np.testing.assert_allclose(normalised[batch][:, keep], expected, rtol=1e-6)


def synthesise_fundamental(f0_frames: np.ndarray, n_samples: int, sample_rate: int) -> np.ndarray:
    n_frames = len(f0_frames)
    fn = jax.jit(
        lambda f: core.harmonic_synthesis(
            f[None, :, None],
            jnp.ones((1, n_frames, 1)),
            n_samples=n_samples,
            sample_rate=sample_rate,
            amp_resample_method="linear",
        )
    )
    return np.asarray(fn(jnp.asarray(f0_frames))[0])


@pytest.mark.parametrize("signal", ["tone", "chirp"])
def test_phase_stays_accurate_over_ten_minutes(signal):
    sr, frame_rate, seconds = 16000, 250, 600
    n_frames, n_samples = frame_rate * seconds, sr * seconds
    if signal == "tone":
        f0 = np.full(n_frames, 7000.0, np.float32)
    else:
        f0 = np.geomspace(100.0, 7900.0, n_frames).astype(np.float32)
    reference = long_double_reference(f0, n_samples, sr)
    error_db = relative_error_db(synthesise_fundamental(f0, n_samples, sr), reference)
    assert error_db < -80.0

    # The test can fail: a plain float32 cumulative sum is far off long before 10 minutes.
    four_seconds = 4 * sr
    frequency = np.repeat(f0[: 4 * frame_rate], sr // frame_rate).astype(np.float32)
    naive = np.sin(2 * np.pi * np.cumsum(frequency / np.float32(sr), dtype=np.float32))
    assert relative_error_db(naive, reference[:four_seconds]) > -60.0


def test_phase_accurate_when_hop_is_not_an_integer():
    sr, frame_rate, seconds = 44100, 250, 60  # 176.4 samples per frame.
    n_frames, n_samples = frame_rate * seconds, sr * seconds
    f0 = (3000.0 + 2000.0 * np.sin(np.linspace(0, 20, n_frames))).astype(np.float32)
    reference = long_double_reference(f0, n_samples, sr)
    assert relative_error_db(synthesise_fundamental(f0, n_samples, sr), reference) < -80.0


def test_final_phase_continues_a_stream_without_a_jump():
    sr, n_frames, hop = 16000, 100, 64
    f0 = jnp.full((2, 2 * n_frames, 1), 443.7)
    amps = jnp.full((2, 2 * n_frames, 3), 0.2)
    whole, _ = core.harmonic_oscillator(f0, amps, 2 * n_frames * hop, sr)
    first, phase = core.harmonic_oscillator(
        f0[:, :n_frames], amps[:, :n_frames], n_frames * hop, sr
    )
    second, _ = core.harmonic_oscillator(
        f0[:, n_frames:], amps[:, n_frames:], n_frames * hop, sr, initial_phase=phase
    )
    np.testing.assert_allclose(np.concatenate([first, second], axis=1), whole, atol=2e-6)


def test_runs_of_frames_given_the_next_frame_join_into_one_run_exactly():
    sr, hop = 16000, 64
    rng = np.random.default_rng(2)
    f0 = jnp.asarray(rng.uniform(100.0, 3000.0, (1, 30)), jnp.float32)
    amps = jnp.asarray(rng.uniform(0.0, 0.3, (1, 30, 5)), jnp.float32)
    zero = (jnp.zeros((1,), jnp.uint32), jnp.zeros((1,), jnp.uint32))

    frames_of = jax.jit(harmonic_frames, static_argnums=(5, 6, 7))

    def run(frames: slice, start):
        after = min(frames.stop, 29)  # The frame after the run; the last one is held.
        return frames_of(
            f0[:, frames],
            amps[:, frames],
            f0[:, after],
            amps[:, after],
            (start, jnp.zeros((1,))),
            (frames.stop - frames.start) * hop,
            sr,
            "window",
        )

    whole, end, _ = run(slice(0, 30), zero)
    pieces, phase = [], zero
    for frames in (slice(0, 7), slice(7, 8), slice(8, 30)):
        audio, phase, _ = run(frames, phase)
        pieces.append(audio)
    np.testing.assert_array_equal(jnp.stack(phase), jnp.stack(end))
    np.testing.assert_allclose(jnp.concatenate(pieces, axis=1), whole, atol=1e-6)
    reference, _ = core.harmonic_oscillator(f0[..., None], amps, 30 * hop, sr)
    np.testing.assert_allclose(whole, reference, atol=1e-6)
    _, still, _ = frames_of(
        f0,
        amps,
        f0[:, -1],
        amps[:, -1],
        (zero, jnp.zeros((1,))),
        30 * hop,
        sr,
        "window",
        advance=jnp.zeros((1, 30), bool),
    )
    np.testing.assert_array_equal(jnp.stack(still), jnp.stack(zero))


@pytest.mark.parametrize(
    ("n_frames", "n_samples", "method", "tolerance"),
    [(20, 1280, "linear", 2e-5), (500, 32000, "window", 5e-5), (25, 1601, "cubic", 2e-5)],
)
def test_frame_wise_synthesis_equals_magentas_formulation_with_gradients(
    n_frames, n_samples, method, tolerance
):
    """``harmonic_synthesis`` (phase per frame, closed form inside frames, Horner sum) against
    ``harmonic_synthesis_reference`` (every harmonic upsampled to samples, ``oscillator_bank``),
    both with exact phase, 32 harmonics crossing Nyquist, also over 2 s and for a hop that is
    not a whole number of samples. They differ by ~8e-6 of a ~0.7 peak on short audio; over 2 s
    the reference's per-sample frequencies, each ``k · f0`` rounded to float32, add a phase
    walk of up to 3.4e-5 by the end. Gradients relative to their largest entry, on the first
    case."""
    rng = np.random.default_rng(1)
    sr = 16000
    f0 = jnp.asarray(200.0 + 300.0 * rng.uniform(size=(2, n_frames, 1)), jnp.float32)
    amplitudes = jnp.asarray(rng.uniform(size=(2, n_frames, 1)), jnp.float32)
    distribution = jnp.asarray(rng.uniform(size=(2, n_frames, 32)), jnp.float32)
    weights = jnp.asarray(rng.normal(size=(2, n_samples)), jnp.float32)

    def synth(function, f, a, d):
        return function(f, a, d, n_samples=n_samples, sample_rate=sr, amp_resample_method=method)

    fast = synth(core.harmonic_synthesis, f0, amplitudes, distribution)
    reference = synth(core.harmonic_synthesis_reference, f0, amplitudes, distribution)
    assert float(jnp.max(jnp.abs(reference))) > 0.3
    np.testing.assert_allclose(fast, reference, atol=tolerance)
    if n_samples > 1280:
        return  # Gradients once: tests/core/test_harmonic_sum.py covers the other layouts.

    def gradients(function):
        objective = lambda *args: jnp.sum(synth(function, *args) * weights)  # noqa: E731
        return jax.jit(jax.grad(objective, (0, 1, 2)))(f0, amplitudes, distribution)

    reference_gradients = gradients(core.harmonic_synthesis_reference)
    for ours, theirs in zip(gradients(core.harmonic_synthesis), reference_gradients, strict=True):
        scale = float(jnp.max(jnp.abs(theirs)))
        assert scale > 0
        np.testing.assert_allclose(ours / scale, theirs / scale, atol=2e-3)


def test_oscillator_bank_sine_frequency_amplitude_and_phase():
    sr, n = 16000, 16000
    frequencies = jnp.broadcast_to(jnp.asarray([440.0, 1250.5, 9000.0]), (1, n, 3))
    amplitudes = jnp.broadcast_to(jnp.asarray([0.3, 0.2, 0.5]), (1, n, 3))
    audio = np.asarray(core.oscillator_bank(frequencies, amplitudes, sr, sum_sinusoids=False))
    t = np.arange(1, n + 1) / sr  # Inclusive phase: sample n has phase f * (n + 1) / sr.
    np.testing.assert_allclose(audio[0, :, 0], 0.3 * np.sin(2 * np.pi * 440.0 * t), atol=2e-6)
    np.testing.assert_allclose(audio[0, :, 1], 0.2 * np.sin(2 * np.pi * 1250.5 * t), atol=2e-6)
    np.testing.assert_array_equal(audio[0, :, 2], 0.0)  # Above Nyquist.
    start = jnp.asarray([[0.25, 0.0, 0.0]])
    shifted = core.oscillator_bank(frequencies[:, :10], amplitudes[:, :10], sr, False, start)
    np.testing.assert_allclose(
        shifted[0, :, 0], 0.3 * np.sin(2 * np.pi * (440.0 * t[:10] + 0.25)), atol=2e-6
    )


@pytest.mark.parametrize("sample_rate", SAMPLE_RATES)
@pytest.mark.parametrize("batch", [1, 3])
def test_harmonic_synthesis_jits_for_sample_rates_and_batches(sample_rate, batch):
    n_frames = 50  # 0.2 s at 250 Hz.
    n_samples = sample_rate // 5
    fn = jax.jit(
        lambda f, a, d: core.harmonic_synthesis(
            f, a, d, n_samples=n_samples, sample_rate=sample_rate
        )
    )
    audio = fn(
        jnp.full((batch, n_frames, 1), 330.0),
        jnp.full((batch, n_frames, 1), 0.5),
        jnp.broadcast_to(1.0 / jnp.arange(1.0, 31.0), (batch, n_frames, 30)),
    )
    assert audio.shape == (batch, n_samples)
    assert np.all(np.isfinite(audio))
    spectrum = np.abs(np.fft.rfft(np.asarray(audio[0])))
    assert np.argmax(spectrum) * sample_rate / n_samples == pytest.approx(330.0, abs=5.0)


def test_harmonic_synthesis_rejects_bad_input():
    f0 = jnp.full((1, 10, 1), 220.0)
    amps = jnp.ones((1, 10, 1))
    with pytest.raises(ValueError, match="frequencies must have shape"):
        core.harmonic_synthesis(jnp.ones((10,)), amps, n_samples=640)
    with pytest.raises(ValueError, match="same number of frames"):
        core.harmonic_synthesis(f0, jnp.ones((1, 11, 1)), n_samples=640)
    with pytest.raises(ValueError, match="batch size"):
        core.harmonic_synthesis(jnp.full((2, 10, 1), 220.0), jnp.ones((3, 10, 1)), n_samples=640)
    with pytest.raises(ValueError, match="sample_rate"):
        core.harmonic_synthesis(f0, amps, n_samples=640, sample_rate=0)
    with pytest.raises(ValueError, match="Nyquist"):
        core.harmonic_synthesis(jnp.full((1, 10, 1), 9000.0), amps, n_samples=640)
    with pytest.raises(ValueError, match="NaN"):
        core.harmonic_synthesis(f0, amps.at[0, 3, 0].set(jnp.nan), n_samples=640)
    with pytest.raises(ValueError, match="frequencies must not be negative, got a minimum of -5"):
        core.harmonic_synthesis(f0.at[0, 2, 0].set(-5.0), amps, n_samples=640)


def test_harmonic_shifts_move_each_partial_by_its_ratio():
    sr, f0, n_frames, n_samples = 16000, 200.0, 200, 32000
    shifts = np.zeros((1, n_frames, 3), np.float32)
    shifts[..., 1] = 0.01  # Harmonic 2 at 404 Hz, harmonic 3 at 600 Hz.
    shifts[..., 2] = -0.02  # Harmonic 3 at 588 Hz.
    args = (
        jnp.full((1, n_frames, 1), f0),
        jnp.full((1, n_frames, 1), 0.9),
        jnp.ones((1, n_frames, 3)),
    )
    audio = core.harmonic_synthesis(
        *args, n_samples=n_samples, sample_rate=sr, harmonic_shifts=shifts
    )
    spectrum = spectrum_amplitudes(np.asarray(audio[0, sr:], np.float64))  # 1 Hz bins.
    np.testing.assert_allclose(spectrum[[200, 404, 588]], 0.3, rtol=1e-3)
    assert spectrum[[400, 600]].max() < 1e-3
    unshifted = core.harmonic_synthesis(
        *args, n_samples=n_samples, sample_rate=sr, harmonic_shifts=np.zeros_like(shifts)
    )
    plain = core.harmonic_synthesis(*args, n_samples=n_samples, sample_rate=sr)
    assert relative_error_db(unshifted, plain) < -100.0
    with pytest.raises(ValueError, match="harmonic_shifts must be"):
        core.harmonic_synthesis(*args, n_samples=n_samples, harmonic_shifts=shifts[..., :2])
