"""Effects: convolution reverbs with a dry path (a learned IR, decaying noise, filtered
noise), time-varying filters (FIR from band magnitudes, windowed-sinc low and high pass) and
a modulated delay (chorus, flanger, vibrato)."""

import dataclasses
from typing import Literal

import jax
import jax.numpy as jnp
from flax import nnx

from ddsp_jax.core.delay import variable_length_delay
from ddsp_jax.core.filters import fft_convolve, frequency_filter, sinc_filter
from ddsp_jax.core.resample import resample
from ddsp_jax.core.units import exp_sigmoid
from ddsp_jax.core.validation import check_positive, check_positive_int, check_rank
from ddsp_jax.defaults import SAMPLE_RATE
from ddsp_jax.processors.base import SCALE_FNS, Processor, ScaleFn, check_scale_fn


def mask_dry_tap(impulse_response: jax.Array) -> jax.Array:
    """``impulse_response`` ``[..., ir_size]`` with its first tap set to 0: the dry path is
    added separately, so a reverb's IR never scales it (magenta's ``_mask_dry_ir``)."""
    return impulse_response.at[..., 0].set(0.0)


def apply_reverb(audio: jax.Array, impulse_response: jax.Array, add_dry: bool) -> jax.Array:
    """Linear convolution with an IR whose first tap is masked, plus the dry signal.

    Args:
        audio: Dry audio ``[batch, n_samples]``.
        impulse_response: ``[batch or 1, ir_size]``; tap 0 (the dry path) is set to 0.
        add_dry: Add the dry signal to the reverberated one.

    Returns:
        ``[batch, n_samples]``.
    """
    check_rank("audio", audio, (2,), "[batch, n_samples]")
    check_rank("impulse_response", impulse_response, (2,), "[batch, ir_size]")
    impulse_response = mask_dry_tap(impulse_response)
    wet = fft_convolve(audio, impulse_response, padding="same", delay_compensation=0)
    return wet + audio if add_dry else wet


@dataclasses.dataclass(frozen=True)
class ReverbConfig:
    """Convolution reverb settings.

    Attributes:
        reverb_length: IR length (samples), e.g. 48000 = 3 s at 16 kHz.
        add_dry: Add the dry signal to the output.
        trainable: Learn one IR (an ``nnx.Param``); otherwise read it from controls ``ir``.
    """

    reverb_length: int = 48000
    add_dry: bool = True
    trainable: bool = True

    def __post_init__(self) -> None:
        check_positive_int("reverb_length", self.reverb_length)


class ConvolutionReverb(Processor):
    """A reverb that convolves its input with an impulse response and adds the dry signal.

    Controls:
        audio: Dry audio ``[batch, n_samples]``, passed through.
        ir: The impulse response ``get_ir`` gives (``[batch or 1, reverb_length]``, tap 0
            zero).
    """

    config: "ReverbConfig | ExpDecayReverbConfig"

    def get_ir(self, ir: jax.Array | None = None) -> jax.Array:
        """The impulse response it convolves with, ``[batch or 1, reverb_length]``, its
        first tap (the dry path) zero."""
        raise NotImplementedError

    def get_controls(self, audio: jax.Array, ir: jax.Array | None = None) -> dict[str, jax.Array]:
        """``{"audio": audio, "ir": get_ir(ir)}``."""
        return {"audio": audio, "ir": self.get_ir(ir)}

    def get_signal(
        self, audio: jax.Array, ir: jax.Array, *, key: jax.Array | None = None
    ) -> jax.Array:
        """Reverberated audio ``[batch, n_samples]`` (``apply_reverb``)."""
        return apply_reverb(audio, ir, self.config.add_dry)


