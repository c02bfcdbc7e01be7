"""Streaming synthesis: blocks joined equal the offline render; state carried exactly."""

import dataclasses
import tracemalloc
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from conftest import relative_error_db, tone
from crepe import needs_weights
from ddsp_jax.core.filters import fft_convolve
from ddsp_jax.core.spectral import compute_loudness
from ddsp_jax.core.units import inverse_exp_sigmoid
from ddsp_jax.features import compute_f0, note_frames
from ddsp_jax.models import Autoencoder, SavedModel, render
from ddsp_jax.processors.graph import ProcessorGraph, ProcessorGraphConfig
from ddsp_jax.streaming import (
    Stream,
    StreamingSynth,
    TransferStream,
    priming_frames,
    reverb_partitions,
)
from ddsp_jax.training.config import model_config

FRAME_RATE = 250
HOP = 64
# Differences between a streamed and an offline render are float32 rounding of sums taken
# in another order (decoder products per block, overlap-add, partitioned reverb).
TOLERANCE = 1e-5


def saved_model(reverb: str = "ir", n_frames: int = 100) -> SavedModel:
    config = model_config(8, reverb, 700, 16, 1, 16, n_frames * HOP)
    model = Autoencoder(config, rngs=nnx.Rngs(3))
    if reverb == "ir":  # A reverb loud enough to matter: 0.3 decaying over its length.
        decay = np.exp(-np.arange(700) / 150.0) * np.random.default_rng(1).normal(size=700)
        model.processor_graph.reverb.impulse_response[...] = jnp.asarray(0.3 * decay)
    return SavedModel(model, FRAME_RATE, None, 0, Path("."))


