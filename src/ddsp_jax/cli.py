"""The ``ddsp`` command line."""

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

FRAME_RATE = 250  # Control frames per second.


def _synth(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    import jax
    import jax.numpy as jnp
    import numpy as np
    import soundfile as sf
    from flax import nnx

    from ddsp_jax.core import inverse_exp_sigmoid
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
    rolloff = 1.0 / np.arange(1, args.harmonics + 1)
    raw = np.asarray(inverse_exp_sigmoid(jnp.asarray(amplitude, jnp.float32)))
    controls = {
        "f0_hz": jnp.full((1, n_frames, 1), args.f0, jnp.float32),
        "amplitudes": jnp.asarray(raw, jnp.float32)[None, :, None],
        "harmonic_distribution": jnp.broadcast_to(
            inverse_exp_sigmoid(jnp.asarray(rolloff, jnp.float32)), (1, n_frames, args.harmonics)
        ),
        "noise_magnitudes": jnp.broadcast_to(
            inverse_exp_sigmoid(jnp.asarray(args.noise * amplitude, jnp.float32))[None, :, None]
            + 5.0,  # FilteredNoise subtracts its initial bias of 5 before scaling.
            (1, n_frames, config.n_noise_bands),
        ),
    }
    audio = np.asarray(graph(controls, key=jax.random.key(args.seed))["audio"][0])
    peak = float(np.max(np.abs(audio)))
    if peak > 1.0:
        audio = audio / peak
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    sf.write(out, audio, args.sample_rate, subtype="PCM_16")
    print(
        f"Wrote {out.resolve()} ({args.seconds:g} s at {args.sample_rate} Hz, f0 {args.f0:g} Hz, "
        f"{args.harmonics} harmonics, peak {min(peak, 1.0):.2f})."
    )
    return 0


def _print_table(result: dict) -> None:
    width = max(len(k) for k in result)
    for name, value in result.items():
        if isinstance(value, dict):
            for sub, sub_value in value.items():
                print(f"  {(name + '.' + sub):<{width + 12}} {sub_value}")
        elif isinstance(value, float):
            print(f"  {name:<{width + 12}} {value:.4g}")
        else:
            print(f"  {name:<{width + 12}} {value}")


def _bench(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    from ddsp_jax.benchmarks import synth

    if args.batch_size <= 0 or args.seconds <= 0 or args.repeats <= 0:
        parser.error("--batch-size, --seconds and --repeats must be positive.")
    result = synth.run(batch_size=args.batch_size, seconds=args.seconds, repeats=args.repeats)
    print(f"ddsp bench {args.benchmark}:")
    _print_table(result)
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(result, indent=2) + "\n")
        print(f"Wrote {Path(args.json).resolve()}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ddsp", description="Differentiable Digital Signal Processing in JAX."
    )
    commands = parser.add_subparsers(dest="command", required=True)

    synth = commands.add_parser("synth", help="render a note through the standard DDSP graph")
    synth.add_argument("--f0", type=float, required=True, help="fundamental frequency (Hz)")
    synth.add_argument("--seconds", type=float, default=2.0, help="duration (s)")
    synth.add_argument("--sample-rate", type=int, default=16000, help="samples per second (Hz)")
    synth.add_argument("--harmonics", type=int, default=60, help="number of harmonics")
    synth.add_argument("--amplitude", type=float, default=0.5, help="harmonic amplitude")
    synth.add_argument("--noise", type=float, default=0.01, help="noise gain relative to it")
    synth.add_argument("--seed", type=int, default=0, help="random seed")
    synth.add_argument("--out", default="synth.wav", help="output WAV path")
    synth.set_defaults(handler=_synth)

    bench = commands.add_parser("bench", help="run a benchmark")
    bench.add_argument("benchmark", choices=["synth"], help="what to measure")
    bench.add_argument("--batch-size", type=int, default=4)
    bench.add_argument("--seconds", type=float, default=4.0, help="audio per example (s)")
    bench.add_argument("--repeats", type=int, default=10, help="timed runs after warm-up")
    bench.add_argument("--json", help="also write the figures to this JSON file")
    bench.set_defaults(handler=_bench)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``ddsp`` console script."""
    parser = build_parser()
    args = parser.parse_args(argv)
    return args.handler(args, parser)


if __name__ == "__main__":
    sys.exit(main())
