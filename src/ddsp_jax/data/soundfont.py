"""NSynth-like notes rendered from a General MIDI SoundFont, without any download.

Each note is held for 3 s and released for 1 s, rendered by libfluidsynth (through
``pyfluidsynth``, reading fluidsynth's float output) at 48 kHz, averaged to mono and
downsampled to 16 kHz by soxr's anti-aliasing resampler: 64000 float32 samples, as NSynth.
The notes are written in NSynth's json/wav layout (``examples.json`` + ``audio/*.wav``) so
``data.nsynth.read_notes`` and ``ddsp prepare nsynth:DIR`` take them.

Needs the ``soundfont`` extra (``pip install 'ddsp-jax[soundfont]'``), the libfluidsynth
library (Debian: ``apt install libfluidsynth3``) and a SoundFont: Debian's
``fluid-soundfont-gm`` (FluidR3_GM.sf2, MIT licence) is found automatically.
"""

import ctypes
import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr

RENDER_RATE = 48000  # Hz
SAMPLE_RATE = 16000  # Hz, NSynth's.
HELD_SECONDS = 3.0
RELEASE_SECONDS = 1.0
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
        for name, value, top in (("program", program, 127), ("pitch", pitch, 127)):
            if not 0 <= value <= top:
                raise SoundFontError(f"{name} must be in 0-{top}, got {value}.")
        if not 1 <= velocity <= 127:
            raise SoundFontError(f"velocity must be in 1-127, got {velocity}.")
        self._synth.system_reset()
        if self._synth.program_select(0, self._sfid, 0, program) != 0:
            raise SoundFontError(f"{self.path} has no General MIDI program {program}.")
        self._synth.noteon(0, pitch, velocity)
        held = self._render(round(HELD_SECONDS * RENDER_RATE))
        self._synth.noteoff(0, pitch)
        release = self._render(round(RELEASE_SECONDS * RENDER_RATE))
        audio = soxr.resample(np.concatenate([held, release]), RENDER_RATE, SAMPLE_RATE, "VHQ")
        return np.asarray(audio, np.float32)

    def close(self) -> None:
        self._synth.delete()


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


def render_soundfont(
    out: str | Path,
    programs: Sequence[int],
    pitches: Sequence[int],
    velocities: Sequence[int],
    soundfont: str | Path | None = None,
    progress: bool = True,
) -> dict[str, dict]:
    """Render every (program, pitch, velocity) into ``out`` in NSynth's json/wav layout.

    Returns:
        The labels written to ``examples.json`` (note name → label).
    """
    from tqdm.auto import tqdm

    renderer = Renderer(soundfont)
    out = Path(out)
    (out / "audio").mkdir(parents=True, exist_ok=True)
    labels: dict[str, dict] = {}
    requests = [(p, k, v) for p in programs for k in pitches for v in velocities]
    try:
        for program, pitch, velocity in tqdm(requests, desc="render", disable=not progress):
            label = note_label(program, pitch, velocity)
            audio = renderer.note(program, pitch, velocity)
            sf.write(out / "audio" / f"{label['note_str']}.wav", audio, SAMPLE_RATE, "FLOAT")
            labels[label["note_str"]] = label
    finally:
        renderer.close()
    (out / "examples.json").write_text(json.dumps(labels, indent=1) + "\n")
    return labels
