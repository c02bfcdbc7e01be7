import jax
import jax.numpy as jnp
import numpy as np
import pytest

from conftest import SAMPLE_RATES, relative_error_db
from ddsp_jax import core


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


def long_double_phase(
    f0_frames: np.ndarray, n_samples: int, sample_rate: int
) -> tuple[np.ndarray, np.ndarray]:
    """(phase in cycles, frequency in Hz) per sample: the inclusive cumulative sum of linearly
    interpolated frame frequencies (frame j at sample j * n_samples / n_frames, last frame
    held), accumulated in 80-bit extended precision from the float32 frame values."""
    n_frames = len(f0_frames)
    f = f0_frames.astype(np.longdouble)
    f_next = np.concatenate([f[1:], f[-1:]])
    numerator = np.arange(n_samples, dtype=np.int64) * n_frames
    j = numerator // n_samples
    t = (numerator % n_samples).astype(np.longdouble) / n_samples
    frequency = f[j] * (1 - t) + f_next[j] * t
    return np.cumsum(frequency / np.longdouble(sample_rate)), frequency


def long_double_reference(f0_frames: np.ndarray, n_samples: int, sample_rate: int) -> np.ndarray:
    """sin(2π phase) of ``long_double_phase``."""
    phase, _ = long_double_phase(f0_frames, n_samples, sample_rate)
    return np.sin(2.0 * np.pi * (phase - np.floor(phase)).astype(np.float64))


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


def naive_harmonic(f0_frames, amplitudes, n_samples, sr):
    """Reference synth: float32 cumsum phase, linear f0, linear amplitudes (short audio)."""
    frequency = core.resample(f0_frames, n_samples, "linear")
    phase = jnp.cumsum(frequency / sr, axis=1)
    k = jnp.arange(1, amplitudes.shape[-1] + 1)
    return jnp.sum(
        core.resample(amplitudes, n_samples, "linear") * jnp.sin(2 * jnp.pi * k * phase), -1
    )


def test_matches_naive_synthesis_and_its_gradients_on_short_audio():
    rng = np.random.default_rng(1)
    sr, n_frames, n_samples = 16000, 20, 1280
    f0 = jnp.asarray(200.0 + 50.0 * rng.uniform(size=(2, n_frames, 1)), jnp.float32)
    amps = jnp.asarray(rng.uniform(size=(2, n_frames, 4)), jnp.float32)
    weights = jnp.asarray(rng.normal(size=(2, n_samples)), jnp.float32)

    def ours(f, a):
        return core.harmonic_oscillator(f, a, n_samples, sr, "linear")[0]

    def naive(f, a):
        return naive_harmonic(f, a, n_samples, sr)

    np.testing.assert_allclose(ours(f0, amps), naive(f0, amps), atol=2e-4)
    for argnum in (0, 1):
        grad_ours = jax.grad(lambda f, a: jnp.sum(ours(f, a) * weights), argnum)(f0, amps)
        grad_naive = jax.grad(lambda f, a: jnp.sum(naive(f, a) * weights), argnum)(f0, amps)
        scale = np.abs(grad_naive).max()
        np.testing.assert_allclose(grad_ours / scale, grad_naive / scale, atol=2e-3)


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


@pytest.mark.parametrize(
    ("n_frames", "n_samples", "method"),
    [(25, 1600, "window"), (25, 1601, "window"), (25, 1600, "cubic"), (7, 1000, "linear")],
)
def test_fast_harmonic_sum_equals_reference_with_gradients(n_frames, n_samples, method):
    """The hand-written backward pass against JAX's autodiff of the plain formulation.

    f0 sweeps 1-3.5 kHz so harmonics 3-8 cross Nyquist inside frames (the mask's edges are
    exercised). Tolerances: float32 sines evaluated in differently fused loops and the taps
    summed in another order; on this input both forms are within 2.2e-5 of a float64
    synthesis and differ from each other by up to 3e-5 (output peak ~3). Gradients are
    compared relative to their largest entry.
    """
    from ddsp_jax.core.implementation import use_implementation

    rng = np.random.default_rng(3)
    sr = 16000
    f0 = jnp.asarray(rng.uniform(1000.0, 3500.0, (2, n_frames, 1)), jnp.float32)
    amps = jnp.asarray(rng.uniform(size=(2, n_frames, 8)), jnp.float32)
    weights = jnp.asarray(rng.normal(size=(2, n_samples)), jnp.float32)
    results = {}
    for implementation in ("reference", "fast"):
        with use_implementation(implementation):

            def synth(f, a):
                return core.harmonic_oscillator(f, a, n_samples, sr, method)[0]

            audio = synth(f0, amps)
            grads = jax.grad(lambda f, a: jnp.sum(synth(f, a) * weights), (0, 1))(f0, amps)
            results[implementation] = (audio, *grads)
    reference, fast = results["reference"], results["fast"]
    assert float(jnp.max(jnp.abs(reference[0]))) > 1.0  # Not silent.
    np.testing.assert_allclose(fast[0], reference[0], atol=6e-5)
    for ours, theirs in zip(fast[1:], reference[1:], strict=True):
        scale = float(jnp.max(jnp.abs(theirs)))
        assert scale > 0.0
        np.testing.assert_allclose(ours / scale, theirs / scale, atol=2e-5)


