"""The standard DDSP graph: (Harmonic + FilteredNoise) → Reverb, from one config."""

import dataclasses
from typing import Literal

import jax
from flax import nnx

from ddsp_jax.core.resample import ResampleMethod
from ddsp_jax.core.validation import check_positive, check_positive_int
from ddsp_jax.defaults import SAMPLE_RATE
from ddsp_jax.processors.base import Controls, ScaleFn
from ddsp_jax.processors.effects import (
    ConvolutionReverb,
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
    """One config for the whole synthesis graph; every option of its processors.

    Attributes:
        sample_rate: Samples per second (Hz).
        n_samples: Output length (samples).
        n_harmonics: Harmonics of the additive synth (the decoder's head size).
        n_noise_bands: Filter bands of the noise synth (the decoder's head size).
        noise_window_size: Noise filter taps.
        noise_initial_bias: Added to raw noise magnitudes before scaling (magenta's −5 starts
            the noise about 90 dB down; Adam then needs ~1/learning_rate steps per unit).
        reverb: ``ir`` (an FIR impulse response), ``exp_decay`` (trainable gain/decay) or
            ``none``.
        reverb_length: Reverb IR length (samples).
        amp_resample_method: How harmonic amplitudes are upsampled.
        scale_fn: Applied to the raw harmonic amplitudes and distribution and the (biased)
            noise magnitudes.
        normalize_below_nyquist: Zero harmonics at or above Nyquist and renormalise the
            distribution over the rest.
        reverb_add_dry: Add the dry signal to the reverb's output.
        reverb_trainable: With ``reverb="ir"``, learn the IR (else read it from the controls'
            ``ir`` ``[batch, reverb_length]``).
        reverb_initial_gain: With ``reverb="exp_decay"``, the raw gain at initialisation.
        reverb_initial_decay: With ``reverb="exp_decay"``, the raw decay at initialisation.
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
    scale_fn: ScaleFn = "exp_sigmoid"
    normalize_below_nyquist: bool = True
    reverb_add_dry: bool = True
    reverb_trainable: bool = True
    reverb_initial_gain: float = 2.0
    reverb_initial_decay: float = 4.0

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
            normalize_below_nyquist=self.normalize_below_nyquist,
            amp_resample_method=self.amp_resample_method,
            scale_fn=self.scale_fn,
        )

    def filtered_noise(self) -> FilteredNoiseConfig:
        return FilteredNoiseConfig(
            n_samples=self.n_samples,
            window_size=self.noise_window_size,
            initial_bias=self.noise_initial_bias,
            scale_fn=self.scale_fn,
        )

    def ir_reverb(self) -> ReverbConfig:
        return ReverbConfig(
            reverb_length=self.reverb_length,
            add_dry=self.reverb_add_dry,
            trainable=self.reverb_trainable,
        )

    def exp_decay_reverb(self) -> ExpDecayReverbConfig:
        return ExpDecayReverbConfig(
            reverb_length=self.reverb_length,
            add_dry=self.reverb_add_dry,
            initial_gain=self.reverb_initial_gain,
            initial_decay=self.reverb_initial_decay,
        )


class ProcessorGraph(nnx.Module):
    """Harmonic and filtered-noise synths summed, then (optionally) reverberated.

    Raw controls: ``f0_hz``, ``amplitudes``, ``harmonic_distribution`` (Harmonic),
    ``noise_magnitudes`` (FilteredNoise) and, for a reverb that is not trainable, ``ir``; see
    those processors for shapes. As a processor, the graph scales them in ``get_controls``
    and renders in ``get_signal``.

    >>> graph = ProcessorGraph(ProcessorGraphConfig(n_samples=640, n_harmonics=4,
    ...                                             reverb_length=100), rngs=nnx.Rngs(0))
    >>> raw = {"f0_hz": jnp.full((1, 10, 1), 220.0), "amplitudes": jnp.zeros((1, 10, 1)),
    ...        "harmonic_distribution": jnp.zeros((1, 10, 4)),
    ...        "noise_magnitudes": jnp.zeros((1, 10, 65))}
    >>> sorted(controls := graph.get_controls(raw))
    ['amplitudes', 'f0_hz', 'harmonic_distribution', 'ir', 'noise_magnitudes']
    >>> graph.get_signal(controls, key=jax.random.key(0))["audio"].shape
    (1, 640)
    """

    def __init__(self, config: ProcessorGraphConfig, *, rngs: nnx.Rngs) -> None:
        self.config = config
        self.harmonic = Harmonic(config.harmonic())
        self.noise = FilteredNoise(config.filtered_noise())
        self.reverb: ConvolutionReverb | None
        if config.reverb == "ir":
            self.reverb = Reverb(config.ir_reverb(), rngs=rngs)
        elif config.reverb == "exp_decay":
            self.reverb = ExpDecayReverb(config.exp_decay_reverb(), rngs=rngs)
        else:
            self.reverb = None

    def get_controls(self, controls: Controls) -> dict[str, jax.Array]:
        """Every processor's physical controls from the raw ones: the harmonic synth's
        ``amplitudes``, ``harmonic_distribution`` and ``f0_hz``, the noise synth's
        ``noise_magnitudes`` and, with a reverb, its ``ir`` (``[batch or 1, reverb_length]``,
        tap 0 masked)."""
        physical = {
            **self.harmonic.get_controls(*self.harmonic.read_controls(controls)),
            **self.noise.get_controls(*self.noise.read_controls(controls)),
        }
        if self.reverb is not None:
            physical["ir"] = self.reverb.get_ir(controls.get("ir"))
        return physical

    def get_signal(self, controls: Controls, *, key: jax.Array) -> dict[str, jax.Array]:
        """Render physical controls (``get_controls``'s).

        Args:
            controls: Physical controls, batch first.
            key: PRNG key for the noise.

        Returns:
            ``harmonic``, ``noise``, ``dry`` (their sum) and ``audio`` (after the reverb),
            each ``[batch, n_samples]``.
        """
        harmonic = self.harmonic.get_signal(
            controls["amplitudes"], controls["harmonic_distribution"], controls["f0_hz"]
        )
        noise = self.noise.get_signal(controls["noise_magnitudes"], key=key)
        dry = harmonic + noise
        audio = dry if self.reverb is None else self.reverb.get_signal(dry, controls["ir"])
        return {"harmonic": harmonic, "noise": noise, "dry": dry, "audio": audio}

    def __call__(self, controls: Controls, *, key: jax.Array) -> dict[str, jax.Array]:
        """``get_signal(get_controls(controls), key=key)`` for raw ``controls``."""
        return self.get_signal(self.get_controls(controls), key=key)
