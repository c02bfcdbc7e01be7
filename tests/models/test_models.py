import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from ddsp_jax.losses import multi_scale_spectral_loss
from ddsp_jax.models import Autoencoder, AutoencoderConfig, Gru, RnnFcDecoder, preprocess
from ddsp_jax.models.kernels import gru_recurrence
from ddsp_jax.training import PRESETS
from tiny import tiny_config


@pytest.mark.parametrize("preset", sorted(PRESETS))
def test_decoder_output_shapes_for_every_preset(preset):
    config = PRESETS[preset].model
    decoder = RnnFcDecoder(config.decoder, rngs=nnx.Rngs(0))
    features = preprocess(jnp.full((2, 7), 220.0), jnp.full((2, 7), -30.0))
    if config.encoder is not None:
        features["z"] = jnp.zeros((2, 7, config.encoder.z_dims))
    controls = decoder(features)
    assert controls["amplitudes"].shape == (2, 7, 1)
    assert controls["harmonic_distribution"].shape == (2, 7, config.synth.n_harmonics)
    assert controls["noise_magnitudes"].shape == (2, 7, config.synth.n_noise_bands)


def test_paper_decoder_has_magentas_size():
    decoder = RnnFcDecoder(PRESETS["nsynth"].model.decoder, rngs=nnx.Rngs(0))
    n_params = sum(p.size for p in jax.tree.leaves(nnx.state(decoder, nnx.Param)))
    assert 4.7e6 < n_params < 4.9e6  # magenta/ddsp's RnnFcDecoder(512, 512, 3): ~4.8 M.


def test_gru_matches_the_keras_equations():
    rng = np.random.default_rng(0)
    gru = Gru(3, 4, rngs=nnx.Rngs(1))
    x = rng.normal(size=(2, 5, 3)).astype(np.float32)
    outputs, final = gru(jnp.asarray(x))
    w_x, b_x = (
        np.asarray(gru.input_projection.kernel[...]),
        np.asarray(gru.input_projection.bias[...]),
    )
    w_h = np.asarray(gru.recurrent_projection.kernel[...])
    b_h = np.asarray(gru.recurrent_projection.bias[...])
    sigmoid = lambda v: 1 / (1 + np.exp(-v))  # noqa: E731
    h = np.zeros((2, 4))
    for t in range(5):
        xz, xr, xn = np.split(x[:, t] @ w_x + b_x, 3, axis=-1)
        hz, hr, hn = np.split(h @ w_h + b_h, 3, axis=-1)
        z, r = sigmoid(xz + hz), sigmoid(xr + hr)
        n = np.tanh(xn + r * hn)
        h = z * h + (1 - z) * n
        np.testing.assert_allclose(outputs[:, t], h, atol=1e-5)
    np.testing.assert_allclose(final, h, atol=1e-5)


def test_gru_recurrence_backward_matches_autodiff_of_the_scan():
    """The hand-written backward pass against jax.grad of a plain scan of the equations."""
    rng = np.random.default_rng(0)
    n_frames, batch, channels = 9, 3, 5
    projected = jnp.asarray(rng.normal(size=(n_frames, batch, 3 * channels)), jnp.float32)
    kernel = jnp.asarray(rng.normal(size=(channels, 3 * channels)) * 0.5, jnp.float32)
    bias = jnp.asarray(rng.normal(size=(3 * channels,)) * 0.1, jnp.float32)
    h0 = jnp.asarray(rng.normal(size=(batch, channels)) * 0.3, jnp.float32)
    weights = jnp.asarray(rng.normal(size=(n_frames, batch, channels)), jnp.float32)
    final_weights = jnp.asarray(rng.normal(size=(batch, channels)), jnp.float32)

    def reference(projected, kernel, bias, h0):
        def step(h, x_t):
            x_z, x_r, x_n = jnp.split(x_t, 3, axis=-1)
            h_z, h_r, h_n = jnp.split(h @ kernel + bias, 3, axis=-1)
            z, r = jax.nn.sigmoid(x_z + h_z), jax.nn.sigmoid(x_r + h_r)
            h = z * h + (1 - z) * jnp.tanh(x_n + r * h_n)
            return h, h

        final, outputs = jax.lax.scan(step, h0, projected)
        return outputs, final

    def objective(recurrence):
        def loss(*args):
            outputs, final = recurrence(*args)
            return jnp.sum(outputs * weights) + jnp.sum(final * final_weights)

        return jax.grad(loss, argnums=(0, 1, 2, 3))(projected, kernel, bias, h0)

    for ours, expected in zip(objective(gru_recurrence), objective(reference), strict=True):
        assert np.all(np.asarray(ours) != 0)
        np.testing.assert_allclose(ours, expected, rtol=1e-4, atol=1e-6)


