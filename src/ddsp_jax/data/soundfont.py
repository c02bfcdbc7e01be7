"""NSynth-like notes and melodic phrases rendered from a General MIDI SoundFont, without any
download.

Each note is held for 3 s and released for 1 s, rendered by libfluidsynth (through
``pyfluidsynth``, reading fluidsynth's float output) at 48 kHz, averaged to mono and
downsampled to 16 kHz by soxr's anti-aliasing resampler: 64000 float32 samples, as NSynth.
The notes are written in NSynth's json/wav layout (``examples.json`` + ``audio/*.wav``) so
``data.nsynth.read_notes`` and ``ddsp prepare nsynth:DIR`` take them.

A model trained on such notes alone learns their fixed timing (onset at the start, release
after 3 s) rather than following loudness. Phrases are what a solo-instrument model needs, as
magenta's models trained on performances: random monophonic melodies (``phrase_score``) with
notes of varied length, velocity, crescendi (MIDI expression) and vibrato (pitch bend),
legato or separated by rests, written as plain WAVs (and their score as JSON) for
``ddsp prepare DIR``.

Needs the ``soundfont`` extra (``pip install 'ddsp-jax[soundfont]'``), the libfluidsynth
library (Debian: ``apt install libfluidsynth3``) and a SoundFont: Debian's
``fluid-soundfont-gm`` (FluidR3_GM.sf2, MIT licence) is found automatically.
"""

import ctypes
import dataclasses
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import soxr

from ddsp_jax.files import write_audio, write_json

RENDER_RATE = 48000  # Hz
SAMPLE_RATE = 16000  # Hz, NSynth's.
HELD_SECONDS = 3.0
RELEASE_SECONDS = 1.0
CONTROL_SECONDS = 0.005  # Phrases: expression and pitch bend are updated this often.
EXPRESSION = 11  # MIDI controller number.
# Rendered files are scaled per program so that its loudest file peaks here (-1 dBFS): the
# synth's own level is ~-23 dBFS; the differences of velocity and expression stay.
PEAK_LEVEL = 10 ** (-1 / 20)
BEND_PER_CENT = 8192 / 200  # Pitch-wheel units per cent at GM's default ±2 semitone range.
SOUNDFONT_PATHS = (
    "/usr/share/sounds/sf2/FluidR3_GM.sf2",  # Debian/Ubuntu fluid-soundfont-gm
    "/usr/share/soundfonts/FluidR3_GM.sf2",  # Fedora, Arch
    "/usr/share/sounds/sf2/default-GM.sf2",
    "/opt/homebrew/share/soundfonts/default.sf2",
)
FAMILIES = (
    "bass brass flute guitar keyboard mallet organ reed string synth_lead vocal".split()  # noqa: SIM905
)
SOURCES = ("acoustic", "electronic", "synthetic")


class SoundFontError(RuntimeError):
    """No renderer or SoundFont (the message says what to install), or a bad request."""


def _gm_family_and_source(program: int) -> tuple[str, str]:
    """NSynth's instrument family and source of a General MIDI program (0-127)."""
    group = program // 8
    acoustic_groups = {1: "mallet", 8: "reed", 9: "flute"}
    if group in acoustic_groups:
        return acoustic_groups[group], "acoustic"
    if group == 0:  # Pianos: electric grand, electric pianos and clavinet are electronic.
        return "keyboard", "electronic" if program in (2, 4, 5, 7) else "acoustic"
    if group == 2:
        return (
            ("reed", "acoustic")
            if program == 22
            else (
                "organ",
                "electronic" if program <= 18 else "acoustic",
            )
        )
    if group == 3:
        return "guitar", "acoustic" if program <= 25 else "electronic"
    if group == 4:
        return "bass", "acoustic" if program == 32 else (
            "synthetic" if program >= 38 else "electronic"
        )
    if group == 5:
        return ("mallet", "acoustic") if program == 47 else ("string", "acoustic")
    if group == 6:
        if program in (52, 53):
            return "vocal", "acoustic"
        return ("string", "acoustic") if program <= 49 else ("synth_lead", "synthetic")
    if group == 7:
        return "brass", "synthetic" if program >= 62 else "acoustic"
    if group == 13:  # Ethnic: sitar, banjo, shamisen, koto, kalimba, bagpipe, fiddle, shanai.
        ethnic = ["guitar"] * 4 + ["mallet", "reed", "string", "reed"]
        return ethnic[program - 104], "acoustic"
    if group == 14:
        return "mallet", "synthetic" if program >= 118 else "acoustic"
    return "synth_lead", "synthetic"  # Synth leads, pads, effects; sound effects.


