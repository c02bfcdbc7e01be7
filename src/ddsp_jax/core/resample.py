"""Frame-rate to sample-rate interpolation with magenta/ddsp's alignment.

Frame ``j`` sits at sample ``j * n_samples / n_frames`` and the last frame is held to the
end (magenta's ``resample(..., add_endpoint=True)``), so ``n_samples = n_frames * hop``.
Every method is a weighted sum of neighbouring frames with weights fixed by the shapes; they
are computed once in float64 with NumPy at trace time.
"""

from typing import Literal

import jax
import jax.numpy as jnp
import numpy as np

from ddsp_jax.core.validation import check_positive_int, check_rank

ResampleMethod = Literal["nearest", "linear", "cubic", "window"]
RESAMPLE_METHODS = ("nearest", "linear", "cubic", "window")
CUBIC_A = -0.75  # TensorFlow's legacy bicubic kernel, which magenta's resample uses.


def frame_positions(n_frames: int, n_samples: int) -> tuple[np.ndarray, np.ndarray]:
    """The frame each sample falls in and its fractional position there.

    Args:
        n_frames: Number of input frames.
        n_samples: Number of output samples.

    Returns:
        ``(frame_index, fraction)``: int64 ``[n_samples]`` in ``[0, n_frames)`` and float64
        ``[n_samples]`` in ``[0, 1)``.
    """
    position = np.arange(n_samples, dtype=np.float64) * (n_frames / n_samples)
    frame_index = np.floor(position).astype(np.int64)
    return frame_index, position - frame_index


def _cubic_weights(t: np.ndarray) -> list[np.ndarray]:
    """Keys cubic-convolution weights for taps at offsets -1, 0, 1, 2."""
    a = CUBIC_A

    def near(d: np.ndarray) -> np.ndarray:  # |d| <= 1
        return (a + 2.0) * d**3 - (a + 3.0) * d**2 + 1.0

    def far(d: np.ndarray) -> np.ndarray:  # 1 < |d| < 2
        return a * d**3 - 5.0 * a * d**2 + 8.0 * a * d - 4.0 * a

    return [far(1.0 + t), near(t), near(1.0 - t), far(2.0 - t)]


def interpolation_taps(
    n_frames: int, n_samples: int, method: ResampleMethod
) -> tuple[tuple[int, ...], np.ndarray, np.ndarray]:
    """Neighbour offsets and weights that map frames to samples.

    Sample ``i`` equals ``sum_k weights[k, i] * x[clip(frame_index[i] + offsets[k])]``.

    Args:
        n_frames: Number of input frames.
        n_samples: Number of output samples.
        method: ``nearest`` (hold), ``linear``, ``cubic`` (Keys, a = -0.75) or ``window``
            (Hann overlap-add of half-overlapping windows, i.e. raised-cosine crossfades).

    Returns:
        ``(offsets, frame_index [n_samples], weights [n_taps, n_samples])`` in float64.
    """
    frame_index, t = frame_positions(n_frames, n_samples)
    if method == "nearest":
        return (0,), frame_index, np.ones((1, n_samples))
    if method == "linear":
        return (0, 1), frame_index, np.stack([1.0 - t, t])
    if method == "window":
        rise = 0.5 - 0.5 * np.cos(np.pi * t)
        return (0, 1), frame_index, np.stack([1.0 - rise, rise])
    if method == "cubic":
        return (-1, 0, 1, 2), frame_index, np.stack(_cubic_weights(t))
    raise ValueError(f"method must be one of {RESAMPLE_METHODS}, got {method!r}.")


def resample(x: jax.Array, n_samples: int, method: ResampleMethod = "linear") -> jax.Array:
    """Interpolate frame-rate signals to ``n_samples`` samples.

    Args:
        x: Frame-wise values, shape ``[n_frames]``, ``[batch, n_frames]`` or
            ``[batch, n_frames, channels]``.
        n_samples: Output length (samples).
        method: One of ``nearest``, ``linear``, ``cubic``, ``window``. ``window`` is magenta's
            ``upsample_with_windows`` (smooth amplitude envelopes) and only upsamples.

    Returns:
        The interpolated signal, shape ``[n_samples]``, ``[batch, n_samples]`` or
        ``[batch, n_samples, channels]`` to match ``x``.

    Frame ``j`` sits at sample ``j * n_samples / n_frames`` (magenta's alignment), and the
    last frame's value holds after it:

    >>> resample(jnp.array([0.0, 1.0]), 5)
    Array([0. , 0.4, 0.8, 1. , 1. ], dtype=float32)
    """
    check_rank("x", x, (1, 2, 3), "[n_frames], [batch, n_frames] or [batch, n_frames, channels]")
    check_positive_int("n_samples", n_samples)
    x = jnp.asarray(x, jnp.float32)
    ndim = x.ndim
    x3 = {1: lambda: x[None, :, None], 2: lambda: x[:, :, None], 3: lambda: x}[ndim]()
    n_frames = x3.shape[1]
    if method == "window" and n_frames > n_samples:
        raise ValueError(
            f"method='window' only upsamples: {n_frames} frames > n_samples={n_samples}."
        )
    offsets, frame_index, weights = interpolation_taps(n_frames, n_samples, method)
    out = _apply_taps(x3, n_samples, offsets, frame_index, weights)
    if ndim == 1:
        return out[0, :, 0]
    if ndim == 2:
        return out[:, :, 0]
    return out


def _apply_taps(
    x: jax.Array,
    n_samples: int,
    offsets: tuple[int, ...],
    frame_index: np.ndarray,
    weights: np.ndarray,
) -> jax.Array:
    """Weighted sum of shifted frames, ``x``: ``[batch, n_frames, channels]``."""
    n_frames = x.shape[1]
    if n_samples % n_frames == 0:
        # Every frame spans the same hop, so the weights repeat per frame: broadcast instead
        # of gathering n_samples rows.
        hop = n_samples // n_frames
        out = 0.0
        frames = np.arange(n_frames)
        for offset, weight in zip(offsets, weights, strict=True):
            shifted = x[:, np.clip(frames + offset, 0, n_frames - 1)]
            tap = jnp.asarray(weight[:hop], jnp.float32)
            out = out + shifted[:, :, None, :] * tap[None, None, :, None]
        return out.reshape(x.shape[0], n_samples, x.shape[2])
    out = 0.0
    for offset, weight in zip(offsets, weights, strict=True):
        index = np.clip(frame_index + offset, 0, n_frames - 1)
        out = out + x[:, index] * jnp.asarray(weight, jnp.float32)[None, :, None]
    return out
