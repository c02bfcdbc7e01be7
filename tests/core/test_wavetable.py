"""Wavetables and the variable delay, against magenta's formulations written out here."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ddsp_jax import core


def magenta_linear_lookup(phase: np.ndarray, tables: np.ndarray) -> np.ndarray:
    """magenta's ``linear_lookup``: every point weighted by a hat of its distance to the
    phase, the first point appended after the last. phase ``[b, n]``, tables ``[b, n, N]``."""
    tables = np.concatenate([tables, tables[..., :1]], axis=-1)
    size = tables.shape[-1]
    distance = np.abs(phase[..., None] - np.linspace(0.0, 1.0, size)) * (size - 1)
    return np.sum(np.maximum(1.0 - distance, 0.0) * tables, axis=-1)


def test_linear_lookup_is_magentas_for_one_table_and_one_per_sample(rng):
    phase = rng.uniform(0.0, 1.0, (2, 300)).astype(np.float32)
    phase[0, :3] = [0.0, 1.0, 0.5]
    tables = rng.normal(size=(2, 300, 64)).astype(np.float32)
    found = core.linear_lookup(phase, tables)
    np.testing.assert_allclose(found, magenta_linear_lookup(phase, tables), atol=2e-5)
    single = core.linear_lookup(phase[..., None], tables[:, 0])
    expected = magenta_linear_lookup(phase, np.broadcast_to(tables[:, :1], tables.shape))
    np.testing.assert_allclose(single, expected, atol=2e-5)


def test_a_one_cycle_sine_table_plays_a_sine():
    sample_rate, f0, n_samples = 16000, 441.0, 16000
    table = np.sin(2 * np.pi * np.arange(2048) / 2048)[None].astype(np.float32)
    audio = core.wavetable_synthesis(
        jnp.full((1, 100, 1), f0), jnp.ones((1, 100, 1)), table, n_samples, sample_rate
    )
    expected = np.sin(2 * np.pi * f0 * np.arange(n_samples) / sample_rate)  # Phase 0 first.
    # Linear interpolation's error on a sine of 2048 points: (2π / 2048)² / 8 ≈ 1.2e-6.
    np.testing.assert_allclose(audio[0], expected, atol=1e-5)


def test_frame_tables_blend_as_magentas_tables_resampled_to_every_sample(rng):
    n_frames, n_samples, sample_rate = 10, 640, 16000
    f0 = jnp.asarray(rng.uniform(200.0, 400.0, (2, n_frames, 1)), jnp.float32)
    amplitudes = jnp.asarray(rng.uniform(0.1, 1.0, (2, n_frames, 1)), jnp.float32)
    tables = jnp.asarray(rng.normal(size=(2, n_frames, 256)), jnp.float32)
    audio = core.wavetable_synthesis(f0, amplitudes, tables, n_samples, sample_rate)
    # magenta: tables, frequency (linear) and amplitude (window) to samples, phase from 0.
    per_sample = np.asarray(core.resample(tables, n_samples, "linear"))
    frequency = np.asarray(core.resample(f0, n_samples, "linear"), np.float64)[..., 0]
    phase = (np.cumsum(frequency, axis=1) - frequency) / sample_rate % 1.0
    envelope = np.asarray(core.resample(amplitudes, n_samples, "window"))[..., 0]
    expected = envelope * magenta_linear_lookup(phase, per_sample)
    np.testing.assert_allclose(audio, expected, atol=1e-4)


def test_a_harmonic_distribution_table_is_its_sum_of_cosines(rng):
    distribution = rng.uniform(0.0, 1.0, (3, 5, 20)).astype(np.float32)
    table = np.asarray(core.harmonic_distribution_to_wavetable(distribution, 128))
    n = np.arange(128)
    cosines = np.cos(2 * np.pi * np.arange(1, 21)[:, None] * n / 128)  # [harmonic, point]
    np.testing.assert_allclose(table, distribution @ cosines, atol=1e-4)
    with pytest.raises(ValueError, match="at least 2 \\* n_harmonics = 40, got 32"):
        core.harmonic_distribution_to_wavetable(distribution, 32)


def test_wavetable_gradients_are_finite_and_reach_every_input(rng):
    f0 = jnp.full((1, 8, 1), 300.0)
    amplitudes = jnp.asarray(rng.uniform(0.2, 1.0, (1, 8, 1)), jnp.float32)
    distribution = jnp.asarray(rng.uniform(0.0, 1.0, (1, 8, 10)), jnp.float32)

    def loss(amplitudes, distribution, f0):
        tables = core.harmonic_distribution_to_wavetable(distribution, 64)
        return jnp.sum(core.wavetable_synthesis(f0, amplitudes, tables, 512, 16000) ** 2)

    for gradient in jax.grad(loss, argnums=(0, 1, 2))(amplitudes, distribution, f0):
        assert np.all(np.isfinite(gradient)) and np.any(gradient != 0.0)


def magenta_variable_length_delay(phase: np.ndarray, audio: np.ndarray, max_length: int):
    """magenta's: frames of ``max_length`` reversed, read as wavetables at ``phase``."""
    padded = np.pad(audio, ((0, 0), (max_length - 1, 0)))
    frames = np.lib.stride_tricks.sliding_window_view(padded, max_length, axis=1)[..., ::-1]
    return magenta_linear_lookup(phase, frames)


def test_variable_delay_is_magentas_below_its_last_sample_and_exact_at_it(rng):
    audio = rng.normal(size=(2, 400)).astype(np.float32)
    max_length = 32
    phase = rng.uniform(0.0, (max_length - 1) / max_length, (2, 400)).astype(np.float32)
    found = core.variable_length_delay(phase, audio, max_length)
    expected = magenta_variable_length_delay(phase, audio, max_length)
    np.testing.assert_allclose(found, expected, atol=1e-5)
    longest = core.variable_length_delay(np.ones((2, 400)), audio, max_length)
    np.testing.assert_array_equal(longest[:, max_length:], audio[:, :-max_length])
    np.testing.assert_array_equal(longest[:, :max_length], 0.0)


@pytest.mark.parametrize("delay", [0, 1, 7, 16])
def test_a_whole_delay_is_a_shift(rng, delay):
    audio = rng.normal(size=(1, 200)).astype(np.float32)
    out = core.variable_length_delay(np.full((1, 200), delay / 16), audio, 16)
    np.testing.assert_allclose(out, np.pad(audio, ((0, 0), (delay, 0)))[:, :200], atol=1e-6)


def test_variable_delay_gradient_in_its_phase_is_finite_and_non_zero(rng):
    audio = jnp.asarray(rng.normal(size=(1, 300)), jnp.float32)
    phase = jnp.full((1, 300), 0.37)
    gradient = jax.grad(lambda p: jnp.sum(core.variable_length_delay(p, audio, 64) ** 2))(phase)
    assert np.all(np.isfinite(gradient)) and np.any(gradient != 0.0)
