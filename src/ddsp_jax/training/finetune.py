"""Fine-tuning: a run that starts from another model's parameters (all of them or named
parts) and may leave parts of them unchanged.

A part is named by its path in the model, dotted: ``decoder`` (the whole decoder),
``decoder.rnn``, ``decoder.heads.amplitudes``, ``processor_graph.reverb``. A name selects
every array at or under it.
"""

from collections.abc import Sequence
from typing import Any

import jax
import optax
from flax import nnx

from ddsp_jax.training.config import TrainConfig
from ddsp_jax.training.optimizer import make_optimizer


def parameter_path(path: tuple[Any, ...]) -> str:
    """A pytree path of a model's state as a dotted name, e.g.
    ``decoder.heads.amplitudes.bias`` (the variables' ``value`` left out)."""
    return jax.tree_util.keystr(path, simple=True, separator=".").removesuffix(".value")


def selected(name: str, parts: Sequence[str]) -> bool:
    """Whether the array ``name`` is at or under one of ``parts``."""
    return any(name == part or name.startswith(part + ".") for part in parts)


def _names(state: nnx.State) -> dict[str, Any]:
    return {parameter_path(path): leaf for path, leaf in jax.tree.flatten_with_path(state)[0]}


def check_parts(parts: Sequence[str], state: nnx.State, what: str) -> None:
    """Raise ValueError naming a part that names no array of ``state`` (``what``: the
    option, for the message), with the model's top-level parts."""
    names = list(_names(state))
    for part in parts:
        if not any(selected(name, [part]) for name in names):
            tops = sorted({name.split(".")[0] for name in names})
            raise ValueError(
                f"{what} {part!r} names no part of the model; its parts are {', '.join(tops)} "
                "(and their dotted sub-parts, e.g. decoder.rnn)."
            )


def initialize_from(
    state: nnx.State, source: nnx.State, parts: Sequence[str], source_name: str
) -> nnx.State:
    """``state`` with the arrays under ``parts`` (all when empty) taken from ``source``, a
    state of the same structure (another model of the same kind).

    Raises:
        ValueError: Naming an array that ``source`` lacks or whose shape differs.
    """
    given = _names(source)
    paths, tree = jax.tree.flatten_with_path(state)
    leaves = []
    for path, leaf in paths:
        name = parameter_path(path)
        if parts and not selected(name, parts):
            leaves.append(leaf)
            continue
        if name not in given:
            raise ValueError(f"{source_name} has no {name}, which this model has.")
        if given[name].shape != leaf.shape:
            raise ValueError(
                f"{name} is {tuple(given[name].shape)} in {source_name} and "
                f"{tuple(leaf.shape)} in this model: the models differ there (train only the "
                "parts that match, with --init-keys)."
            )
        leaves.append(given[name].astype(leaf.dtype))
    return jax.tree.unflatten(tree, leaves)


def freeze(
    transform: optax.GradientTransformationExtraArgs, parts: Sequence[str]
) -> optax.GradientTransformationExtraArgs:
    """``transform`` for every parameter but those under ``parts``, whose updates are zero
    (``optax.multi_transform``; the gradient clipping inside ``transform`` sees the trained
    parameters only)."""

    def labels(params: nnx.State) -> Any:
        return jax.tree.map_with_path(
            lambda path, _: "frozen" if selected(parameter_path(path), parts) else "trained",
            params,
        )

    return optax.multi_transform({"trained": transform, "frozen": optax.set_to_zero()}, labels)


def run_optimizer(config: TrainConfig) -> optax.GradientTransformationExtraArgs:
    """A run's optimizer: ``make_optimizer``, with ``init.freeze``'s parts ``freeze``-d (the
    checkpoints' optimizer state has its layout)."""
    transform = make_optimizer(config.optimizer)
    return freeze(transform, config.init.freeze) if config.init.freeze else transform


def load_initial_state(config: TrainConfig, params: nnx.State, rest: nnx.State) -> tuple:
    """``(params, rest)`` of a new run with ``config.init``: taken from ``init.from_model``
    (a model folder, a training run or a shipped instrument) under ``init.keys``, checked.

    Raises:
        ValueError: For a source that cannot be read, parts it does not name, or shapes that
            differ.
    """
    from ddsp_jax.models.saved import ModelError
    from ddsp_jax.training.export import load_model_or_run

    init = config.init
    check_parts(init.keys, params, "--init-keys")
    check_parts(init.freeze, params, "--freeze")
    if init.from_model is None:
        return params, rest
    try:
        source = load_model_or_run(init.from_model)
    except ModelError as error:
        raise ValueError(f"--init-from: {error}") from error
    _, source_params, source_rest = nnx.split(source.model, nnx.Param, ...)
    params = initialize_from(params, source_params, init.keys, init.from_model)
    kept = [name for name in _names(rest) if not init.keys or selected(name, init.keys)]
    rest = initialize_from(rest, source_rest, kept, init.from_model) if kept else rest
    return params, rest
