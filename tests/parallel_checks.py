"""Training on a forced number of CPU devices, run in a subprocess by test_parallel.py
(``XLA_FLAGS=--xla_force_host_platform_device_count=N`` must be set before jax starts).

    python parallel_checks.py RUN_DIR,DEVICES,STEPS,new|resume,MICRO_BATCHES ...

runs each training in turn in this process: the tiny config on procedural notes with
``DEVICES`` devices (0: no mesh) until step ``STEPS`` in ``RUN_DIR`` (``resume``: from its
checkpoint), printing one JSON line per training with its step losses and the decoder's
parameters. With ``JAX_COORDINATOR_ADDRESS``, ``JAX_NUM_PROCESSES`` and
``JAX_PROCESS_ID`` set it is one process of several.
"""

import dataclasses
import json
import sys
import time

import jax
import numpy as np

from ddsp_jax.data.procedural import render_notes
from ddsp_jax.training import Trainer
from ddsp_jax.training.examples import ExampleSource
from ddsp_jax.training.parallel import DataParallel, initialize_distributed
from tiny import tiny_config


def notes() -> dict[str, np.ndarray]:
    data = render_notes(16, 0, seconds=0.1, n_harmonics=8, room=False)
    return {k: data[k] for k in ("audio", "f0_hz", "loudness_db")}


def main(run_dir: str, devices: int, steps: int, resume: bool, micro_batches: int) -> None:
    config = tiny_config(batch_size=4, steps=steps, checkpoint_every=2, micro_batches=micro_batches)
    # The magnitude terms only: the log-magnitude term's gradient on near-silent bins moves by
    # 1e-3-5e-2 relative when float32 sums change order (as between device counts), which
    # Adam turns into parameter differences of the order of a step; the magnitude terms'
    # gradients agree to ~4e-5.
    loss = dataclasses.replace(config.loss, logmag_weight=0.0)
    config = dataclasses.replace(config, tensorboard=False, loss=loss)
    parallel = DataParallel.over(devices) if devices else None
    trainer = Trainer(config, run_dir, parallel)
    share = None if parallel is None else parallel.share(config.batch_size)
    source = ExampleSource(notes(), config.batch_size, config.seed, share)
    if jax.process_index() == 1:
        time.sleep(3)  # Late to the run folder, as on a busy host: process 0 must wait for it.
    trainer.start(resume=resume)
    if resume:
        trainer.restore(source)
    history = trainer.fit(source, progress=False)
    params = jax.tree.leaves(trainer.model().decoder)
    print(
        json.dumps(
            {
                "losses": [record["loss"] for record in history],
                "params": [np.asarray(leaf, np.float64).ravel().tolist() for leaf in params],
                "devices": 0 if parallel is None else parallel.n_devices,
            }
        )
    )


if __name__ == "__main__":
    initialize_distributed()  # Several processes: from JAX_COORDINATOR_ADDRESS and the rest.
    for training in sys.argv[1:]:
        run, count, total, start, micro_batches = training.split(",")
        main(run, int(count), int(total), start == "resume", int(micro_batches))
