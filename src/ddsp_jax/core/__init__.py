"""Pure ``jax.numpy`` DSP functions: the numerical core of ddsp-jax.

No classes and no state. Shapes are ``[batch, time, channels]``; frequencies are in Hz,
phases in cycles, levels in dB unless a name says otherwise.
"""

from ddsp_jax.core.defaults import FRAME_RATE, SAMPLE_RATE
from ddsp_jax.core.filters import (
    fft_convolve,
    frequency_filter,
    frequency_impulse_response,
    next_fast_fft_size,
    overlap_add,
)
from ddsp_jax.core.oscillators import (
    harmonic_oscillator,
    harmonic_synthesis,
    harmonic_synthesis_reference,
    normalize_harmonics,
    oscillator_bank,
    remove_above_nyquist,
)
from ddsp_jax.core.resample import RESAMPLE_METHODS, resample
from ddsp_jax.core.spectral import (
    a_weighting,
    compute_logmag,
    compute_logmel,
    compute_loudness,
    compute_mag,
    compute_mel,
    compute_mfcc,
    compute_power,
    compute_rms_energy,
    frame,
    frame_starts,
    mel_weight_matrix,
    stft,
)
from ddsp_jax.core.units import (
    DB_RANGE,
    amplitude_to_db,
    db_to_amplitude,
    db_to_power,
    exp_sigmoid,
    hz_to_midi,
    inverse_exp_sigmoid,
    midi_to_hz,
    power_to_db,
    safe_divide,
    safe_log,
)

__all__ = [
    "DB_RANGE",
    "FRAME_RATE",
    "RESAMPLE_METHODS",
    "SAMPLE_RATE",
    "a_weighting",
    "amplitude_to_db",
    "compute_logmag",
    "compute_logmel",
    "compute_loudness",
    "compute_mag",
    "compute_mel",
    "compute_mfcc",
    "compute_power",
    "compute_rms_energy",
    "db_to_amplitude",
    "db_to_power",
    "exp_sigmoid",
    "fft_convolve",
    "frame",
    "frame_starts",
    "frequency_filter",
    "frequency_impulse_response",
    "harmonic_oscillator",
    "harmonic_synthesis",
    "harmonic_synthesis_reference",
    "hz_to_midi",
    "inverse_exp_sigmoid",
    "mel_weight_matrix",
    "midi_to_hz",
    "next_fast_fft_size",
    "normalize_harmonics",
    "oscillator_bank",
    "overlap_add",
    "power_to_db",
    "remove_above_nyquist",
    "resample",
    "safe_divide",
    "safe_log",
    "stft",
]
