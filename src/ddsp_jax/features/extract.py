"""The conditioning features of audio: CREPE f0 with confidence, A-weighted loudness and
power."""

import functools
import math
from collections.abc import Callable, Iterable

import jax
import numpy as np
import soxr

from ddsp_jax.core.spectral import compute_loudness, compute_power
from ddsp_jax.core.validation import check_positive_int
from ddsp_jax.defaults import FRAME_RATE
from ddsp_jax.features.f0 import (
    FRAME_SIZE,
    MODEL_SAMPLE_RATE,
    ViterbiDecoder,
    compute_f0,
    crepe_salience,
    load_crepe,
)

LOUDNESS_N_FFT = 512  # magenta's data preparation (prepare_tfrecord) computes loudness so.
FEATURE_NAMES = ("f0_hz", "f0_confidence", "loudness_db", "power_db")
# What a model's level conditioning can be (``AutoencoderConfig.level_feature``), each in dB
# with a floor of -80: A-weighted loudness, or frame power (magenta's ``F0PowerPreprocessor``).
LEVEL_FEATURES = {"loudness_db": "A-weighted loudness", "power_db": "frame power"}


@functools.partial(jax.jit, static_argnums=(1, 2, 3))
def _levels(
    audio: jax.Array, sample_rate: int, frame_rate: int, n_fft: int
) -> dict[str, jax.Array]:
    """Loudness and power (``n_fft``-sample frames, both) of ``audio`` ``[batch, n]``."""
    return {
        "loudness_db": compute_loudness(audio, sample_rate, frame_rate, n_fft),
        "power_db": compute_power(audio, sample_rate, frame_rate, n_fft),
    }


def level_conditioning(
    features: dict[str, np.ndarray], level_feature: str
) -> dict[str, np.ndarray]:
    """``features`` with ``loudness_db`` replaced by ``level_feature``'s values: what a model
    conditioned on that level reads wherever a loudness model reads loudness (its input,
    note frames, statistics and automatic loudness shifts).

    Raises:
        ValueError: For a level that is not one of ``LEVEL_FEATURES`` or not in ``features``.
    """
    if level_feature not in LEVEL_FEATURES:
        raise ValueError(
            f"level_feature must be one of {', '.join(LEVEL_FEATURES)}, got {level_feature!r}."
        )
    if level_feature not in features:
        raise ValueError(f"the features have no {level_feature} (only {', '.join(features)}).")
    return {**features, "loudness_db": features[level_feature]}


def compute_features(
    audio: np.ndarray,
    sample_rate: int,
    frame_rate: int = FRAME_RATE,
    f0_model: str | None = "full",
    loudness_n_fft: int = LOUDNESS_N_FFT,
    f0_rate: int | None = None,
) -> dict[str, np.ndarray]:
    """f0 (Hz), its confidence in [0, 1], loudness and power (dB) of ``audio`` ``[batch,
    n_samples]``.

    Frames are centred (frame ``i`` at ``i / frame_rate`` s), so there are
    ``1 + n_samples * frame_rate // sample_rate`` of them; f0 by CREPE (``f0_model``: ``"tiny"``
    or ``"full"``; None: levels only) with Viterbi decoding, loudness by
    ``compute_loudness`` and power by ``compute_power``, both over ``loudness_n_fft``-sample
    frames. ``f0_rate``: frames per second CREPE runs at, interpolated to ``frame_rate``
    (``compute_f0``'s ``network_rate``; None: ``frame_rate``).

    Returns:
        ``{"f0_hz", "f0_confidence", "loudness_db", "power_db"}``, each ``[batch, n_frames]``
        float32.
    """
    levels = _levels(np.asarray(audio, np.float32), sample_rate, frame_rate, loudness_n_fft)
    features = {name: np.asarray(values, np.float32) for name, values in levels.items()}
    if f0_model is not None:
        f0_hz, confidence = compute_f0(
            audio, sample_rate, frame_rate, capacity=f0_model, network_rate=f0_rate
        )
        features["f0_hz"] = np.asarray(f0_hz, np.float32)
        features["f0_confidence"] = np.asarray(confidence, np.float32)
    return features


# Seconds of audio beyond a chunk's frames that resampling to CREPE's 16 kHz needs for the
# chunk's resampled samples to equal the whole signal's (soxr's high-quality filter is far
# shorter).
_RESAMPLE_MARGIN_SECONDS = 0.05