def test_gru_recurrence_keeps_its_fusion_barriers_out_of_gpu_programs():
    """The barriers inside the scans help XLA's CPU back end only; lowered for a GPU they would
    be a kernel boundary per frame (the batch-32 train step ran 32 % slower on an H200)."""
    n_frames, batch, channels = 4, 2, 3

    def loss(projected, kernel, bias, h0):
        outputs, final = gru_recurrence(projected, kernel, bias, h0)
        return jnp.sum(outputs) + jnp.sum(final)

    gradient = jax.jit(jax.grad(loss, argnums=(0, 1, 2, 3)))
    shapes = [
        (n_frames, batch, 3 * channels),  # projected
        (channels, 3 * channels),  # kernel
        (3 * channels,),  # bias
        (batch, channels),  # initial state
    ]
    args = [jax.ShapeDtypeStruct(shape, jnp.float32) for shape in shapes]

    def barriers(platform: str) -> int:
        program = jax.export.export(gradient, platforms=[platform])(*args).mlir_module()
        return program.count("stablehlo.optimization_barrier")

    assert barriers("cpu") == 2  # One in the forward scan, one in the backward scan.
    assert barriers("cuda") == 0
    assert barriers("rocm") == 0


def test_decoder_carries_rnn_state_across_chunks():
    decoder = RnnFcDecoder(tiny_config().model.decoder, rngs=nnx.Rngs(0))
    features = preprocess(jnp.linspace(100, 400, 20)[None], jnp.linspace(-60, -10, 20)[None])
    whole, _ = decoder.decode(features)
    first, state = decoder.decode({k: v[:, :8] for k, v in features.items()})
    second, _ = decoder.decode({k: v[:, 8:] for k, v in features.items()}, state)
    for name in whole:
        np.testing.assert_allclose(
            jnp.concatenate([first[name], second[name]], axis=1), whole[name], atol=1e-5
        )


def test_decoder_state_after_a_padded_chunk_is_the_state_after_its_real_frames():
    decoder = RnnFcDecoder(tiny_config().model.decoder, rngs=nnx.Rngs(0))
    features = preprocess(jnp.linspace(100, 400, 12)[None], jnp.linspace(-60, -10, 12)[None])
    _, real_state = decoder.decode({k: v[:, :5] for k, v in features.items()})
    _, padded_state = decoder.decode(features, length=jnp.int32(5))
    np.testing.assert_allclose(padded_state, real_state, atol=1e-6)
    start = jnp.ones_like(real_state)
    _, unchanged = decoder.decode(features, start, length=jnp.int32(0))
    np.testing.assert_array_equal(unchanged, start)


def test_preprocess_scaling():
    features = preprocess(jnp.array([[440.0, 0.0]]), jnp.array([[-80.0, 0.0]]))
    np.testing.assert_allclose(features["f0_scaled"][0, :, 0], [69 / 127, 0.0], rtol=1e-6)
    np.testing.assert_allclose(features["ld_scaled"][0, :, 0], [0.0, 1.0])


def test_gradients_reach_every_parameter():
    config = tiny_config()
    model = Autoencoder(config.model, rngs=nnx.Rngs(0))
    rng = np.random.default_rng(0)
    n_frames, n_samples = config.n_frames, config.model.synth.n_samples
    batch = {
        "audio": jnp.asarray(rng.normal(size=(2, n_samples)) * 0.1, jnp.float32),
        "f0_hz": jnp.full((2, n_frames), 330.0),
        "loudness_db": jnp.asarray(rng.uniform(-50, -10, (2, n_frames)), jnp.float32),
    }

    def loss_fn(model):
        audio = model(batch, key=jax.random.key(0))["audio_synth"]
        return multi_scale_spectral_loss(batch["audio"], audio, fft_sizes=(256, 64))

    grads = nnx.grad(loss_fn)(model)
    for path, leaf in jax.tree_util.tree_leaves_with_path(nnx.state(grads, nnx.Param)):
        assert np.all(np.isfinite(leaf)), path
        assert np.abs(leaf).max() > 0, path


def test_autoencoder_bad_input():
    config = tiny_config().model
    with pytest.raises(ValueError, match="do not match"):
        AutoencoderConfig(decoder=PRESETS["nsynth"].model.decoder, synth=config.synth)
    model = Autoencoder(config, rngs=nnx.Rngs(0))
    with pytest.raises(ValueError, match="loudness_db"):
        model({"f0_hz": jnp.ones((1, 10))}, key=jax.random.key(0))


