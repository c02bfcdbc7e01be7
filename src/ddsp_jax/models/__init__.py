"""Neural networks of ddsp-jax: decoders, the z encoder, the autoencoder that drives the
synths, and saved model folders."""

from ddsp_jax.models.autoencoder import Autoencoder, AutoencoderConfig, preprocess, render
from ddsp_jax.models.decoders import FcStack, Gru, RnnFcDecoder, RnnFcDecoderConfig
from ddsp_jax.models.encoders import (
    InstanceNorm,
    MfccEncoderConfig,
    MfccTimeDistributedRnnEncoder,
)
from ddsp_jax.models.saved import ModelError, SavedModel, load_model, save_model

__all__ = [
    "Autoencoder",
    "AutoencoderConfig",
    "FcStack",
    "Gru",
    "InstanceNorm",
    "MfccEncoderConfig",
    "MfccTimeDistributedRnnEncoder",
    "ModelError",
    "RnnFcDecoder",
    "RnnFcDecoderConfig",
    "SavedModel",
    "load_model",
    "preprocess",
    "render",
    "save_model",
]
