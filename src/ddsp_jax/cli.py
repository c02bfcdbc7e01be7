"""The ``ddsp`` command line: each command's arguments and handler, which parses, calls the
library and prints. Heavy imports happen inside the handlers, so ``ddsp --help`` is quick."""

import argparse
import math
import os
import signal
import sys
import tempfile
import time
import traceback
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ddsp_jax.benchmarks.suite import BENCHMARKS
from ddsp_jax.defaults import FRAME_RATE, PRESET_NAMES, SAMPLE_RATE
from ddsp_jax.files import audio_format, audio_writer, check_output, write_audio, write_json

NO_CACHE_VARIABLE = "DDSP_JAX_NO_COMPILATION_CACHE"
DEBUG_VARIABLE = "DDSP_JAX_DEBUG"  # Set to 1: errors show their traceback.


def compilation_cache_dir(environ: dict[str, str]) -> Path | None:
    """Where ``ddsp`` keeps compiled XLA programs between runs, or None for nowhere.

    ``$XDG_CACHE_HOME/ddsp-jax/xla`` (``~/.cache`` by default); None when the user chose a
    cache (``JAX_COMPILATION_CACHE_DIR``, which JAX reads itself) or set
    ``DDSP_JAX_NO_COMPILATION_CACHE``.
    """
    if environ.get("JAX_COMPILATION_CACHE_DIR") or environ.get(NO_CACHE_VARIABLE):
        return None
    base = environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "ddsp-jax" / "xla"


def _enable_compilation_cache() -> None:
    """Reuse compiled programs across runs: a second ``ddsp demo`` skips ~20 s of compiling.

    JAX keys every entry on the program, its compile options, and the jax/jaxlib versions and
    device, so a stale entry cannot be picked up. Programs that compile in under a second are
    kept too (JAX's default skips them): loading them is faster than compiling them again, and
    a run starts with many (model and optimizer initialisation, evaluation). Beside it, the
    traced train step (``training.program_cache``): a warm start skips tracing it too.
    """
    cache_dir = compilation_cache_dir(dict(os.environ))
    if cache_dir is not None:
        import jax

        from ddsp_jax.training import program_cache

        jax.config.update("jax_compilation_cache_dir", str(cache_dir))
        jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
        program_cache.enable(cache_dir.parent / "programs")


def _synth_command(commands: Any) -> None:
    """``ddsp synth``: a note through the standard DDSP graph."""
    synth = commands.add_parser("synth", help="render a note through the standard DDSP graph")
    synth.add_argument("--f0", type=float, required=True, help="fundamental frequency (Hz)")
    synth.add_argument("--seconds", type=float, default=2.0, help="duration (s)")
    synth.add_argument(
        "--sample-rate", type=int, default=SAMPLE_RATE, help="samples per second (Hz)"
    )
    synth.add_argument("--harmonics", type=int, default=60, help="number of harmonics")
    synth.add_argument("--amplitude", type=float, default=0.5, help="harmonic amplitude")
    synth.add_argument("--noise", type=float, default=0.01, help="noise gain relative to it")
    synth.add_argument("--seed", type=int, default=0, help="random seed")
    synth.add_argument("--out", default="synth.wav", help="output WAV path")
    synth.set_defaults(handler=_synth)