def test_decoder_fast_path_equals_reference_path_with_gradients():
    """The decoder under ``use_implementation("reference")`` (autodiff of the plain scan)
    against the default fast path: same outputs, same parameter gradients (float32 sums in
    another order: 1e-5 relative to each gradient's largest entry)."""
    from ddsp_jax.core.implementation import use_implementation

    decoder = RnnFcDecoder(tiny_config().model.decoder, rngs=nnx.Rngs(0))
    graphdef, params, rest = nnx.split(decoder, nnx.Param, ...)
    features = preprocess(
        jnp.linspace(100, 400, 30).reshape(2, 15), jnp.linspace(-60, -10, 30).reshape(2, 15)
    )

    def loss(params):
        controls = nnx.merge(graphdef, params, rest)(features)
        return sum(jnp.sum(jnp.sin(value)) for value in controls.values())

    results = {}
    for implementation in ("reference", "fast"):
        with use_implementation(implementation):
            results[implementation] = jax.value_and_grad(loss)(params)
    (fast_loss, fast_grads), (reference_loss, reference_grads) = (
        results["fast"],
        results["reference"],
    )
    np.testing.assert_allclose(fast_loss, reference_loss, rtol=1e-6)
    for ours, expected in zip(
        jax.tree.leaves(fast_grads), jax.tree.leaves(reference_grads), strict=True
    ):
        scale = float(np.max(np.abs(expected)))
        assert scale > 0.0
        np.testing.assert_allclose(ours / scale, expected / scale, atol=1e-5)


def test_dense_layer_norm_leaky_relu_matches_flax_layers_with_gradients():
    """The fused FC layer's hand-written backward pass against autodiff of ``nnx.Linear`` →
    ``nnx.LayerNorm`` → ``leaky_relu`` in float32, for rows with a large mean, both signs of
    the pre-activation and non-trivial LayerNorm parameters (1e-5 relative to each
    gradient's largest entry)."""
    from ddsp_jax.models.kernels import LEAKY_RELU_SLOPE, dense_layer_norm_leaky_relu

    rngs = nnx.Rngs(0)
    dense_graph, dense_params = nnx.split(nnx.Linear(3, 6, rngs=rngs))
    norm_graph, norm_params = nnx.split(nnx.LayerNorm(6, rngs=rngs))
    rng = np.random.default_rng(1)
    norm_params["scale"][...] = jnp.asarray(rng.uniform(0.5, 2.0, 6), jnp.float32)
    norm_params["bias"][...] = jnp.asarray(rng.normal(size=6) * 0.3, jnp.float32)
    x = jnp.asarray(rng.normal(size=(2, 5, 3)) + 4.0, jnp.float32)
    weights = jnp.asarray(rng.normal(size=(2, 5, 6)), jnp.float32)
    epsilon = nnx.merge(norm_graph, norm_params).epsilon

    def fused(x, dense_params, norm_params):
        out = dense_layer_norm_leaky_relu(
            x,
            dense_params["kernel"][...],
            dense_params["bias"][...],
            norm_params["scale"][...],
            norm_params["bias"][...],
            epsilon,
            LEAKY_RELU_SLOPE,
        )
        return jnp.sum(out * weights), out

    def layers(x, dense_params, norm_params):
        dense, norm = nnx.merge(dense_graph, dense_params), nnx.merge(norm_graph, norm_params)
        out = jax.nn.leaky_relu(norm(dense(x)), LEAKY_RELU_SLOPE)
        return jnp.sum(out * weights), out

    args = (x, dense_params, norm_params)
    gradient = functools.partial(jax.value_and_grad, argnums=(0, 1, 2), has_aux=True)
    (_, ours), our_grads = gradient(fused)(*args)
    (_, expected), expected_grads = gradient(layers)(*args)
    assert np.any(expected < 0) and np.any(expected > 0)
    np.testing.assert_allclose(ours, expected, rtol=1e-5, atol=1e-6)
    for (path, mine), theirs in zip(
        jax.tree_util.tree_leaves_with_path(our_grads),
        jax.tree.leaves(expected_grads),
        strict=True,
    ):
        magnitude = float(np.max(np.abs(theirs)))
        assert magnitude > 0.0, path
        np.testing.assert_allclose(mine / magnitude, theirs / magnitude, atol=1e-5, err_msg=path)
