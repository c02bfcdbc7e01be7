import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from conftest import SAMPLE_RATES
from ddsp_jax import core
from ddsp_jax.losses import multi_scale_spectral_loss
from ddsp_jax.processors import (
    ExpDecayReverb,
    ExpDecayReverbConfig,
    FilteredNoise,
    FilteredNoiseConfig,
    Harmonic,
    HarmonicConfig,
    ProcessorGraph,
    ProcessorGraphConfig,
    Reverb,
    ReverbConfig,
)


def random_controls(rng, batch, n_frames, n_harmonics=100, n_bands=65, f0=220.0):
    return {
        "f0_hz": jnp.full((batch, n_frames, 1), f0),
        "amplitudes": jnp.asarray(rng.normal(size=(batch, n_frames, 1)), jnp.float32),
        "harmonic_distribution": jnp.asarray(
            rng.normal(size=(batch, n_frames, n_harmonics)), jnp.float32
        ),
        "noise_magnitudes": jnp.asarray(rng.normal(size=(batch, n_frames, n_bands)), jnp.float32),
    }


def test_harmonic_scales_raw_controls_with_exp_sigmoid(rng):
    controls = random_controls(rng, 2, 50, n_harmonics=10)
    synth = Harmonic(HarmonicConfig(n_samples=3200))
    expected = core.harmonic_synthesis(
        controls["f0_hz"],
        core.exp_sigmoid(controls["amplitudes"]),
        core.exp_sigmoid(controls["harmonic_distribution"]),
        n_samples=3200,
    )
    np.testing.assert_allclose(synth(controls), expected, atol=1e-6)


def test_filtered_noise_bias_key_and_spectrum(rng):
    synth = FilteredNoise(FilteredNoiseConfig(n_samples=16000))
    zeros = {"noise_magnitudes": jnp.zeros((1, 250, 65))}
    quiet = synth(zeros, key=jax.random.key(0))
    # Zero network output + bias −5 → gain exp_sigmoid(−5) ≈ 3.4e-5 (uniform noise RMS 0.577).
    gain = float(core.exp_sigmoid(-5.0))
    assert np.sqrt(np.mean(np.asarray(quiet) ** 2)) == pytest.approx(gain / np.sqrt(3), rel=0.05)
    again = synth(zeros, key=jax.random.key(0))
    other = synth(zeros, key=jax.random.key(1))
    np.testing.assert_array_equal(quiet, again)  # Randomness only through the key.
    assert not np.allclose(quiet, other)
    with pytest.raises(ValueError, match="PRNG key"):
        synth(zeros)
    # Time-varying: loud first half, silent second half.
    magnitudes = jnp.concatenate([jnp.full((1, 125, 65), 10.0), jnp.full((1, 125, 65), -30.0)], 1)
    noise = np.asarray(synth({"noise_magnitudes": magnitudes}, key=jax.random.key(2)))
    assert np.sqrt(np.mean(noise[0, :7800] ** 2)) > 1.0
    assert np.sqrt(np.mean(noise[0, 8200:] ** 2)) < 1e-6


def test_reverb_zero_ir_returns_dry_and_ir0_has_no_effect(rng):
    audio = jnp.asarray(rng.normal(size=(2, 4000)), jnp.float32)
    reverb = Reverb(ReverbConfig(reverb_length=1000, trainable=False), rngs=nnx.Rngs(0))
    np.testing.assert_allclose(reverb({"audio": audio, "ir": jnp.zeros((2, 1000))}), audio)
    ir = jnp.asarray(rng.normal(size=(2, 1000)) * 0.1, jnp.float32)
    with_dry_tap = reverb({"audio": audio, "ir": ir.at[:, 0].set(5.0)})
    np.testing.assert_allclose(with_dry_tap, reverb({"audio": audio, "ir": ir}), atol=1e-6)
    masked = np.asarray(ir).copy()
    masked[:, 0] = 0.0
    expected = np.stack(
        [np.convolve(a, h)[:4000] for a, h in zip(np.asarray(audio), masked, strict=True)]
    )
    np.testing.assert_allclose(with_dry_tap, expected + np.asarray(audio), atol=1e-4)


def test_wet_only_reverb_and_trainable_ir(rng):
    audio = jnp.asarray(rng.normal(size=(1, 2000)), jnp.float32)
    reverb = Reverb(ReverbConfig(reverb_length=500, add_dry=False), rngs=nnx.Rngs(0))
    assert reverb.impulse_response.shape == (500,)
    assert float(jnp.abs(reverb.impulse_response[...]).max()) < 1e-5  # magenta's N(0, 1e-6).
    assert float(jnp.abs(reverb({"audio": audio})).max()) < 1e-3