def find_soundfont(path: str | Path | None = None) -> Path:
    """``path``, or the first General MIDI SoundFont installed in a usual place.

    Raises:
        SoundFontError: Saying what to install, or that ``path`` does not exist.
    """
    if path is not None:
        if not Path(path).is_file():
            raise SoundFontError(f"{path}: no such SoundFont file.")
        return Path(path)
    for candidate in SOUNDFONT_PATHS:
        if Path(candidate).is_file():
            return Path(candidate)
    raise SoundFontError(
        "no General MIDI SoundFont found in "
        f"{', '.join(SOUNDFONT_PATHS)}: install one (Debian/Ubuntu: apt install "
        "fluid-soundfont-gm, FluidR3_GM.sf2, MIT licence) or pass the path of a .sf2 file."
    )


class Renderer:
    """Renders single notes of a SoundFont with libfluidsynth (reverb and chorus off)."""

    def __init__(self, soundfont: str | Path | None = None) -> None:
        try:
            import fluidsynth
        except (ImportError, OSError) as error:
            raise SoundFontError(
                "SoundFont rendering needs pyfluidsynth and the libfluidsynth library: "
                "pip install 'ddsp-jax[soundfont]' and apt install libfluidsynth3 "
                f"(brew install fluid-synth on macOS) ({error})."
            ) from error
        if fluidsynth.lib is None:
            raise SoundFontError("libfluidsynth is not installed (apt install libfluidsynth3).")
        self.path = find_soundfont(soundfont)
        self._synth = fluidsynth.Synth(
            gain=0.5,
            samplerate=float(RENDER_RATE),
            **{"synth.reverb.active": 0, "synth.chorus.active": 0},
        )
        self._sfid = self._synth.sfload(str(self.path))
        if self._sfid < 0:
            raise SoundFontError(f"{self.path}: libfluidsynth cannot load this SoundFont.")
        self._write_float = ctypes.CDLL(fluidsynth.lib).fluid_synth_write_float
        self._write_float.argtypes = [ctypes.c_void_p, ctypes.c_int]
        self._write_float.argtypes += [ctypes.c_void_p, ctypes.c_int, ctypes.c_int] * 2
        self._write_float.restype = ctypes.c_int

    def _render(self, n_samples: int) -> np.ndarray:
        """The next ``n_samples`` of the synth's output, mono float ``[n_samples]``."""
        left, right = np.zeros(n_samples, np.float32), np.zeros(n_samples, np.float32)
        self._write_float(
            self._synth.synth, n_samples, left.ctypes.data, 0, 1, right.ctypes.data, 0, 1
        )
        return 0.5 * (left + right)

    def note(self, program: int, pitch: int, velocity: int) -> np.ndarray:
        """One note: ``[64000]`` float32 at 16 kHz (3 s held, 1 s release)."""
        if not 0 <= pitch <= 127:
            raise SoundFontError(f"pitch must be in 0-127, got {pitch}.")
        if not 1 <= velocity <= 127:
            raise SoundFontError(f"velocity must be in 1-127, got {velocity}.")
        self._select(program)
        self._synth.noteon(0, pitch, velocity)
        held = self._render(round(HELD_SECONDS * RENDER_RATE))
        self._synth.noteoff(0, pitch)
        release = self._render(round(RELEASE_SECONDS * RENDER_RATE))
        audio = soxr.resample(np.concatenate([held, release]), RENDER_RATE, SAMPLE_RATE, "VHQ")
        return np.asarray(audio, np.float32)

    def phrase(self, program: int, score: Sequence["PhraseNote"], seconds: float) -> np.ndarray:
        """A monophonic melody: ``score`` played by ``program``, ``[seconds · 16000]`` float32
        at 16 kHz. Note-ons, note-offs, expression and pitch bend change every
        ``CONTROL_SECONDS``."""
        self._select(program)
        block = round(CONTROL_SECONDS * RENDER_RATE)
        n_blocks = round(seconds / CONTROL_SECONDS)
        onsets = {round(n.start / CONTROL_SECONDS): n for n in score}
        playing: PhraseNote | None = None
        chunks = []
        for index in range(n_blocks):
            time = index * CONTROL_SECONDS
            if playing is not None and index >= round(
                (playing.start + playing.duration) / CONTROL_SECONDS
            ):
                self._synth.noteoff(0, playing.pitch)
                playing = None
            if index in onsets:
                if playing is not None:
                    self._synth.noteoff(0, playing.pitch)
                playing = onsets[index]
                self._synth.pitch_bend(0, 0)
                self._synth.cc(0, EXPRESSION, playing.expression_at(0.0))
                self._synth.noteon(0, playing.pitch, playing.velocity)
            if playing is not None:
                elapsed = time - playing.start
                self._synth.cc(0, EXPRESSION, playing.expression_at(elapsed))
                self._synth.pitch_bend(0, round(BEND_PER_CENT * playing.bend_cents_at(elapsed)))
            chunks.append(self._render(block))
        audio = soxr.resample(np.concatenate(chunks), RENDER_RATE, SAMPLE_RATE, "VHQ")
        return np.asarray(audio, np.float32)

    def _select(self, program: int) -> None:
        if not 0 <= program <= 127:
            raise SoundFontError(f"program must be in 0-127, got {program}.")
        self._synth.system_reset()
        if self._synth.program_select(0, self._sfid, 0, program) != 0:
            raise SoundFontError(f"{self.path} has no General MIDI program {program}.")

    def close(self) -> None:
        self._synth.delete()


