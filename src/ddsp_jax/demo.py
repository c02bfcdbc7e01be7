"""``ddsp demo``: quick mode end to end — data, training, listening and looking."""

import dataclasses
import shutil
import signal
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from ddsp_jax import plots
from ddsp_jax.files import write_audio, write_json
from ddsp_jax.models.autoencoder import Autoencoder, preprocess
from ddsp_jax.training.config import PRESETS, TrainConfig, model_class_of
from ddsp_jax.training.examples import batch_source, procedural_split
from ddsp_jax.training.trainer import Trainer, TrainingError

SUMMARY_FILE = "summary.json"
FIGURES = ("dataset_samples.png", "training_curve.png", "resynthesis.png", "learned_parameters.png")
N_LISTEN = 3  # Held-out examples written as WAV and plotted.


def _prepare(out: Path) -> None:
    """Use ``out`` if it is empty or holds an earlier demo (replaced); refuse otherwise."""
    if out.exists() and any(out.iterdir()):
        if not (out / SUMMARY_FILE).exists():
            raise FileExistsError(
                f"{out} exists and does not hold an earlier demo; choose another --out."
            )
        shutil.rmtree(out)
    out.mkdir(parents=True, exist_ok=True)


def demo_config(steps: int | None = None, engine: str = "jax") -> TrainConfig:
    """The quick preset, with ``steps`` if given (its learning rate still decays tenfold over
    the run), on training ``engine``."""
    config = dataclasses.replace(PRESETS["quick"], engine=engine)
    if steps is not None:
        optimizer = dataclasses.replace(config.optimizer, decay_steps=steps)
        config = dataclasses.replace(config, steps=steps, optimizer=optimizer)
    # One checkpoint, at the end: the demo is short and its time is the user's.
    config = dataclasses.replace(config, checkpoint_every=config.steps)
    return config


@nnx.jit
def _physical_controls(
    model: Autoencoder, f0_hz: jax.Array, loudness_db: jax.Array
) -> dict[str, jax.Array]:
    """The synthesis graph's physical controls for conditioning ``[1, n_frames]`` (one
    compiled call rather than one per operation)."""
    features = preprocess(f0_hz, loudness_db)
    raw = {**model.decoder(features), "f0_hz": features["f0_hz"]}
    return model.processor_graph.get_controls(raw)


def _learned_controls(trainer: Trainer, train: dict[str, np.ndarray]) -> dict[str, Any]:
    """The decoder's harmonic distribution and noise response at a typical pitch/loudness,
    and the reverb's impulse response."""
    f0 = float(np.median(train["f0_hz"]))
    loudness = float(np.percentile(train["loudness_db"], 80))
    n_frames = train["f0_hz"].shape[1]
    controls = _physical_controls(
        trainer.model(), jnp.full((1, n_frames), f0), jnp.full((1, n_frames), loudness)
    )
    return {
        "f0_hz": f0,
        "harmonic_distribution": np.asarray(controls["harmonic_distribution"][0]).mean(axis=0),
        "noise_magnitudes": np.asarray(controls["noise_magnitudes"][0]).mean(axis=0),
        "impulse_response": np.asarray(controls["ir"][0]) if "ir" in controls else None,
    }


def run_demo(
    out_dir: str | Path = "runs/demo",
    steps: int | None = None,
    engine: str = "jax",
    progress: bool = True,
    log: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Train the quick model on procedural notes and write results into ``out_dir``.

    Returns:
        The summary (also written to ``summary.json``).
    """
    start = time.perf_counter()
    out = Path(out_dir)
    _prepare(out)
    config = demo_config(steps, engine)
    model_class_of(engine)  # Without the engine's extra, fail before any work.
    synth = config.model.synth
    data = config.data
    log(
        f"Rendering {data.n_train} training and {data.n_test} held-out procedural notes "
        f"({data.example_seconds:g} s at {synth.sample_rate} Hz)..."
    )
    train, test = procedural_split(config)
    trainer = Trainer(config, out / "run")
    trainer.start(resume=False)
    loss_untrained = trainer.evaluate(test)
    log(f"Held-out loss of the untrained model: {loss_untrained:.3f}")

    train_start = time.perf_counter()
    source = batch_source(train, config.batch_size, config.seed, config.engine)
    metrics = trainer.fit(source, progress=progress)
    train_seconds = time.perf_counter() - train_start
    if trainer.stopped_by is not None:
        trainer.close()
        raise TrainingError(
            f"stopped by {signal.Signals(trainer.stopped_by).name} after step {trainer.step} "
            f"of {config.steps}: no results written (the run is in {out / 'run'})."
        )
    loss_trained = trainer.evaluate(test)
    trainer.close()
    log(
        f"Held-out loss after {config.steps} steps: {loss_trained:.3f} "
        f"({100 * loss_trained / loss_untrained:.0f} % of untrained)"
    )

    resynthesised, _ = trainer.resynthesize({k: v[:N_LISTEN] for k, v in test.items()})
    targets = test["audio"][:N_LISTEN]
    wavs = []
    for i in range(len(targets)):
        for name, audio in (("target", targets[i]), ("resynthesis", resynthesised[i])):
            path = out / f"{name}_{i}.wav"
            write_audio(path, np.clip(audio, -1.0, 1.0), synth.sample_rate, "PCM_16")
            wavs.append(path.name)

    learned = _learned_controls(trainer, train)
    plots.dataset_samples(train["audio"], train["f0_hz"], synth.sample_rate, out / FIGURES[0])
    plots.training_curve(
        metrics, out / FIGURES[1], held_out={0: loss_untrained, config.steps: loss_trained}
    )
    plots.resynthesis(targets, resynthesised, synth.sample_rate, out / FIGURES[2])
    plots.learned_parameters(
        learned["impulse_response"],
        learned["harmonic_distribution"],
        learned["f0_hz"],
        learned["noise_magnitudes"],
        synth.sample_rate,
        out / FIGURES[3],
    )
    summary = {
        "loss_untrained": loss_untrained,
        "loss_trained": loss_trained,
        "loss_ratio": loss_trained / loss_untrained,
        "steps": config.steps,
        "batch_size": config.batch_size,
        "engine": config.engine,
        "train_seconds": train_seconds,
        "wall_seconds": time.perf_counter() - start,
        "examples_per_second": config.steps * config.batch_size / train_seconds,
        "figures": list(FIGURES),
        "wavs": wavs,
        "run_dir": str((out / "run").resolve()),
    }
    write_json(out / SUMMARY_FILE, summary, indent=2)
    log(
        f"Done in {summary['wall_seconds']:.0f} s "
        f"({summary['examples_per_second']:.1f} training examples/s). "
        f"Results in {out.resolve()}:"
    )
    for name in (*FIGURES, *wavs, SUMMARY_FILE):
        log(f"  {out.resolve() / name}")
    return summary
