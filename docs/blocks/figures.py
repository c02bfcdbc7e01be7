"""The figures of the block pages (docs/blocks/*.md): each block driven by a simple control
curve, its controls above and its output's spectrogram below.

Run from the repository root: ``python docs/blocks/figures.py [--out FOLDER]`` (default:
this script's folder).
"""

import argparse
from collections.abc import Callable
from pathlib import Path

import jax
import jax.numpy as jnp
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
from flax import nnx

from ddsp_jax import core
from ddsp_jax.plots import save
from ddsp_jax.processors import (
    ExpDecayReverb,
    ExpDecayReverbConfig,
    FilteredNoise,
    FilteredNoiseConfig,
    FilteredNoiseReverb,
    FilteredNoiseReverbConfig,
    FIRFilter,
    FIRFilterConfig,
    Harmonic,
    HarmonicConfig,
    ModDelay,
    ModDelayConfig,
    Noise,
    NoiseConfig,
    SincFilter,
    SincFilterConfig,
    Sinusoidal,
    SinusoidalConfig,
    Wavetable,
    WavetableConfig,
)

SAMPLE_RATE, SECONDS, N_FRAMES = 16000, 2.0, 200
N_SAMPLES = int(SAMPLE_RATE * SECONDS)
TIME = np.linspace(0.0, SECONDS, N_FRAMES, endpoint=False)
KEY = jax.random.key(0)


def frames(values: np.ndarray) -> jnp.ndarray:
    """``[n_frames]`` or ``[n_frames, k]`` values as one example's controls ``[1, n_frames,
    k]``."""
    values = np.asarray(values, np.float32)
    return jnp.asarray(values.reshape(1, N_FRAMES, -1))


def envelope() -> np.ndarray:
    """A note's amplitude: a 0.1 s attack, then a slow decay."""
    return np.minimum(TIME / 0.1, 1.0) * np.exp(-0.8 * TIME)


def glide() -> np.ndarray:
    """f0 rising an octave, 220 to 440 Hz, with vibrato."""
    return 220.0 * 2.0 ** (TIME / SECONDS) * (1.0 + 0.01 * np.sin(2 * np.pi * 5.0 * TIME))


def figure(
    path: Path,
    title: str,
    curves: dict[str, np.ndarray],
    audio: jnp.ndarray,
    log: bool = False,
    top_hz: float = SAMPLE_RATE / 2,
) -> None:
    """Save the controls (one line each) over the output's spectrogram (to ``top_hz``)."""
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(5.6, 4.0), height_ratios=(1, 2))
    for label, values in curves.items():
        top.plot(TIME, values, lw=1.2, label=label)
    if log:
        top.set_yscale("log")
    top.set_title(title, fontsize=9)
    top.set_xlim(0.0, SECONDS)
    top.grid(alpha=0.3)
    top.legend(loc="upper right", fontsize=8)
    bottom.specgram(
        np.asarray(audio)[0], Fs=SAMPLE_RATE, NFFT=512, noverlap=384, cmap="magma", vmin=-80
    )
    bottom.set_ylim(0.0, top_hz)
    bottom.set_xlabel("time (s)")
    bottom.set_ylabel("frequency (Hz)")
    save(fig, path)


def harmonic(out: Path) -> None:
    f0, amplitude = glide(), 0.5 * envelope()
    brightness = np.linspace(1.0, 0.2, N_FRAMES)[:, None] ** np.arange(1, 21)  # Darker later.
    synth = Harmonic(HarmonicConfig(n_samples=N_SAMPLES, scale_fn="none"))
    raw = {
        "amplitudes": frames(amplitude),
        "harmonic_distribution": frames(brightness),
        "f0_hz": frames(f0),
    }
    figure(
        out / "harmonic.png",
        "Harmonic: 20 harmonics of a rising f0, darkening",
        {"f0 (Hz) / 1000": f0 / 1000, "amplitude": amplitude},
        synth(raw),
    )


def sinusoidal(out: Path) -> None:
    frequencies = np.stack([300 + 200 * TIME, 2000 - 600 * TIME, 3000 + 500 * np.sin(3 * TIME)], 1)
    synth = Sinusoidal(
        SinusoidalConfig(n_samples=N_SAMPLES, amp_scale_fn="none", freq_scale_fn="none")
    )
    audio = synth(
        {"amplitudes": frames(np.full((N_FRAMES, 3), 0.2)), "frequencies": frames(frequencies)}
    )
    figure(
        out / "sinusoidal.png",
        "Sinusoidal: three free sinusoids",
        {f"f{i + 1} (kHz)": frequencies[:, i] / 1000 for i in range(3)},
        audio,
    )


def wavetable(out: Path) -> None:
    morph = np.linspace(0.0, 1.0, N_FRAMES)[:, None]
    sine = np.eye(16)[0]
    saw = 1.0 / np.arange(1, 17)
    tables = core.harmonic_distribution_to_wavetable(frames((1 - morph) * sine + morph * saw), 2048)
    synth = Wavetable(WavetableConfig(n_samples=N_SAMPLES, scale_fn="none"))
    raw = {
        "amplitudes": frames(0.3 * envelope()),
        "wavetables": tables,
        "f0_hz": frames(np.full(N_FRAMES, 330.0)),
    }
    figure(
        out / "wavetable.png",
        "Wavetable: a sine table morphing into a sawtooth's, 330 Hz",
        {"sawtooth share": morph[:, 0], "amplitude": 0.3 * envelope()},
        synth(raw),
    )


