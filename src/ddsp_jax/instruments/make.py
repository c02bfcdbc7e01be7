"""Make a shipped instrument from scratch: ``python -m ddsp_jax.instruments.make NAME``.

The recipe, as the commands a user would type (``--dry-run`` prints them):

1. ``ddsp render-soundfont``: 30 phrases of 20 s (10 minutes) of the instrument's General
   MIDI program in FluidR3_GM, and 6 more with another seed for evaluation;
2. ``ddsp prepare --preset solo-cpu``: both with CREPE tiny at the preset's 100 Hz frames
   (the evaluation phrases as an evaluation-only dataset);
3. ``ddsp train --preset solo-cpu --minutes 60`` (or ``--steps N``: the same model on any
   machine, where a time budget gives a faster machine more steps);
4. ``ddsp eval`` on the evaluation phrases and ``ddsp bench transfer`` (a sung melody);

a command whose output exists is skipped (a rerun after a stop goes on from there); then,
if the model reaches ``TARGETS`` and ``TRANSFER_TARGET``, its folder is written into the
package (float16 parameters when its resynthesis stays within 0.1 dB loudness and 1 cent
f0 of float32's, else float32) with ``instrument.json``: the instrument, its data, licence,
metrics, learning curve and these commands.
"""

import argparse
import json
import shlex
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ddsp_jax.files import write_json
from ddsp_jax.instruments import INFO_FILE, INSTRUMENTS, SOUNDFONT_LICENCE, Instrument

PACKAGE_FOLDER = Path(__file__).parent
TRAIN_PHRASES, EVAL_PHRASES = 30, 6
FLOAT16_LOUDNESS_DB, FLOAT16_F0_CENTS = 0.1, 1.0  # What float16 parameters may change.
# What a shipped instrument reaches on its evaluation phrases and on a sung melody.
TARGETS = {"f0_l1_cents": 20.0, "loudness_l1_db": 4.0, "raw_pitch_accuracy": 0.95}
TRANSFER_TARGET = 0.9  # Share of confident frames within 50 cents.


def shortfalls(evaluation: dict[str, Any], transfer: dict[str, Any]) -> list[str]:
    """The targets (``TARGETS``, ``TRANSFER_TARGET``) a trained model misses, in words.

    >>> shortfalls({"f0_l1_cents": 12.0, "loudness_l1_db": 5.5, "raw_pitch_accuracy": 0.97},
    ...            {"within_50_cents": 0.95})
    ['loudness_l1_db 5.5 (target 4)']
    """
    missed = []
    for key, target in TARGETS.items():
        value = evaluation.get(key)
        worse = value is None or (value < target if key == "raw_pitch_accuracy" else value > target)
        if worse:
            missed.append(f"{key} {value:.3g} (target {target:g})" if value is not None else key)
    if transfer.get("within_50_cents", 0.0) < TRANSFER_TARGET:
        missed.append(
            f"transfer within 50 cents {transfer.get('within_50_cents', 0.0):.3g} "
            f"(target {TRANSFER_TARGET:g})"
        )
    return missed


def recipe(instrument: Instrument, work: Path, length: tuple[str, str]) -> list[list[str]]:
    """The ``ddsp`` commands (argument lists) that train ``instrument`` in ``work``, the
    training's length an option of ``ddsp train``: ``("--minutes", "60")`` or
    ``("--steps", "6000")``."""
    low, high = instrument.pitches
    render = ["render-soundfont", "--programs", str(instrument.program)]
    render += ["--pitches", f"{low}:{high}", "--velocities", "40,120"]
    features = ["--f0-model", "tiny", "--preset", "solo-cpu"]
    phrases, eval_phrases = str(work / "phrases"), str(work / "eval-phrases")
    data, eval_data, model = (
        str(work / "data"),
        str(work / "eval-data"),
        str(work / "run" / "model"),
    )
    return [
        [*render, "--phrases", str(TRAIN_PHRASES), "--out", phrases],
        [*render, "--phrases", str(EVAL_PHRASES), "--seed", "1", "--out", eval_phrases],
        ["prepare", phrases, "--out", data, *features],
        ["prepare", eval_phrases, "--out", eval_data, *features, "--eval-fraction", "1"],
        [
            "train",
            "--preset",
            "solo-cpu",
            "--data",
            data,
            "--out",
            str(work / "run"),
            *length,
            *(option for setting in instrument.settings for option in ("--set", setting)),
        ],
        ["eval", model, "--data", eval_data, "--out", str(work / "eval"), "--f0-model", "tiny"],
        ["bench", "transfer", "--model", model, "--json", str(work / "transfer.json")],
    ]


