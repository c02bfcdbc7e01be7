import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ddsp_jax import core


def test_midi_hz_round_trip_and_reference_points():
    assert float(core.midi_to_hz(69.0)) == pytest.approx(440.0)
    assert float(core.midi_to_hz(60.0)) == pytest.approx(261.6256, rel=1e-6)
    notes = jnp.linspace(0.0, 127.0, 50)
    np.testing.assert_allclose(core.hz_to_midi(core.midi_to_hz(notes)), notes, atol=1e-4)
    assert float(core.hz_to_midi(0.0)) == 0.0  # Unvoiced frames map to MIDI 0, not -inf.


def test_db_conversions():
    assert float(core.amplitude_to_db(1.0)) == pytest.approx(0.0)
    assert float(core.amplitude_to_db(0.1)) == pytest.approx(-20.0, abs=1e-5)
    assert float(core.amplitude_to_db(0.0)) == pytest.approx(-80.0)  # Floor at -range_db.
    assert float(core.db_to_amplitude(-20.0)) == pytest.approx(0.1, rel=1e-6)
    assert float(core.power_to_db(100.0, ref_db=20.0)) == pytest.approx(0.0, abs=1e-5)


def test_exp_sigmoid_matches_formula():
    x = jnp.linspace(-10.0, 10.0, 21)
    expected = 2.0 * (1.0 / (1.0 + np.exp(-np.asarray(x)))) ** np.log(10.0) + 1e-7
    np.testing.assert_allclose(core.exp_sigmoid(x), expected, rtol=1e-5)
    assert float(core.exp_sigmoid(-100.0)) == pytest.approx(1e-7)
    assert float(core.exp_sigmoid(100.0)) == pytest.approx(2.0 + 1e-7)
    y = jnp.array([1e-4, 0.01, 0.5, 1.9])
    np.testing.assert_allclose(core.exp_sigmoid(core.inverse_exp_sigmoid(y)), y, rtol=1e-4)


def test_safe_log_replaces_non_positive():
    np.testing.assert_allclose(core.safe_log(jnp.array([0.0, -1.0, 1.0])), [np.log(1e-5)] * 2 + [0])
    grad = jax.grad(lambda x: core.safe_log(x).sum())(jnp.array([0.0, 2.0]))
    np.testing.assert_allclose(grad, [0.0, 0.5])


def magenta_unit_to_hz(unit, hz_min, hz_max):
    midi = lambda hz: 0.0 if hz <= 0 else 12 * np.log2(hz / 440.0) + 69  # noqa: E731
    notes = midi(hz_min) + (midi(hz_max) - midi(hz_min)) * np.asarray(unit, np.float64)
    return 440.0 * 2.0 ** ((notes - 69.0) / 12.0)


def test_frequencies_softmax_is_magentas_formula(rng):
    raw = rng.normal(size=(2, 5, 3 * 4)).astype(np.float32)
    probabilities = np.exp(raw.reshape(2, 5, 3, 4))
    probabilities /= probabilities.sum(-1, keepdims=True)
    unit = np.sum(probabilities * np.linspace(0.0, 1.0, 4), axis=-1)
    expected = magenta_unit_to_hz(unit, 20.0, 8000.0)
    np.testing.assert_allclose(core.frequencies_softmax(raw, depth=4), expected, rtol=1e-5)
    np.testing.assert_allclose(
        core.frequencies_softmax(raw.reshape(2, 5, 3, 4)), expected, rtol=1e-5
    )


def test_frequencies_sigmoid_is_magentas_formula(rng):
    raw = rng.normal(size=(2, 5, 3 * 3)).astype(np.float32)
    probabilities = 1.0 / (1.0 + np.exp(-raw.reshape(2, 5, 3, 3).astype(np.float64)))
    # magenta: 7980 Hz split by a factor of 7980^(1/3) = 19.98: shares of 7580.6 and 379.4 Hz
    # from 0, then the remaining 20.0 Hz from hz_min.
    remainder, factor, expected = 8000.0 - 20.0, (8000.0 - 20.0) ** (1 / 3), 0.0
    for index in range(3):
        if index == 2:
            low, high = 20.0, remainder
        else:
            low, high = 0.0, remainder * (1 - 1 / factor)
            remainder -= high
        expected = expected + magenta_unit_to_hz(probabilities[..., index], low, high)
    found = core.frequencies_sigmoid(raw, depth=3, hz_min=20.0, hz_max=8000.0)
    np.testing.assert_allclose(found, expected, rtol=1e-5)
    with pytest.raises(ValueError, match="n \\* depth\\] with depth 4"):
        core.frequencies_sigmoid(raw, depth=4)
