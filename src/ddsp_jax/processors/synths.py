"""Synthesizers: harmonic oscillators and filtered noise."""

import dataclasses

import jax
import jax.numpy as jnp

from ddsp_jax.core.filters import frequency_filter
from ddsp_jax.core.noise import uniform_noise
from ddsp_jax.core.oscillators import harmonic_synthesis, normalize_harmonics
from ddsp_jax.core.resample import RESAMPLE_METHODS, ResampleMethod
from ddsp_jax.core.validation import check_positive, check_positive_int, check_rank
from ddsp_jax.defaults import SAMPLE_RATE
from ddsp_jax.processors.base import SCALE_FNS, Processor, ScaleFn, check_scale_fn


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

    Raw controls:
        amplitudes: Overall amplitude ``[batch, n_frames, 1]``, before ``scale_fn``.
        harmonic_distribution: Relative harmonic amplitudes ``[batch, n_frames,
            n_harmonics]``, before ``scale_fn``.
        f0_hz: Fundamental frequency ``[batch, n_frames, 1]`` (Hz), not scaled.

    >>> synth = Harmonic(HarmonicConfig(n_samples=640))
    >>> raw = {"amplitudes": jnp.zeros((1, 10, 1)), "f0_hz": jnp.full((1, 10, 1), 440.0),
    ...        "harmonic_distribution": jnp.zeros((1, 10, 3))}
    >>> controls = synth.get_controls(*synth.read_controls(raw))
    >>> controls["harmonic_distribution"][0, 0]  # exp_sigmoid(0) each, normalised.
    Array([0.33333334, 0.33333334, 0.33333334], dtype=float32)
    >>> synth.get_signal(**controls).shape
    (1, 640)
    """

    control_names = ("amplitudes", "harmonic_distribution", "f0_hz")

    def __init__(self, config: HarmonicConfig) -> None:
        self.config = config

    def get_controls(
        self, amplitudes: jax.Array, harmonic_distribution: jax.Array, f0_hz: jax.Array
    ) -> dict[str, jax.Array]:
        """Physical controls: ``amplitudes`` and ``harmonic_distribution`` through
        ``scale_fn``, the distribution normalised over the harmonics below Nyquist when
        ``normalize_below_nyquist``; ``f0_hz`` as ``[batch, n_frames, 1]``."""
        scale = SCALE_FNS[self.config.scale_fn]
        f0_hz = jnp.asarray(f0_hz, jnp.float32)
        if f0_hz.ndim == 2:
            f0_hz = f0_hz[..., None]
        distribution = scale(jnp.asarray(harmonic_distribution, jnp.float32))
        if self.config.normalize_below_nyquist:
            check_rank("f0_hz", f0_hz, (3,), "[batch, n_frames, 1]")
            check_rank(
                "harmonic_distribution", distribution, (3,), "[batch, n_frames, n_harmonics]"
            )
            distribution = normalize_harmonics(distribution, f0_hz, self.config.sample_rate)
        return {
            "amplitudes": scale(jnp.asarray(amplitudes, jnp.float32)),
            "harmonic_distribution": distribution,
            "f0_hz": f0_hz,
        }

    def get_signal(
        self,
        amplitudes: jax.Array,
        harmonic_distribution: jax.Array,
        f0_hz: jax.Array,
        *,
        key: jax.Array | None = None,
    ) -> jax.Array:
        """Audio ``[batch, n_samples]`` (``harmonic_synthesis``); ``key`` is unused (the
        synth is deterministic). Harmonics at or above Nyquist are silent either way."""
        return harmonic_synthesis(
            frequencies=f0_hz,
            amplitudes=amplitudes,
            harmonic_distribution=harmonic_distribution,
            n_samples=self.config.n_samples,
            sample_rate=self.config.sample_rate,
            amp_resample_method=self.config.amp_resample_method,
            normalize_below_nyquist=False,
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

    Raw controls:
        noise_magnitudes: Filter gains ``[batch, n_frames, n_bands]`` before ``initial_bias``
            and ``scale_fn``, bands evenly spaced from 0 Hz to Nyquist.

    The noise is ``core.noise.uniform_noise`` of ``key``: sample ``n`` of example ``b``
    depends only on the key, ``b`` and ``n`` (a stream can draw it block by block).

    >>> synth = FilteredNoise(FilteredNoiseConfig(n_samples=640))
    >>> controls = synth.get_controls(jnp.zeros((1, 10, 65)))  # exp_sigmoid(0 − 5) each.
    >>> float(controls["noise_magnitudes"][0, 0, 0])  # doctest: +ELLIPSIS
    1.97...e-05
    >>> synth.get_signal(**controls, key=jax.random.key(0)).shape
    (1, 640)
    """

    control_names = ("noise_magnitudes",)

    def __init__(self, config: FilteredNoiseConfig) -> None:
        self.config = config

    def get_controls(self, noise_magnitudes: jax.Array) -> dict[str, jax.Array]:
        """Physical filter magnitudes: ``scale_fn(noise_magnitudes + initial_bias)``."""
        check_rank("noise_magnitudes", noise_magnitudes, (3,), "[batch, n_frames, n_bands]")
        scale = SCALE_FNS[self.config.scale_fn]
        return {"noise_magnitudes": scale(noise_magnitudes + self.config.initial_bias)}

    def get_signal(self, noise_magnitudes: jax.Array, *, key: jax.Array | None = None) -> jax.Array:
        """Noise drawn with ``key``, filtered by ``noise_magnitudes`` ``[batch, n_frames,
        n_bands]``: audio ``[batch, n_samples]``."""
        if key is None:
            raise ValueError("FilteredNoise draws random noise: pass a PRNG key (key=...).")
        noise = uniform_noise(key, noise_magnitudes.shape[0], self.config.n_samples)
        return frequency_filter(noise, noise_magnitudes, window_size=self.config.window_size)