def melody(n_frames: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    notes = rng.uniform(150.0, 600.0, size=n_frames // 10 + 1).repeat(10)[:n_frames]
    f0 = notes * (1 + 0.01 * np.sin(np.arange(n_frames) / 3.0))
    loudness = -30.0 + 20.0 * np.sin(np.arange(n_frames) / 17.0)
    return f0.astype(np.float32), loudness.astype(np.float32)


def offline(saved: SavedModel, f0: np.ndarray, loudness: np.ndarray) -> np.ndarray:
    from ddsp_jax.inference import model_for_length

    model = model_for_length(saved, len(f0) * HOP)
    return np.asarray(render(model, f0[None], loudness[None])[0])


@pytest.mark.parametrize("block_size", [64, 100, 320, 1024])
def test_blocks_joined_equal_the_offline_render(block_size):
    saved = saved_model()
    f0, loudness = melody(101)  # Not a whole number of blocks.
    expected = offline(saved, f0, loudness)
    streamed = Stream(saved, block_size).render(f0_hz=f0, loudness_db=loudness)
    assert streamed.shape == expected.shape
    peak = np.max(np.abs(expected))
    assert np.max(np.abs(streamed - expected)) <= TOLERANCE * peak
    assert peak > 0.01


def test_each_block_is_the_offline_render_delayed_by_the_latency():
    saved = saved_model("none")
    f0, loudness = melody(40)
    expected = offline(saved, f0, loudness)
    stream = Stream(saved, 320)
    assert stream.latency == 64
    blocks, start = [], 0
    while start + stream.frames_due <= len(f0):
        due = stream.frames_due
        blocks.append(
            stream.process(f0_hz=f0[start : start + due], loudness_db=loudness[start : start + due])
        )
        start += due
    out = np.concatenate(blocks)
    np.testing.assert_array_equal(out[:64], 0.0)  # Nothing before the first frame.
    np.testing.assert_allclose(out[64:], expected[: len(out) - 64], atol=TOLERANCE)


def test_frames_due_follow_frame_positions_for_blocks_that_do_not_divide_a_frame():
    stream = StreamingSynth(
        ProcessorGraph(ProcessorGraphConfig(n_harmonics=2, reverb="none"), rngs=nnx.Rngs(0)),
        FRAME_RATE,
        100,
    )
    dues = []
    for _ in range(16):
        dues.append(stream.frames_due)
        n = dues[-1]
        stream.process(
            f0_hz=np.full(n, 200.0),
            amplitudes=np.zeros((n, 1)),
            harmonic_distribution=np.zeros((n, 2)),
            noise_magnitudes=np.zeros((n, 65)),
        )
    # Frames at 0, 64, 128, ...: block [0, 100) holds 2, [100, 200) holds 2, [200, 300) 1 ...
    assert dues[:4] == [2, 2, 1, 2]
    assert sum(dues) == -(-16 * 100 // HOP)


def test_partitioned_reverb_spectra_give_the_linear_convolution():
    rng = np.random.default_rng(0)
    ir = rng.normal(size=300).astype(np.float32)
    dry = rng.normal(size=(1, 640)).astype(np.float32)
    partitions = reverb_partitions(jnp.asarray(ir), HOP)
    assert partitions.shape == (10, HOP + 1)
    expected = fft_convolve(dry, ir[None], padding="same", delay_compensation=0)[0]
    out, line, previous = [], np.zeros((5, HOP + 1), np.complex64), np.zeros(HOP, np.float32)
    for slot, block in enumerate(np.asarray(dry[0]).reshape(-1, HOP)):
        line[slot % 5] = np.fft.rfft(np.concatenate([previous, block]))
        paired = np.asarray(partitions)[4 - slot % 5 : 9 - slot % 5]
        out.append(np.fft.irfft((line * paired).sum(axis=0), 2 * HOP)[HOP:])
        previous = block
    np.testing.assert_allclose(np.concatenate(out), expected, atol=1e-4)


def test_exp_decay_reverb_streams_like_the_offline_render():
    saved = saved_model("exp_decay")
    f0, loudness = melody(60)
    expected = offline(saved, f0, loudness)
    streamed = Stream(saved, 320).render(f0_hz=f0, loudness_db=loudness)
    assert np.max(np.abs(streamed - expected)) <= TOLERANCE * np.max(np.abs(expected))


def test_thirty_minutes_streamed_keep_the_exact_phase():
    # One harmonic at a constant 7000.1 Hz, noise at its floor, 1800 blocks of one second.
    # A phase carried in float32 between blocks is ~0.4 cycles off by the end; the fixed-point
    # accumulator stays with the exact phase (the offline render's, ((n + 1) f0 / sr) mod 1).
    sr, block, minutes = 16000, 16000, 30
    graph = ProcessorGraph(
        ProcessorGraphConfig(n_harmonics=1, n_noise_bands=2, reverb="none"), rngs=nnx.Rngs(0)
    )
    synth = StreamingSynth(graph, FRAME_RATE, block)
    frames = block // HOP
    f0 = np.full(frames, 7000.1, np.float32)
    controls = {
        "f0_hz": f0,
        "amplitudes": np.full((frames, 1), float(inverse_exp_sigmoid(0.5)), np.float32),
        "harmonic_distribution": np.zeros((frames, 1), np.float32),
        "noise_magnitudes": np.full((frames, 2), -1e4, np.float32),
    }
    for _ in range(minutes * 60 - 1):
        synth.process(**controls)
    last = synth.process(**controls).astype(np.float64)
    end = minutes * 60 * block - synth.latency  # Render samples n of the last block.
    n = np.arange(end - block, end, dtype=np.longdouble)
    phase = (n + 1) * np.longdouble(float(f0[0])) / sr
    expected = 0.5 * np.sin(2 * np.pi * (phase - np.floor(phase)).astype(np.float64))
    assert relative_error_db(last, expected) < -80.0


def test_no_compilation_and_no_host_arrays_after_the_first_block():
    block = 4096
    stream = Stream(saved_model(), block)
    f0, loudness = np.full(64, 300.0, np.float32), np.full(64, -20.0, np.float32)

    def play(blocks: int) -> None:
        for _ in range(blocks):
            stream.process(f0_hz=f0, loudness_db=loudness)

    play(2)
    compiles = []

    def listen(event: str, *args, **kwargs) -> None:
        if "compile" in event:
            compiles.append(event)

    jax.monitoring.register_event_duration_secs_listener(listen)
    tracemalloc.start()
    growths, peaks = [], []
    try:
        for _ in range(3):
            before, _ = tracemalloc.get_traced_memory()
            tracemalloc.reset_peak()
            play(100)
            after, peak = tracemalloc.get_traced_memory()
            growths.append(after - before)
            peaks.append(peak - before)
    finally:
        tracemalloc.stop()
        jax.monitoring.unregister_event_duration_listener(listen)
    assert compiles == []
    # What happens per block shows in every window of 100 blocks; jax's dispatch caches settle
    # once in a while (jax 0.11: 1-2 KB kept and a 24 KB transient, in one window). Nothing
    # kept per block (a 10-byte leak would grow every window by 1 KB), and less than one
    # block of float32 made on the host.
    assert min(growths) < 1000, growths
    assert min(peaks) < block * 4, peaks


def test_a_nan_block_is_silent_and_the_stream_recovers():
    saved = saved_model()
    f0, loudness = melody(60)
    broken, fixed = Stream(saved, 320), Stream(saved, 320)
    for block in range(12):
        due = broken.frames_due
        frames = slice(block * due, (block + 1) * due)
        one_f0, one_loudness = f0[frames].copy(), loudness[frames].copy()
        if block == 5:
            one_f0[2] = np.nan
            out = broken.process(f0_hz=one_f0, loudness_db=one_loudness)
            np.testing.assert_array_equal(out, 0.0)
            # The same stream given silent frames instead: f0 0 Hz, loudness -120 dB.
            fixed.process(f0_hz=np.zeros(due), loudness_db=np.full(due, -120.0))
            continue
        out = broken.process(f0_hz=one_f0, loudness_db=one_loudness)
        np.testing.assert_array_equal(out, fixed.process(f0_hz=one_f0, loudness_db=one_loudness))
        assert np.all(np.isfinite(out))


def test_bad_blocks_and_unstreamable_models_are_named():
    stream = Stream(saved_model("none"), 320)
    with pytest.raises(ValueError, match=r"f0_hz must have shape \(5, 1\).*got \(4,\)"):
        stream.process(f0_hz=np.zeros(4), loudness_db=np.zeros(4))
    with pytest.raises(ValueError, match="needs 'loudness_db'"):
        stream.process(f0_hz=np.zeros(5))
    with pytest.raises(ValueError, match="block_size must be a positive integer"):
        Stream(saved_model("none"), 0)
    cubic = dataclasses.replace(
        saved_model("none").config.synth, amp_resample_method="cubic", sample_rate=16000
    )
    with pytest.raises(ValueError, match="'cubic'"):
        StreamingSynth(ProcessorGraph(cubic, rngs=nnx.Rngs(0)), FRAME_RATE, 320)
    with pytest.raises(ValueError, match="44100 / frame_rate 250 is not whole"):
        config = ProcessorGraphConfig(sample_rate=44100, reverb="none")
        StreamingSynth(ProcessorGraph(config, rngs=nnx.Rngs(0)), FRAME_RATE, 320)


@pytest.mark.parametrize("block_size", [64, 100, 320, 1000])
def test_priming_frames_are_the_fewest_that_keep_the_synth_fed(block_size):
    primed = priming_frames(block_size, HOP, 512)
    ready = lambda end: max(0, (end - 512) // HOP + 1)  # noqa: E731
    due = lambda end: -(-end // HOP)  # noqa: E731
    ends = [block * block_size for block in range(1, 400)]
    assert all(primed + ready(end) >= due(end) for end in ends)
    assert any(primed - 1 + ready(end) < due(end) for end in ends)


@needs_weights
def test_live_transfer_renders_the_offline_features_of_its_input():
    saved = saved_model()
    audio = np.concatenate([tone(220.0, 0.5, 16000), tone(330.0, 0.5, 16000)]).astype(np.float32)
    live = TransferStream(saved, 320, pitch_shift=-12.0, loudness_shift=3.0)
    out = np.concatenate([live.process(audio[i : i + 320]) for i in range(0, 16000, 320)])
    f0, confidence = compute_f0(audio, 16000, capacity="tiny", viterbi=False)
    loudness = np.asarray(compute_loudness(audio, 16000, 250, 512))
    notes = note_frames(confidence, loudness, max_gap=1)
    f0 = f0 / 2.0
    loudness = np.maximum(np.where(notes, loudness + 3.0, loudness - 17.0), -80.0)
    primed = live.priming_frames
    frames = (len(out) - live.synth.latency) // HOP
    f0_frames = np.concatenate([np.zeros(primed), f0])[:frames].astype(np.float32)
    loudness_frames = np.concatenate([np.full(primed, -80.0), loudness])[:frames]
    expected = offline(saved, f0_frames, loudness_frames.astype(np.float32))
    latency = live.synth.latency
    np.testing.assert_allclose(out[latency:], expected[: len(out) - latency], atol=2e-3)
    assert live.latency == primed * HOP + latency


@needs_weights
def test_automatic_shifts_follow_the_notes_heard_so_far():
    saved = saved_model()
    saved.statistics = {"mean_pitch_midi": 48.0, "note_loudness_db_quantiles": [-50, -30, -10]}
    live = TransferStream(saved, 320, pitch_shift="auto", loudness_shift="auto")
    assert live.shifts() == (0.0, 0.0)  # Nothing heard yet.
    audio = tone(440.0, 0.5, 16000).astype(np.float32)  # MIDI 69.
    for start in range(0, 8000, 320):
        live.process(audio[start : start + 320])
    pitch_shift, loudness_shift = live.shifts()
    assert pitch_shift == -24.0  # 69 - 24 = 45 is nearer 48 than 57.
    loudness = np.asarray(compute_loudness(audio, 16000, 250, 512))[20:100]
    assert abs(loudness_shift - (-30.0 - loudness.mean())) < 1.0
    saved.statistics = None
    with pytest.raises(ValueError, match="automatic pitch shift needs the model's training"):
        TransferStream(saved, 320, pitch_shift="auto")
