import jax
import jax.numpy as jnp
import numpy as np
import pytest

from crepe import needs_weights
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


@pytest.mark.parametrize(
    ("term", "transform"),
    [
        ("delta_time_weight", lambda m: np.diff(m, axis=1)),
        ("delta_freq_weight", lambda m: np.diff(m, axis=2)),
        ("cumsum_freq_weight", lambda m: np.cumsum(m, axis=2)),
    ],
)
def test_the_other_spectral_terms_are_their_definitions(term, transform):
    from ddsp_jax.core import compute_mag

    target, audio = tone(440.0, 8000), tone(470.0, 8000)
    single = {"fft_sizes": (512,), "mag_weight": 0.0, "logmag_weight": 0.0, term: 2.0}
    found = float(multi_scale_spectral_loss(target, audio, **single))
    mags = [np.asarray(compute_mag(a, 512, 0.75), np.float64) for a in (target, audio)]
    expected = 2.0 * np.mean(np.abs(transform(mags[0]) - transform(mags[1])))
    assert found == pytest.approx(expected, rel=1e-4)


@needs_weights
def test_crepe_embedding_loss_is_zero_for_the_same_audio_and_grows_with_detuning():
    from ddsp_jax.losses import pretrained_crepe_embedding_loss

    target = tone(440.0, 16000)
    near, far = tone(445.0, 16000), tone(466.0, 16000)
    assert float(pretrained_crepe_embedding_loss(target, target)) == 0.0
    assert (
        0.0
        < float(pretrained_crepe_embedding_loss(target, near))
        < float(pretrained_crepe_embedding_loss(target, far))
    )
    for layer in ("conv1-BN", "conv6-maxpool", "classifier"):
        gradient = jax.grad(
            lambda a, layer=layer: pretrained_crepe_embedding_loss(target, a, layer=layer)
        )(far)
        assert np.all(np.isfinite(gradient)) and np.any(gradient != 0.0), layer


@needs_weights
def test_crepe_embedding_is_crepes_salience_on_frames_1024_apart():
    from ddsp_jax.features.f0 import CENTS_PER_BIN, FIRST_BIN_CENTS
    from ddsp_jax.losses import crepe_embedding

    salience = np.asarray(crepe_embedding(tone(440.0, 16000), "tiny", "classifier"))
    assert salience.shape == (1, 16000 // 1024 + 1, 360)
    cents = FIRST_BIN_CENTS + CENTS_PER_BIN * np.argmax(salience[0, 2:-2], axis=-1)
    assert np.all(np.abs(cents - 1200 * np.log2(440.0 / 10.0)) < 20.0)  # The bin of 440 Hz.
    expected = {"conv1-BN": 256 * 128, "conv1-maxpool": 128 * 128, "conv6-maxpool": 4 * 64}
    for layer, features in expected.items():  # Frames 1024 apart: 3 in 2048 samples.
        assert crepe_embedding(tone(440.0, 2048), "tiny", layer).shape == (1, 3, features)


@needs_weights
def test_f0_extraction_works_after_the_embedding_loss_first_ran_inside_a_trace():
    from ddsp_jax.features import features_in_chunks
    from ddsp_jax.losses import crepe_embedding

    loss = jax.jit(lambda audio: jnp.sum(crepe_embedding(audio, "tiny")))
    assert np.isfinite(loss(jnp.ones((1, 4000))))
    audio = np.sin(2 * np.pi * 330 * np.arange(4000) / 16000).astype(np.float32)
    features = features_in_chunks([audio], 16000, 60, 250, "tiny")
    assert np.median(features["f0_hz"][10:50]) == pytest.approx(330, rel=0.01)
