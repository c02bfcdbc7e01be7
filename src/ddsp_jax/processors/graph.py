"""The standard DDSP graph: (Harmonic + FilteredNoise) → Reverb, from one config."""

import dataclasses
from typing import Literal

import jax
from flax import nnx

from ddsp_jax.core.defaults import SAMPLE_RATE
from ddsp_jax.core.resample import ResampleMethod
from ddsp_jax.core.validation import check_positive, check_positive_int
from ddsp_jax.processors.base import Controls
from ddsp_jax.processors.effects import (
    ExpDecayReverb,
    ExpDecayReverbConfig,
    Reverb,
    ReverbConfig,
)
from ddsp_jax.processors.synths import (
    FilteredNoise,
    FilteredNoiseConfig,
    Harmonic,
    HarmonicConfig,
)

ReverbKind = Literal["none", "ir", "exp_decay"]


@dataclasses.dataclass(frozen=True)
class ProcessorGraphConfig:
    """One config for the whole synthesis graph.

    Attributes:
        sample_rate: Samples per second (Hz).
        n_samples: Output length (samples).
        n_harmonics: Harmonics of the additive synth (the decoder's head size).
        n_noise_bands: Filter bands of the noise synth (the decoder's head size).
        noise_window_size: Noise filter taps.
        noise_initial_bias: Added to raw noise magnitudes before scaling (magenta's −5 starts
            the noise about 90 dB down; Adam then needs ~1/learning_rate steps per unit).
        reverb: ``ir`` (trainable FIR), ``exp_decay`` (trainable gain/decay) or ``none``.
        reverb_length: Reverb IR length (samples).
        amp_resample_method: How harmonic amplitudes are upsampled.
    """

    sample_rate: int = SAMPLE_RATE
    n_samples: int = 64000
    n_harmonics: int = 100
    n_noise_bands: int = 65
    noise_window_size: int = 257
    noise_initial_bias: float = -5.0
    reverb: ReverbKind = "ir"
    reverb_length: int = 48000
    amp_resample_method: ResampleMethod = "window"

    def __post_init__(self) -> None:
        check_positive("sample_rate", self.sample_rate)
        for name in ("n_samples", "n_harmonics", "n_noise_bands", "reverb_length"):
            check_positive_int(name, getattr(self, name))
        if self.n_noise_bands < 2:
            raise ValueError(f"n_noise_bands must be >= 2, got {self.n_noise_bands}.")
        if self.reverb not in ("none", "ir", "exp_decay"):
            raise ValueError(f"reverb must be 'none', 'ir' or 'exp_decay', got {self.reverb!r}.")

    def harmonic(self) -> HarmonicConfig:
        return HarmonicConfig(
            n_samples=self.n_samples,
            sample_rate=self.sample_rate,
            amp_resample_method=self.amp_resample_method,
        )

    def filtered_noise(self) -> FilteredNoiseConfig:
        return FilteredNoiseConfig(
            n_samples=self.n_samples,
            window_size=self.noise_window_size,
            initial_bias=self.noise_initial_bias,
        )


class ProcessorGraph(nnx.Module):
    """Harmonic and filtered-noise synths summed, then (optionally) reverberated.

    Controls: ``f0_hz``, ``amplitudes``, ``harmonic_distribution`` (Harmonic) and
    ``noise_magnitudes`` (FilteredNoise); see those processors for shapes.
    """

    def __init__(self, config: ProcessorGraphConfig, *, rngs: nnx.Rngs) -> None:
        self.config = config
        self.harmonic = Harmonic(config.harmonic())
        self.noise = FilteredNoise(config.filtered_noise())
        if config.reverb == "ir":
            self.reverb = Reverb(ReverbConfig(reverb_length=config.reverb_length), rngs=rngs)
        elif config.reverb == "exp_decay":
            self.reverb = ExpDecayReverb(
                ExpDecayReverbConfig(reverb_length=config.reverb_length), rngs=rngs
            )
        else:
            self.reverb = None

    def __call__(self, controls: Controls, *, key: jax.Array) -> dict[str, jax.Array]:
        """Synthesise.

        Args:
            controls: Named controls, batch first.
            key: PRNG key for the noise.

        Returns:
            ``harmonic``, ``noise``, ``dry`` (their sum) and ``audio`` (after the reverb),
            each ``[batch, n_samples]``.
        """
        harmonic = self.harmonic(controls)
        noise = self.noise(controls, key=key)
        dry = harmonic + noise
        audio = dry if self.reverb is None else self.reverb({"audio": dry})
        return {"harmonic": harmonic, "noise": noise, "dry": dry, "audio": audio}