def made(command: list[str]) -> Path | None:
    """The file showing that ``command`` (of ``recipe``) has already run to its end, if it
    exists: a rerun after a stop skips it."""
    out = Path(command[command.index("--json" if "--json" in command else "--out") + 1])
    done = {
        "render-soundfont": out / "phrases.json",
        "prepare": out / "dataset.json",
        "train": out / "model" / "model.json",
        "eval": out / "metrics.json",
        "bench": out,
    }[command[0]]
    return done if done.exists() else None


def float16_changes(model_folder: Path, eval_data: Path) -> dict[str, float]:
    """How much storing ``model_folder``'s parameters as float16 changes its resynthesis of
    ``eval_data``'s examples: mean absolute loudness difference (dB, all frames) and f0
    difference (cents, frames where both CREPE tiny confidences are at least 0.85)."""
    import tempfile

    from ddsp_jax.data.dataset import PreparedDataset
    from ddsp_jax.features import compute_features
    from ddsp_jax.features.notes import CONFIDENT
    from ddsp_jax.models import load_model, save_model
    from ddsp_jax.training.evaluate import resynthesize_batches

    full = load_model(model_folder)
    with tempfile.TemporaryDirectory() as folder:
        half = load_model(save_model(full, Path(folder) / "half", float16=True))
    dataset = PreparedDataset(eval_data)
    examples = dataset.read(dataset.index("eval")[:16])
    features = [
        compute_features(
            resynthesize_batches(saved.model, examples, 8),
            saved.sample_rate,
            saved.frame_rate,
            "tiny",
        )
        for saved in (full, half)
    ]
    confident = (features[0]["f0_confidence"] >= CONFIDENT) & (
        features[1]["f0_confidence"] >= CONFIDENT
    )
    cents = 1200 * np.abs(
        np.log2(features[1]["f0_hz"][confident] / features[0]["f0_hz"][confident])
    )
    loudness = np.abs(features[1]["loudness_db"] - features[0]["loudness_db"])
    return {"loudness_db": float(np.mean(loudness)), "f0_cents": float(np.mean(cents))}


def learning_curve(run: Path, started: float | None) -> list[dict[str, float]]:
    """The held-out evaluations of training run ``run``: one entry per evaluation with its
    step, metrics and the minutes since ``started`` (Unix time; None: the run was trained
    before, so minutes are left out)."""
    from ddsp_jax.training import read_metrics

    return [
        ({"minutes": round((m["time"] - started) / 60, 2)} if started else {})
        | {k: v for k, v in m.items() if k == "step" or k.startswith("eval_")}
        for m in read_metrics(run)
        if "eval_loss" in m
    ]


