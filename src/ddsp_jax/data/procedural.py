"""Deterministic, NSynth-like procedural notes for quick mode.

Each "instrument" has its own spectral envelope (a tilt plus formant resonances, so the
harmonic distribution depends on pitch), odd/even balance, brightness that grows with
loudness, a breath/bow noise colour and an envelope shape. Each note draws a pitch,
velocity and vibrato. Every part of the DDSP model has something to learn: the harmonic
distribution, the noise filter, and (with ``room``) the reverb.
"""

import dataclasses
import functools

import jax
import jax.numpy as jnp
import numpy as np

from ddsp_jax.core.filters import fft_convolve, frequency_filter
from ddsp_jax.core.oscillators import harmonic_synthesis
from ddsp_jax.core.units import amplitude_to_db, midi_to_hz
from ddsp_jax.defaults import FRAME_RATE, SAMPLE_RATE


@dataclasses.dataclass(frozen=True)
class Instrument:
    """The timbre parameters of one procedural instrument."""

    tilt_db_per_octave: float
    formants_hz: tuple[float, ...]
    formant_gains_db: tuple[float, ...]
    formant_widths_octaves: tuple[float, ...]
    even_gain: float
    brightness: float
    noise_level: float
    noise_centre_hz: float
    attack_seconds: float
    decay_seconds: float
    sustain_level: float
    release_seconds: float


def make_instrument(rng: np.random.Generator) -> Instrument:
    """Draw an instrument's timbre."""
    n_formants = int(rng.integers(1, 4))
    return Instrument(
        tilt_db_per_octave=float(rng.uniform(-12.0, -4.0)),
        formants_hz=tuple(float(f) for f in np.sort(rng.uniform(400.0, 4000.0, n_formants))),
        formant_gains_db=tuple(float(g) for g in rng.uniform(6.0, 18.0, n_formants)),
        formant_widths_octaves=tuple(float(w) for w in rng.uniform(0.2, 0.6, n_formants)),
        even_gain=float(rng.uniform(0.2, 1.0)),
        brightness=float(rng.uniform(0.0, 6.0)),
        noise_level=float(rng.uniform(0.005, 0.03)),
        noise_centre_hz=float(rng.uniform(1000.0, 5000.0)),
        attack_seconds=float(rng.uniform(0.01, 0.12)),
        decay_seconds=float(rng.uniform(0.1, 0.6)),
        sustain_level=float(rng.uniform(0.4, 0.9)),
        release_seconds=float(rng.uniform(0.05, 0.3)),
    )


def _spectral_envelope_db(instrument: Instrument, frequency: np.ndarray) -> np.ndarray:
    octaves = np.log2(np.maximum(frequency, 1.0) / 100.0)
    level = instrument.tilt_db_per_octave * octaves
    for centre, gain, width in zip(
        instrument.formants_hz,
        instrument.formant_gains_db,
        instrument.formant_widths_octaves,
        strict=True,
    ):
        level = level + gain * np.exp(-0.5 * (np.log2(frequency / centre) / width) ** 2)
    return level


def _envelope(instrument: Instrument, time: np.ndarray, seconds: float) -> np.ndarray:
    attack = np.clip(time / instrument.attack_seconds, 0.0, 1.0)
    after_attack = np.maximum(time - instrument.attack_seconds, 0.0)
    decay = instrument.sustain_level + (1.0 - instrument.sustain_level) * np.exp(
        -after_attack / (instrument.decay_seconds / 3.0)
    )
    release_start = seconds - instrument.release_seconds
    release = np.exp(-np.maximum(time - release_start, 0.0) / (instrument.release_seconds / 4.0))
    return attack * decay * release


