"""The DDSP autoencoder: features (and, with an encoder, z of the audio) → decoder →
processor graph → audio."""

import dataclasses
from typing import Literal

import jax
import jax.numpy as jnp
from flax import nnx

from ddsp_jax.core.units import DB_RANGE, hz_to_midi
from ddsp_jax.models.decoders import RnnFcDecoder, RnnFcDecoderConfig
from ddsp_jax.models.encoders import MfccEncoderConfig, MfccTimeDistributedRnnEncoder
from ddsp_jax.processors.declared import DeclaredGraph, GraphConfig, check_graph
from ddsp_jax.processors.graph import ProcessorGraph, ProcessorGraphConfig

F0_RANGE = 127.0  # MIDI


def _frames(x: jax.Array) -> jax.Array:
    """``[batch, n_frames]`` or ``[batch, n_frames, 1]`` → ``[batch, n_frames, 1]``."""
    x = jnp.asarray(x, jnp.float32)
    return x[..., None] if x.ndim == 2 else x


def preprocess(f0_hz: jax.Array, loudness_db: jax.Array) -> dict[str, jax.Array]:
    """magenta's ``F0LoudnessPreprocessor`` scaling of the conditioning signals.

    Args:
        f0_hz: ``[batch, n_frames]`` or ``[batch, n_frames, 1]`` (Hz).
        loudness_db: The same shape (dB, floor −80).

    Returns:
        ``f0_hz``, ``f0_scaled = hz_to_midi(f0) / 127`` and
        ``ld_scaled = loudness_db / 80 + 1``, each ``[batch, n_frames, 1]``.
    """
    f0_hz = _frames(f0_hz)
    return {
        "f0_hz": f0_hz,
        "f0_scaled": hz_to_midi(f0_hz) / F0_RANGE,
        "ld_scaled": _frames(loudness_db) / DB_RANGE + 1.0,
    }


@dataclasses.dataclass(frozen=True)
class AutoencoderConfig:
    """The model: decoder sizes, synthesis graph and, for the paper's autoencoder, the z
    encoder (None: the decoder sees f0 and loudness only).

    The synthesis is the standard graph of ``synth`` or, when ``graph`` declares one, that
    graph (``processors.declared``), whose nodes read the decoder's outputs by name; ``synth``
    then gives only the sample rate and the output length.

    ``level_feature`` is the level the decoder is conditioned on: ``loudness_db`` (A-weighted
    loudness, the paper's) or ``power_db`` (frame power, magenta's ``F0PowerPreprocessor``).
    The model's ``loudness_db`` input carries that feature's values; the feature pipelines
    fill it (``features.level_conditioning``), scaled alike (``preprocess``).
    """

    decoder: RnnFcDecoderConfig = dataclasses.field(default_factory=RnnFcDecoderConfig)
    synth: ProcessorGraphConfig = dataclasses.field(default_factory=ProcessorGraphConfig)
    encoder: MfccEncoderConfig | None = None
    graph: GraphConfig | None = None
    level_feature: Literal["loudness_db", "power_db"] = "loudness_db"

    def __post_init__(self) -> None:
        if self.level_feature not in ("loudness_db", "power_db"):
            raise ValueError(
                f"level_feature must be loudness_db or power_db, got {self.level_feature!r}."
            )
        splits = dict(self.decoder.output_splits)
        if self.graph is not None:
            check_graph(self.graph, self.synth.sample_rate, self.synth.n_samples, splits)
        else:
            expected = {
                "amplitudes": 1,
                "harmonic_distribution": self.synth.n_harmonics,
                "noise_magnitudes": self.synth.n_noise_bands,
            }
            if splits != expected:
                raise ValueError(
                    f"decoder outputs {splits} do not match the synth's controls {expected}."
                )
        inputs = dict(zip(self.decoder.input_keys, self.decoder.input_sizes, strict=True))
        if self.encoder is None and "z" in inputs:
            raise ValueError("the decoder reads z, which needs an encoder (model.encoder).")
        if self.encoder is not None:
            if inputs.get("z") != self.encoder.z_dims:
                raise ValueError(
                    f"the encoder makes z of {self.encoder.z_dims} values per frame; the "
                    f"decoder's inputs are {inputs} (add z of that size)."
                )
            if self.encoder.sample_rate != self.synth.sample_rate:
                raise ValueError(
                    f"the encoder reads {self.encoder.sample_rate} Hz audio, the synth makes "
                    f"{self.synth.sample_rate} Hz."
                )