class Reverb(ConvolutionReverb):
    """FIR reverb: a learned (or given) impulse response, linear convolution, dry path.

    Raw controls:
        audio: Dry audio ``[batch, n_samples]``.
        ir: ``[batch, reverb_length]``, only when the reverb is not trainable.

    >>> reverb = Reverb(ReverbConfig(reverb_length=100), rngs=nnx.Rngs(0))
    >>> ir = reverb.get_ir()
    >>> ir.shape, float(ir[0, 0])
    ((1, 100), 0.0)
    """

    def __init__(self, config: ReverbConfig, *, rngs: nnx.Rngs) -> None:
        self.config = config
        self.control_names = ("audio",) if config.trainable else ("audio", "ir")
        if config.trainable:
            self.impulse_response = nnx.Param(
                1e-6 * jax.random.normal(rngs.params(), (config.reverb_length,))
            )

    def get_ir(self, ir: jax.Array | None = None) -> jax.Array:
        """The learned impulse response (trainable), or ``ir`` ``[batch, reverb_length]``
        (required when not trainable), with tap 0 masked: ``[batch or 1, reverb_length]``."""
        if self.config.trainable:
            ir = self.impulse_response[...][None, :]
        elif ir is None:
            raise ValueError("this Reverb is not trainable: pass its impulse response (ir).")
        check_rank("ir", ir, (2,), "[batch, reverb_length]")
        return mask_dry_tap(ir)


class DecayNoise(nnx.Variable):
    """A fixed (non-trainable) noise signal stored with the model."""


@dataclasses.dataclass(frozen=True)
class ExpDecayReverbConfig:
    """Exponentially decaying noise reverb settings.

    Attributes:
        reverb_length: IR length (samples).
        add_dry: Add the dry signal to the output.
        initial_gain: Raw gain at initialisation (scaled by ``exp_sigmoid``).
        initial_decay: Raw decay at initialisation; the envelope is
            ``exp(-(2 + exp(decay)) * t)`` with ``t`` from 0 to 1 over the IR.
    """

    reverb_length: int = 48000
    add_dry: bool = True
    initial_gain: float = 2.0
    initial_decay: float = 4.0

    def __post_init__(self) -> None:
        check_positive_int("reverb_length", self.reverb_length)


class ExpDecayReverb(ConvolutionReverb):
    """Reverb whose IR is ``exp_sigmoid(gain) * exp(-(2 + exp(decay)) t) * noise``.

    ``gain`` and ``decay`` are trainable scalars. The noise (uniform in [−1, 1]) is drawn
    once at construction and kept with the model, so the room is the same on every call
    (magenta redraws it per call).

    Raw controls:
        audio: Dry audio ``[batch, n_samples]``.
    """

    control_names = ("audio",)

    def __init__(self, config: ExpDecayReverbConfig, *, rngs: nnx.Rngs) -> None:
        self.config = config
        self.gain = nnx.Param(jnp.array(config.initial_gain, jnp.float32))
        self.decay = nnx.Param(jnp.array(config.initial_decay, jnp.float32))
        self.noise = DecayNoise(
            jax.random.uniform(rngs.params(), (config.reverb_length,), jnp.float32, -1.0, 1.0)
        )

    def get_ir(self, ir: jax.Array | None = None) -> jax.Array:
        """The current IR ``[1, reverb_length]`` from the gain, decay and noise, with tap 0
        masked (``ir`` must be None: the reverb makes its own)."""
        if ir is not None:
            raise ValueError("ExpDecayReverb makes its own impulse response: do not pass ir.")
        time = jnp.linspace(0.0, 1.0, self.config.reverb_length)
        envelope = jnp.exp(-(2.0 + jnp.exp(self.decay[...])) * time)
        return mask_dry_tap((exp_sigmoid(self.gain[...]) * envelope * self.noise[...])[None, :])


@dataclasses.dataclass(frozen=True)
class FilteredNoiseReverbConfig:
    """Filtered-noise reverb settings (magenta's ``FilteredNoiseReverb``).

    Attributes:
        reverb_length: IR length (samples).
        window_size: Taps of the filter that shapes the noise.
        n_frames: Frames of the trainable band magnitudes over the IR.
        n_filter_banks: Bands of the trainable magnitudes.
        scale_fn: Applied to the biased magnitudes.
        initial_bias: Added to the magnitudes before ``scale_fn`` (magenta's −3).
        add_dry: Add the dry signal to the output.
        trainable: Learn one set of magnitudes ``[n_frames, n_filter_banks]``; otherwise read
            them from the controls' ``magnitudes``.
    """

    reverb_length: int = 48000
    window_size: int = 257
    n_frames: int = 1000
    n_filter_banks: int = 16
    scale_fn: ScaleFn = "exp_sigmoid"
    initial_bias: float = -3.0
    add_dry: bool = True
    trainable: bool = False

    def __post_init__(self) -> None:
        for name in ("reverb_length", "window_size", "n_frames", "n_filter_banks"):
            check_positive_int(name, getattr(self, name))
        check_scale_fn(self.scale_fn)


