"""Synthesizers: harmonic oscillators, sinusoids at any frequencies, wavetables, filtered
and plain noise, and audio passed through."""

import dataclasses
from typing import Literal

import jax
import jax.numpy as jnp

from ddsp_jax.core.filters import frequency_filter
from ddsp_jax.core.noise import uniform_noise
from ddsp_jax.core.oscillators import (
    harmonic_synthesis,
    normalize_harmonics,
    oscillator_bank,
    remove_above_nyquist,
)
from ddsp_jax.core.resample import RESAMPLE_METHODS, ResampleMethod, resample
from ddsp_jax.core.units import frequencies_sigmoid, frequencies_softmax
from ddsp_jax.core.validation import check_positive, check_positive_int, check_rank
from ddsp_jax.core.wavetable import wavetable_synthesis
from ddsp_jax.defaults import SAMPLE_RATE
from ddsp_jax.processors.base import SCALE_FNS, Processor, ScaleFn, check_scale_fn


def _check_resample_method(method: str) -> None:
    if method not in RESAMPLE_METHODS:
        raise ValueError(f"amp_resample_method must be one of {RESAMPLE_METHODS}, got {method!r}.")


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
        inharmonic: Read a ``harmonic_shifts`` control too (``core.harmonic_synthesis``'s:
            harmonic ``k`` at ``k · f0 · (1 + shift)``), rendered by every harmonic's own
            oscillator.
    """

    n_samples: int = 64000
    sample_rate: int = SAMPLE_RATE
    normalize_below_nyquist: bool = True
    amp_resample_method: ResampleMethod = "window"
    scale_fn: ScaleFn = "exp_sigmoid"
    inharmonic: bool = False

    def __post_init__(self) -> None:
        check_positive_int("n_samples", self.n_samples)
        check_positive("sample_rate", self.sample_rate)
        check_scale_fn(self.scale_fn)
        _check_resample_method(self.amp_resample_method)


class Harmonic(Processor):
    """Additive synthesizer: harmonics of ``f0_hz`` with a time-varying spectral shape.

    Raw controls:
        amplitudes: Overall amplitude ``[batch, n_frames, 1]``, before ``scale_fn``.
        harmonic_distribution: Relative harmonic amplitudes ``[batch, n_frames,
            n_harmonics]``, before ``scale_fn``.
        f0_hz: Fundamental frequency ``[batch, n_frames, 1]`` (Hz), not scaled.
        harmonic_shifts: With ``inharmonic``, ``[batch, n_frames, n_harmonics]``, not scaled.

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
        if config.inharmonic:
            self.control_names = (*Harmonic.control_names, "harmonic_shifts")

    def get_controls(
        self,
        amplitudes: jax.Array,
        harmonic_distribution: jax.Array,
        f0_hz: jax.Array,
        harmonic_shifts: jax.Array | None = None,
    ) -> dict[str, jax.Array]:
        """Physical controls: ``amplitudes`` and ``harmonic_distribution`` through
        ``scale_fn``, the distribution normalised over the harmonics below Nyquist when
        ``normalize_below_nyquist``; ``f0_hz`` as ``[batch, n_frames, 1]``;
        ``harmonic_shifts`` as given."""
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
        controls = {
            "amplitudes": scale(jnp.asarray(amplitudes, jnp.float32)),
            "harmonic_distribution": distribution,
            "f0_hz": f0_hz,
        }
        if harmonic_shifts is not None:
            controls["harmonic_shifts"] = jnp.asarray(harmonic_shifts, jnp.float32)
        return controls

    def get_signal(
        self,
        amplitudes: jax.Array,
        harmonic_distribution: jax.Array,
        f0_hz: jax.Array,
        harmonic_shifts: jax.Array | None = None,
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
            harmonic_shifts=harmonic_shifts,
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
    draws_noise = True

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


FrequencyScaleFn = Literal["sigmoid", "softmax", "none"]
FREQUENCY_SCALE_FNS = {"sigmoid": frequencies_sigmoid, "softmax": frequencies_softmax}


def _check_resample_method(method: str) -> None:
    if method not in RESAMPLE_METHODS:
        raise ValueError(f"amp_resample_method must be one of {RESAMPLE_METHODS}, got {method!r}.")


@dataclasses.dataclass(frozen=True)
class SinusoidalConfig:
    """Sinusoidal synthesizer settings (magenta's ``Sinusoidal``).

    Attributes:
        n_samples: Output length (samples).
        sample_rate: Samples per second (Hz).
        amp_resample_method: How amplitudes are upsampled from frames to samples.
        amp_scale_fn: Applied to raw ``amplitudes``.
        freq_scale_fn: Raw ``frequencies`` to Hz: ``sigmoid`` (``core.frequencies_sigmoid``,
            magenta's default), ``softmax`` (``core.frequencies_softmax``) or ``none`` (the
            raw values are Hz).
        depth: Sigmoids or softmax points per sinusoid (raw frequencies have ``n_sinusoids ·
            depth`` channels).
        hz_min: The lowest frequency of the scaling (Hz).
        hz_max: The highest frequency of the scaling (Hz).
    """

    n_samples: int = 64000
    sample_rate: int = SAMPLE_RATE
    amp_resample_method: ResampleMethod = "window"
    amp_scale_fn: ScaleFn = "exp_sigmoid"
    freq_scale_fn: FrequencyScaleFn = "sigmoid"
    depth: int = 1
    hz_min: float = 0.0
    hz_max: float = 8000.0

    def __post_init__(self) -> None:
        check_positive_int("n_samples", self.n_samples)
        check_positive("sample_rate", self.sample_rate)
        check_positive_int("depth", self.depth)
        check_scale_fn(self.amp_scale_fn)
        _check_resample_method(self.amp_resample_method)
        if self.freq_scale_fn not in ("sigmoid", "softmax", "none"):
            raise ValueError(
                f"freq_scale_fn must be 'sigmoid', 'softmax' or 'none', got {self.freq_scale_fn!r}."
            )
        if not 0.0 <= self.hz_min < self.hz_max:
            raise ValueError(
                f"need 0 <= hz_min < hz_max, got hz_min={self.hz_min}, hz_max={self.hz_max}."
            )


class Sinusoidal(Processor):
    """A bank of sinusoids at any frequencies (magenta's ``Sinusoidal``).

    Raw controls:
        amplitudes: ``[batch, n_frames, n_sinusoids]``, before ``amp_scale_fn``.
        frequencies: ``[batch, n_frames, n_sinusoids · depth]``, before ``freq_scale_fn``.

    Sinusoids at or above Nyquist are silent. Frequencies are upsampled linearly and the
    phase accumulated exactly (``core.oscillator_bank``).

    >>> synth = Sinusoidal(SinusoidalConfig(n_samples=640, freq_scale_fn="none"))
    >>> raw = {"amplitudes": jnp.zeros((1, 10, 2)), "frequencies": jnp.full((1, 10, 2), 440.0)}
    >>> synth(raw).shape
    (1, 640)
    """

    control_names = ("amplitudes", "frequencies")

    def __init__(self, config: SinusoidalConfig) -> None:
        self.config = config

    def get_controls(self, amplitudes: jax.Array, frequencies: jax.Array) -> dict[str, jax.Array]:
        """Physical controls: linear ``amplitudes`` (zero at or above Nyquist) and
        ``frequencies`` (Hz), each ``[batch, n_frames, n_sinusoids]``."""
        config = self.config
        check_rank("amplitudes", amplitudes, (3,), "[batch, n_frames, n_sinusoids]")
        check_rank("frequencies", frequencies, (3, 4), "[batch, n_frames, n_sinusoids · depth]")
        amplitudes = SCALE_FNS[config.amp_scale_fn](jnp.asarray(amplitudes, jnp.float32))
        frequencies = jnp.asarray(frequencies, jnp.float32)
        if config.freq_scale_fn != "none":
            scale = FREQUENCY_SCALE_FNS[config.freq_scale_fn]
            frequencies = scale(frequencies, config.depth, config.hz_min, config.hz_max)
        if frequencies.shape != amplitudes.shape:
            raise ValueError(
                f"frequencies give {frequencies.shape} sinusoids' frames, amplitudes "
                f"{amplitudes.shape}: one frequency (times depth) per amplitude."
            )
        amplitudes = remove_above_nyquist(frequencies, amplitudes, config.sample_rate)
        return {"amplitudes": amplitudes, "frequencies": frequencies}

    def get_signal(
        self, amplitudes: jax.Array, frequencies: jax.Array, *, key: jax.Array | None = None
    ) -> jax.Array:
        """Audio ``[batch, n_samples]``: amplitudes upsampled by ``amp_resample_method``,
        frequencies linearly, then ``oscillator_bank``; ``key`` is unused."""
        config = self.config
        amplitude_envelopes = resample(amplitudes, config.n_samples, config.amp_resample_method)
        frequency_envelopes = resample(frequencies, config.n_samples, "linear")
        return oscillator_bank(frequency_envelopes, amplitude_envelopes, config.sample_rate)


@dataclasses.dataclass(frozen=True)
class WavetableConfig:
    """Wavetable synthesizer settings (magenta's ``Wavetable``).

    Attributes:
        n_samples: Output length (samples).
        sample_rate: Samples per second (Hz).
        scale_fn: Applied to raw ``amplitudes`` and ``wavetables``.
    """

    n_samples: int = 64000
    sample_rate: int = SAMPLE_RATE
    scale_fn: ScaleFn = "exp_sigmoid"

    def __post_init__(self) -> None:
        check_positive_int("n_samples", self.n_samples)
        check_positive("sample_rate", self.sample_rate)
        check_scale_fn(self.scale_fn)


class Wavetable(Processor):
    """A monophonic oscillator reading time-varying one-cycle tables
    (``core.wavetable_synthesis``).

    Raw controls:
        amplitudes: ``[batch, n_frames, 1]``, before ``scale_fn``.
        wavetables: ``[batch, n_frames, n_table]``, before ``scale_fn`` (as magenta's, which
            makes a scaled table non-negative: give ``scale_fn="none"`` for signed tables).
        f0_hz: ``[batch, n_frames, 1]`` (Hz), not scaled.

    >>> synth = Wavetable(WavetableConfig(n_samples=640, scale_fn="none"))
    >>> sine = jnp.sin(2 * jnp.pi * jnp.arange(64) / 64)
    >>> raw = {"amplitudes": jnp.ones((1, 10, 1)), "wavetables": jnp.tile(sine, (1, 10, 1)),
    ...        "f0_hz": jnp.full((1, 10, 1), 250.0)}
    >>> synth(raw).shape
    (1, 640)
    """

    control_names = ("amplitudes", "wavetables", "f0_hz")

    def __init__(self, config: WavetableConfig) -> None:
        self.config = config

    def get_controls(
        self, amplitudes: jax.Array, wavetables: jax.Array, f0_hz: jax.Array
    ) -> dict[str, jax.Array]:
        """Physical controls: ``amplitudes`` and ``wavetables`` through ``scale_fn``;
        ``f0_hz`` as ``[batch, n_frames, 1]``."""
        scale = SCALE_FNS[self.config.scale_fn]
        f0_hz = jnp.asarray(f0_hz, jnp.float32)
        if f0_hz.ndim == 2:
            f0_hz = f0_hz[..., None]
        return {
            "amplitudes": scale(jnp.asarray(amplitudes, jnp.float32)),
            "wavetables": scale(jnp.asarray(wavetables, jnp.float32)),
            "f0_hz": f0_hz,
        }

    def get_signal(
        self,
        amplitudes: jax.Array,
        wavetables: jax.Array,
        f0_hz: jax.Array,
        *,
        key: jax.Array | None = None,
    ) -> jax.Array:
        """Audio ``[batch, n_samples]`` (``wavetable_synthesis``); ``key`` is unused."""
        config = self.config
        return wavetable_synthesis(
            f0_hz, amplitudes, wavetables, config.n_samples, config.sample_rate
        )


@dataclasses.dataclass(frozen=True)
class NoiseConfig:
    """White-noise synthesizer settings.

    Attributes:
        n_samples: Output length (samples).
        amp_resample_method: How amplitudes are upsampled from frames to samples.
        scale_fn: Applied to raw ``amplitudes``.
    """

    n_samples: int = 64000
    amp_resample_method: ResampleMethod = "window"
    scale_fn: ScaleFn = "exp_sigmoid"

    def __post_init__(self) -> None:
        check_positive_int("n_samples", self.n_samples)
        check_scale_fn(self.scale_fn)
        _check_resample_method(self.amp_resample_method)


class Noise(Processor):
    """Uniform white noise in [−1, 1] under an amplitude envelope (no filter: the raw noise
    a graph can filter with ``FIRFilter`` or ``SincFilter``).

    Raw controls:
        amplitudes: ``[batch, n_frames, 1]``, before ``scale_fn``.

    The noise is ``core.noise.uniform_noise`` of ``key``, as ``FilteredNoise``'s.

    >>> synth = Noise(NoiseConfig(n_samples=640, scale_fn="none"))
    >>> audio = synth({"amplitudes": jnp.full((1, 10, 1), 0.5)}, key=jax.random.key(0))
    >>> audio.shape, bool(jnp.abs(audio).max() <= 0.5)
    ((1, 640), True)
    """

    control_names = ("amplitudes",)
    draws_noise = True

    def __init__(self, config: NoiseConfig) -> None:
        self.config = config

    def get_controls(self, amplitudes: jax.Array) -> dict[str, jax.Array]:
        """Physical controls: ``amplitudes`` ``[batch, n_frames, 1]`` through ``scale_fn``."""
        check_rank("amplitudes", amplitudes, (3,), "[batch, n_frames, 1]")
        return {"amplitudes": SCALE_FNS[self.config.scale_fn](jnp.asarray(amplitudes))}

    def get_signal(self, amplitudes: jax.Array, *, key: jax.Array | None = None) -> jax.Array:
        """Noise drawn with ``key`` times the upsampled amplitudes: ``[batch, n_samples]``."""
        if key is None:
            raise ValueError("Noise draws random noise: pass a PRNG key (key=...).")
        config = self.config
        envelope = resample(amplitudes, config.n_samples, config.amp_resample_method)[..., 0]
        return envelope * uniform_noise(key, amplitudes.shape[0], config.n_samples)


class TensorToAudio(Processor):
    """Audio given as a control, passed through (magenta's ``TensorToAudio``): to mix a
    recording or another model's output into a graph.

    Raw controls:
        samples: ``[batch, n_samples]`` or ``[batch, n_samples, 1]``.

    >>> TensorToAudio()({"samples": jnp.ones((2, 5, 1))}).shape
    (2, 5)
    """

    control_names = ("samples",)

    def get_controls(self, samples: jax.Array) -> dict[str, jax.Array]:
        """``samples`` as ``[batch, n_samples]``."""
        samples = jnp.asarray(samples, jnp.float32)
        check_rank("samples", samples, (2, 3), "[batch, n_samples] or [batch, n_samples, 1]")
        return {"samples": samples[..., 0] if samples.ndim == 3 else samples}

    def get_signal(self, samples: jax.Array, *, key: jax.Array | None = None) -> jax.Array:
        """The samples, ``[batch, n_samples]``."""
        return samples
