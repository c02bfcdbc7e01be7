"""Sinusoidal, Wavetable, Noise, TensorToAudio, FIRFilter, SincFilter, ModDelay and
FilteredNoiseReverb: analytic checks, magenta's scalings and gradients."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from ddsp_jax import core
from ddsp_jax.processors import (
    FilteredNoiseReverb,
    FilteredNoiseReverbConfig,
    FIRFilter,
    FIRFilterConfig,
    Harmonic,
    HarmonicConfig,
    ModDelay,
    ModDelayConfig,
    Noise,
    NoiseConfig,
    SincFilter,
    SincFilterConfig,
    Sinusoidal,
    SinusoidalConfig,
    TensorToAudio,
    Wavetable,
    WavetableConfig,
)

SR = 16000


def spectrum(audio: np.ndarray) -> np.ndarray:
    """Sine amplitudes per 1 Hz bin of one second."""
    return np.abs(np.fft.rfft(np.asarray(audio, np.float64))) * 2.0 / len(audio)


def test_sinusoidal_at_fixed_frequencies_reproduces_them():
    frequencies = np.array([220.0, 1234.0, 5000.0, 8500.0])  # The last is above Nyquist.
    synth = Sinusoidal(SinusoidalConfig(n_samples=2 * SR, freq_scale_fn="none"))
    raw = {
        "amplitudes": core.inverse_exp_sigmoid(jnp.full((1, 200, 4), 0.25)),
        "frequencies": jnp.broadcast_to(jnp.asarray(frequencies, jnp.float32), (1, 200, 4)),
    }
    controls = synth.get_controls(*synth.read_controls(raw))
    assert float(controls["amplitudes"][0, 0, 3]) == 0.0  # Silenced above Nyquist.
    amplitudes = spectrum(synth.get_signal(**controls)[0, SR:])
    np.testing.assert_allclose(amplitudes[[220, 1234, 5000]], 0.25, rtol=1e-3)
    amplitudes[[220, 1234, 5000]] = 0.0
    assert amplitudes.max() < 1e-4


@pytest.mark.parametrize("freq_scale_fn", ["sigmoid", "softmax"])
def test_sinusoidal_scales_frequencies_as_magentas_functions(rng, freq_scale_fn):
    config = SinusoidalConfig(n_samples=640, freq_scale_fn=freq_scale_fn, depth=3, hz_min=20.0)
    synth = Sinusoidal(config)
    raw = jnp.asarray(rng.normal(size=(2, 10, 6)), jnp.float32)
    controls = synth.get_controls(jnp.zeros((2, 10, 2)), raw)
    scale = {"sigmoid": core.frequencies_sigmoid, "softmax": core.frequencies_softmax}
    expected = scale[freq_scale_fn](raw, 3, 20.0, 8000.0)
    np.testing.assert_allclose(controls["frequencies"], expected)
    with pytest.raises(ValueError, match="one frequency \\(times depth\\) per amplitude"):
        synth.get_controls(jnp.zeros((2, 10, 3)), raw)


def test_wavetable_with_a_one_cycle_sine_table_is_a_sine():
    synth = Wavetable(WavetableConfig(n_samples=SR, scale_fn="none"))
    table = jnp.sin(2 * jnp.pi * jnp.arange(1024) / 1024)
    raw = {
        "amplitudes": jnp.full((1, 100, 1), 0.5),
        "wavetables": jnp.broadcast_to(table, (1, 100, 1024)),
        "f0_hz": jnp.full((1, 100, 1), 330.0),
    }
    expected = 0.5 * np.sin(2 * np.pi * 330.0 * np.arange(SR) / SR)
    np.testing.assert_allclose(synth(raw)[0], expected, atol=1e-5)


def test_harmonic_distribution_wavetable_plays_the_harmonic_synth(rng):
    n_frames, n_samples = 50, 8000
    distribution = jnp.asarray(rng.uniform(0.0, 1.0, (1, 1, 8)), jnp.float32)
    distribution = jnp.broadcast_to(distribution / distribution.sum(), (1, n_frames, 8))
    table = core.harmonic_distribution_to_wavetable(distribution, 2048)
    f0 = jnp.full((1, n_frames, 1), 200.0)
    wavetable = core.wavetable_synthesis(f0, jnp.ones((1, n_frames, 1)), table, n_samples, SR)
    # Cosines starting at phase 0: the harmonic synth's sines a quarter cycle ahead.
    t = np.arange(n_samples) / SR
    expected = sum(
        float(distribution[0, 0, k]) * np.cos(2 * np.pi * (k + 1) * 200.0 * t) for k in range(8)
    )
    np.testing.assert_allclose(wavetable[0], expected, atol=2e-4)


def test_inharmonic_harmonic_synth_reads_its_shifts():
    synth = Harmonic(HarmonicConfig(n_samples=SR, scale_fn="none", inharmonic=True))
    assert synth.control_names[-1] == "harmonic_shifts"
    raw = {
        "amplitudes": jnp.ones((1, 100, 1)),
        "harmonic_distribution": jnp.ones((1, 100, 2)),
        "f0_hz": jnp.full((1, 100, 1), 300.0),
        "harmonic_shifts": jnp.broadcast_to(jnp.array([0.0, 0.05]), (1, 100, 2)),
    }
    amplitudes = spectrum(synth(raw)[0])
    np.testing.assert_allclose(amplitudes[[300, 630]], 0.5, rtol=1e-2)


def test_noise_is_uniform_noise_under_its_envelope():
    synth = Noise(NoiseConfig(n_samples=6400, scale_fn="none"))
    key = jax.random.key(3)
    audio = synth({"amplitudes": jnp.full((2, 100, 1), 0.3)}, key=key)
    np.testing.assert_allclose(audio, 0.3 * core.uniform_noise(key, 2, 6400), rtol=1e-6)
    with pytest.raises(ValueError, match="pass a PRNG key"):
        synth({"amplitudes": jnp.ones((1, 10, 1))})


def test_tensor_to_audio_passes_samples_through(rng):
    samples = jnp.asarray(rng.normal(size=(2, 300, 1)), jnp.float32)
    np.testing.assert_array_equal(TensorToAudio()({"samples": samples}), samples[..., 0])


def test_fir_filter_with_a_flat_response_is_identity(rng):
    audio = jnp.asarray(rng.normal(size=(2, 3200)), jnp.float32)
    fir = FIRFilter(FIRFilterConfig(window_size=128, scale_fn="none"))
    out = fir({"audio": audio, "magnitudes": jnp.ones((2, 20, 65))})
    np.testing.assert_allclose(out, audio, atol=1e-4)


def test_fir_filter_passes_the_bands_it_is_given():
    t = np.arange(2 * SR) / SR
    audio = jnp.asarray(np.sin(2 * np.pi * 1000 * t) + np.sin(2 * np.pi * 6000 * t), jnp.float32)
    magnitudes = np.zeros((1, 100, 65), np.float32)
    magnitudes[..., :20] = 1.0  # 0 to ~2.4 kHz.
    fir = FIRFilter(FIRFilterConfig(window_size=256, scale_fn="none"))
    amplitudes = spectrum(fir({"audio": audio[None], "magnitudes": magnitudes})[0, SR:])
    assert amplitudes[1000] > 0.9 and amplitudes[6000] < 0.01


@pytest.mark.parametrize("high_pass", [False, True])
def test_sinc_filter_splits_at_its_cutoff(high_pass):
    t = np.arange(SR) / SR
    audio = jnp.asarray(np.sin(2 * np.pi * 500 * t) + np.sin(2 * np.pi * 5000 * t), jnp.float32)
    filter_ = SincFilter(SincFilterConfig(window_size=512, high_pass=high_pass))
    raw_cutoff = jnp.full((1, 50, 1), float(np.log(0.25 / 0.75)))  # sigmoid: 2 kHz of 8.
    amplitudes = spectrum(filter_({"audio": audio[None], "cutoff": raw_cutoff})[0])
    kept, removed = (5000, 500) if high_pass else (500, 5000)
    assert amplitudes[kept] > 0.98 and amplitudes[removed] < 0.01


def test_mod_delay_with_zero_depth_and_a_whole_delay_is_a_shift(rng):
    audio = jnp.asarray(rng.normal(size=(2, 1600)), jnp.float32)
    delay = ModDelay(
        ModDelayConfig(center_ms=2.0, depth_ms=0.0, add_dry=False, phase_scale_fn="none")
    )
    raw = {
        "audio": audio,
        "gain": core.inverse_exp_sigmoid(jnp.ones((2, 25, 1))),
        "phase": jnp.asarray(rng.uniform(size=(2, 25, 1)), jnp.float32),  # No effect: no depth.
    }
    expected = np.pad(np.asarray(audio), ((0, 0), (32, 0)))[:, :1600]  # 2 ms = 32 samples.
    np.testing.assert_allclose(delay(raw), expected, atol=1e-5)


def test_mod_delay_sweeps_between_center_and_center_plus_depth():
    config = ModDelayConfig(
        center_ms=1.0, depth_ms=1.0, gain_scale_fn="none", phase_scale_fn="none", add_dry=False
    )
    impulse = jnp.zeros((1, 400)).at[0, 0].set(1.0)
    for phase, where in ((0.0, 16), (1.0, 32), (0.5, 24)):
        raw = {
            "audio": impulse,
            "gain": jnp.ones((1, 400, 1)),
            "phase": jnp.full((1, 400, 1), phase),
        }
        out = np.asarray(ModDelay(config)(raw))[0]
        assert int(np.argmax(out)) == where and out[where] == pytest.approx(1.0)


def test_filtered_noise_reverb_has_its_length_and_band_energy():
    config = FilteredNoiseReverbConfig(
        reverb_length=16000,
        window_size=256,
        n_frames=20,
        n_filter_banks=16,
        scale_fn="none",
        initial_bias=0.0,
    )
    reverb = FilteredNoiseReverb(config, rngs=nnx.Rngs(0))
    magnitudes = np.zeros((1, 20, 16), np.float32)
    magnitudes[..., 4:8] = 1.0  # Bands 4-7 of 16 over 0-8 kHz: 2.1 to 3.7 kHz.
    magnitudes[:, 10:] *= 0.1  # The second half of the IR 20 dB down.
    ir = np.asarray(reverb.get_ir(jnp.asarray(magnitudes)))[0]
    assert ir.shape == (16000,) and ir[0] == 0.0
    power = np.abs(np.fft.rfft(ir[:8000])) ** 2
    frequencies = np.fft.rfftfreq(8000, 1 / SR)
    inside = power[(frequencies > 2400) & (frequencies < 3400)].mean()
    outside = power[(frequencies < 1500) | (frequencies > 4500)].mean()
    assert 10 * np.log10(inside / outside) > 30.0
    first, second = (np.sum(ir[i * 8000 + 500 : (i + 1) * 8000 - 500] ** 2) for i in (0, 1))
    assert 10 * np.log10(first / second) == pytest.approx(20.0, abs=1.0)
    audio = jnp.zeros((1, 4000)).at[0, 100].set(1.0)
    wet = reverb({"audio": audio, "magnitudes": jnp.asarray(magnitudes)})
    np.testing.assert_allclose(wet[0, 101:4000], ir[1:3900], atol=1e-5)  # Dry + IR.
    assert float(wet[0, 100]) == pytest.approx(1.0)


def test_trainable_filtered_noise_reverb_learns_magnitudes_and_keeps_its_room():
    config = FilteredNoiseReverbConfig(reverb_length=800, n_frames=10, trainable=True)
    reverb = FilteredNoiseReverb(config, rngs=nnx.Rngs(0))
    assert reverb.control_names == ("audio",)
    np.testing.assert_array_equal(reverb.get_ir(), reverb.get_ir())
    with pytest.raises(ValueError, match="learns its magnitudes"):
        reverb.get_ir(jnp.ones((1, 10, 16)))
    with pytest.raises(ValueError, match="pass its magnitudes"):
        FilteredNoiseReverb(FilteredNoiseReverbConfig(), rngs=nnx.Rngs(0)).get_ir()


def test_every_new_processor_has_finite_non_zero_gradients(rng):
    audio = jnp.asarray(rng.normal(size=(1, 1600)), jnp.float32)
    frames = lambda *shape: jnp.asarray(rng.normal(size=(1, 25, *shape)), jnp.float32)  # noqa: E731
    cases = [
        (
            Sinusoidal(SinusoidalConfig(n_samples=1600)),
            {"amplitudes": frames(3), "frequencies": frames(3)},
        ),
        (
            Wavetable(WavetableConfig(n_samples=1600)),
            {
                "amplitudes": frames(1),
                "wavetables": frames(64),
                "f0_hz": jnp.full((1, 25, 1), 200.0),
            },
        ),
        (FIRFilter(FIRFilterConfig(window_size=64)), {"audio": audio, "magnitudes": frames(33)}),
        (SincFilter(SincFilterConfig(window_size=64)), {"audio": audio, "cutoff": frames(1)}),
        (ModDelay(ModDelayConfig()), {"audio": audio, "gain": frames(1), "phase": frames(1)}),
        (
            FilteredNoiseReverb(FilteredNoiseReverbConfig(reverb_length=400), rngs=nnx.Rngs(0)),
            {"audio": audio, "magnitudes": frames(16)},
        ),
    ]
    for processor, raw in cases:
        names = [name for name in raw if name != "f0_hz"]
        gradients = jax.grad(
            lambda values, processor=processor, raw=raw, names=names: jnp.sum(
                processor({**raw, **dict(zip(names, values, strict=True))}) ** 2
            )
        )([raw[name] for name in names])
        for name, gradient in zip(names, gradients, strict=True):
            assert np.all(np.isfinite(gradient)), (type(processor).__name__, name)
            assert np.any(gradient != 0.0), (type(processor).__name__, name)


@pytest.mark.parametrize(
    ("config_class", "kwargs", "message"),
    [
        (SinusoidalConfig, {"freq_scale_fn": "tanh"}, "freq_scale_fn must be"),
        (SinusoidalConfig, {"depth": 0}, "depth"),
        (SinusoidalConfig, {"hz_min": 9000.0}, "hz_min < hz_max"),
        (WavetableConfig, {"scale_fn": "relu"}, "scale_fn"),
        (NoiseConfig, {"amp_resample_method": "sinc"}, "amp_resample_method"),
        (FIRFilterConfig, {"window_size": 0}, "window_size"),
        (SincFilterConfig, {"scale_fn": "exp_sigmoid"}, "scale_fn must be 'sigmoid' or 'none'"),
        (ModDelayConfig, {"depth_ms": -1.0}, "depth_ms >= 0"),
        (ModDelayConfig, {"phase_scale_fn": "tanh"}, "phase_scale_fn"),
        (FilteredNoiseReverbConfig, {"n_filter_banks": 0}, "n_filter_banks"),
    ],
)
def test_new_configs_reject_bad_values_naming_them(config_class, kwargs, message):
    with pytest.raises(ValueError, match=message):
        config_class(**kwargs)
