"""Shared test helpers."""

import os

import numpy as np
import pytest

import ddsp_jax  # noqa: F401  (first: sets XLA flags before any JAX computation)

# The CLI keeps compiled programs in ~/.cache between runs; tests stay out of the user's home.
os.environ["DDSP_JAX_NO_COMPILATION_CACHE"] = "1"

SAMPLE_RATES = (16000, 22050, 44100, 48000)


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(0)


def relative_error_db(value: np.ndarray, reference: np.ndarray) -> float:
    """RMS error relative to the reference's RMS, in dB."""
    value = np.asarray(value, np.float64)
    reference = np.asarray(reference, np.float64)
    error = np.sqrt(np.mean((value - reference) ** 2))
    return float(20.0 * np.log10(error / np.sqrt(np.mean(reference**2))))


def tone(f0: float, seconds: float, sample_rate: int, amplitude: float = 0.4) -> np.ndarray:
    """Four harmonics of ``f0`` rolling off as 1/k, ``amplitude`` the first's."""
    t = np.arange(round(seconds * sample_rate)) / sample_rate
    return sum(amplitude / k * np.sin(2 * np.pi * k * f0 * t) for k in range(1, 5))
