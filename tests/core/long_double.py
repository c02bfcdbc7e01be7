"""Extended-precision references for the oscillators' tests."""

import numpy as np


def long_double_phase(
    f0_frames: np.ndarray, n_samples: int, sample_rate: int
) -> tuple[np.ndarray, np.ndarray]:
    """(phase in cycles, frequency in Hz) per sample: the inclusive cumulative sum of linearly
    interpolated frame frequencies (frame j at sample j * n_samples / n_frames, last frame
    held), accumulated in 80-bit extended precision from the float32 frame values."""
    n_frames = len(f0_frames)
    f = f0_frames.astype(np.longdouble)
    f_next = np.concatenate([f[1:], f[-1:]])
    numerator = np.arange(n_samples, dtype=np.int64) * n_frames
    j = numerator // n_samples
    t = (numerator % n_samples).astype(np.longdouble) / n_samples
    frequency = f[j] * (1 - t) + f_next[j] * t
    return np.cumsum(frequency / np.longdouble(sample_rate)), frequency


def long_double_reference(f0_frames: np.ndarray, n_samples: int, sample_rate: int) -> np.ndarray:
    """sin(2π phase) of ``long_double_phase``."""
    phase, _ = long_double_phase(f0_frames, n_samples, sample_rate)
    return np.sin(2.0 * np.pi * (phase - np.floor(phase)).astype(np.float64))