class FilteredNoiseReverb(ConvolutionReverb):
    """A reverb whose IR is noise through a time-varying filter: the room's decay per band.

    Raw controls:
        audio: Dry audio ``[batch, n_samples]``.
        magnitudes: ``[batch, n_frames, n_bands]`` over the IR, before ``initial_bias`` and
            ``scale_fn``; only when not trainable.

    The noise (uniform in [−1, 1], ``reverb_length`` samples) is drawn once at construction
    and kept with the model, as ``ExpDecayReverb``'s, so that a room is the same on every
    call (magenta redraws it per call).

    >>> reverb = FilteredNoiseReverb(
    ...     FilteredNoiseReverbConfig(reverb_length=800, n_frames=10, trainable=True),
    ...     rngs=nnx.Rngs(0))
    >>> reverb.get_ir().shape
    (1, 800)
    """

    def __init__(self, config: FilteredNoiseReverbConfig, *, rngs: nnx.Rngs) -> None:
        self.config = config
        self.control_names = ("audio",) if config.trainable else ("audio", "magnitudes")
        if config.trainable:
            shape = (config.n_frames, config.n_filter_banks)
            self.magnitudes = nnx.Param(1e-2 * jax.random.normal(rngs.params(), shape))
        self.noise = DecayNoise(
            jax.random.uniform(rngs.params(), (config.reverb_length,), jnp.float32, -1.0, 1.0)
        )

    def get_ir(self, magnitudes: jax.Array | None = None) -> jax.Array:
        """The IR ``[batch or 1, reverb_length]``: the kept noise through the filter of the
        learned (trainable) or given ``magnitudes``, tap 0 masked."""
        config = self.config
        if config.trainable:
            if magnitudes is not None:
                raise ValueError(
                    "this FilteredNoiseReverb learns its magnitudes: do not pass them."
                )
            magnitudes = self.magnitudes[...][None]
        elif magnitudes is None:
            raise ValueError("this FilteredNoiseReverb is not trainable: pass its magnitudes.")
        check_rank("magnitudes", magnitudes, (3,), "[batch, n_frames, n_bands]")
        gains = SCALE_FNS[config.scale_fn](magnitudes + config.initial_bias)
        noise = jnp.broadcast_to(self.noise[...], (gains.shape[0], config.reverb_length))
        return mask_dry_tap(frequency_filter(noise, gains, window_size=config.window_size))

    def get_controls(
        self, audio: jax.Array, magnitudes: jax.Array | None = None
    ) -> dict[str, jax.Array]:
        """``{"audio": audio, "ir": get_ir(magnitudes)}``."""
        return {"audio": audio, "ir": self.get_ir(magnitudes)}


@dataclasses.dataclass(frozen=True)
class FIRFilterConfig:
    """Time-varying FIR filter settings (magenta's ``FIRFilter``).

    Attributes:
        window_size: Filter taps (limited to ``2 * (n_bands - 1)``).
        scale_fn: Applied to raw ``magnitudes``.
    """

    window_size: int = 257
    scale_fn: ScaleFn = "exp_sigmoid"

    def __post_init__(self) -> None:
        check_positive_int("window_size", self.window_size)
        check_scale_fn(self.scale_fn)


