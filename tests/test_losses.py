import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ddsp_jax.losses import mean_difference, multi_scale_spectral_loss

SR = 16000


def tone(frequency: float, n: int = 16000) -> jnp.ndarray:
    t = np.arange(n) / SR
    audio = sum(np.sin(2 * np.pi * k * frequency * t) / k for k in range(1, 6))
    return jnp.asarray(0.3 * audio[None], jnp.float32)


def test_zero_for_identical_audio_positive_otherwise(rng):
    target = tone(440.0)
    assert float(multi_scale_spectral_loss(target, target)) == 0.0
    detuned = float(multi_scale_spectral_loss(target, tone(446.0)))
    noise = jnp.asarray(rng.normal(size=target.shape) * 0.1, jnp.float32)
    noisy = float(multi_scale_spectral_loss(target, noise))
    assert np.isfinite(detuned) and detuned > 0
    assert noisy > detuned


def test_gradient_is_finite_and_nonzero(rng):
    target = tone(440.0, 8000)
    audio = tone(450.0, 8000) + jnp.asarray(rng.normal(size=(1, 8000)) * 0.01, jnp.float32)
    grad = jax.jit(jax.grad(lambda a: multi_scale_spectral_loss(target, a)))(audio)
    assert np.all(np.isfinite(grad)) and np.abs(grad).max() > 0
    # Silence against silence: the magnitude's gradient at exact zeros is 0, not NaN.
    silent = jax.jit(jax.grad(lambda a: multi_scale_spectral_loss(jnp.zeros((1, 4000)), a)))(
        jnp.zeros((1, 4000))
    )
    assert np.all(np.isfinite(silent))


def test_weights_select_terms(rng):
    target = tone(440.0, 8000)
    audio = tone(470.0, 8000)
    single = {"fft_sizes": (512,), "mag_weight": 0.0, "logmag_weight": 0.0}
    for term in (
        "mag_weight",
        "logmag_weight",
        "delta_time_weight",
        "delta_freq_weight",
        "cumsum_freq_weight",
    ):
        assert float(multi_scale_spectral_loss(target, audio, **single)) == 0.0
        assert float(multi_scale_spectral_loss(target, audio, **{**single, term: 1.0})) > 0.0
    total = multi_scale_spectral_loss(target, audio)
    parts = sum(
        multi_scale_spectral_loss(target, audio, fft_sizes=(size,))
        for size in (2048, 1024, 512, 256, 128, 64)
    )
    assert float(total) == pytest.approx(float(parts), rel=1e-5)


def test_mean_difference_types():
    a = jnp.array([[1.0, 0.0], [0.0, 2.0]])
    b = jnp.array([[0.0, 1.0], [0.0, 4.0]])
    assert float(mean_difference(a, b, "L1")) == pytest.approx(1.0)
    assert float(mean_difference(a, b, "L2")) == pytest.approx(1.5)
    assert float(mean_difference(a, b, "cosine")) == pytest.approx(0.5)  # 1 − [0, 1] mean.
    with pytest.raises(ValueError, match="loss_type"):
        mean_difference(a, b, "huber")


def test_bad_input():
    with pytest.raises(ValueError, match="same shape"):
        multi_scale_spectral_loss(jnp.zeros((1, 100)), jnp.zeros((1, 200)))
    with pytest.raises(ValueError, match="audio must have shape"):
        multi_scale_spectral_loss(jnp.zeros(100), jnp.zeros(100))


def test_loudness_term_is_the_mean_loudness_difference_in_db():
    t = np.arange(16000) / 16000
    quiet = (0.1 * np.sin(2 * np.pi * 440 * t))[None].astype(np.float32)
    loud = 2.0 * quiet  # +6.02 dB at every frame above the floor.
    only_loudness = {"fft_sizes": (), "loudness_weight": 1.0}
    assert float(multi_scale_spectral_loss(quiet, quiet, **only_loudness)) == 0.0
    difference = float(multi_scale_spectral_loss(quiet, loud, **only_loudness))
    assert difference == pytest.approx(20 * np.log10(2.0), abs=0.05)
    grad = jax.grad(lambda a: multi_scale_spectral_loss(jnp.asarray(quiet), a, **only_loudness))(
        jnp.asarray(loud)
    )
    assert np.all(np.isfinite(grad)) and np.abs(grad).max() > 0
