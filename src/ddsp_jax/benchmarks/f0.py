"""f0 benchmark: CREPE's cost per second of audio and its accuracy on tones of known pitch."""

import time
from typing import Any

import numpy as np

from ddsp_jax.benchmarks.common import (
    machine,
    merge_implementations,
    on_implementation,
    time_calls,
)
from ddsp_jax.benchmarks.flops import crepe_flops_per_frame
from ddsp_jax.defaults import FRAME_RATE, SAMPLE_RATE
from ddsp_jax.features.f0 import compute_f0, frame_centres

VIBRATO_CENTS, VIBRATO_HZ = 20.0, 5.0


def vibrato_tones(midi: np.ndarray, seconds: float = 0.5) -> tuple[np.ndarray, np.ndarray]:
    """Harmonic tones (7 harmonics, 1/k) with a 5 Hz, ±20-cent vibrato and noise at −50 dB.

    Returns:
        ``(audio [n, n_samples], f0_hz [n, n_frames])``: the audio and its exact f0 at
        250 Hz frames (center framing, frame ``j`` at ``j / 250`` s).
    """
    t = np.arange(round(seconds * SAMPLE_RATE)) / SAMPLE_RATE
    frames = np.arange(1 + round(seconds * FRAME_RATE)) / FRAME_RATE
    rng = np.random.default_rng(0)
    base = 440.0 * 2.0 ** ((np.asarray(midi) - 69) / 12)
    audio, f0_hz = [], []
    for f in base:
        vibrato = 2.0 ** (VIBRATO_CENTS / 1200 * np.sin(2 * np.pi * VIBRATO_HZ * t))
        phase = 2 * np.pi * np.cumsum(f * vibrato) / SAMPLE_RATE
        tone = sum(0.3 / k * np.sin(k * phase) for k in range(1, 8))
        audio.append(tone + 0.003 * rng.normal(size=t.size))
        f0_hz.append(f * 2.0 ** (VIBRATO_CENTS / 1200 * np.sin(2 * np.pi * VIBRATO_HZ * frames)))
    return np.asarray(audio, np.float32), np.asarray(f0_hz)


# Instruments whose range spans MIDI 36-84 (a violin at MIDI 36 is its sample transposed two
# octaves below the instrument, which CREPE hears an octave up): piano, nylon guitar, cello,
# trumpet.
SOUNDFONT_PROGRAMS = (0, 24, 42, 56)
SOUNDFONT_SEGMENT = (0.1, 0.6)  # Seconds of the held part scored: after the attack.