class FIRFilter(Processor):
    """Audio through a linear-phase FIR filter per frame, from band magnitudes
    (``core.frequency_filter``): the network-controlled filter of magenta's ``FIRFilter``.

    Raw controls:
        audio: ``[batch, n_samples]``.
        magnitudes: ``[batch, n_frames, n_bands]`` (0 Hz to Nyquist), before ``scale_fn``.

    >>> fir = FIRFilter(FIRFilterConfig(window_size=64, scale_fn="none"))
    >>> out = fir({"audio": jnp.ones((1, 640)), "magnitudes": jnp.ones((1, 10, 33))})
    >>> out.shape
    (1, 640)
    """

    control_names = ("audio", "magnitudes")

    def __init__(self, config: FIRFilterConfig) -> None:
        self.config = config

    def get_controls(self, audio: jax.Array, magnitudes: jax.Array) -> dict[str, jax.Array]:
        """``audio``, and ``magnitudes`` through ``scale_fn``."""
        check_rank("magnitudes", magnitudes, (3,), "[batch, n_frames, n_bands]")
        return {"audio": audio, "magnitudes": SCALE_FNS[self.config.scale_fn](magnitudes)}

    def get_signal(
        self, audio: jax.Array, magnitudes: jax.Array, *, key: jax.Array | None = None
    ) -> jax.Array:
        """Filtered audio ``[batch, n_samples]``."""
        return frequency_filter(audio, magnitudes, window_size=self.config.window_size)


CutoffScaleFn = Literal["sigmoid", "none"]


@dataclasses.dataclass(frozen=True)
class SincFilterConfig:
    """Windowed-sinc filter settings.

    Attributes:
        window_size: Taps (made odd).
        high_pass: Pass what is above the cutoff instead of below.
        scale_fn: Raw ``cutoff`` to a fraction of Nyquist: ``sigmoid``, or ``none`` (the raw
            value is the fraction).
    """

    window_size: int = 257
    high_pass: bool = False
    scale_fn: CutoffScaleFn = "sigmoid"

    def __post_init__(self) -> None:
        check_positive_int("window_size", self.window_size)
        if self.scale_fn not in ("sigmoid", "none"):
            raise ValueError(f"scale_fn must be 'sigmoid' or 'none', got {self.scale_fn!r}.")


class SincFilter(Processor):
    """A low- or high-pass filter with a cutoff per example or per frame
    (``core.sinc_filter``, magenta's windowed sinc).

    Raw controls:
        audio: ``[batch, n_samples]``.
        cutoff: ``[batch]``, ``[batch, n_frames]`` or ``[batch, n_frames, 1]``, before
            ``scale_fn``; after it, a fraction of Nyquist in [0, 1].

    >>> low_pass = SincFilter(SincFilterConfig(window_size=64, scale_fn="none"))
    >>> low_pass({"audio": jnp.ones((1, 640)), "cutoff": jnp.full((1,), 0.25)}).shape
    (1, 640)
    """

    control_names = ("audio", "cutoff")

    def __init__(self, config: SincFilterConfig) -> None:
        self.config = config

    def get_controls(self, audio: jax.Array, cutoff: jax.Array) -> dict[str, jax.Array]:
        """``audio``, and ``cutoff`` as a fraction of Nyquist, ``[batch]`` or ``[batch,
        n_frames]``."""
        cutoff = jnp.asarray(cutoff, jnp.float32)
        if cutoff.ndim == 3:
            cutoff = cutoff[..., 0]
        if self.config.scale_fn == "sigmoid":
            cutoff = jax.nn.sigmoid(cutoff)
        return {"audio": audio, "cutoff": cutoff}

    def get_signal(
        self, audio: jax.Array, cutoff: jax.Array, *, key: jax.Array | None = None
    ) -> jax.Array:
        """Filtered audio ``[batch, n_samples]`` (delay compensated)."""
        config = self.config
        return sinc_filter(audio, cutoff, config.window_size, high_pass=config.high_pass)


ModulationScaleFn = Literal["sigmoid", "none"]


