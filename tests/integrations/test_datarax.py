"""The datarax operators give the plain graph's audio (run in the datarax environment)."""

import numpy as np
import pytest

datarax = pytest.importorskip("datarax", reason="needs the datarax extra")

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
from datarax.core.element_batch import Batch  # noqa: E402
from datarax.operators import CompositionStrategy  # noqa: E402
from flax import nnx  # noqa: E402

from ddsp_jax.integrations.datarax import (  # noqa: E402
    FilteredNoiseOperator,
    FilteredNoiseOperatorConfig,
    HarmonicOperator,
    HarmonicOperatorConfig,
    ReverbOperator,
    ReverbOperatorConfig,
    datarax_graph,
    noise_key,
)
from ddsp_jax.losses import multi_scale_spectral_loss  # noqa: E402
from ddsp_jax.processors import ProcessorGraph, ProcessorGraphConfig  # noqa: E402

N_FRAMES, N_SAMPLES = 100, 6400


def record(rng: np.random.Generator) -> dict[str, jax.Array]:
    return {
        "f0_hz": jnp.full((N_FRAMES, 1), 330.0),
        "amplitudes": jnp.asarray(rng.normal(size=(N_FRAMES, 1)), jnp.float32),
        "harmonic_distribution": jnp.asarray(rng.normal(size=(N_FRAMES, 40)), jnp.float32),
        "noise_magnitudes": jnp.asarray(rng.normal(size=(N_FRAMES, 65)), jnp.float32),
        "audio": jnp.zeros((N_SAMPLES,)),
    }


@pytest.mark.parametrize("reverb", ["ir", "exp_decay", "none"])
def test_datarax_graph_equals_plain_graph(reverb):
    config = ProcessorGraphConfig(
        n_samples=N_SAMPLES, n_harmonics=40, reverb=reverb, reverb_length=1600
    )
    graph = ProcessorGraph(config, rngs=nnx.Rngs(0))
    operator = datarax_graph(graph, rngs=nnx.Rngs(1))
    expected = (
        CompositionStrategy.WEIGHTED_PARALLEL
        if reverb == "none"
        else CompositionStrategy.SEQUENTIAL
    )
    assert operator.config.strategy == expected
    data = record(np.random.default_rng(0))
    key = jax.random.key(7)
    out, _, _ = operator.apply(data, {}, None, key=key)
    controls = {name: value[None] for name, value in data.items()}
    plain = graph(controls, key=noise_key(key, has_reverb=reverb != "none"))["audio"][0]
    np.testing.assert_allclose(out["audio"], plain, atol=1e-6)
    assert float(jnp.abs(plain).max()) > 0.1


def test_batched_call_and_gradients_through_shared_parameters():
    config = ProcessorGraphConfig(n_samples=N_SAMPLES, n_harmonics=40, reverb_length=1600)
    graph = ProcessorGraph(config, rngs=nnx.Rngs(0))
    operator = datarax_graph(graph, rngs=nnx.Rngs(1))
    rng = np.random.default_rng(1)
    records = [record(rng) for _ in range(3)]
    batch = Batch.from_parts(
        data={name: jnp.stack([r[name] for r in records]) for name in records[0]}, states={}
    )
    audio = operator(batch).get_data()["audio"]
    assert audio.shape == (3, N_SAMPLES) and np.all(np.isfinite(audio))
    target = jnp.asarray(rng.normal(size=(3, N_SAMPLES)) * 0.1, jnp.float32)

    def loss_fn(operator):
        return multi_scale_spectral_loss(target, operator(batch).get_data()["audio"])

    grads = nnx.grad(loss_fn)(operator)
    ir_grad = grads.operators[1].processor.impulse_response[...]
    assert np.all(np.isfinite(ir_grad)) and np.abs(ir_grad).max() > 0
    # The operator wraps the plain graph's own Param.
    assert operator.operators[1].processor is graph.reverb


def test_single_operators_build_their_own_processors():
    harmonic = HarmonicOperator(HarmonicOperatorConfig())
    noise = FilteredNoiseOperator(FilteredNoiseOperatorConfig(), rngs=nnx.Rngs(0))
    reverb = ReverbOperator(ReverbOperatorConfig(), rngs=nnx.Rngs(0))
    assert not harmonic.config.stochastic and noise.config.stochastic
    assert reverb.processor.impulse_response.shape == (48000,)
    with pytest.raises(ValueError, match="rngs"):
        ReverbOperator(ReverbOperatorConfig())