@functools.partial(jax.jit, static_argnums=(6, 7))
def _synthesize(
    f0_hz: jax.Array,
    amplitude: jax.Array,
    harmonic_distribution: jax.Array,
    noise_magnitudes: jax.Array,
    room_ir: jax.Array | None,
    key: jax.Array,
    n_samples: int,
    sample_rate: int,
) -> jax.Array:
    """Harmonic notes plus filtered noise, optionally in a room: ``[n_notes, n_samples]``.

    One compiled program (the operations one by one would each compile on their own).
    """
    harmonic = harmonic_synthesis(
        f0_hz, amplitude, harmonic_distribution, n_samples=n_samples, sample_rate=sample_rate
    )
    noise = jax.random.uniform(key, (f0_hz.shape[0], n_samples), jnp.float32, -1.0, 1.0)
    audio = harmonic + frequency_filter(noise, noise_magnitudes, 257)
    if room_ir is not None:
        audio = audio + fft_convolve(audio, room_ir[None], delay_compensation=0)
    return audio


def render_notes(
    n_notes: int,
    seed: int,
    *,
    instrument_seed: int = 0,
    n_instruments: int = 1,
    sample_rate: int = SAMPLE_RATE,
    seconds: float = 4.0,
    frame_rate: int = FRAME_RATE,
    n_harmonics: int = 60,
    pitch_range: tuple[int, int] = (48, 72),
    room: bool = True,
) -> dict[str, np.ndarray]:
    """Render notes and the conditioning they were made from.

    Args:
        n_notes: How many notes.
        seed: Seed of the notes (pitch, velocity, vibrato, noise).
        instrument_seed: Seed of the instruments, so train and test sets can share them.
        n_instruments: How many instruments the notes are spread over.
        sample_rate: Samples per second (Hz).
        seconds: Length of each note (s).
        frame_rate: Control frames per second (Hz).
        n_harmonics: Harmonics per note (those above Nyquist are dropped).
        pitch_range: Inclusive MIDI pitch range.
        room: Add a small room reverb (an exponentially decaying noise IR).

    Returns:
        ``audio`` ``[n_notes, n_samples]``, ``f0_hz`` and ``loudness_db``
        ``[n_notes, n_frames]`` (the harmonic amplitude envelope in dB), ``instrument``
        ``[n_notes]`` (int), all NumPy float32 (int64 for ``instrument``).
    """
    rng = np.random.default_rng(seed)
    instrument_rng = np.random.default_rng(instrument_seed)
    instruments = [make_instrument(instrument_rng) for _ in range(n_instruments)]
    n_samples = round(seconds * sample_rate)
    n_frames = round(seconds * frame_rate)
    time = np.arange(n_frames) / frame_rate

    which = rng.integers(0, n_instruments, n_notes)
    pitch = rng.integers(pitch_range[0], pitch_range[1] + 1, n_notes)
    velocity = rng.uniform(0.15, 0.5, n_notes)
    vibrato_cents = rng.uniform(0.0, 25.0, n_notes)
    vibrato_rate = rng.uniform(4.0, 6.5, n_notes)
    vibrato_phase = rng.uniform(0.0, 2 * np.pi, n_notes)

    f0 = np.empty((n_notes, n_frames))
    amplitude = np.empty((n_notes, n_frames))
    distribution = np.empty((n_notes, n_frames, n_harmonics))
    noise_magnitudes = np.empty((n_notes, n_frames, 65))
    bands = np.linspace(0.0, sample_rate / 2.0, 65)
    harmonic_numbers = np.arange(1, n_harmonics + 1)
    for i, instrument in enumerate(instruments[w] for w in which):
        envelope = _envelope(instrument, time, seconds)
        fade_in = np.clip((time - instrument.attack_seconds) / 0.3, 0.0, 1.0)
        cents = (
            vibrato_cents[i]
            * fade_in
            * np.sin(2 * np.pi * vibrato_rate[i] * time + vibrato_phase[i])
        )
        f0[i] = float(midi_to_hz(pitch[i])) * 2.0 ** (cents / 1200.0)
        amplitude[i] = velocity[i] * envelope
        frequencies = f0[i][:, None] * harmonic_numbers
        level_db = _spectral_envelope_db(instrument, frequencies)
        level_db = level_db + instrument.brightness * envelope[:, None] * np.log2(harmonic_numbers)
        gains = 10.0 ** (level_db / 20.0)
        gains[:, 1::2] *= instrument.even_gain
        distribution[i] = gains / gains.sum(axis=1, keepdims=True)
        colour = np.exp(-0.5 * (np.log2(np.maximum(bands, 20.0) / instrument.noise_centre_hz)) ** 2)
        breath = instrument.noise_level * (
            0.5 * envelope + 1.5 * (time < instrument.attack_seconds)
        )
        noise_magnitudes[i] = velocity[i] * breath[:, None] * colour

    room_ir = None
    if room:
        ir_length = sample_rate // 2
        ir_time = np.arange(ir_length) / sample_rate
        decay_seconds = instrument_rng.uniform(0.2, 0.5)  # RT60 of the room.
        room_ir = np.random.default_rng(instrument_seed + 1).uniform(-1, 1, ir_length)
        room_ir *= 0.02 * 10.0 ** (-3.0 * ir_time / decay_seconds)
        room_ir[0] = 0.0
        room_ir = room_ir.astype(np.float32)
    audio = _synthesize(
        f0[..., None].astype(np.float32),
        amplitude[..., None].astype(np.float32),
        distribution.astype(np.float32),
        noise_magnitudes.astype(np.float32),
        room_ir,
        jax.random.key(seed),
        n_samples,
        sample_rate,
    )
    return {
        "audio": np.asarray(audio, np.float32),
        "f0_hz": f0.astype(np.float32),
        "loudness_db": np.asarray(amplitude_to_db(jnp.asarray(amplitude, jnp.float32))),
        "instrument": which.astype(np.int64),
    }


