"""Data-parallel training over a 1-D JAX device mesh, on one host or several.

The global batch is sharded over the mesh's ``data`` axis; the parameters and the optimizer
state are replicated, and XLA's SPMD partitioner reduces the gradients with its collectives
(the loss is a mean over the batch, so a step computes what it computes on one device, up to
the order of float32 sums). Each process reads only its share of a batch's examples
(``ExampleSource(share=...)``); the data position stays global, so a checkpoint resumes on
any number of devices with the same example order.

Several hosts: every process runs ``ddsp train`` with the same arguments and
``--coordinator HOST:PORT --num-processes N --process-id I`` (or ``JAX_COORDINATOR_ADDRESS``,
``JAX_NUM_PROCESSES``, ``JAX_PROCESS_ID``; on SLURM and other clusters JAX finds the rest
itself), which calls ``jax.distributed.initialize``; process 0 writes the run folder's files
and every process writes its part of each checkpoint.
"""

import dataclasses
import os
from collections.abc import Callable
from typing import Any

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec
from orbax.checkpoint import multihost

DATA_AXIS = "data"
# How long a process waits for the others at a barrier (compiling a large model on a slow host
# takes minutes; gloo gives up after 30 s when a collective starts on one process only).
BARRIER_TIMEOUT_S = 1800


def initialize_distributed(
    coordinator: str | None = None, num_processes: int | None = None, process_id: int | None = None
) -> bool:
    """``jax.distributed.initialize`` from the arguments or the environment
    (``JAX_COORDINATOR_ADDRESS``, ``JAX_NUM_PROCESSES``, ``JAX_PROCESS_ID``); on CPU with gloo
    collectives. Does nothing (returns False) when none of them is set.

    Raises:
        ValueError: For a process count or id that is not an integer, naming it.
    """
    environment = {
        "coordinator": coordinator or os.environ.get("JAX_COORDINATOR_ADDRESS"),
        "num_processes": num_processes,
        "process_id": process_id,
    }
    for name, variable in (
        ("num_processes", "JAX_NUM_PROCESSES"),
        ("process_id", "JAX_PROCESS_ID"),
    ):
        if environment[name] is None and variable in os.environ:
            try:
                environment[name] = int(os.environ[variable])
            except ValueError:
                raise ValueError(
                    f"{variable} must be an integer, got {os.environ[variable]!r}."
                ) from None
    if all(value is None for value in environment.values()):
        return False
    if jax.config.jax_platforms in (None, "", "cpu"):
        jax.config.update("jax_cpu_collectives_implementation", "gloo")
    jax.distributed.initialize(
        coordinator_address=environment["coordinator"],
        num_processes=environment["num_processes"],
        process_id=environment["process_id"],
    )
    return True