def test_exp_decay_reverb_envelope_and_determinism(rng):
    reverb = ExpDecayReverb(ExpDecayReverbConfig(reverb_length=8000), rngs=nnx.Rngs(0))
    ir = np.asarray(reverb.get_ir()[0])
    gain = float(core.exp_sigmoid(2.0))
    envelope = gain * np.exp(-(2.0 + np.exp(4.0)) * np.linspace(0, 1, 8000))
    assert np.all(np.abs(ir) <= envelope + 1e-6)
    assert np.abs(ir[:100]).max() > 0.5 * gain
    audio = jnp.asarray(rng.normal(size=(2, 4000)), jnp.float32)
    np.testing.assert_array_equal(reverb({"audio": audio}), reverb({"audio": audio}))


def test_missing_controls_are_named(rng):
    synth = Harmonic(HarmonicConfig(n_samples=640))
    with pytest.raises(ValueError, match=r"missing \['harmonic_distribution'\]"):
        synth({"amplitudes": jnp.ones((1, 10, 1)), "f0_hz": jnp.ones((1, 10, 1))})


@pytest.mark.parametrize(
    ("config_class", "kwargs", "message"),
    [
        (HarmonicConfig, {"sample_rate": 0}, "sample_rate"),
        (HarmonicConfig, {"n_samples": -5}, "n_samples"),
        (HarmonicConfig, {"scale_fn": "softplus"}, "scale_fn"),
        (HarmonicConfig, {"amp_resample_method": "sinc"}, "amp_resample_method"),
        (FilteredNoiseConfig, {"window_size": 0}, "window_size"),
        (ReverbConfig, {"reverb_length": 0}, "reverb_length"),
        (ProcessorGraphConfig, {"reverb": "plate"}, "reverb"),
        (ProcessorGraphConfig, {"n_noise_bands": 1}, "n_noise_bands"),
    ],
)
def test_configs_reject_bad_values(config_class, kwargs, message):
    with pytest.raises(ValueError, match=message):
        config_class(**kwargs)


def test_configs_are_frozen():
    with pytest.raises(dataclasses.FrozenInstanceError):
        HarmonicConfig().n_samples = 3  # type: ignore[misc]


@pytest.mark.parametrize("reverb", ["ir", "exp_decay", "none"])
def test_gradients_reach_every_parameter_and_control(rng, reverb):
    config = ProcessorGraphConfig(n_samples=8000, n_harmonics=20, reverb=reverb, reverb_length=2000)
    graph = ProcessorGraph(config, rngs=nnx.Rngs(0))
    controls = random_controls(rng, 2, 125, n_harmonics=20)
    target = jnp.asarray(rng.normal(size=(2, 8000)) * 0.1, jnp.float32)

    def loss_fn(graph, controls):
        return multi_scale_spectral_loss(target, graph(controls, key=jax.random.key(0))["audio"])

    loss, (param_grads, control_grads) = nnx.jit(nnx.value_and_grad(loss_fn, argnums=(0, 1)))(
        graph, controls
    )
    assert np.isfinite(loss)
    leaves = jax.tree.leaves(nnx.state(param_grads, nnx.Param))
    assert len(leaves) == {"ir": 1, "exp_decay": 2, "none": 0}[reverb]
    for leaf in leaves:
        assert np.all(np.isfinite(leaf)) and np.abs(leaf).max() > 0
    for name, grad in control_grads.items():
        assert np.all(np.isfinite(grad)), name
        assert np.abs(grad).max() > 0, name


@pytest.mark.parametrize("sample_rate", SAMPLE_RATES)
@pytest.mark.parametrize("batch", [1, 2])
def test_graph_jits_for_sample_rates_and_batches(rng, sample_rate, batch):
    n_frames, n_samples = 50, sample_rate // 5  # 0.2 s of audio at 250 frames per second.
    config = ProcessorGraphConfig(
        sample_rate=sample_rate, n_samples=n_samples, n_harmonics=40, reverb_length=n_samples // 2
    )
    graph = ProcessorGraph(config, rngs=nnx.Rngs(0))
    out = nnx.jit(lambda g, c: g(c, key=jax.random.key(1)))(
        graph, random_controls(rng, batch, n_frames, n_harmonics=40, f0=440.0)
    )
    for name in ("harmonic", "noise", "dry", "audio"):
        assert out[name].shape == (batch, n_samples), name
        assert np.all(np.isfinite(out[name])), name
    np.testing.assert_allclose(out["dry"], out["harmonic"] + out["noise"], atol=1e-6)


def test_harmonic_controls_are_physical_and_render_to_the_call(rng):
    controls = random_controls(rng, 2, 50, n_harmonics=30, f0=700.0)  # Harmonics 12+ ≥ 8 kHz.
    synth = Harmonic(HarmonicConfig(n_samples=3200))
    physical = synth.get_controls(*synth.read_controls(controls))
    distribution = np.asarray(physical["harmonic_distribution"])
    np.testing.assert_allclose(distribution.sum(axis=-1), 1.0, rtol=1e-6)
    assert np.all(distribution[..., 11:] == 0.0) and np.all(distribution[..., :11] > 0.0)
    np.testing.assert_allclose(physical["amplitudes"], core.exp_sigmoid(controls["amplitudes"]))
    np.testing.assert_array_equal(synth.get_signal(**physical), synth(controls))