VOWEL_A = ((700.0, 130.0, 1.0), (1220.0, 140.0, 0.5), (2600.0, 250.0, 0.25))  # Hz, Hz, gain


def sung_melody(
    midi: list[float],
    note_seconds: float,
    sample_rate: int,
    vibrato_cents: float = 30.0,
    vibrato_hz: float = 5.5,
    seed: int = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """A vocal-like test melody: a glottal source (harmonics falling 12 dB per octave) under
    the formants of the vowel /a/ (700, 1220, 2600 Hz), with vibrato, breath noise at −40 dB,
    glides of 40 ms between notes and 80 ms fades at both ends.

    Returns:
        ``(audio [n_samples], f0_hz [n_samples])``: peak 0.3, and the f0 it was sung at.
    """
    n_note = round(note_seconds * sample_rate)
    t = np.arange(n_note * len(midi)) / sample_rate
    steps = np.repeat(np.asarray(midi, np.float64), n_note)
    glide = max(1, round(0.04 * sample_rate))
    pitch = np.convolve(
        np.pad(steps, (glide // 2, glide - glide // 2 - 1), mode="edge"),
        np.ones(glide) / glide,
        mode="valid",
    )
    pitch = pitch + vibrato_cents / 100.0 * np.sin(2 * np.pi * vibrato_hz * t)
    f0_hz = 440.0 * 2.0 ** ((pitch - 69.0) / 12.0)
    phase = 2 * np.pi * np.cumsum(f0_hz) / sample_rate
    audio = np.zeros_like(t)
    for k in range(1, int(sample_rate / 2 / f0_hz.max())):
        envelope = sum(
            gain * np.exp(-0.5 * ((k * f0_hz - centre) / width) ** 2)
            for centre, width, gain in VOWEL_A
        )
        audio += envelope / k**2 * np.sin(k * phase)
    audio /= np.max(np.abs(audio))
    audio += 0.01 * np.random.default_rng(seed).normal(size=t.size)
    fade = np.clip(np.minimum(t, t[-1] - t) / 0.08, 0.0, 1.0)
    return (0.3 * fade * audio / np.max(np.abs(audio))).astype(np.float32), f0_hz
