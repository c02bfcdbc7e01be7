from ddsp_jax.benchmarks.flops import decoder_matmul_flops_per_frame
from ddsp_jax.benchmarks.matmuls import decoder_matmuls
from ddsp_jax.models.decoders import RnnFcDecoderConfig


def test_products_grouped_by_shape_count_the_decoders_flops():
    """One input as wide as the GRU: its input projection has the recurrent product's shape,
    and must still be timed over all rows, under its own label (not as the recurrence)."""
    config = RnnFcDecoderConfig(
        input_keys=("f0_scaled",), input_sizes=(1,), ch=8, layers_per_stack=2, rnn_channels=8
    )
    batch_size, n_frames = 2, 5
    groups = decoder_matmuls(config, batch_size, n_frames)
    assert set(groups) == {"1x8", "8x8", "8x24", "16x8", "recurrent_8x24"} | {
        f"8x{size}" for _, size in config.output_splits
    }
    rows = batch_size * n_frames
    flops = sum(group_flops for _, group_flops in groups.values())
    assert flops == 3 * decoder_matmul_flops_per_frame(config) * rows
    assert groups["8x24"][1] == groups["recurrent_8x24"][1] == 3 * 2 * 8 * 24 * rows
    # The input projection runs three all-row products; the recurrence a weight gradient
    # and one scan over the frames.
    outputs = groups["8x24"][0]()
    assert [output.shape for output in outputs] == [(8, 24), (rows, 24), (rows, 8)]
    weight_gradient, (h_last, d_gates_last) = groups["recurrent_8x24"][0]()
    assert weight_gradient.shape == (8, 24)
    assert h_last.shape == (batch_size, 8) and d_gates_last.shape == (batch_size, 24)