def filtered_noise(out: Path) -> None:
    centre = np.linspace(5, 50, N_FRAMES)  # A band sweeping up, in bands of 125 Hz.
    bands = np.exp(-0.5 * ((np.arange(65)[None] - centre[:, None]) / 3.0) ** 2)
    synth = FilteredNoise(
        FilteredNoiseConfig(n_samples=N_SAMPLES, scale_fn="none", initial_bias=0.0)
    )
    figure(
        out / "filtered_noise.png",
        "FilteredNoise: a band of noise sweeping up",
        {"band centre (kHz)": centre * 0.125},
        synth({"noise_magnitudes": frames(bands)}, key=KEY),
    )


def noise(out: Path) -> None:
    synth = Noise(NoiseConfig(n_samples=N_SAMPLES, scale_fn="none"))
    figure(
        out / "noise.png",
        "Noise: white noise under an envelope",
        {"amplitude": 0.3 * envelope()},
        synth({"amplitudes": frames(0.3 * envelope())}, key=KEY),
    )


def white(seconds_scale: float = 0.3) -> jnp.ndarray:
    return seconds_scale * core.uniform_noise(KEY, 1, N_SAMPLES)


def fir_filter(out: Path) -> None:
    notch = np.linspace(10, 55, N_FRAMES)
    magnitudes = 1.0 - 0.999 * np.exp(-0.5 * ((np.arange(65)[None] - notch[:, None]) / 2.0) ** 2)
    fir = FIRFilter(FIRFilterConfig(window_size=256, scale_fn="none"))
    figure(
        out / "fir_filter.png",
        "FIRFilter: white noise through a sweeping notch",
        {"notch (kHz)": notch * 0.125},
        fir({"audio": white(), "magnitudes": frames(magnitudes)}),
    )


def sinc_filter(out: Path) -> None:
    cutoff = 0.05 + 0.9 * (0.5 - 0.5 * np.cos(2 * np.pi * TIME / SECONDS))
    low_pass = SincFilter(SincFilterConfig(window_size=512, scale_fn="none"))
    figure(
        out / "sinc_filter.png",
        "SincFilter: low pass, the cutoff rising and falling",
        {"cutoff (kHz)": cutoff * 8.0},
        low_pass({"audio": white(), "cutoff": frames(cutoff)}),
    )


def mod_delay(out: Path) -> None:
    t = np.arange(N_SAMPLES) / SAMPLE_RATE
    tone = jnp.asarray((0.3 * np.sin(2 * np.pi * 1000 * t))[None], jnp.float32)
    phase = 0.5 + 0.5 * np.sin(2 * np.pi * 2.0 * TIME)
    config = ModDelayConfig(
        center_ms=2.0, depth_ms=18.0, gain_scale_fn="none", phase_scale_fn="none", add_dry=False
    )
    audio = ModDelay(config)(
        {"audio": tone, "gain": frames(np.ones(N_FRAMES)), "phase": frames(phase)}
    )
    figure(
        out / "mod_delay.png",
        "ModDelay: a 1 kHz tone through a delay swinging 2-20 ms (vibrato)",
        {"delay (ms) / 10": (2.0 + 18.0 * phase) / 10},
        audio,
        top_hz=3000.0,
    )


def reverbs(out: Path) -> None:
    click = jnp.zeros((1, N_SAMPLES)).at[0, 1600].set(1.0)
    exp_decay = ExpDecayReverb(
        ExpDecayReverbConfig(reverb_length=16000, add_dry=False), rngs=nnx.Rngs(0)
    )
    figure(
        out / "exp_decay_reverb.png",
        "ExpDecayReverb: a click in a room of decaying noise",
        {"IR envelope (first 1 s)": np.exp(-(2 + np.exp(4.0)) * np.clip(TIME, 0, 1))},
        exp_decay({"audio": click}),
        log=True,
    )
    config = FilteredNoiseReverbConfig(
        reverb_length=16000,
        n_frames=N_FRAMES // 2,
        scale_fn="none",
        initial_bias=0.0,
        add_dry=False,
    )
    filtered = FilteredNoiseReverb(config, rngs=nnx.Rngs(0))
    decay = np.exp(
        -np.linspace(0, 1, N_FRAMES // 2)[:, None] * (2 + 6 * np.linspace(0, 1, 16)[None])
    )
    audio = filtered({"audio": click, "magnitudes": jnp.asarray(decay[None], jnp.float32)})
    figure(
        out / "filtered_noise_reverb.png",
        "FilteredNoiseReverb: high bands die away faster",
        {
            "low band's gain": np.repeat(decay[:, 0], 2),
            "high band's gain": np.repeat(decay[:, -1], 2),
        },
        audio,
        log=True,
    )


FIGURES: tuple[Callable[[Path], None], ...] = (
    harmonic,
    sinusoidal,
    wavetable,
    filtered_noise,
    noise,
    fir_filter,
    sinc_filter,
    mod_delay,
    reverbs,
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path(__file__).parent)
    out = parser.parse_args().out
    out.mkdir(parents=True, exist_ok=True)
    for make in FIGURES:
        make(out)
        print(f"{make.__name__}: done")


if __name__ == "__main__":
    main()