def _synth(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    import jax
    import jax.numpy as jnp
    import numpy as np
    from flax import nnx

    from ddsp_jax.core import normalize_harmonics
    from ddsp_jax.processors import ProcessorGraph, ProcessorGraphConfig

    if args.sample_rate <= 0:
        parser.error(f"--sample-rate must be positive, got {args.sample_rate}.")
    if not 0 < args.f0 < args.sample_rate / 2:
        parser.error(
            f"--f0 must be between 0 and Nyquist ({args.sample_rate / 2:g} Hz), got {args.f0}."
        )
    if args.seconds <= 0 or args.harmonics <= 0:
        parser.error("--seconds and --harmonics must be positive.")
    n_samples = round(args.seconds * args.sample_rate)
    n_frames = max(2, round(args.seconds * FRAME_RATE))
    if n_samples < n_frames:
        parser.error(f"--seconds {args.seconds} is too short for {args.sample_rate} Hz.")
    check_audio_output(args.out, 2 * n_samples)

    config = ProcessorGraphConfig(
        sample_rate=args.sample_rate,
        n_samples=n_samples,
        n_harmonics=args.harmonics,
        reverb_length=min(n_samples, args.sample_rate),
    )
    graph = ProcessorGraph(config, rngs=nnx.Rngs(args.seed))
    # A note: 20 ms attack, hold, 200 ms release; spectrum rolling off as 1/k; quiet breath.
    time = np.arange(n_frames) / FRAME_RATE
    envelope = np.clip(np.minimum(time / 0.02, (args.seconds - time) / 0.2), 1e-3, 1.0)
    amplitude = args.amplitude * envelope
    rolloff = jnp.asarray(1.0 / np.arange(1, args.harmonics + 1), jnp.float32)
    f0_hz = jnp.full((1, n_frames, 1), args.f0, jnp.float32)
    controls = {  # Physical controls: the graph's get_signal renders them as they are.
        "f0_hz": f0_hz,
        "amplitudes": jnp.asarray(amplitude, jnp.float32)[None, :, None],
        "harmonic_distribution": normalize_harmonics(
            jnp.broadcast_to(rolloff, (1, n_frames, args.harmonics)), f0_hz, args.sample_rate
        ),
        "noise_magnitudes": jnp.broadcast_to(
            jnp.asarray(args.noise * amplitude, jnp.float32)[None, :, None],
            (1, n_frames, config.n_noise_bands),
        ),
        "ir": graph.reverb.get_ir(),
    }
    audio = np.asarray(graph.get_signal(controls, key=jax.random.key(args.seed))["audio"][0])
    peak = float(np.max(np.abs(audio)))
    level = f"peak {peak:.2f}"
    if peak > 1.0:
        audio = audio / peak
        level = f"normalised from peak {peak:.2f} to 1"
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    write_audio(out, audio, args.sample_rate, "PCM_16")
    print(
        f"Wrote {out.resolve()} ({args.seconds:g} s at {args.sample_rate} Hz, f0 {args.f0:g} Hz, "
        f"{args.harmonics} harmonics, {level})."
    )
    return 0


def _demo_command(commands: Any) -> None:
    """``ddsp demo``: the quick model end to end."""
    demo = commands.add_parser(
        "demo", help="quick mode: train on procedural notes for about a minute, write results"
    )
    demo.add_argument("--out", default="runs/demo", help="output folder")
    demo.add_argument("--steps", type=int, help="training steps (default: the quick preset's)")
    demo.add_argument(
        "--engine",
        choices=["jax", "datarax"],
        default="jax",
        help="datarax: batches from a datarax Pipeline, synthesis by the datarax operator "
        "graph (needs the datarax extra)",
    )
    demo.set_defaults(handler=_demo)


def _demo(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    from ddsp_jax.demo import run_demo
    from ddsp_jax.training.trainer import TrainingError

    if args.steps is not None and args.steps <= 0:
        parser.error(f"--steps must be positive, got {args.steps}.")
    try:
        run_demo(args.out, steps=args.steps, engine=args.engine)
    except (FileExistsError, ImportError) as error:
        parser.error(str(error))
    except TrainingError as error:
        print(f"ddsp demo: {error}", file=sys.stderr)
        return 1
    return 0


def _train_command(commands: Any) -> None:
    """``ddsp train``: train a model, with checkpoints and resume."""
    train = commands.add_parser("train", help="train a model, with checkpoints and resume")
    train.add_argument("--preset", choices=PRESET_NAMES, help="model and training preset (solo)")
    train.add_argument(
        "--data",
        help="'procedural', a folder made by `ddsp prepare`, nsynth:PATH (TFRecord, json/wav tar "
        "or folder; prepared into the run folder), or an .npz with audio, f0_hz, loudness_db",
    )
    train.add_argument(
        "--f0-model", choices=["tiny", "full"], help="CREPE size for preparing nsynth:PATH (full)"
    )
    train.add_argument("--out", required=True, help="run folder")
    train.add_argument("--steps", type=int)
    train.add_argument("--batch-size", type=int)
    train.add_argument("--lr", type=float, help="initial learning rate")
    train.add_argument("--config", help="TOML or JSON file of settings over the preset")
    train.add_argument(
        "--set", action="append", metavar="SECTION.NAME=VALUE", help="override one setting"
    )
    train.add_argument(
        "--minutes",
        type=float,
        help="wall-time budget: as many steps as fit (measured), the learning-rate schedule "
        "scaled to them, ending with a checkpoint and the model folder",
    )
    train.add_argument(
        "--init-from",
        metavar="MODEL|RUN",
        help="fine-tune: start from this model folder, training run or shipped instrument",
    )
    train.add_argument(
        "--init-keys",
        type=_parts,
        metavar="PART,...",
        help="with --init-from, only these parts (e.g. decoder, decoder.rnn, "
        "processor_graph.reverb); default: all",
    )
    train.add_argument(
        "--freeze", type=_parts, metavar="PART,...", help="parts that training leaves unchanged"
    )
    train.add_argument("--resume", action="store_true", help="continue the run in --out")
    train.add_argument(
        "--devices",
        type=_devices,
        metavar="all|N",
        help="split each batch over this many devices (a data-parallel mesh; default: one)",
    )
    train.add_argument(
        "--coordinator",
        metavar="HOST:PORT",
        help="several hosts: process 0's address (else JAX_COORDINATOR_ADDRESS)",
    )
    train.add_argument(
        "--num-processes", type=int, help="several hosts: how many (else JAX_NUM_PROCESSES)"
    )
    train.add_argument(
        "--process-id", type=int, help="several hosts: this one's, from 0 (else JAX_PROCESS_ID)"
    )
    train.set_defaults(handler=_train)


def _devices(value: str) -> str | int:
    """``all`` or a positive number of devices."""
    if value == "all":
        return value
    try:
        count = int(value)
    except ValueError:
        count = 0
    if count < 1:
        raise argparse.ArgumentTypeError(f"expected 'all' or a positive integer, got {value!r}")
    return count


def _parts(value: str) -> list[str]:
    """A comma-separated list of model parts."""
    parts = [part.strip() for part in value.split(",") if part.strip()]
    if not parts:
        raise argparse.ArgumentTypeError(
            f"expected parts such as decoder,decoder.rnn; got {value!r}"
        )
    return parts


def _train_config(args: argparse.Namespace) -> Any:
    """The run's ``TrainConfig``: the saved one when resuming (only ``--steps`` may change),
    else preset + file + ``--set`` + flags (``training.config.resolve``)."""
    from ddsp_jax.training import config as configs

    if args.resume:
        given = {
            "--preset": args.preset,
            "--data": args.data,
            "--batch-size": args.batch_size,
            "--lr": args.lr,
            "--config": args.config,
            "--set": args.set,
            "--f0-model": args.f0_model,
            "--minutes": args.minutes,
            "--init-from": args.init_from,
            "--init-keys": args.init_keys,
            "--freeze": args.freeze,
        }
        ignored = [flag for flag, value in given.items() if value is not None]
        if ignored:
            raise ValueError(
                f"--resume continues the run with its saved config.json; only --steps may "
                f"change, so {', '.join(ignored)} cannot be used with it."
            )
        return configs.saved_config(args.out, args.steps)
    return configs.resolve(
        args.preset,
        args.config,
        args.set or [],
        data=args.data,
        f0_model=args.f0_model,
        learning_rate=args.lr,
        steps=args.steps,
        batch_size=args.batch_size,
        init_from=args.init_from,
        init_keys=args.init_keys,
        freeze=args.freeze,
    )


def _train(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    import jax

    from ddsp_jax.features.torch_weights import WeightsError
    from ddsp_jax.models.saved import save_model
    from ddsp_jax.training import examples as datasets
    from ddsp_jax.training.budget import fit_to_budget
    from ddsp_jax.training.evaluate import HeldOutEvaluation
    from ddsp_jax.training.export import RUN_MODEL_DIR, run_model
    from ddsp_jax.training.parallel import DataParallel, initialize_distributed, is_main_process
    from ddsp_jax.training.trainer import Trainer, TrainingError

    began = time.monotonic()
    if args.minutes is not None and not (math.isfinite(args.minutes) and args.minutes > 0):
        parser.error(f"--minutes must be a positive number, got {args.minutes}.")
    if args.minutes is not None and args.steps is not None:
        parser.error("--minutes sets the number of steps; it cannot be used with --steps.")
    try:
        initialize_distributed(args.coordinator, args.num_processes, args.process_id)
        if args.minutes is not None and jax.process_count() > 1:
            raise ValueError(
                "--minutes times the steps on each process, so several processes could stop "
                "at different steps; give them the same --steps instead."
            )
        parallel = None
        if args.devices is not None or jax.process_count() > 1:
            parallel = DataParallel.over(args.devices or "all")
            print(
                f"Data-parallel over {parallel.n_devices} {jax.default_backend()} devices "
                f"({jax.process_count()} process(es)); this is process {jax.process_index()}."
            )
        config = _train_config(args)
        if config.data.source == "procedural":
            print(f"Rendering {config.data.n_train + config.data.n_test} procedural notes...")
        trainer = Trainer(config, args.out, parallel)
        trainer.check_folder(resume=args.resume)
        data = datasets.load_training_data(config, args.out)
        print(f"Data: {data.description}.")
        train, test = data.train, data.test
        evaluation = HeldOutEvaluation(config, test)
        deadline = None
        if args.minutes is not None:
            print(f"Measuring a step to fit {args.minutes:g} minutes...")
            costs = fit_to_budget(trainer, train, test, evaluation, began + 60 * args.minutes)
            config = trainer.config
            deadline = began + 60 * args.minutes - costs.closing_seconds()
            print(
                f"{config.steps} steps at {costs.step:.2f} s per step, the learning rate "
                f"decaying over {config.optimizer.decay_steps}."
            )
        trainer.start(resume=args.resume)
        share = None if parallel is None else parallel.share(config.batch_size)
        source = datasets.batch_source(train, config.batch_size, config.seed, config.engine, share)
        if args.resume:
            step = trainer.restore(source)
            print(f"Resuming {Path(args.out).resolve()} from step {step}.")
        trainer.fit(source, evaluation=evaluation, deadline=deadline)
        if trainer.stopped_by is not None:
            trainer.close()
            print(
                f"Stopped by {signal.Signals(trainer.stopped_by).name} after step "
                f"{trainer.step}, checkpointed: continue with "
                f"ddsp train --out {args.out} --resume"
            )
            return 128 + trainer.stopped_by
        loss = trainer.evaluate(test)
        trainer.close()
        if is_main_process():
            save_model(
                run_model(config, args.out, trainer.model(), trainer.step),
                Path(args.out) / RUN_MODEL_DIR,
                run=args.out,
            )
    except (ValueError, TrainingError, ImportError, WeightsError) as error:
        print(f"ddsp train: error: {error}", file=sys.stderr)
        return 1
    ended = (
        f" (out of time: the budget ended before step {config.steps})"
        if trainer.out_of_time
        else ""
    )
    print(
        f"Trained {trainer.step} steps in {_duration(time.monotonic() - began)}{ended}; "
        f"held-out loss {loss:.3f}. Run folder: {Path(args.out).resolve()} (config.json, "
        f"metrics.jsonl, checkpoints/, model/: the model folder)."
    )
    return 0


def _duration(seconds: float) -> str:
    return f"{seconds:.1f} s" if seconds < 120 else f"{seconds / 60:.1f} min"


def _prepare_command(commands: Any) -> None:
    """``ddsp prepare``: audio or NSynth → a prepared dataset."""
    prepare = commands.add_parser(
        "prepare", help="turn audio files or NSynth into a training dataset (f0, loudness)"
    )
    prepare.add_argument(
        "inputs",
        nargs="+",
        metavar="INPUT",
        help="audio files (any format libsndfile reads: WAV, FLAC, OGG, MP3, AIFF, ...), folders "
        "(searched recursively), glob patterns, or nsynth:PATH",
    )
    prepare.add_argument("--out", required=True, help="dataset folder")
    prepare.add_argument(
        "--preset",
        choices=PRESET_NAMES,
        help="the training preset the dataset is for: its sample rate, frame rate and example "
        "length are the defaults of the three options below",
    )
    prepare.add_argument(
        "--sample-rate", type=int, help=f"example audio rate (Hz; default {SAMPLE_RATE})"
    )
    prepare.add_argument(
        "--frame-rate", type=int, help=f"feature frames per second (default {FRAME_RATE})"
    )
    prepare.add_argument("--example-seconds", type=float, help="example length (s; default 4)")
    prepare.add_argument("--hop-seconds", type=float, default=1.0, help="step between examples (s)")
    prepare.add_argument(
        "--eval-fraction",
        type=float,
        default=0.1,
        help="share of 20 s chunks held out (1: an evaluation-only dataset for ddsp eval)",
    )
    prepare.add_argument(
        "--chunk-seconds", type=float, default=20.0, help="chunk length; eval takes whole chunks"
    )
    prepare.add_argument(
        "--f0-model",
        choices=["tiny", "full"],
        default="full",
        help="CREPE size (full: the paper's, 12-23 s per s of audio on a 2-core CPU; tiny ~0.45 s)",
    )
    prepare.add_argument(
        "--f0-rate",
        type=int,
        help="run CREPE at this many frames per second, its f0 and confidence interpolated "
        "(in cents) to --frame-rate (default 100, CREPE's own hop: as accurate as 250 on "
        "notes and phrases, 2.5x fewer frames)",
    )
    prepare.add_argument(
        "--subset", choices=["gansynth", "all"], default="gansynth", help="NSynth notes to keep"
    )
    prepare.add_argument(
        "--runner",
        choices=["local", "beam"],
        default="local",
        help="local: this process (default); beam: an Apache Beam pipeline (the beam extra)",
    )
    prepare.add_argument(
        "--beam-args",
        default="",
        metavar="'FLAGS'",
        help="with --runner beam, Beam's pipeline flags, e.g. '--runner=DataflowRunner "
        "--project=...' (default: the DirectRunner)",
    )
    prepare.set_defaults(handler=_prepare)


def _prepare(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    from ddsp_jax.data.dataset import PrepareConfig
    from ddsp_jax.data.preparation import prepare
    from ddsp_jax.features.torch_weights import WeightsError

    sizes = {"sample_rate": SAMPLE_RATE, "frame_rate": FRAME_RATE, "example_seconds": 4.0}
    if args.preset:
        from ddsp_jax.training import PRESETS

        preset = PRESETS[args.preset]
        synth = preset.model.synth
        sizes = {
            "sample_rate": synth.sample_rate,
            "frame_rate": preset.frame_rate,
            "example_seconds": synth.n_samples / synth.sample_rate,
        }
    sizes.update({name: value for name in sizes if (value := getattr(args, name)) is not None})
    try:
        config = PrepareConfig(
            **sizes,
            hop_seconds=args.hop_seconds,
            eval_fraction=args.eval_fraction,
            f0_model=args.f0_model,
            chunk_seconds=args.chunk_seconds,
            nsynth_subset=args.subset,
            **({} if args.f0_rate is None else {"f0_rate": args.f0_rate}),
        )
    except ValueError as error:
        parser.error(str(error))
    if args.beam_args and args.runner != "beam":
        parser.error("--beam-args goes with --runner beam.")
    try:
        if args.runner == "beam":
            from ddsp_jax.data.beam import prepare_with_beam

            info = prepare_with_beam(args.inputs, args.out, config, args.beam_args)
        else:
            info = prepare(args.inputs, args.out, config)
    except (ValueError, WeightsError, ImportError) as error:
        print(f"ddsp prepare: error: {error}", file=sys.stderr)
        return 1
    counts = info["n_examples"]
    print(
        f"Prepared {counts['train'] + counts['eval']} examples ({counts['train']} train, "
        f"{counts['eval']} eval) of {config.example_seconds:g} s from {info['n_inputs']} inputs "
        f"({_duration(info['input_seconds'])} of audio) into {Path(args.out).resolve()} "
        "(dataset.json, shards/)."
    )
    stats = info["statistics"]
    if stats["mean_pitch_midi"] is not None:
        print(
            f"Mean pitch MIDI {stats['mean_pitch_midi']:.1f}; "
            f"{100 * stats['note_frame_fraction']:.0f} % of frames are confidently pitched."
        )
    if info["skipped"]:
        print(f"Skipped {len(info['skipped'])}:")
        for skipped in info["skipped"]:
            print(f"  {skipped['input']}: {skipped['reason']}")
    return 0


def _int_list(text: str) -> list[int]:
    """``"0,40:42"`` → ``[0, 40, 41, 42]`` (ranges inclusive)."""
    values: list[int] = []
    for part in text.split(","):
        low, sep, high = part.partition(":")
        try:
            values.extend(range(int(low), int(high) + 1) if sep else [int(low)])
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"{text!r}: expected numbers and inclusive ranges like 0,40:42."
            ) from None
    if not values:
        raise argparse.ArgumentTypeError(f"{text!r}: no numbers.")
    return values


def _render_command(commands: Any) -> None:
    """``ddsp render-soundfont``: notes or phrases of a SoundFont."""
    render = commands.add_parser(
        "render-soundfont",
        help="render NSynth-like notes (or melodic phrases) of a General MIDI SoundFont",
    )
    render.add_argument(
        "soundfont", nargs="?", help=".sf2 or .sf3 SoundFont (default: an installed FluidR3_GM.sf2)"
    )
    render.add_argument("--out", required=True, help="output folder (NSynth json/wav layout)")
    render.add_argument(
        "--programs",
        type=_int_list,
        default=[0, 24, 40, 56, 71, 73],
        help="General MIDI programs, 0-127, e.g. 40 or 0,40:42 (default: piano, guitar, "
        "violin, trumpet, clarinet, flute)",
    )
    render.add_argument("--pitches", type=_int_list, default=list(range(24, 85)))
    render.add_argument(
        "--velocities",
        type=_int_list,
        default=[50, 100],
        help="note velocities, 1-127 (phrases: the range between the least and greatest)",
    )
    render.add_argument(
        "--phrases",
        type=int,
        default=0,
        help="render this many random melodies per program (varied lengths, dynamics, "
        "vibrato, rests) as WAVs for ddsp prepare, instead of single notes",
    )
    render.add_argument("--phrase-seconds", type=float, default=20.0, help="length of a phrase")
    render.add_argument("--seed", type=int, default=0, help="seed of the phrases' melodies")
    render.set_defaults(handler=_render_soundfont)


def _render_soundfont(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    from ddsp_jax.data.soundfont import SoundFontError, render_phrases, render_soundfont

    try:
        if args.phrases:
            scores = render_phrases(
                args.out,
                args.programs,
                args.pitches,
                args.velocities,
                args.phrases,
                args.phrase_seconds,
                args.seed,
                args.soundfont,
            )
        else:
            labels = render_soundfont(
                args.out, args.programs, args.pitches, args.velocities, args.soundfont
            )
    except SoundFontError as error:
        print(f"ddsp render-soundfont: error: {error}", file=sys.stderr)
        return 1
    if args.phrases:
        print(
            f"Rendered {len(scores)} phrases of {args.phrase_seconds:g} s at 16 kHz into "
            f"{Path(args.out).resolve()} (phrase-*.wav, phrases.json); use them with: "
            f"ddsp prepare {args.out} --out DATASET"
        )
        return 0
    print(
        f"Rendered {len(labels)} notes (4 s at 16 kHz: 3 s held, 1 s release) into "
        f"{Path(args.out).resolve()} (examples.json, audio/); "
        f"use them with: ddsp prepare nsynth:{args.out} --out DATASET"
    )
    return 0


def _export_command(commands: Any) -> None:
    """``ddsp export``: a training run's model as a model folder."""
    export = commands.add_parser(
        "export",
        help="save a training run's model as a model folder, or a model's streaming programs",
    )
    export.add_argument("run", help="training run folder (onnx, stablehlo: or model folder)")
    export.add_argument("--out", required=True, help="folder to write")
    export.add_argument("--step", type=int, help="a run's checkpoint step (default: the latest)")
    export.add_argument(
        "--format",
        choices=["model", "onnx", "stablehlo"],
        default="model",
        help="model: a model folder; onnx: the streaming synthesis and features as ONNX "
        "graphs; stablehlo: the streaming programs as serialized StableHLO; each with "
        "metadata.json, for hosts outside Python (docs/deployment.md)",
    )
    export.add_argument(
        "--block", type=int, default=320, help="stablehlo: samples per block (20 ms at 16 kHz)"
    )
    export.add_argument(
        "--f0-model",
        choices=["tiny", "full", "none"],
        default="tiny",
        help="onnx, stablehlo: the CREPE of the features (none: loudness only)",
    )
    export.set_defaults(handler=_export)


def _export(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    from ddsp_jax.features.torch_weights import WeightsError
    from ddsp_jax.models.saved import ModelError
    from ddsp_jax.training.export import export_model, load_model_or_run, model_of_run

    check_output(args.out, folder=True)
    try:
        saved = None
        if args.format != "model":
            saved = (
                load_model_or_run(args.run)
                if args.step is None
                else model_of_run(args.run, args.step)
            )
        f0_model = None if args.f0_model == "none" else args.f0_model
        if args.format == "onnx":
            try:
                from ddsp_jax.deploy.onnx_export import export_onnx
            except ModuleNotFoundError as error:
                print(
                    f"ddsp export: error: --format onnx needs the {error.name} package: "
                    "pip install 'ddsp-jax[onnx]'.",
                    file=sys.stderr,
                )
                return 1
            out = export_onnx(saved, args.out, f0_model)
            print(
                f"Exported the streaming graphs of {Path(args.run).resolve()} (one frame per "
                f"call) to {out.resolve()} (synth.onnx, features.onnx, metadata.json)."
            )
            return 0
        if args.format == "stablehlo":
            from ddsp_jax.deploy import export_stablehlo

            out = export_stablehlo(saved, args.out, args.block, f0_model)
            files = "synth.stablehlo, " + ("features.stablehlo, " if f0_model else "")
            print(
                f"Exported the streaming programs of {Path(args.run).resolve()} for blocks of "
                f"{args.block} samples to {out.resolve()} ({files}initial_state.npz, "
                "metadata.json)."
            )
            return 0
        out = export_model(args.run, args.out, args.step)
    except (ModelError, ValueError, WeightsError) as error:
        print(f"ddsp export: error: {error}", file=sys.stderr)
        return 1
    except OSError as error:
        print(f"ddsp export: error: cannot write {args.out}: {error}", file=sys.stderr)
        return 1
    print(
        f"Exported {Path(args.run).resolve()} to {out.resolve()} (model.json, params.msgpack, "
        "dataset.json)."
    )
    return 0


def _shift(text: str) -> float | str:
    """``auto`` or a number (semitones or dB)."""
    if text == "auto":
        return text
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected 'auto' or a number, got {text!r}.") from None


def _add_play_arguments(parser: argparse.ArgumentParser) -> None:
    """What ``resynth`` and ``transfer`` share: model, input, output, CREPE size, timbre."""
    parser.add_argument("model", help="model folder (ddsp export)")
    parser.add_argument("input", help="audio file: any length, rate, mono or stereo")
    parser.add_argument("output", help="WAV to write, at the input's sample rate")
    parser.add_argument(
        "--f0-model",
        choices=["tiny", "full"],
        help="CREPE size (default: the one that made the training data's f0, else full)",
    )
    parser.add_argument(
        "--timbre",
        metavar="FILE",
        help="a model with a z encoder (nsynth_ae): play with this sound's timbre (its mean z) "
        "instead of the input's own",
    )


PLOT_SECONDS = 60.0  # ``ddsp transfer --plot`` shows the first minute.


class _Head:
    """The first ``size`` samples of the blocks passing through ``keep`` (in ``blocks``)."""

    def __init__(self, size: int) -> None:
        self.blocks: list[Any] = []
        self.size = size
        self.count = 0

    def keep(self, block: Any) -> Any:
        if self.count < self.size:
            self.blocks.append(block[: self.size - self.count])
            self.count += len(self.blocks[-1])
        return block


def _play(args: argparse.Namespace) -> int:
    """``ddsp resynth`` and ``ddsp transfer``: audio in, the model's audio out, a block at a
    time (memory does not grow with the input's length)."""
    import numpy as np

    from ddsp_jax.data.audio import UnusableInputError, audio_blocks, audio_info, load_audio
    from ddsp_jax.features.torch_weights import WeightsError
    from ddsp_jax.inference import LOUDNESS_WARNING_DB, SilentInputError, loudness_advice, play
    from ddsp_jax.models.saved import ModelError, load_model

    command = f"ddsp {args.command}"
    plot = getattr(args, "plot", None)
    try:
        saved = load_model(args.model)
        details = audio_info(args.input)
        n_samples, rate = details["frames"], details["sample_rate"]
        check_audio_output(args.output, 4 * n_samples)
        if plot:
            check_output(plot)
        f0_model = args.f0_model or (saved.statistics or {}).get("f0_model") or "full"
        timbre = None
        if args.timbre is not None:
            try:
                timbre = load_audio(args.timbre, saved.sample_rate)[0]
            except UnusableInputError as error:
                raise ValueError(f"--timbre {args.timbre}: {error}.") from error
        adjustments = None
        if args.command == "transfer":
            adjustments = {
                "pitch_shift": args.pitch_shift,
                "loudness_shift": args.loudness_shift,
                "quiet_db": args.quiet,
                "autotune_amount": args.autotune,
            }
        kept = round(PLOT_SECONDS * rate) if plot else 0  # Audio kept for the figure.
        heads = (_Head(kept), _Head(kept))
        Path(args.output).parent.mkdir(parents=True, exist_ok=True)
        with audio_writer(args.output, rate) as sink:
            try:
                rendering = play(
                    saved,
                    (heads[0].keep(block) for block in audio_blocks(args.input)),
                    n_samples,
                    rate,
                    lambda block: sink.write(heads[1].keep(block)),
                    f0_model,
                    adjustments,
                    progress=True,
                    timbre=timbre,
                )
                message = ""
            except SilentInputError as error:
                rendering, message = None, f" {str(error).capitalize()} Wrote silence."
                for start in range(0, n_samples, 1 << 16):
                    sink.write(np.zeros(min(1 << 16, n_samples - start), np.float32))
    except UnusableInputError as error:
        print(f"{command}: error: {args.input}: {error}.", file=sys.stderr)
        return 1
    except (ModelError, ValueError, WeightsError) as error:
        print(f"{command}: error: {error}", file=sys.stderr)
        return 1
    verb = "Transferred" if args.command == "transfer" else "Resynthesised"
    print(
        f"{verb} {args.input} ({n_samples / rate:.2f} s at {rate} Hz) with "
        f"{args.model} (step {saved.step}, f0 by CREPE {f0_model}) into {args.output}.{message}"
    )
    report = None if rendering is None else rendering.report
    if report is not None:
        loudness = report["loudness_shift_db"]
        print(
            f"Pitch shift {report['pitch_shift_semitones']:+g} semitones; loudness "
            f"{loudness if isinstance(loudness, str) else f'{loudness:+g} dB'}; "
            f"{report['note_frames']} of {report['n_frames']} frames are notes."
        )
        if abs(report["loudness_error_db"]) > LOUDNESS_WARNING_DB:
            side = "quieter" if report["loudness_error_db"] < 0 else "louder"
            print(
                f"Warning: on the note frames the output is {abs(report['loudness_error_db']):.0f}"
                f" dB {side} than the loudness it was given (median): the model does not "
                f"follow this input's dynamics; {loudness_advice(saved)}.",
                file=sys.stderr,
            )
        if plot:
            from ddsp_jax import plots

            frames = round(PLOT_SECONDS * saved.frame_rate)
            plots.transfer(
                np.concatenate(heads[0].blocks),
                np.concatenate(heads[1].blocks),
                rate,
                {name: values[:frames] for name, values in rendering.features.items()},
                {name: values[:frames] for name, values in rendering.adjusted.items()},
                saved.frame_rate,
                Path(plot),
            )
            print(f"Plot: {Path(plot).resolve()}")
    return 0


def _resynth_command(commands: Any) -> None:
    """``ddsp resynth``: audio played by a model."""
    resynth = commands.add_parser(
        "resynth", help="resynthesise audio with a model (its f0 and loudness, the model's timbre)"
    )
    _add_play_arguments(resynth)
    resynth.set_defaults(handler=_resynth)


def _resynth(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    return _play(args)


def _transfer_command(commands: Any) -> None:
    """``ddsp transfer``: timbre transfer with magenta's adjustments."""
    transfer = commands.add_parser(
        "transfer", help="timbre transfer: play a melody (voice, whistle, ...) with a model"
    )
    _add_play_arguments(transfer)
    transfer.add_argument(
        "--pitch-shift",
        type=_shift,
        default="auto",
        help="semitones, or auto: whole octaves toward the training data's mean pitch",
    )
    transfer.add_argument(
        "--loudness-shift",
        type=_shift,
        default="auto",
        help="dB, or auto: map the notes' loudness quantiles onto the training data's",
    )
    transfer.add_argument(
        "--quiet", type=float, default=20.0, help="dB to lower frames that are not notes"
    )
    transfer.add_argument(
        "--autotune", type=float, default=0.0, help="0-1: pull f0 toward the nearest semitone"
    )
    transfer.add_argument("--plot", help="also write a figure: spectrograms, f0 and loudness")
    transfer.set_defaults(handler=_transfer)


def _transfer(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    if not 0.0 <= args.autotune <= 1.0:
        parser.error(f"--autotune must be in [0, 1], got {args.autotune}.")
    return _play(args)


def _live_command(commands: Any) -> None:
    """``ddsp live``: timbre transfer in real time."""
    live = commands.add_parser(
        "live", help="timbre transfer in real time: microphone or file to speakers or file"
    )
    live.add_argument("model", help="model folder (ddsp export), 16 kHz")
    live.add_argument(
        "--input", help="an audio file, or an input device (index or name); default: the default"
    )
    live.add_argument(
        "--output", help="a .wav file, or an output device (index or name); default: the default"
    )
    live.add_argument(
        "--block", type=int, default=320, help="samples per block at the model's rate (20 ms)"
    )
    live.add_argument("--rate", type=int, help="the devices' sample rate (default: theirs)")
    live.add_argument(
        "--pitch-shift",
        type=_shift,
        default=0.0,
        help="semitones, or auto: whole octaves toward the training data's mean pitch, from "
        "the notes heard so far",
    )
    live.add_argument(
        "--loudness-shift",
        type=_shift,
        default=0.0,
        help="dB, or auto: the notes heard so far moved to the training notes' median loudness",
    )
    live.add_argument(
        "--quiet", type=float, default=20.0, help="dB to lower frames that are not notes"
    )
    live.add_argument("--f0-model", choices=["tiny", "full"], default="tiny", help="CREPE size")
    live.add_argument(
        "--engine",
        choices=["jax", "onnx"],
        default="jax",
        help="jax: the Python engine; onnx: the model exported to ONNX and run in onnxruntime, "
        "about two thirds of the cost per block (the onnx extra)",
    )
    live.add_argument(
        "--no-realtime",
        action="store_true",
        help="with --input FILE --output FILE: the same block path, as fast as it runs",
    )
    live.add_argument("--seconds", type=float, help="stop after this long (default: Ctrl-C)")
    live.set_defaults(handler=_live)


def _is_file(value: str | None, output: bool) -> bool:
    """Whether a ``--input``/``--output`` value names a file rather than a device."""
    if value is None:
        return False
    from ddsp_jax.data.audio import AUDIO_EXTENSIONS

    return Path(value).suffix.lower() in AUDIO_EXTENSIONS or (not output and Path(value).exists())


def _device(value: str | None) -> int | str | None:
    return int(value) if value is not None and value.isdigit() else value


def _live(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    from ddsp_jax import live
    from ddsp_jax.data.audio import UnusableInputError, load_audio
    from ddsp_jax.features.torch_weights import WeightsError
    from ddsp_jax.models.saved import ModelError, load_model
    from ddsp_jax.streaming import HostRateStream

    input_file, output_file = _is_file(args.input, False), _is_file(args.output, True)
    if output_file and Path(args.output).suffix.lower() != ".wav":
        parser.error(f"--output {args.output}: live writes WAV files; name it .wav.")
    if args.no_realtime and not (input_file and output_file):
        parser.error("--no-realtime needs --input FILE and --output FILE.")
    if input_file and output_file and not args.no_realtime:
        parser.error("--input FILE --output FILE has no audio clock: add --no-realtime.")
    if args.block <= 0:
        parser.error(f"--block must be a positive number of samples, got {args.block}.")
    try:
        saved = load_model(args.model)
        audio, rate = None, args.rate
        if input_file:
            audio, details = load_audio(args.input, args.rate)
            rate = args.rate or details["sample_rate"]
        if rate is None:
            import sounddevice as sd

            device = _device(args.input) if args.input is not None else None
            rate = int(sd.query_devices(device, "input")["default_samplerate"])
        transfer = live.transfer_stream(
            saved,
            args.block,
            args.engine,
            args.f0_model,
            args.pitch_shift,
            args.loudness_shift,
            args.quiet,
        )
        host_block = round(args.block * rate / saved.sample_rate)
        engine = live.LiveEngine(
            HostRateStream(transfer, saved.sample_rate, rate, host_block), audio
        )
        engine.warm_up()
        print(
            f"ddsp live: {args.model} at {rate} Hz, blocks of {host_block} samples "
            f"({1e3 * host_block / rate:.1f} ms); latency {engine.report().latency_ms:.1f} ms "
            "(without the audio interface's)."
        )
        if args.no_realtime:
            report = live.render_file(engine, Path(args.output))
        else:
            report = live.run(
                engine,
                live.sounddevice_stream,
                None if input_file else _device(args.input),
                None if output_file else _device(args.output),
                Path(args.output) if output_file else None,
                args.seconds,
            )
    except UnusableInputError as error:
        print(f"ddsp live: error: {args.input}: {error}.", file=sys.stderr)
        return 1
    except live.EngineUnavailableError as error:
        print(f"ddsp live: error: {error}.", file=sys.stderr)
        return 1
    except live.OutputError as error:
        print(f"ddsp live: error: {error}", file=sys.stderr)
        return 1
    except OSError as error:  # sounddevice without PortAudio, or a device that fails.
        print(
            f"ddsp live: error: {error} (audio devices need the live extra, pip install "
            "'ddsp-jax[live]', and the PortAudio library, Debian: libportaudio2).",
            file=sys.stderr,
        )
        return 1
    except ImportError:
        print(
            "ddsp live: error: audio devices need the live extra: pip install 'ddsp-jax[live]'.",
            file=sys.stderr,
        )
        return 1
    except (ModelError, ValueError, WeightsError) as error:
        print(f"ddsp live: error: {error}", file=sys.stderr)
        return 1
    print(
        f"{report.blocks} blocks, {report.late_blocks} late, {report.underflows} under/overflows;"
        f" compute {report.compute_ms_median:.2f} ms median, {report.compute_ms_max:.2f} ms max"
        f" per {1e3 * host_block / rate:.1f} ms block."
    )
    if output_file:
        print(f"Wrote {Path(args.output).resolve()}")
    return 0


def _app_command(commands: Any) -> None:
    """``ddsp app``: timbre transfer in the browser."""
    app = commands.add_parser(
        "app", help="timbre transfer in the browser: a local web page (the app extra)"
    )
    app.add_argument(
        "--models",
        help="a folder of model folders to offer (default: the instruments that come with the "
        "package)",
    )
    app.add_argument("--port", type=int, default=7860)
    app.add_argument(
        "--host",
        default="127.0.0.1",
        help="the address to listen on (default: this machine only; 0.0.0.0 serves the network)",
    )
    app.add_argument("--max-seconds", type=float, default=300.0, help="longest audio accepted")
    app.add_argument("--max-upload-mb", type=float, default=50.0, help="largest upload accepted")
    app.set_defaults(handler=_app)


def _app(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    if args.max_seconds <= 0 or args.max_upload_mb <= 0:
        parser.error("--max-seconds and --max-upload-mb must be positive.")
    if args.models is not None and not Path(args.models).is_dir():
        print(f"ddsp app: error: --models {args.models}: not a folder.", file=sys.stderr)
        return 1
    try:
        import uvicorn

        from ddsp_jax.app import AppConfig, create_app
    except ImportError:
        print("ddsp app: error: it needs its extra: pip install 'ddsp-jax[app]'.", file=sys.stderr)
        return 1
    config = AppConfig(
        models=None if args.models is None else Path(args.models),
        max_upload_bytes=round(args.max_upload_mb * 1024 * 1024),
        max_seconds=args.max_seconds,
    )
    app = create_app(config)
    if not app.state.transfers.models:
        app.state.transfers.close()
        print(f"ddsp app: error: no model folders in {args.models}.", file=sys.stderr)
        return 1
    print(f"ddsp app: open http://{args.host}:{args.port}/ (Ctrl-C stops it).")
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning")
    return 0


def _models_command(commands: Any) -> None:
    """``ddsp models``: the instruments that come with the package."""
    models = commands.add_parser(
        "models", help="list the instruments that come with the package (usable by name)"
    )
    models.set_defaults(handler=_models)


def _models(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    from ddsp_jax.instruments import INSTRUMENTS, bundled_instruments

    found = bundled_instruments()
    if not found:
        print(
            "No instruments come with this copy of ddsp-jax. Make one with: python -m "
            f"ddsp_jax.instruments.make NAME ({', '.join(INSTRUMENTS)}), or train your own "
            "(ddsp train --preset solo-cpu --minutes 60 ...)."
        )
        return 0
    print(
        "Instruments (a name goes wherever a model folder does: ddsp transfer NAME in.wav out.wav):"
    )
    for instrument, folder, info in found:
        low, high = info["pitch_range_midi"]
        held_out, transfer = info["held_out"], info["transfer"]
        print(
            f"\n  {instrument.name}: {info['instrument']}, MIDI {low}-{high}, "
            f"{info['steps']} steps ({folder})"
            f"\n    trained on {info['training_data']}"
            f"\n    held-out: f0 L1 {held_out['f0_l1_cents']:.1f} cents, loudness L1 "
            f"{held_out['loudness_l1_db']:.2f} dB, raw pitch accuracy "
            f"{100 * held_out['raw_pitch_accuracy']:.1f} %; a sung melody: "
            f"{100 * transfer['within_50_cents']:.1f} % of confident frames within 50 cents"
            f"\n    licence: {info['licence'].split(':')[0]}"
        )
    return 0


def _evaluate_command(commands: Any) -> None:
    """``ddsp eval``: held-out metrics of a model."""
    evaluate = commands.add_parser(
        "eval", help="evaluate a model's resynthesis on held-out data (spectral, f0, loudness)"
    )
    evaluate.add_argument("model", help="model folder (ddsp export) or training run folder")
    evaluate.add_argument("--data", required=True, help="dataset folder made by ddsp prepare")
    evaluate.add_argument("--out", help="folder for metrics.json and the figure (MODEL/eval)")
    evaluate.add_argument("--max-examples", type=int, default=64, help="held-out examples used")
    evaluate.add_argument(
        "--f0-model", choices=["tiny", "full"], help="CREPE size (default: the dataset's)"
    )
    evaluate.set_defaults(handler=_evaluate)


def _evaluate(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    from ddsp_jax import plots
    from ddsp_jax.features.torch_weights import WeightsError
    from ddsp_jax.models.saved import ModelError
    from ddsp_jax.training.evaluate import OUTLIER_CENTS, RPA_CENTS, evaluate_model
    from ddsp_jax.training.export import load_model_or_run

    if args.max_examples <= 0:
        parser.error(f"--max-examples must be positive, got {args.max_examples}.")
    model = Path(args.model)  # A shipped instrument's name (no such folder): ./NAME-eval.
    out = (
        Path(args.out) if args.out else model / "eval" if model.exists() else Path(f"{model}-eval")
    )
    check_output(out, folder=True)
    try:
        saved = load_model_or_run(args.model)
        result, audio, examples = evaluate_model(saved, args.data, args.max_examples, args.f0_model)
    except (ModelError, ValueError, WeightsError) as error:
        print(f"ddsp eval: error: {error}", file=sys.stderr)
        return 1
    out.mkdir(parents=True, exist_ok=True)
    write_json(out / "metrics.json", result)
    n_plot = min(3, len(audio))
    plots.resynthesis(
        examples["audio"][:n_plot], audio[:n_plot], saved.sample_rate, out / "resynthesis.png"
    )

    def show(value: float | None, unit: str = "") -> str:
        return "n/a (no pitched examples)" if value is None else f"{value:.4g}{unit}"

    def percent(value: float | None, of: str) -> str:
        return "n/a (no pitched examples)" if value is None else f"{100 * value:.1f} % {of}"

    print(
        f"ddsp eval: {args.model} (step {result['step']}) on {result['n_examples']} held-out "
        f"examples of {args.data} (f0 by CREPE {result['f0_model']}):"
    )
    rows = {
        "spectral loss": show(result["spectral_loss"]),
        "spectral loss, untrained": show(result["untrained_spectral_loss"]),
        "loudness L1": show(result["loudness_l1_db"], " dB"),
        "f0 L1 (confident frames)": show(result["f0_l1_cents"], " cents"),
        "f0 outliers (examples)": percent(
            result["f0_outlier_ratio"], f"of pitched examples (f0 L1 > {OUTLIER_CENTS:g} cents)"
        ),
        "raw pitch accuracy": percent(
            result["raw_pitch_accuracy"],
            f"of confident frames within {RPA_CENTS:g} cents (mean of examples)",
        ),
    }
    for name, value in rows.items():
        print(f"  {name:<32} {value}")
    print(f"Wrote {(out / 'metrics.json').resolve()} and resynthesis.png.")
    return 0


def _print_table(result: dict) -> None:
    rows: list[tuple[str, Any]] = []
    for name, value in result.items():
        if isinstance(value, dict):
            rows += [(f"{name}.{sub}", sub_value) for sub, sub_value in value.items()]
        elif isinstance(value, list) and all(isinstance(item, dict) for item in value):
            for index, item in enumerate(value):
                rows += [(f"{name}[{index}].{sub}", sub_value) for sub, sub_value in item.items()]
        else:
            rows.append((name, value))
    width = max(len(name) for name, _ in rows)
    for name, value in rows:
        shown = f"{value:.4g}" if isinstance(value, float) else value
        print(f"  {name:<{width}}  {shown}")


def _bench_command(commands: Any) -> None:
    """``ddsp bench``: the benchmarks behind docs/benchmarks.md."""
    bench = commands.add_parser("bench", help="run a benchmark")
    bench.add_argument(
        "benchmark",
        choices=[*BENCHMARKS, "all"],
        help="what to measure (matmuls: the decoder's matrix products alone at a train "
        "step's shapes, the ceiling of its roofline fraction; gru: its hand-written backward "
        "pass vs autodiff; f0: CREPE; transfer: how a model's output follows a sung melody's "
        "pitch; stream: live transfer's compute per block and latency; all: synth, train, "
        "matmuls, loudness, f0 and gru in one run)",
    )
    bench.add_argument(
        "--impl",
        choices=["fast", "reference", "both"],
        default="fast",
        help="synth, train, f0: the code path of the hot spots (reference: plain "
        "formulations, differentiated by JAX where trained; both: each in this run, with the "
        "speedup; peak RSS then covers both, so measure memory with one path)",
    )
    bench.add_argument(
        "--f0-model", choices=["tiny", "full"], default="tiny", help="f0, stream: CREPE size"
    )
    bench.add_argument(
        "--soundfont",
        nargs="?",
        const="auto",
        help="f0: also score SoundFont notes and phrases (this .sf2, or the installed "
        "FluidR3_GM.sf2)",
    )
    bench.add_argument("--model", help="transfer: model folder or training run folder")
    bench.add_argument(
        "--network-rate",
        type=int,
        help="f0: run CREPE at this many frames per second, interpolated to 250 Hz frames",
    )
    bench.add_argument("--batch-size", type=int, default=4)
    bench.add_argument(
        "--micro-batches",
        type=int,
        default=1,
        help="train, matmuls: split each batch into this many micro-batches (gradients averaged)",
    )
    bench.add_argument(
        "--devices",
        type=int,
        help="train: split each batch over this many devices (on CPU force them with "
        "XLA_FLAGS=--xla_force_host_platform_device_count=N)",
    )
    bench.add_argument(
        "--preset",
        choices=PRESET_NAMES,
        default="nsynth",
        help="train, matmuls, gru, stream: the model's sizes (stream: use solo, the reverb)",
    )
    bench.add_argument(
        "--seconds",
        type=float,
        default=4.0,
        help="synth, loudness: audio per example; f0: audio (s)",
    )
    bench.add_argument("--repeats", type=int, default=10, help="timed runs after warm-up")
    bench.add_argument("--json", help="also write the figures to this JSON file")
    bench.set_defaults(handler=_bench)


def _bench(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    from ddsp_jax.benchmarks.suite import BenchmarkError, BenchOptions, run_all, run_benchmark

    try:
        options = BenchOptions(
            batch_size=args.batch_size,
            seconds=args.seconds,
            repeats=args.repeats,
            impl=args.impl,
            preset=args.preset,
            micro_batches=args.micro_batches,
            f0_model=args.f0_model,
            soundfont=args.soundfont,
            model=args.model,
            network_rate=args.network_rate,
            devices=args.devices,
        )
    except ValueError as error:
        parser.error(str(error))
    if args.benchmark == "all":

        def report(name: str, figures: dict) -> None:
            print(f"ddsp bench {name}:")
            _print_table(figures)

        result = run_all(options, report)
        print("machine:")
        _print_table(result["machine"])
    else:
        try:
            result = run_benchmark(args.benchmark, options)
        except BenchmarkError as error:
            print(f"ddsp bench: error: {error}", file=sys.stderr)
            return 1
        print(f"ddsp bench {args.benchmark}:")
        _print_table(result)
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        write_json(args.json, result, indent=2)
        print(f"Wrote {Path(args.json).resolve()}")
    return 0


COMMANDS = (
    _synth_command,
    _demo_command,
    _train_command,
    _prepare_command,
    _render_command,
    _export_command,
    _resynth_command,
    _evaluate_command,
    _models_command,
    _transfer_command,
    _live_command,
    _app_command,
    _bench_command,
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ddsp", description="Differentiable Digital Signal Processing in JAX."
    )
    parser.add_argument(
        "--debug",
        action="store_true",
        help=f"show the full traceback of an error (also {DEBUG_VARIABLE}=1)",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    for add_command in COMMANDS:
        add_command(commands)
    return parser


def check_audio_output(path: str | Path, n_bytes: int) -> None:
    """Before the work: ``path`` names an audio format by its extension and can be written,
    with ``n_bytes`` (and a margin) free."""
    check_output(path, n_bytes + 2**20)
    audio_format(path)


def describe_os_error(error: OSError) -> str:
    """An ``OSError`` as ``<reason> (<path>)``."""
    reason = error.strerror or str(error)
    paths = [p for p in (error.filename, error.filename2) if p is not None]
    return f"{reason} ({' -> '.join(str(p) for p in paths)})" if paths else reason


def _crash_report(command: str) -> Path:
    """Write the traceback being handled to a file; returns its path."""
    folder = Path(tempfile.gettempdir())
    with tempfile.NamedTemporaryFile(
        "w", prefix=f"ddsp-{command}-", suffix=".txt", dir=folder, delete=False
    ) as report:
        report.write(f"ddsp {command} ({sys.argv[1:]})\n\n{traceback.format_exc()}")
    return Path(report.name)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``ddsp`` console script.

    Exit status: 0 done; 1 an error the input, the settings or the machine caused (one line
    on stderr: ``ddsp <command>: error: <what> (<path>)``); 2 a usage error; 70 an unexpected
    error (one line naming the file with the full report); 130 interrupted. ``--debug`` or
    ``DDSP_JAX_DEBUG=1`` shows the traceback instead.
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    debug = args.debug or os.environ.get(DEBUG_VARIABLE, "") not in ("", "0")
    _enable_compilation_cache()
    try:
        return args.handler(args, parser)
    except KeyboardInterrupt:
        if debug:
            raise
        print(f"ddsp {args.command}: interrupted.", file=sys.stderr)
        return 130
    except (OSError, ValueError) as error:  # Our own errors about values name the value.
        if debug:
            raise
        what = describe_os_error(error) if isinstance(error, OSError) else str(error)
        print(f"ddsp {args.command}: error: {what}", file=sys.stderr)
        return 1
    except Exception as error:
        if debug:
            raise
        report = _crash_report(args.command)
        print(
            f"ddsp {args.command}: error: unexpected {type(error).__name__}: {error} (the full "
            f"report is in {report}; --debug shows it here)",
            file=sys.stderr,
        )
        return 70


if __name__ == "__main__":
    sys.exit(main())
