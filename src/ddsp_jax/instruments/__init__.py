"""Instruments that come with the package: trained model folders, loaded by name.

magenta/ddsp offered four solo instruments (violin, flute, trumpet, tenor saxophone); these
are the same four (``INSTRUMENTS``), trained with the ``solo-cpu`` preset on phrases of the
FluidR3_GM SoundFont (MIT licence) by ``python -m ddsp_jax.instruments.make NAME``, which
reproduces each from scratch and installs it only when it reaches the quality targets; the
package holds those that did. ``load_model("violin")``, ``ddsp transfer violin in.wav out.wav`` and
every command that takes a model folder accept their names; ``ddsp models`` lists them.

Each folder is a model folder (``models.saved``) with ``instrument.json`` beside it: the
instrument, the data it was trained on, its licence, its held-out metrics and the commands
that made it.
"""

import dataclasses
import json
from importlib import resources
from pathlib import Path
from typing import Any

INFO_FILE = "instrument.json"
SOUNDFONT_LICENCE = (
    "Trained on audio rendered with FluidR3_GM.sf2 by Frank Wen (MIT licence): "
    "Copyright (c) 2000-2002, 2008, 2012 Frank Wen; permission is hereby granted, free of "
    "charge, to any person obtaining a copy of this software [the SoundFont] ... to deal in "
    "the Software without restriction (the full text: /usr/share/doc/fluid-soundfont-gm/"
    "copyright on Debian)."
)


@dataclasses.dataclass(frozen=True)
class Instrument:
    """An instrument the package can ship.

    Attributes:
        name: What ``load_model`` and the command line take.
        description: The instrument in words.
        program: Its General MIDI program (0-127) in FluidR3_GM.
        pitches: The MIDI notes its training phrases span, ``(lowest, highest)``.
        settings: ``ddsp train --set`` overrides of the preset for this instrument.
    """

    name: str
    description: str
    program: int
    pitches: tuple[int, int]
    settings: tuple[str, ...] = ()


SOLO_CPU_FIRST_RATE = "optimizer.learning_rate=0.001"
INSTRUMENTS: dict[str, Instrument] = {
    instrument.name: instrument
    for instrument in (
        # The violin, the flute and the trumpet were trained at solo-cpu's first learning
        # rate, 1e-3 (the flute with seed 1: with seed 0 its harmonic amplitude collapsed).
        Instrument("violin", "violin", 40, (55, 91), (SOLO_CPU_FIRST_RATE,)),
        Instrument("flute", "flute", 73, (60, 93), (SOLO_CPU_FIRST_RATE, "seed=1")),
        Instrument("trumpet", "trumpet", 56, (54, 84), (SOLO_CPU_FIRST_RATE,)),
        Instrument("tenor-sax", "tenor saxophone", 66, (44, 75)),
    )
}


def bundled_instrument(name: str) -> Path | None:
    """The model folder of the shipped instrument ``name``, or None when there is none."""
    if name not in INSTRUMENTS:
        return None
    folder = Path(str(resources.files(__name__) / name))
    return folder if (folder / INFO_FILE).is_file() else None


def bundled_instruments() -> list[tuple[Instrument, Path, dict[str, Any]]]:
    """Every shipped instrument: ``(instrument, its model folder, its instrument.json)``."""
    found = []
    for instrument in INSTRUMENTS.values():
        folder = bundled_instrument(instrument.name)
        if folder is not None:
            found.append((instrument, folder, json.loads((folder / INFO_FILE).read_text())))
    return found


__all__ = [
    "INFO_FILE",
    "INSTRUMENTS",
    "SOUNDFONT_LICENCE",
    "Instrument",
    "bundled_instrument",
    "bundled_instruments",
]
