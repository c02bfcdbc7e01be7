"""Figures people look at: data, training curve, resynthesis, training summaries, learned
parameters."""

import warnings
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

from ddsp_jax.files import save_figure


def _specgram(ax: Any, audio: np.ndarray, sample_rate: int) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # log10(0) in silent frames.
        ax.specgram(
            audio, Fs=sample_rate, NFFT=512, noverlap=384, cmap="magma", vmin=-120, vmax=-20
        )
    ax.set_xlabel("time (s)")
    ax.set_ylabel("frequency (Hz)")


def save(fig: Any, path: Path) -> Path:
    """Save a figure to ``path`` (atomically) and close it; returns ``path``."""
    fig.tight_layout()
    save_figure(fig, path, dpi=100, facecolor="white")
    plt.close(fig)
    return path


def dataset_samples(
    audio: np.ndarray, f0_hz: np.ndarray, sample_rate: int, path: Path, n: int = 3
) -> Path:
    """Waveforms (first 50 ms) and spectrograms of the first ``n`` examples."""
    n = min(n, len(audio))
    fig, axes = plt.subplots(2, n, figsize=(5 * n, 6), squeeze=False)
    show = int(0.05 * sample_rate)
    for i in range(n):
        time = np.arange(show) / sample_rate
        axes[0, i].plot(time, audio[i, :show], lw=0.8)
        axes[0, i].set_title(f"example {i}: f0 ≈ {np.median(f0_hz[i]):.0f} Hz")
        axes[0, i].set_xlabel("time (s)")
        _specgram(axes[1, i], audio[i], sample_rate)
    fig.suptitle("Training data")
    return save(fig, path)