def test_harmonics_in_several_horner_groups_equal_the_reference(monkeypatch):
    """Groups of 3 harmonics (100 by default) exercise the shift of each group's polynomial by
    ``z^k0``: 8 harmonics crossing Nyquist inside frames, as above, against the plain path."""
    from ddsp_jax.core import oscillators
    from ddsp_jax.core.implementation import use_implementation

    rng = np.random.default_rng(4)
    f0 = jnp.asarray(rng.uniform(100.0, 3500.0, (2, 25, 1)), jnp.float32)
    amps = jnp.asarray(rng.uniform(size=(2, 25, 8)), jnp.float32)
    with use_implementation("reference"):
        expected = core.harmonic_oscillator(f0, amps, 1600, 16000)[0]
    monkeypatch.setattr(oscillators, "HORNER_GROUP", 3)
    jax.clear_caches()  # The group size is read while tracing.
    with use_implementation("fast"):
        audio = core.harmonic_oscillator(f0, amps, 1600, 16000)[0]
    jax.clear_caches()
    assert float(jnp.max(jnp.abs(expected))) > 1.0
    np.testing.assert_allclose(audio, expected, atol=6e-5)  # Fails with the shift negated.


@pytest.mark.parametrize("implementation", ["fast", "reference"])
def test_one_hundred_harmonics_match_an_extended_precision_synthesis(implementation):
    """The paper's 100 harmonics, f0 gliding 40-400 Hz (harmonics 21-100 cross Nyquist), the
    amplitudes random per frame and interpolated linearly, against the same sum in 80-bit
    precision. The fast path evaluates the sum by Horner's rule on phasors, whose rounding
    grows with the harmonic number; both paths stay within 2e-5 of the output's peak
    (measured: fast 5.9e-6, reference 7.5e-6; the fast path without its Nyquist mask, 0.87)."""
    from ddsp_jax.core.implementation import use_implementation

    sr, n_frames, hop, n_harmonics = 16000, 250, 64, 100
    n_samples = n_frames * hop
    rng = np.random.default_rng(5)
    f0 = np.geomspace(40.0, 400.0, n_frames).astype(np.float32)
    amps = rng.uniform(size=(n_frames, n_harmonics)).astype(np.float32)
    with use_implementation(implementation):
        audio, _ = core.harmonic_oscillator(
            jnp.asarray(f0)[None, :, None], jnp.asarray(amps)[None], n_samples, sr, "linear"
        )
    phase, frequency = long_double_phase(f0, n_samples, sr)
    numerator = np.arange(n_samples, dtype=np.int64) * n_frames
    j, t = numerator // n_samples, (numerator % n_samples) / n_samples
    a = amps.astype(np.float64)
    a_next = np.concatenate([a[1:], a[-1:]])
    expected = np.zeros(n_samples)
    for k in range(1, n_harmonics + 1):
        cycles = k * phase
        cycles = (cycles - np.floor(cycles)).astype(np.float64)
        amplitude = a[j, k - 1] * (1 - t) + a_next[j, k - 1] * t
        below = (k * frequency < sr / 2).astype(np.float64)
        expected += below * amplitude * np.sin(2.0 * np.pi * cycles)
    error = np.max(np.abs(np.asarray(audio[0], np.float64) - expected)) / np.max(np.abs(expected))
    assert error < 2e-5


@pytest.mark.parametrize("n_harmonics", [1, 2, 3, 40, 100, 101])
def test_start_phasors_from_products_of_a_few_sines(n_harmonics):
    """Harmonic k's start phasor as the product of those of harmonics a·G and m (k = a·G + m):
    within 1e-6 of float64 cos/sin of the exact start phases, for any number of harmonics."""
    from ddsp_jax.core.oscillators import _start_phasors

    phase = np.random.default_rng(6).uniform(size=(2, 5, 1))
    cycles = (np.arange(1, n_harmonics + 1) * phase) % 1.0
    cycles = np.where(cycles > 0.5, cycles - 1.0, cycles).astype(np.float32)
    cos, sin = _start_phasors(jnp.asarray(cycles))
    angle = 2.0 * np.pi * cycles.astype(np.float64)
    np.testing.assert_allclose(cos, np.cos(angle), atol=1e-6)
    np.testing.assert_allclose(sin, np.sin(angle), atol=1e-6)