@dataclasses.dataclass(frozen=True)
class PhraseNote:
    """One note of a phrase: times in s, ``pitch`` in MIDI, expression 0-127 going linearly
    from ``expression_start`` to ``expression_end``, vibrato of ``vibrato_cents`` (peak) at
    ``vibrato_hz`` fading in over its first ``VIBRATO_DELAY`` s."""

    start: float
    duration: float
    pitch: int
    velocity: int
    expression_start: int
    expression_end: int
    vibrato_cents: float
    vibrato_hz: float

    VIBRATO_DELAY = 0.3  # s

    def expression_at(self, elapsed: float) -> int:
        fraction = min(max(elapsed / self.duration, 0.0), 1.0)
        return round(
            self.expression_start + fraction * (self.expression_end - self.expression_start)
        )

    def bend_cents_at(self, elapsed: float) -> float:
        fade = min(max(elapsed / self.VIBRATO_DELAY, 0.0), 1.0)
        return fade * self.vibrato_cents * float(np.sin(2 * np.pi * self.vibrato_hz * elapsed))


def phrase_score(
    pitches: Sequence[int],
    velocities: tuple[int, int],
    seconds: float,
    rng: np.random.Generator,
    release_seconds: float = 0.5,
) -> list[PhraseNote]:
    """A random monophonic melody over ``seconds`` (the last ``release_seconds`` left for the
    release): a random walk over the sorted ``pitches`` (mostly steps, some leaps of up to 5
    places), note lengths log-uniform in 0.12-1.6 s, velocities uniform in ``velocities``,
    expression ramps between 50 and 127, vibrato (10-40 cents, 4.5-6.5 Hz) on half of the
    notes longer than 0.5 s, and after each note a rest (0.05-0.8 s, one time in three) or
    none (legato)."""
    pitches = sorted(set(pitches))
    if not pitches or not 0 <= pitches[0] <= pitches[-1] <= 127:
        span = f"{pitches[0]}-{pitches[-1]}" if pitches else "none"
        raise SoundFontError(f"phrases need pitches in 0-127, got {span}.")
    low, high = min(velocities), max(velocities)
    score: list[PhraseNote] = []
    place = int(rng.integers(len(pitches)))

    def blocks(seconds: float) -> int:  # Times are whole control blocks.
        return round(seconds / CONTROL_SECONDS)

    start, end = blocks(rng.uniform(0.0, 0.3)), blocks(seconds - release_seconds)
    while start < end - blocks(0.1):
        duration = min(blocks(np.exp(rng.uniform(np.log(0.12), np.log(1.6)))), end - start)
        vibrato = duration * CONTROL_SECONDS > 0.5 and rng.random() < 0.5
        score.append(
            PhraseNote(
                start=start * CONTROL_SECONDS,
                duration=duration * CONTROL_SECONDS,
                pitch=pitches[place],
                velocity=int(rng.integers(low, high + 1)),
                expression_start=int(rng.integers(50, 128)),
                expression_end=int(rng.integers(50, 128)),
                vibrato_cents=float(rng.uniform(10.0, 40.0)) if vibrato else 0.0,
                vibrato_hz=float(rng.uniform(4.5, 6.5)),
            )
        )
        rest = blocks(rng.uniform(0.05, 0.8)) if rng.random() < 1 / 3 else 0
        start += duration + rest
        step = int(
            rng.choice([-5, -3, -2, -1, 1, 2, 3, 5], p=[0.05, 0.1, 0.15, 0.2, 0.2, 0.15, 0.1, 0.05])
        )
        place = int(np.clip(place + step, 0, len(pitches) - 1))
    return score