@dataclasses.dataclass(frozen=True)
class DataParallel:
    """A 1-D mesh of ``devices`` and the shardings of training: replicated state, batches
    split along their first axis."""

    mesh: Mesh

    @classmethod
    def over(cls, devices: str | int) -> "DataParallel":
        """A mesh of ``"all"`` devices (of every process) or the first ``devices`` (the same
        number from each process).

        Raises:
            ValueError: For a count that is not positive, exceeds the devices, or does not
                divide among the processes.
        """
        available = jax.devices()
        processes = jax.process_count()
        if devices == "all":
            return cls(Mesh(np.array(available), (DATA_AXIS,)))
        if isinstance(devices, bool) or not isinstance(devices, int) or devices < 1:
            raise ValueError(f"--devices must be 'all' or a positive integer, got {devices!r}.")
        if devices > len(available):
            raise ValueError(
                f"--devices {devices}: only {len(available)} device(s) are available "
                f"({jax.default_backend()})."
            )
        if devices % processes:
            raise ValueError(f"--devices {devices} does not divide among {processes} processes.")
        per_process = devices // processes
        chosen = [
            device
            for process in range(processes)
            for device in [d for d in available if d.process_index == process][:per_process]
        ]
        return cls(Mesh(np.array(chosen), (DATA_AXIS,)))

    @property
    def n_devices(self) -> int:
        return self.mesh.devices.size

    @property
    def replicated(self) -> NamedSharding:
        return NamedSharding(self.mesh, PartitionSpec())

    @property
    def batch_sharding(self) -> NamedSharding:
        return NamedSharding(self.mesh, PartitionSpec(DATA_AXIS))

    def check_batch(self, batch_size: int, micro_batches: int) -> None:
        """Raise ValueError unless ``batch_size`` splits evenly over the devices and each
        device's share into ``micro_batches``, naming the numbers."""
        if batch_size % self.n_devices:
            raise ValueError(
                f"batch_size {batch_size} does not divide among {self.n_devices} devices "
                "(choose a multiple, e.g. --batch-size "
                f"{self.n_devices * max(1, batch_size // self.n_devices)})."
            )
        per_device = batch_size // self.n_devices
        if per_device % micro_batches:
            raise ValueError(
                f"each of the {self.n_devices} devices gets {per_device} examples, which do "
                f"not split into micro_batches {micro_batches}."
            )

    def share(self, batch_size: int) -> tuple[int, int]:
        """The rows ``[start, stop)`` of a global batch this process reads."""
        count, index = jax.process_count(), jax.process_index()
        size = batch_size // count
        return index * size, (index + 1) * size

    def replicate(self, tree: object) -> object:
        """``tree``'s arrays replicated on every device of the mesh."""
        return jax.device_put(tree, self.replicated)

    def shard_batch(self, local: dict[str, np.ndarray]) -> dict[str, jax.Array]:
        """A global batch from this process's share of its rows (``share``)."""
        return {
            name: jax.make_array_from_process_local_data(self.batch_sharding, np.asarray(rows))
            for name, rows in local.items()
        }

    def jit(self, function: Callable[..., Any], name: str, **options: Any) -> Callable[..., Any]:
        """``jax.jit(function, out_shardings=replicated, **options)``; with several processes,
        each new argument signature is compiled first and the processes wait for each other
        (a barrier named after ``name``) before running it, so its collectives start
        together: gloo gives up on a collective that another process has not reached within
        30 s, e.g. while it is still compiling."""
        jitted = jax.jit(function, out_shardings=self.replicated, **options)
        if jax.process_count() == 1:
            return jitted
        compiled: dict[Any, jax.stages.Compiled] = {}

        def run(*args: Any) -> Any:
            leaves, structure = jax.tree.flatten(args)
            key = (structure, *(_signature(leaf) for leaf in leaves))
            if key not in compiled:
                compiled[key] = jitted.lower(*args).compile()
                wait_for_processes(f"compiled/{name}/{len(compiled)}")
            return compiled[key](*args)

        return run

    def to_host(self, tree: object) -> object:
        """``tree``'s replicated arrays as NumPy arrays of this process (each process holds a
        whole copy of them, even where another process's devices hold copies too)."""
        return jax.tree.map(lambda x: np.asarray(x.addressable_data(0)), tree)


def wait_for_processes(name: str) -> None:
    """Return when every process has called this with ``name`` (unique within a run; a
    barrier of the coordination service, waiting up to ``BARRIER_TIMEOUT_S``); at once with
    one process."""
    if jax.process_count() > 1:
        multihost.get_barrier_sync_fn()(key=f"ddsp_jax/{name}", timeout_ms=BARRIER_TIMEOUT_S * 1000)


def _signature(leaf: Any) -> Any:
    """What a compiled program depends on in one argument: its type, shape and placement."""
    if isinstance(leaf, jax.Array):
        return ("array", leaf.shape, leaf.dtype, leaf.sharding)
    if isinstance(leaf, np.ndarray | np.generic):
        return ("numpy", leaf.shape, leaf.dtype)
    return ("value", type(leaf))


def is_main_process() -> bool:
    """Whether this process writes the run folder's files (process 0 of a multi-host run)."""
    return jax.process_index() == 0