def features_in_chunks(
    blocks: Iterable[np.ndarray],
    sample_rate: int,
    n_frames: int,
    frame_rate: int = FRAME_RATE,
    f0_model: str | None = "full",
    loudness_n_fft: int = LOUDNESS_N_FFT,
    chunk_frames: int = 2500,
    progress: Callable[[int], None] | None = None,
) -> dict[str, np.ndarray]:
    """``compute_features`` of a signal of any length given as consecutive blocks, in
    memory bounded by ``chunk_frames`` (not by the signal's length).

    The frames are computed ``chunk_frames`` at a time from the chunk's audio and enough
    audio either side for every window (and for resampling to CREPE's 16 kHz); Viterbi
    decoding runs over the chunks' salience (``ViterbiDecoder``). The result is the first
    ``n_frames`` frames of ``compute_features`` of the whole signal, the signal being zeros
    after the blocks: the same arithmetic frame by frame, up to float32 rounding where CREPE
    and the resampler see batches of another size.

    Args:
        blocks: Mono audio ``[n]`` blocks of any sizes at ``sample_rate``.
        sample_rate: Samples per second (Hz).
        n_frames: Frames to compute (frame ``i`` centred at ``i / frame_rate`` s).
        frame_rate: Frames per second (Hz).
        f0_model: ``"tiny"`` or ``"full"`` CREPE; None: levels only.
        loudness_n_fft: The loudness and power window (samples).
        chunk_frames: Frames computed at a time (rounded up to whole samples per chunk).
        progress: Called with the number of frames each chunk adds.

    Returns:
        ``{"f0_hz", "f0_confidence", "loudness_db", "power_db"}`` (only the levels without an
        f0 model), each ``[n_frames]`` float32.
    """
    for name, value in (
        ("n_frames", n_frames),
        ("sample_rate", sample_rate),
        ("frame_rate", frame_rate),
        ("chunk_frames", chunk_frames),
    ):
        check_positive_int(name, value)
    # Chunks start on frames that fall on whole samples at both rates.
    unit = math.lcm(
        frame_rate // math.gcd(frame_rate, sample_rate),
        frame_rate // math.gcd(frame_rate, MODEL_SAMPLE_RATE),
    )
    reach = loudness_n_fft / 2 / sample_rate
    if f0_model is not None:
        reach = max(reach, FRAME_SIZE / 2 / MODEL_SAMPLE_RATE)
        if sample_rate != MODEL_SAMPLE_RATE:
            reach += _RESAMPLE_MARGIN_SECONDS
    margin = -(-math.ceil(reach * frame_rate) // unit) * unit
    chunk_frames = -(-chunk_frames // unit) * unit

    def sample(frame: int) -> int:
        return frame * sample_rate // frame_rate

    source = iter(blocks)
    # The signal from ``start`` on, as far as it has been read; zeros before the first sample.
    buffer, start = np.zeros(sample(margin), np.float32), -sample(margin)
    crepe = None if f0_model is None else load_crepe(f0_model)
    decoder = ViterbiDecoder()
    parts: dict[str, list[np.ndarray]] = {name: [] for name in FEATURE_NAMES}
    for first in range(0, n_frames, chunk_frames):
        count = min(chunk_frames, n_frames - first)
        begin = sample(first - margin)
        end = sample(first - margin + -(-count // unit) * unit + 2 * margin)
        read, have = [buffer], start + len(buffer)
        while have < end:
            block = next(source, None)
            read.append(
                np.zeros(end - have, np.float32)
                if block is None
                else np.asarray(block, np.float32).reshape(-1)
            )
            have += len(read[-1])
        buffer = np.concatenate(read)
        piece = buffer[begin - start : end - start]
        # Keep what the next chunk's windows reach back to.
        buffer, start = (
            buffer[sample(first + count - margin) - start :],
            sample(first + count - margin),
        )
        kept = slice(margin, margin + count)
        for name, values in _levels(piece[None], sample_rate, frame_rate, loudness_n_fft).items():
            parts[name].append(np.asarray(values)[0, kept])
        if crepe is not None:
            if sample_rate != MODEL_SAMPLE_RATE:
                piece = soxr.resample(piece, sample_rate, MODEL_SAMPLE_RATE, "HQ")
            salience = crepe_salience(crepe, piece[None], frame_rate, "center")[0, kept]
            f0_hz, confidence = decoder.push(salience)
            parts["f0_hz"].append(f0_hz)
            parts["f0_confidence"].append(confidence)
        if progress is not None:
            progress(count)
    if crepe is not None:
        f0_hz, confidence = decoder.finish()
        parts["f0_hz"].append(f0_hz)
        parts["f0_confidence"].append(confidence)
    return {
        name: np.concatenate(values).astype(np.float32) for name, values in parts.items() if values
    }
