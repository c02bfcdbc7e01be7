"""FLOPs counted from the decoder's layer sizes (what ``ddsp bench train`` and ``ddsp bench
matmuls`` divide by time).

XLA's cost analysis counts a ``lax.scan``'s body once, not once per step, so for the GRU it
undercounts (823 instead of 922 GFLOP for a batch-32 step at the paper's shapes); the layer
sizes give the exact count.
"""

from ddsp_jax.features.f0 import CHANNELS, FRAME_SIZE, N_BINS
from ddsp_jax.models.decoders import RnnFcDecoderConfig


def decoder_matmul_shapes(
    config: RnnFcDecoderConfig,
) -> tuple[tuple[tuple[int, int], ...], tuple[int, int]]:
    """``(fan_in, fan_out)`` of ``RnnFcDecoder``'s matrix products for one frame of one
    example: those applied to all frames at once (every Dense layer, the GRU's input
    projection, the heads), and the GRU's recurrent product (one per frame, inside the
    recurrence).

    >>> products, recurrent = decoder_matmul_shapes(RnnFcDecoderConfig(ch=8, rnn_channels=4))
    >>> recurrent, products[-3:]
    ((4, 12), ((8, 1), (8, 100), (8, 65)))
    """
    ch, rnn, layers = config.ch, config.rnn_channels, config.layers_per_stack
    stack_in = len(config.input_keys) * ch
    products = [(size, ch) for size in config.input_sizes]  # first layer of each stack
    products += [(ch, ch)] * ((layers - 1) * len(config.input_sizes))
    products += [(stack_in, 3 * rnn)]  # GRU input projection
    products += [(stack_in + rnn, ch)] + [(ch, ch)] * (layers - 1)  # output stack
    products += [(ch, size) for _, size in config.output_splits]
    return tuple(products), (rnn, 3 * rnn)


def decoder_matmul_flops_per_frame(config: RnnFcDecoderConfig) -> int:
    """Multiply-add FLOPs (2 per multiply-add) of ``decoder_matmul_shapes`` for one frame of
    one example, forward only. Training costs three times this (the backward pass has two
    products per forward one).

    >>> decoder_matmul_flops_per_frame(RnnFcDecoderConfig()) / 1e6  # The paper's decoder.
    9.609216
    """
    products, recurrent = decoder_matmul_shapes(config)
    return sum(2 * fan_in * fan_out for fan_in, fan_out in (*products, recurrent))


def crepe_flops_per_frame(capacity: str) -> int:
    """Multiply-add FLOPs (2 per multiply-add) of CREPE ``capacity`` on one 1024-sample
    frame: six convolutions (kernel 512 at stride 4 on 1024 + 508 padded samples, then
    kernel 64 on ``length + 63`` padded samples, each followed by a max-pool halving the
    length) and the classifier. Every product a dense convolution computes is counted, those
    with the zero padding too (XLA's cost analysis leaves those out: 0.84 of this for tiny).

    >>> round(crepe_flops_per_frame("tiny") / 1e6, 1), round(crepe_flops_per_frame("full") / 1e9, 2)
    (73.6, 2.82)
    """
    flops, length, fan_in = 0, FRAME_SIZE, 1
    for layer, channels in enumerate(CHANNELS[capacity]):
        kernel, stride = (512, 4) if layer == 0 else (64, 1)
        padded = length + (508 if layer == 0 else 63)
        length = (padded - kernel) // stride + 1
        flops += 2 * length * kernel * fan_in * channels
        length //= 2
        fan_in = channels
    return flops + 2 * length * fan_in * N_BINS