def install(
    instrument: Instrument,
    work: Path,
    into: Path,
    commands: list[list[str]],
    curve: list[dict[str, float]],
) -> Path:
    """Write the trained model of ``work`` into ``into`` with its ``instrument.json``
    (``curve``: its ``learning_curve``). Paths under ``work`` are recorded as under the
    default working folder, ``instruments/NAME``: nothing of the maker's machine is kept."""
    import dataclasses

    from ddsp_jax.models import load_model, save_model

    def relative(text: str) -> str:
        return text.replace(str(work), str(Path("instruments") / instrument.name))

    saved = load_model(work / "run" / "model")
    data = {**saved.training["data"], "source": relative(saved.training["data"]["source"])}
    saved = dataclasses.replace(saved, training={**saved.training, "data": data})
    changes = float16_changes(work / "run" / "model", work / "eval-data")
    float16 = (
        changes["loudness_db"] <= FLOAT16_LOUDNESS_DB and changes["f0_cents"] <= FLOAT16_F0_CENTS
    )
    save_model(saved, into, float16=float16)
    evaluation = json.loads((work / "eval" / "metrics.json").read_text())
    transfer = json.loads(relative((work / "transfer.json").read_text()))
    low, high = instrument.pitches
    info: dict[str, Any] = {
        "name": instrument.name,
        "instrument": instrument.description,
        "pitch_range_midi": [low, high],
        "training_data": (
            f"{TRAIN_PHRASES} phrases of 20 s of General MIDI program {instrument.program} "
            f"of FluidR3_GM.sf2 (MIDI {low}-{high}), f0 by CREPE tiny"
        ),
        "licence": SOUNDFONT_LICENCE,
        "steps": saved.step,
        "float16": float16,
        "float16_changes": changes,
        "held_out": {
            key: evaluation[key]
            for key in ("n_examples", "spectral_loss", "loudness_l1_db", "f0_l1_cents")
            if key in evaluation
        }
        | {"raw_pitch_accuracy": evaluation.get("raw_pitch_accuracy")},
        "transfer": transfer,
        "learning_curve": curve,
        "commands": [relative(shlex.join(["ddsp", *command])) for command in commands],
    }
    write_json(into / INFO_FILE, info)  # Last: a folder without it is not listed.
    return into


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m ddsp_jax.instruments.make", description=__doc__.splitlines()[0]
    )
    parser.add_argument("name", choices=sorted(INSTRUMENTS))
    parser.add_argument("--work", type=Path, help="working folder (default: instruments/NAME)")
    length = parser.add_mutually_exclusive_group()
    length.add_argument("--minutes", type=float, default=60.0, help="training wall time")
    length.add_argument("--steps", type=int, help="training steps (instead of --minutes)")
    parser.add_argument(
        "--into", type=Path, help="model folder to write (default: the package's NAME/)"
    )
    parser.add_argument(
        "--dry-run", action="store_true", help="print the commands (checked) and stop"
    )
    args = parser.parse_args(argv)
    from ddsp_jax.cli import build_parser
    from ddsp_jax.cli import main as ddsp

    instrument = INSTRUMENTS[args.name]
    work = args.work or Path("instruments") / instrument.name
    length = (
        ("--steps", str(args.steps))
        if args.steps is not None
        else ("--minutes", f"{args.minutes:g}")
    )
    commands = recipe(instrument, work, length)
    ddsp_parser = build_parser()
    for command in commands:
        ddsp_parser.parse_args(command)  # A command that does not parse stops here.
        print(shlex.join(["ddsp", *command]))
    if args.dry_run:
        return 0
    started = {}
    for command in commands:
        print(f"\n$ {shlex.join(['ddsp', *command])}", flush=True)
        if (done := made(command)) is not None:
            print(f"(done before: {done} exists)")
            continue
        started[command[0]] = time.time()
        if ddsp(command) != 0:
            print(f"make: stopped: ddsp {command[0]} failed.", file=sys.stderr)
            return 1
    missed = shortfalls(
        json.loads((work / "eval" / "metrics.json").read_text()),
        json.loads((work / "transfer.json").read_text()),
    )
    if missed:
        print(f"make: not installed: the model misses {'; '.join(missed)}.", file=sys.stderr)
        return 1
    curve = learning_curve(work / "run", started.get("train"))
    into = args.into or PACKAGE_FOLDER / instrument.name
    install(instrument, work, into, commands, curve)
    print(f"Wrote {into} ({json.loads((into / INFO_FILE).read_text())['held_out']}).")
    return 0


if __name__ == "__main__":
    sys.exit(main())
