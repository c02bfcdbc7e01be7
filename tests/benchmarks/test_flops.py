import jax
import jax.numpy as jnp
import pytest
from flax import nnx

from crepe import needs_weights
from ddsp_jax.benchmarks.flops import crepe_flops_per_frame, decoder_matmul_flops_per_frame
from ddsp_jax.models import RnnFcDecoder, preprocess
from ddsp_jax.training.config import PRESETS


def test_decoder_matmul_flops_match_xla_and_the_paper_size():
    """``decoder_matmul_flops_per_frame`` against XLA's cost analysis of the forward decoder
    at one frame (where counting the GRU's scan body once is exact; XLA also counts the
    elementwise work, a few % more), and training at paper shapes against ~29 GFLOP per
    example (magenta's decoder, 1000 frames, forward + backward)."""
    config = PRESETS["nsynth"].model.decoder
    decoder = RnnFcDecoder(config, rngs=nnx.Rngs(0))
    graphdef, state = nnx.split(decoder)
    features = preprocess(jnp.full((1, 1), 440.0), jnp.full((1, 1), -30.0))
    compiled = jax.jit(lambda state: nnx.merge(graphdef, state)(features)).lower(state).compile()
    analysis = compiled.cost_analysis()
    xla_flops = (analysis[0] if isinstance(analysis, list) else analysis)["flops"]
    ours = decoder_matmul_flops_per_frame(config)
    assert ours <= xla_flops <= 1.05 * ours
    per_example = 3 * ours * PRESETS["nsynth"].n_frames
    assert per_example == pytest.approx(29e9, rel=0.02)


@needs_weights
def test_crepe_flops_match_xla_cost_analysis():
    from ddsp_jax.core.implementation import use_implementation
    from ddsp_jax.features.f0 import load_crepe

    model = load_crepe("tiny")
    frames = jnp.zeros((4, 1024), jnp.float32)
    with use_implementation("reference"):  # The plain convolutions the count describes.
        compiled = nnx.jit(lambda m, x: m(x)).lower(model, frames).compile()
    xla_flops = compiled.cost_analysis()["flops"]
    counted = 4 * crepe_flops_per_frame("tiny")
    # XLA leaves out the products with the convolutions' zero padding (measured 0.84 of the
    # dense count for tiny) and adds the elementwise work.
    assert 0.8 * counted <= xla_flops <= counted