class Autoencoder(nnx.Module):
    """Maps a batch ``{f0_hz, loudness_db[, audio][, z]}`` to ``{audio_synth, controls}``.

    With an encoder, the decoder is also conditioned on ``z``: the batch's own ``z`` ``[batch,
    n_frames, z_dims]`` when it has one (another sound's timbre), else the encoder's ``z`` of
    the batch's ``audio``.
    """

    def __init__(self, config: AutoencoderConfig, *, rngs: nnx.Rngs) -> None:
        self.config = config
        self.decoder = RnnFcDecoder(config.decoder, rngs=rngs)
        self.processor_graph: ProcessorGraph | DeclaredGraph
        if config.graph is None:
            self.processor_graph = ProcessorGraph(config.synth, rngs=rngs)
        else:
            synth = config.synth
            controls = [name for name, _ in config.decoder.output_splits]
            self.processor_graph = DeclaredGraph(
                config.graph, synth.sample_rate, synth.n_samples, controls, rngs=rngs
            )
        self.encoder = (
            None
            if config.encoder is None
            else MfccTimeDistributedRnnEncoder(config.encoder, rngs=rngs)
        )

    def encode(self, audio: jax.Array, n_frames: int) -> jax.Array:
        """The encoder's ``z`` ``[batch, n_frames, z_dims]`` of ``audio`` ``[batch,
        n_samples]``."""
        if self.encoder is None:
            raise ValueError("this model has no z encoder.")
        return self.encoder(audio, n_frames)

    def synthesize(self, controls: dict[str, jax.Array], *, key: jax.Array) -> dict[str, jax.Array]:
        """The processor graph's signals for decoded ``controls``: at least ``audio``
        ``[batch, n_samples]`` (see ``ProcessorGraph`` and ``DeclaredGraph``)."""
        return self.processor_graph(controls, key=key)

    def __call__(self, batch: dict[str, jax.Array], *, key: jax.Array) -> dict[str, jax.Array]:
        """Synthesise.

        Args:
            batch: ``f0_hz`` and ``loudness_db``, each ``[batch, n_frames]``; with an encoder,
                ``audio`` ``[batch, n_samples]`` or ``z`` ``[batch, n_frames, z_dims]``.
            key: PRNG key for the noise synth.

        Returns:
            ``audio_synth`` ``[batch, n_samples]``, ``controls`` (raw decoder outputs and
            ``f0_hz``) and, where the synthesis gives them separately, the signals
            ``harmonic`` and ``noise``.
        """
        for name in ("f0_hz", "loudness_db"):
            if name not in batch:
                raise ValueError(f"the batch needs {name!r}; it has {sorted(batch)}.")
        features = preprocess(batch["f0_hz"], batch["loudness_db"])
        if self.encoder is not None:
            n_frames = features["f0_hz"].shape[1]
            if "z" in batch:
                features["z"] = jnp.asarray(batch["z"], jnp.float32)
            elif "audio" in batch:
                features["z"] = self.encode(batch["audio"], n_frames)
            else:
                raise ValueError(
                    "this model takes z from the audio: the batch needs 'audio' (or 'z')."
                )
        controls = {**self.decoder(features), "f0_hz": features["f0_hz"]}
        signals = self.synthesize(controls, key=key)
        parts = {name: signals[name] for name in ("harmonic", "noise") if name in signals}
        return {"audio_synth": signals["audio"], "controls": controls, **parts}


@nnx.jit
def render(
    model: Autoencoder, f0_hz: jax.Array, loudness_db: jax.Array, z: jax.Array | None = None
) -> jax.Array:
    """The model's audio ``[batch, n_samples]`` for conditioning ``[batch, n_frames]`` (f0 in
    Hz, loudness in dB; with an encoder, ``z`` ``[batch, n_frames, z_dims]``), compiled, with a
    fixed noise key so that it repeats exactly."""
    batch = {"f0_hz": f0_hz, "loudness_db": loudness_db}
    if z is not None:
        batch["z"] = z
    return model(batch, key=jax.random.key(0))["audio_synth"]