@dataclasses.dataclass(frozen=True)
class ModDelayConfig:
    """Modulated delay settings (magenta's ``ModDelay``).

    Attributes:
        center_ms: The shortest delay (ms): phase 0.
        depth_ms: How much longer the delay gets at phase 1 (ms).
        sample_rate: Samples per second (Hz).
        gain_scale_fn: Applied to raw ``gain``.
        phase_scale_fn: Raw ``phase`` to [0, 1]: ``sigmoid``, or ``none``.
        add_dry: Add the dry signal to the output.
    """

    center_ms: float = 15.0
    depth_ms: float = 10.0
    sample_rate: int = SAMPLE_RATE
    gain_scale_fn: ScaleFn = "exp_sigmoid"
    phase_scale_fn: ModulationScaleFn = "sigmoid"
    add_dry: bool = True

    def __post_init__(self) -> None:
        check_positive("sample_rate", self.sample_rate)
        check_scale_fn(self.gain_scale_fn)
        if self.center_ms < 0 or self.depth_ms < 0 or self.center_ms + self.depth_ms <= 0:
            raise ValueError(
                f"need center_ms >= 0, depth_ms >= 0 and a positive sum, got {self.center_ms} "
                f"and {self.depth_ms}."
            )
        if self.phase_scale_fn not in ("sigmoid", "none"):
            raise ValueError(
                f"phase_scale_fn must be 'sigmoid' or 'none', got {self.phase_scale_fn!r}."
            )

    @property
    def max_length(self) -> int:
        """The longest delay (samples): ``center_ms + depth_ms`` at ``sample_rate``."""
        return int(self.sample_rate / 1000.0 * (self.center_ms + self.depth_ms))


class ModDelay(Processor):
    """A delay line whose length moves with a control, mixed with the dry signal: chorus,
    flanger and vibrato (magenta's ``ModDelay``, over ``core.variable_length_delay``).

    Raw controls:
        audio: ``[batch, n_samples]``.
        gain: The delayed signal's gain, ``[batch, n_frames or n_samples, 1]``, before
            ``gain_scale_fn``.
        phase: ``[batch, n_frames or n_samples, 1]``, before ``phase_scale_fn``; 0 is a delay of
            ``center_ms``, 1 of ``center_ms + depth_ms``.

    Frame-rate gain and phase are interpolated linearly to samples (magenta takes them per
    sample).

    >>> chorus = ModDelay(ModDelayConfig(gain_scale_fn="none", phase_scale_fn="none"))
    >>> raw = {"audio": jnp.ones((1, 640)), "gain": jnp.ones((1, 10, 1)),
    ...        "phase": jnp.zeros((1, 10, 1))}
    >>> float(chorus(raw)[0, -1])  # Dry 1 plus the delayed 1.
    2.0
    """

    control_names = ("audio", "gain", "phase")

    def __init__(self, config: ModDelayConfig) -> None:
        self.config = config

    def get_controls(
        self, audio: jax.Array, gain: jax.Array, phase: jax.Array
    ) -> dict[str, jax.Array]:
        """``audio``, ``gain`` through ``gain_scale_fn`` and ``phase`` through
        ``phase_scale_fn``."""
        check_rank("gain", gain, (3,), "[batch, n_frames or n_samples, 1]")
        check_rank("phase", phase, (3,), "[batch, n_frames or n_samples, 1]")
        gain = SCALE_FNS[self.config.gain_scale_fn](jnp.asarray(gain, jnp.float32))
        phase = jnp.asarray(phase, jnp.float32)
        if self.config.phase_scale_fn == "sigmoid":
            phase = jax.nn.sigmoid(phase)
        return {"audio": audio, "gain": gain, "phase": phase}

    def get_signal(
        self, audio: jax.Array, gain: jax.Array, phase: jax.Array, *, key: jax.Array | None = None
    ) -> jax.Array:
        """The delayed audio times the gain, plus the dry audio with ``add_dry``: ``[batch,
        n_samples]``."""
        config = self.config
        n_samples = audio.shape[1]
        gain, phase = (
            resample(x, n_samples, "linear") if x.shape[1] != n_samples else x
            for x in (gain, phase)
        )
        total_ms = config.center_ms + config.depth_ms
        phase = phase * (config.depth_ms / total_ms) + config.center_ms / total_ms
        wet = variable_length_delay(phase, audio, config.max_length) * gain[..., 0]
        return wet + audio if config.add_dry else wet