def training_curve(
    metrics: list[dict[str, Any]], path: Path, held_out: dict[int, float] | None = None
) -> Path:
    """Training loss per step (and its running mean), with held-out losses as points."""
    steps = np.array([m["step"] for m in metrics if not m.get("nonfinite")])
    loss = np.array([m["loss"] for m in metrics if not m.get("nonfinite")])
    fig, ax = plt.subplots(figsize=(8, 4.5))
    ax.plot(steps, loss, lw=0.6, alpha=0.5, label="training loss (per step)")
    if len(loss) >= 10:
        window = max(len(loss) // 20, 5)
        smooth = np.convolve(loss, np.ones(window) / window, mode="valid")
        ax.plot(steps[window - 1 :], smooth, lw=2, label=f"running mean ({window} steps)")
    if held_out:
        ax.plot(list(held_out), list(held_out.values()), "o", ms=8, label="held-out loss")
    ax.set_xlabel("step")
    ax.set_ylabel("multi-scale spectral loss")
    ax.grid(alpha=0.3)
    ax.legend()
    return save(fig, path)


def resynthesis(
    targets: np.ndarray, resynthesised: np.ndarray, sample_rate: int, path: Path
) -> Path:
    """Target and resynthesis of each example: waveform overlay and both spectrograms."""
    n = len(targets)
    fig, axes = plt.subplots(n, 3, figsize=(15, 3.2 * n), squeeze=False)
    show = int(0.03 * sample_rate)
    for i in range(n):
        time = np.arange(show) / sample_rate
        axes[i, 0].plot(time, targets[i, :show], lw=1, label="target")
        axes[i, 0].plot(time, resynthesised[i, :show], lw=1, alpha=0.8, label="resynthesis")
        axes[i, 0].legend(loc="upper right")
        axes[i, 0].set_xlabel("time (s)")
        _specgram(axes[i, 1], targets[i], sample_rate)
        axes[i, 1].set_title("target")
        _specgram(axes[i, 2], resynthesised[i], sample_rate)
        axes[i, 2].set_title("resynthesis")
    return save(fig, path)


def resynthesis_summary(
    targets: np.ndarray,
    resynthesised: np.ndarray,
    original: dict[str, np.ndarray],
    found: dict[str, np.ndarray],
    sample_rate: int,
    frame_rate: int,
) -> Any:
    """A training summary's figure (not saved): per example, the target's and the
    resynthesis's spectrograms, their loudness curves (dB) and, when both have ``f0_hz``,
    their f0 curves (Hz).

    Args:
        targets, resynthesised: Audio ``[n, n_samples]``.
        original, found: Features ``[n, n_frames]`` of each (``loudness_db``, ``f0_hz``).
        sample_rate: Audio samples per second (Hz).
        frame_rate: Feature frames per second (Hz).
    """
    n = len(targets)
    with_f0 = "f0_hz" in original and "f0_hz" in found
    columns = 4 if with_f0 else 3
    fig, axes = plt.subplots(n, columns, figsize=(4.5 * columns, 3.2 * n), squeeze=False)
    for i in range(n):
        _specgram(axes[i, 0], targets[i], sample_rate)
        axes[i, 0].set_title(f"example {i}: target")
        _specgram(axes[i, 1], resynthesised[i], sample_rate)
        axes[i, 1].set_title("resynthesis")
        curves = [("loudness_db", "loudness (dB)")] + ([("f0_hz", "f0 (Hz)")] if with_f0 else [])
        for ax, (name, label) in zip(axes[i, 2:], curves, strict=True):
            for features, what in ((original, "target"), (found, "resynthesis")):
                values = features[name][i]
                ax.plot(np.arange(len(values)) / frame_rate, values, lw=1, label=what)
            ax.set_xlabel("time (s)")
            ax.set_ylabel(label)
            ax.grid(alpha=0.3)
            ax.legend(loc="lower right")
    fig.tight_layout()
    return fig


def learned_parameters(
    impulse_response: np.ndarray | None,
    harmonic_distribution: np.ndarray,
    f0_hz: float,
    noise_magnitudes: np.ndarray,
    sample_rate: int,
    path: Path,
) -> Path:
    """Reverb IR, the harmonic distribution at one pitch, and the noise filter response."""
    fig, axes = plt.subplots(1, 3, figsize=(16, 4.2))
    if impulse_response is None:
        axes[0].text(0.5, 0.5, "no reverb", ha="center", va="center")
    else:
        time = np.arange(len(impulse_response)) / sample_rate
        axes[0].plot(time, impulse_response, lw=0.5)
        axes[0].set_xlabel("time (s)")
    axes[0].set_title("reverb impulse response")
    harmonics = np.arange(1, len(harmonic_distribution) + 1)
    axes[1].bar(harmonics, harmonic_distribution)
    axes[1].set_xlabel("harmonic")
    axes[1].set_title(f"harmonic distribution at f0 = {f0_hz:.0f} Hz")
    bands = np.linspace(0.0, sample_rate / 2.0, len(noise_magnitudes))
    axes[2].plot(bands, 20 * np.log10(np.maximum(noise_magnitudes, 1e-9)))
    axes[2].set_xlabel("frequency (Hz)")
    axes[2].set_ylabel("gain (dB)")
    axes[2].set_title("noise filter response (time average)")
    for ax in axes:
        ax.grid(alpha=0.3)
    return save(fig, path)


def transfer(
    audio_in: np.ndarray,
    audio_out: np.ndarray,
    sample_rate: int,
    features: dict[str, np.ndarray],
    adjusted: dict[str, np.ndarray],
    frame_rate: int,
    path: Path,
) -> Path:
    """Timbre transfer: input and output spectrograms, and the f0 (MIDI, on confidently
    pitched frames) and loudness curves before and after adjustment."""
    fig, axes = plt.subplots(2, 2, figsize=(14, 7.5))
    _specgram(axes[0, 0], audio_in, sample_rate)
    axes[0, 0].set_title("input")
    _specgram(axes[0, 1], audio_out, sample_rate)
    axes[0, 1].set_title("output")
    time = np.arange(len(features["f0_hz"])) / frame_rate
    pitched = features["f0_confidence"] >= 0.85
    for name, curves in (("before", features), ("after", adjusted)):
        f0_midi = 69.0 + 12.0 * np.log2(np.maximum(curves["f0_hz"], 1e-3) / 440.0)
        axes[1, 0].plot(time, np.where(pitched, f0_midi, np.nan), lw=1, label=name)
        axes[1, 1].plot(time, curves["loudness_db"], lw=1, label=name)
    axes[1, 0].set_ylabel("f0 (MIDI, confident frames)")
    axes[1, 1].set_ylabel("loudness (dB)")
    for ax in axes[1]:
        ax.set_xlabel("time (s)")
        ax.grid(alpha=0.3)
        ax.legend()
    return save(fig, path)
