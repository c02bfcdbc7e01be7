"""Neural networks of ddsp-jax: decoders and the autoencoder that drives the synths."""

from ddsp_jax.models.autoencoder import Autoencoder, AutoencoderConfig, preprocess
from ddsp_jax.models.decoders import FcStack, Gru, RnnFcDecoder, RnnFcDecoderConfig

__all__ = [
    "Autoencoder",
    "AutoencoderConfig",
    "FcStack",
    "Gru",
    "RnnFcDecoder",
    "RnnFcDecoderConfig",
    "preprocess",
]
