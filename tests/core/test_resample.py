import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ddsp_jax import core


@pytest.mark.parametrize("n_samples", [1000, 1037])  # Divisible and not.
def test_window_upsampling_of_constant_is_constant(n_samples):
    x = jnp.full((2, 10, 3), 0.7)
    np.testing.assert_allclose(core.resample(x, n_samples, "window"), 0.7, rtol=1e-6)


@pytest.mark.parametrize("n_samples", [640, 1000])
def test_linear_reproduces_a_ramp_with_magenta_alignment(n_samples):
    n_frames = 10
    frames = jnp.arange(n_frames, dtype=jnp.float32)[None]
    out = np.asarray(core.resample(frames, n_samples, "linear")[0])
    position = np.arange(n_samples) * n_frames / n_samples  # Frame j sits at sample j * hop.
    inside = position <= n_frames - 1
    np.testing.assert_allclose(out[inside], position[inside], atol=1e-5)
    np.testing.assert_allclose(out[~inside], n_frames - 1, rtol=1e-6)  # Last frame held.


def test_nearest_holds_each_frame():
    frames = jnp.array([[1.0, 2.0, 3.0]])
    np.testing.assert_array_equal(core.resample(frames, 6, "nearest")[0], [1, 1, 2, 2, 3, 3])


def test_window_is_hann_overlap_add():
    # magenta's upsample_with_windows: frames (last one repeated) times periodic Hann windows
    # of 2 * hop samples, overlap-added with hop, trimmed by hop at both ends.
    rng = np.random.default_rng(0)
    frames = rng.normal(size=(8,))
    hop = 16
    padded = np.concatenate([frames, frames[-1:]])
    window = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(2 * hop) / (2 * hop))
    ola = np.zeros((len(padded) + 1) * hop)
    for j, value in enumerate(padded):
        ola[j * hop : j * hop + 2 * hop] += value * window
    expected = ola[hop : hop + len(frames) * hop]
    out = core.resample(jnp.asarray(frames, jnp.float32), len(frames) * hop, "window")
    np.testing.assert_allclose(out, expected, atol=1e-6)


def test_cubic_passes_through_frames_and_is_smooth():
    frames = jnp.asarray(np.sin(np.arange(12) / 2.0), jnp.float32)[None, :, None]
    out = np.asarray(core.resample(frames, 120, "cubic")[0, :, 0])
    np.testing.assert_allclose(out[::10], np.asarray(frames[0, :, 0]), atol=1e-6)
    assert np.max(np.abs(np.diff(out))) < 0.07  # Slope of sin(x / 2) is <= 0.05 per sample.


def test_resample_shapes_jit_and_errors():
    fn = jax.jit(lambda x: core.resample(x, 400, "window"))
    assert fn(jnp.ones((3, 100, 2))).shape == (3, 400, 2)
    assert core.resample(jnp.ones(100), 400).shape == (400,)
    with pytest.raises(ValueError, match="method"):
        core.resample(jnp.ones((1, 10)), 100, "quadratic")
    with pytest.raises(ValueError, match="only upsamples"):
        core.resample(jnp.ones((1, 100)), 10, "window")
    with pytest.raises(ValueError, match="n_samples"):
        core.resample(jnp.ones((1, 10)), 0)
    with pytest.raises(ValueError, match="shape"):
        core.resample(jnp.ones((1, 2, 3, 4)), 10)