def note_label(program: int, pitch: int, velocity: int) -> dict:
    """NSynth's label of a note (``instrument`` is the GM program)."""
    family, source = _gm_family_and_source(program)
    instrument_str = f"{family}_{source}_{program:03d}"
    return {
        "note_str": f"{instrument_str}-{pitch:03d}-{velocity:03d}",
        "pitch": pitch,
        "velocity": velocity,
        "instrument": program,
        "instrument_str": instrument_str,
        "instrument_family": FAMILIES.index(family),
        "instrument_family_str": family,
        "instrument_source": SOURCES.index(source),
        "instrument_source_str": source,
        "qualities": [0] * 10,
        "qualities_str": [],
        "sample_rate": SAMPLE_RATE,
    }


def _write_program(files: dict[Path, np.ndarray]) -> None:
    """Write one program's files (path → 16 kHz audio), scaled together to ``PEAK_LEVEL``."""
    peak = max(float(np.max(np.abs(audio))) for audio in files.values())
    gain = PEAK_LEVEL / peak if peak > 0 else 1.0
    for path, audio in files.items():
        write_audio(path, audio * np.float32(gain), SAMPLE_RATE, "FLOAT")


def render_soundfont(
    out: str | Path,
    programs: Sequence[int],
    pitches: Sequence[int],
    velocities: Sequence[int],
    soundfont: str | Path | None = None,
    progress: bool = True,
) -> dict[str, dict]:
    """Render every (program, pitch, velocity) into ``out`` in NSynth's json/wav layout,
    each program's notes scaled together so that its loudest peaks at -1 dBFS
    (``PEAK_LEVEL``).

    Returns:
        The labels written to ``examples.json`` (note name → label).
    """
    from tqdm.auto import tqdm

    renderer = Renderer(soundfont)
    out = Path(out)
    (out / "audio").mkdir(parents=True, exist_ok=True)
    labels: dict[str, dict] = {}
    n_notes = len(programs) * len(pitches) * len(velocities)
    bar = tqdm(total=n_notes, desc="render", disable=not progress)
    try:
        for program in programs:
            files = {}
            for pitch in pitches:
                for velocity in velocities:
                    label = note_label(program, pitch, velocity)
                    path = out / "audio" / f"{label['note_str']}.wav"
                    files[path] = renderer.note(program, pitch, velocity)
                    labels[label["note_str"]] = label
                    bar.update()
            _write_program(files)
    finally:
        bar.close()
        renderer.close()
    write_json(out / "examples.json", labels)
    return labels


def render_phrases(
    out: str | Path,
    programs: Sequence[int],
    pitches: Sequence[int],
    velocities: Sequence[int],
    n_phrases: int,
    phrase_seconds: float = 20.0,
    seed: int = 0,
    soundfont: str | Path | None = None,
    progress: bool = True,
) -> dict[str, list[dict]]:
    """Render ``n_phrases`` random phrases (``phrase_score``, velocities between the least and
    the greatest of ``velocities``) of each program into ``out`` as 16 kHz float WAVs
    ``phrase-PPP-NNN.wav`` (each program's scaled together so that its loudest peaks at
    -1 dBFS, ``PEAK_LEVEL``), and their scores into ``phrases.json``.

    Returns:
        The scores (file name → notes as dicts), as written to ``phrases.json``.
    """
    from tqdm.auto import tqdm

    if n_phrases <= 0 or phrase_seconds < 1.0:
        raise SoundFontError("phrases need n_phrases >= 1 and phrase_seconds >= 1.")
    if not velocities or not all(1 <= v <= 127 for v in velocities):
        raise SoundFontError(f"velocities must be in 1-127, got {list(velocities)}.")
    renderer = Renderer(soundfont)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    scores: dict[str, list[dict]] = {}
    bar = tqdm(total=len(programs) * n_phrases, desc="render", disable=not progress)
    try:
        for program in programs:
            files = {}
            for number in range(n_phrases):
                span = (min(velocities), max(velocities))
                score = phrase_score(pitches, span, phrase_seconds, rng)
                name = f"phrase-{program:03d}-{number:03d}.wav"
                files[out / name] = renderer.phrase(program, score, phrase_seconds)
                scores[name] = [dataclasses.asdict(note) for note in score]
                bar.update()
            _write_program(files)
    finally:
        bar.close()
        renderer.close()
    write_json(out / "phrases.json", scores)
    return scores