def test_graph_controls_and_signal_equal_the_call(rng):
    config = ProcessorGraphConfig(n_samples=3200, n_harmonics=10, reverb_length=500)
    graph = ProcessorGraph(config, rngs=nnx.Rngs(0))
    controls = random_controls(rng, 2, 50, n_harmonics=10)
    physical = graph.get_controls(controls)
    assert physical["ir"].shape == (1, 500) and float(physical["ir"][0, 0]) == 0.0
    np.testing.assert_allclose(physical["ir"][0, 1:], graph.reverb.impulse_response[...][1:])
    expected = graph(controls, key=jax.random.key(3))
    out = graph.get_signal(physical, key=jax.random.key(3))
    for name in ("harmonic", "noise", "dry", "audio"):
        np.testing.assert_array_equal(out[name], expected[name], err_msg=name)


def test_graph_config_passes_every_processor_option_through(rng):
    controls = random_controls(rng, 1, 50, n_harmonics=10, f0=1000.0)  # Harmonics 8+ ≥ 8 kHz.
    controls["amplitudes"] = jnp.abs(controls["amplitudes"])
    controls["harmonic_distribution"] = jnp.abs(controls["harmonic_distribution"])
    plain = ProcessorGraphConfig(
        n_samples=3200,
        n_harmonics=10,
        reverb="exp_decay",
        reverb_length=500,
        scale_fn="none",
        normalize_below_nyquist=False,
        reverb_add_dry=False,
        reverb_initial_gain=-1.0,
        reverb_initial_decay=2.0,
    )
    graph = ProcessorGraph(plain, rngs=nnx.Rngs(0))
    physical = graph.get_controls(controls)
    np.testing.assert_array_equal(physical["amplitudes"], controls["amplitudes"])
    np.testing.assert_array_equal(
        physical["harmonic_distribution"], controls["harmonic_distribution"]
    )
    np.testing.assert_allclose(
        physical["noise_magnitudes"], controls["noise_magnitudes"] + plain.noise_initial_bias
    )
    assert float(graph.reverb.gain[...]) == -1.0 and float(graph.reverb.decay[...]) == 2.0
    out = graph.get_signal(physical, key=jax.random.key(0))
    wet = np.asarray(out["audio"])  # No dry path: the reverb's output alone.
    expected = np.convolve(np.asarray(out["dry"][0]), np.asarray(physical["ir"][0]))[:3200]
    np.testing.assert_allclose(wet[0], expected, atol=1e-4)
    given_ir = ProcessorGraph(
        dataclasses.replace(plain, reverb="ir", reverb_trainable=False), rngs=nnx.Rngs(0)
    )
    assert nnx.state(given_ir, nnx.Param) == nnx.State({})
    with pytest.raises(ValueError, match="not trainable"):
        given_ir.get_controls(controls)
    ir = jnp.zeros((1, 500)).at[0, 10].set(1.0)
    out = given_ir({**controls, "ir": ir}, key=jax.random.key(0))
    np.testing.assert_allclose(out["audio"][0, 10:], out["dry"][0, :-10], atol=1e-4)


@pytest.mark.parametrize("logit", [1e30, -1e30, 3e38])
def test_huge_raw_controls_give_bounded_finite_audio(rng, logit):
    config = ProcessorGraphConfig(n_samples=8000, n_harmonics=20, reverb="ir", reverb_length=2000)
    graph = ProcessorGraph(config, rngs=nnx.Rngs(0))
    controls = random_controls(rng, 1, 125, n_harmonics=20)
    signs = np.where(np.arange(20) % 2, 1.0, -1.0).astype(np.float32)
    controls["amplitudes"] = jnp.full((1, 125, 1), logit, jnp.float32)
    controls["harmonic_distribution"] = jnp.asarray(logit * signs)[None, None].repeat(125, 1)
    controls["noise_magnitudes"] = jnp.full((1, 125, 65), logit, jnp.float32)
    scaled = graph.get_controls(controls)
    # exp_sigmoid bounds every scaled control by its maximum (2) whatever the logit.
    for name in ("amplitudes", "harmonic_distribution", "noise_magnitudes"):
        value = np.asarray(scaled[name])
        assert np.all(np.isfinite(value)) and np.all(np.abs(value) <= 2.0 + 1e-6), name
    audio = np.asarray(graph(controls, key=jax.random.key(0))["audio"])
    assert np.all(np.isfinite(audio))
