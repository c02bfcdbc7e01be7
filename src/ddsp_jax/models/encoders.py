"""Encoders: audio → a latent ``z`` per frame, the timbre the decoder is conditioned on
(the paper's NSynth autoencoder; magenta's ``MfccTimeDistributedRnnEncoder``)."""

import dataclasses

import jax
import jax.numpy as jnp
from flax import nnx

from ddsp_jax.core.resample import resample
from ddsp_jax.core.spectral import compute_mfcc
from ddsp_jax.core.validation import check_positive_int, check_rank
from ddsp_jax.defaults import SAMPLE_RATE
from ddsp_jax.models.decoders import Gru

# magenta's MFCC analysis per z_time_steps (its name: the frames of 4 s at 16 kHz):
# (FFT size, overlap).
Z_AUDIO_SPEC = {
    63: (2048, 0.5),
    125: (1024, 0.5),
    250: (1024, 0.75),
    500: (512, 0.75),
    1000: (256, 0.75),
}


@dataclasses.dataclass(frozen=True)
class MfccEncoderConfig:
    """Sizes of ``MfccTimeDistributedRnnEncoder`` (the paper's: GRU 512, z 16, 125 steps).

    Attributes:
        rnn_channels: GRU units.
        z_dims: Size of ``z`` per frame.
        z_time_steps: The MFCC analysis (``Z_AUDIO_SPEC``: 125 is a 1024-point FFT every
            512 samples, 125 frames in 4 s at 16 kHz).
        mfcc_bins: MFCCs per frame (magenta's 30).
        mel_bins: Mel bands the MFCCs come from (128, 20 Hz to 8 kHz).
        sample_rate: The audio's samples per second (Hz).
    """

    rnn_channels: int = 512
    z_dims: int = 16
    z_time_steps: int = 125
    mfcc_bins: int = 30
    mel_bins: int = 128
    sample_rate: int = SAMPLE_RATE

    def __post_init__(self) -> None:
        for name in ("rnn_channels", "z_dims", "mfcc_bins", "mel_bins", "sample_rate"):
            check_positive_int(name, getattr(self, name))
        if self.z_time_steps not in Z_AUDIO_SPEC:
            raise ValueError(
                f"z_time_steps must be one of {sorted(Z_AUDIO_SPEC)}, got {self.z_time_steps!r}."
            )
        if self.mfcc_bins > self.mel_bins:
            raise ValueError(f"mfcc_bins {self.mfcc_bins} exceeds mel_bins {self.mel_bins}.")


class InstanceNorm(nnx.Module):
    """Each channel of each example normalised over time (zero mean, unit variance, ``eps``
    1e-5), then scaled and shifted by learned per-channel values (magenta's
    ``Normalize('instance')``)."""

    def __init__(self, channels: int) -> None:
        self.scale = nnx.Param(jnp.ones(channels))
        self.shift = nnx.Param(jnp.zeros(channels))

    def __call__(self, x: jax.Array) -> jax.Array:
        """``x`` ``[batch, n_frames, channels]`` → the same shape."""
        mean = jnp.mean(x, axis=1, keepdims=True)
        variance = jnp.var(x, axis=1, keepdims=True)
        return (x - mean) / jnp.sqrt(variance + 1e-5) * self.scale[...] + self.shift[...]


class MfccTimeDistributedRnnEncoder(nnx.Module):
    """magenta's z encoder: MFCCs (``core.compute_mfcc``, 20 Hz to 8 kHz) → instance norm →
    GRU → Dense to ``z_dims``, resampled (linearly) to the decoder's frames.

    >>> encoder = MfccTimeDistributedRnnEncoder(
    ...     MfccEncoderConfig(rnn_channels=8, z_dims=4), rngs=nnx.Rngs(0))
    >>> encoder(jnp.zeros((2, 16000)), n_frames=250).shape
    (2, 250, 4)
    """

    def __init__(self, config: MfccEncoderConfig, *, rngs: nnx.Rngs) -> None:
        self.config = config
        self.norm = InstanceNorm(config.mfcc_bins)
        self.rnn = Gru(config.mfcc_bins, config.rnn_channels, rngs=rngs)
        self.dense_out = nnx.Linear(config.rnn_channels, config.z_dims, rngs=rngs)

    def __call__(self, audio: jax.Array, n_frames: int) -> jax.Array:
        """``z`` ``[batch, n_frames, z_dims]`` of ``audio`` ``[batch, n_samples]``."""
        check_rank("audio", audio, (2,), "[batch, n_samples]")
        check_positive_int("n_frames", n_frames)
        config = self.config
        fft_size, overlap = Z_AUDIO_SPEC[config.z_time_steps]
        mfccs = compute_mfcc(
            jnp.asarray(audio, jnp.float32),
            lo_hz=20.0,
            hi_hz=min(8000.0, config.sample_rate / 2),
            fft_size=fft_size,
            mel_bins=config.mel_bins,
            mfcc_bins=config.mfcc_bins,
            overlap=overlap,
            pad_end=True,
            sample_rate=config.sample_rate,
        )
        z, _ = self.rnn(self.norm(mfccs))
        z = self.dense_out(z)
        return z if z.shape[1] == n_frames else resample(z, n_frames, "linear")