def soundfont_notes(
    programs: tuple[int, ...] = SOUNDFONT_PROGRAMS, soundfont: str | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """SoundFont notes at MIDI 36, 40, ..., 84, velocity 100, cut to ``SOUNDFONT_SEGMENT``.

    Returns:
        ``(audio [n, n_samples], midi [n])``.
    """
    from ddsp_jax.data.soundfont import Renderer

    renderer = Renderer(soundfont)
    start, stop = (round(s * SAMPLE_RATE) for s in SOUNDFONT_SEGMENT)
    pitches = np.arange(36, 85, 4)
    try:
        audio = [renderer.note(p, int(k), 100)[start:stop] for p in programs for k in pitches]
    finally:
        renderer.close()
    return np.asarray(audio), np.tile(pitches, len(programs))


# Phrases (``data.soundfont.phrase_score``) of the shipped instruments' programs over their
# training ranges: violin, flute, trumpet, tenor saxophone.
PHRASE_PROGRAMS = {40: (55, 91), 73: (60, 93), 56: (54, 84), 66: (44, 75)}
PHRASE_SECONDS = 10.0
PHRASE_MARGIN = 0.05  # s of each note left out after its onset and before its end.


def soundfont_phrases(
    soundfont: str | None = None, per_program: int = 2, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Rendered phrases (``PHRASE_PROGRAMS``, ``per_program`` each, ``PHRASE_SECONDS`` long:
    legato and detached notes, dynamics, vibrato of 10-40 cents) and their true f0.

    Returns:
        ``(audio [n, n_samples], f0_hz [n, n_frames])`` at 250 Hz frames (center framing),
        the f0 the score plays (its note and pitch bend) on frames at least
        ``PHRASE_MARGIN`` inside a note, NaN elsewhere (rests, onsets, releases).
    """
    from ddsp_jax.data.soundfont import Renderer, phrase_score

    renderer = Renderer(soundfont)
    rng = np.random.default_rng(seed)
    times = np.arange(1 + round(PHRASE_SECONDS * FRAME_RATE)) / FRAME_RATE
    audio, f0_hz = [], []
    try:
        for program, (low, high) in PHRASE_PROGRAMS.items():
            for _ in range(per_program):
                score = phrase_score(range(low, high + 1), (40, 120), PHRASE_SECONDS, rng)
                audio.append(renderer.phrase(program, score, PHRASE_SECONDS))
                truth = np.full(len(times), np.nan)
                for note in score:
                    inside = (times >= note.start + PHRASE_MARGIN) & (
                        times <= note.start + note.duration - PHRASE_MARGIN
                    )
                    bend = [note.bend_cents_at(t - note.start) for t in times[inside]]
                    truth[inside] = 440.0 * 2.0 ** ((note.pitch + np.asarray(bend) / 100 - 69) / 12)
                f0_hz.append(truth)
    finally:
        renderer.close()
    return np.asarray(audio), np.asarray(f0_hz)


def _accuracy(f0_hz: np.ndarray, true_f0: np.ndarray, prefix: str = "") -> dict[str, float]:
    """Median absolute error (cents), raw pitch accuracy (share of frames within 50 cents)
    and the worst row's median error, leaving out 4 edge frames and frames whose true f0 is
    NaN."""
    errors = np.abs(1200.0 * np.log2(f0_hz[:, 4:-4] / true_f0[:, 4:-4]))
    scored = np.isfinite(errors)
    return {
        f"{prefix}median_error_cents": float(np.median(errors[scored])),
        f"{prefix}raw_pitch_accuracy": float(np.mean(errors[scored] <= 50.0)),
        f"{prefix}worst_note_median_cents": float(
            max(np.median(row[ok]) for row, ok in zip(errors, scored, strict=True) if ok.any())
        ),
    }


def run(
    capacity: str = "tiny",
    seconds: float = 1.0,
    repeats: int = 3,
    soundfont: str | None = None,
    network_rate: int | None = None,
    implementations: tuple[str, ...] = ("fast",),
) -> dict[str, Any]:
    """Time ``compute_f0`` (250 Hz frames, Viterbi; CREPE at ``network_rate`` frames per
    second when given) on ``seconds`` of 16 kHz audio, with a 2048² matmul timed in turn as
    this machine's ceiling, then measure its accuracy on ``vibrato_tones`` at MIDI 36, 40,
    ..., 84 (0.5 s each), and with ``soundfont`` (a path, or ``"auto"`` for the installed
    one) on ``soundfont_notes`` and ``soundfont_phrases``. With both ``implementations``,
    the network's plain convolutions (``reference``) are timed too, interleaved
    (``merge_implementations``); the accuracy is the fast path's.

    Returns:
        ``compile_seconds`` (first call), ``median_seconds``, ``seconds_per_audio_second``,
        ``frames_per_second`` (250 Hz frames made per second), ``gflop_per_audio_second``
        (CREPE's products at its rate, ``crepe_flops_per_frame``), ``roofline_fraction``
        (CREPE's FLOP/s over the matmul's), ``cpu_per_wall`` (process CPU time over wall
        time: the cores kept busy); ``median_error_cents``, ``raw_pitch_accuracy`` (fraction
        of frames within 50 cents) and ``worst_note_median_cents`` (4 edge frames left out),
        the same prefixed ``soundfont_`` for SoundFont notes and ``phrases_`` for phrases
        (``worst_note_median_cents`` then the worst phrase's); ``machine``.
    """
    from ddsp_jax.benchmarks.train import PEAK, matmul_peak

    rate = FRAME_RATE if network_rate is None else network_rate
    t = np.arange(round(seconds * SAMPLE_RATE)) / SAMPLE_RATE
    audio = (0.5 * np.sin(2 * np.pi * 220.0 * t)).astype(np.float32)

    def f0() -> Any:
        return compute_f0(audio, SAMPLE_RATE, capacity=capacity, network_rate=network_rate)

    peak_call, peak_flops = matmul_peak()
    calls = {name: on_implementation(name, f0) for name in implementations}
    timings = time_calls({**calls, PEAK: peak_call}, repeats=repeats)
    peak = peak_flops / timings[PEAK]["median_seconds"]
    network_frames = len(frame_centres(len(audio), rate, "center"))
    flops = network_frames * crepe_flops_per_frame(capacity)
    figures = {}
    for name, call in calls.items():
        timing = timings[name]
        wall, cpu = time.perf_counter(), time.process_time()
        call()
        figures[name] = {
            "compile_seconds": timing["first_call_seconds"],
            "median_seconds": timing["median_seconds"],
            "seconds_per_audio_second": timing["median_seconds"] / seconds,
            "frames_per_second": (1 + round(seconds * FRAME_RATE)) / timing["median_seconds"],
            "roofline_fraction": flops / timing["median_seconds"] / peak,
            "cpu_per_wall": (time.process_time() - cpu) / (time.perf_counter() - wall),
        }
    tones, true_f0 = vibrato_tones(np.arange(36, 85, 4))
    f0_hz, _ = compute_f0(tones, SAMPLE_RATE, FRAME_RATE, capacity, network_rate=network_rate)
    accuracy = _accuracy(f0_hz, true_f0)
    if soundfont is not None:
        notes, midi = soundfont_notes(soundfont=None if soundfont == "auto" else soundfont)
        f0_hz, _ = compute_f0(notes, SAMPLE_RATE, FRAME_RATE, capacity, network_rate=network_rate)
        true_f0 = np.broadcast_to(440.0 * 2.0 ** ((midi[:, None] - 69) / 12), f0_hz.shape)
        accuracy |= _accuracy(f0_hz, true_f0, "soundfont_")
        accuracy["soundfont_programs"] = ",".join(map(str, SOUNDFONT_PROGRAMS))
        phrases, true_f0 = soundfont_phrases(None if soundfont == "auto" else soundfont)
        f0_hz, _ = compute_f0(phrases, SAMPLE_RATE, FRAME_RATE, capacity, network_rate=network_rate)
        accuracy |= _accuracy(f0_hz, true_f0, "phrases_")
        accuracy["phrases_programs"] = ",".join(map(str, PHRASE_PROGRAMS))
    return {
        "benchmark": "f0",
        "capacity": capacity,
        "network_rate": rate,
        "audio_seconds": seconds,
        **merge_implementations(figures, "median_seconds"),
        "gflop_per_audio_second": flops / seconds / 1e9,
        "matmul_peak_gflops": peak / 1e9,
        **accuracy,
        "machine": machine(),
    }
