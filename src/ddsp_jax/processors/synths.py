"""Synthesizers: harmonic oscillators and filtered noise."""

import dataclasses

import jax
import jax.numpy as jnp

from ddsp_jax.core.defaults import SAMPLE_RATE
from ddsp_jax.core.filters import frequency_filter
from ddsp_jax.core.oscillators import harmonic_synthesis
from ddsp_jax.core.resample import RESAMPLE_METHODS, ResampleMethod
from ddsp_jax.core.validation import check_positive, check_positive_int, check_rank
from ddsp_jax.processors.base import SCALE_FNS, Controls, Processor, ScaleFn, check_scale_fn


@dataclasses.dataclass(frozen=True)
class HarmonicConfig:
    """Harmonic synthesizer settings.

    Attributes:
        n_samples: Output length (samples).
        sample_rate: Samples per second (Hz).
        normalize_below_nyquist: Zero harmonics at or above Nyquist and renormalise the
            distribution over the rest.
        amp_resample_method: How amplitudes are upsampled from frames to samples.
        scale_fn: Applied to raw ``amplitudes`` and ``harmonic_distribution``.
    """

    n_samples: int = 64000
    sample_rate: int = SAMPLE_RATE
    normalize_below_nyquist: bool = True
    amp_resample_method: ResampleMethod = "window"
    scale_fn: ScaleFn = "exp_sigmoid"

    def __post_init__(self) -> None:
        check_positive_int("n_samples", self.n_samples)
        check_positive("sample_rate", self.sample_rate)
        check_scale_fn(self.scale_fn)
        if self.amp_resample_method not in RESAMPLE_METHODS:
            raise ValueError(
                f"amp_resample_method must be one of {RESAMPLE_METHODS}, "
                f"got {self.amp_resample_method!r}."
            )


class Harmonic(Processor):
    """Additive synthesizer: harmonics of ``f0_hz`` with a time-varying spectral shape.

    Controls:
        amplitudes: Raw overall amplitude ``[batch, n_frames, 1]``.
        harmonic_distribution: Raw relative harmonic amplitudes
            ``[batch, n_frames, n_harmonics]``.
        f0_hz: Fundamental frequency ``[batch, n_frames, 1]`` (Hz), not scaled.
    """

    control_names = ("amplitudes", "harmonic_distribution", "f0_hz")

    def __init__(self, config: HarmonicConfig) -> None:
        self.config = config

    def __call__(self, controls: Controls, *, key: jax.Array | None = None) -> jax.Array:
        """Audio ``[batch, n_samples]``; ``key`` is unused (the synth is deterministic)."""
        amplitudes, harmonic_distribution, f0_hz = self.read_controls(controls)
        scale = SCALE_FNS[self.config.scale_fn]
        return harmonic_synthesis(
            frequencies=f0_hz,
            amplitudes=scale(amplitudes),
            harmonic_distribution=scale(harmonic_distribution),
            n_samples=self.config.n_samples,
            sample_rate=self.config.sample_rate,
            amp_resample_method=self.config.amp_resample_method,
            normalize_below_nyquist=self.config.normalize_below_nyquist,
        )


@dataclasses.dataclass(frozen=True)
class FilteredNoiseConfig:
    """Filtered-noise synthesizer settings.

    Attributes:
        n_samples: Output length (samples).
        window_size: Filter taps (limited to ``2 * (n_bands - 1)``).
        initial_bias: Added to raw magnitudes before scaling, so that zero network outputs
            start as quiet noise (magenta's −5).
        scale_fn: Applied to the biased magnitudes.
    """

    n_samples: int = 64000
    window_size: int = 257
    initial_bias: float = -5.0
    scale_fn: ScaleFn = "exp_sigmoid"

    def __post_init__(self) -> None:
        check_positive_int("n_samples", self.n_samples)
        check_positive_int("window_size", self.window_size)
        check_scale_fn(self.scale_fn)


class FilteredNoise(Processor):
    """Uniform white noise in [−1, 1] through a time-varying linear-phase FIR filter.

    Controls:
        noise_magnitudes: Raw filter gains ``[batch, n_frames, n_bands]``, bands evenly
            spaced from 0 Hz to Nyquist.

    A new noise signal is drawn from ``key`` on every call.
    """

    control_names = ("noise_magnitudes",)

    def __init__(self, config: FilteredNoiseConfig) -> None:
        self.config = config

    def __call__(self, controls: Controls, *, key: jax.Array | None = None) -> jax.Array:
        """Audio ``[batch, n_samples]`` drawn with ``key``."""
        (magnitudes,) = self.read_controls(controls)
        check_rank("noise_magnitudes", magnitudes, (3,), "[batch, n_frames, n_bands]")
        if key is None:
            raise ValueError("FilteredNoise draws random noise: pass a PRNG key (key=...).")
        magnitudes = SCALE_FNS[self.config.scale_fn](magnitudes + self.config.initial_bias)
        noise = jax.random.uniform(
            key, (magnitudes.shape[0], self.config.n_samples), jnp.float32, -1.0, 1.0
        )
        return frequency_filter(noise, magnitudes, window_size=self.config.window_size)
