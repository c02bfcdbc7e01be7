"""Traced programs kept across runs, so that a warm start skips tracing and lowering.

JAX's persistent compilation cache skips compiling a program seen before, but every run still
traces the Python train step and lowers it to StableHLO first (~1.5 s of a ~3 s warm start at
the quick preset). ``cached_jit`` stores the lowered program with ``jax.export`` the first
time and has later runs call the stored program instead. An entry is keyed by everything
its program depends on: the source of this package, the versions of jax, jaxlib, flax and
optax, the backend, the code path (``core.implementation``), the JAX settings that change a
trace (64-bit mode, matmul precision), the caller's settings and the tree structure, shapes
and dtypes of the arguments. An unreadable entry is traced again and
replaced.
"""

import functools
import hashlib
import importlib.metadata
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import jax

import ddsp_jax
from ddsp_jax.core.implementation import current_implementation

_directory: Path | None = None
_SUFFIX = ".jax-export"
# JAX settings that change what a trace produces (read when the key is made).
_TRACE_SETTINGS = ("jax_enable_x64", "jax_default_matmul_precision")


class _OutputStructureError(TypeError):
    """A function's outputs differ from the structure its caller declared."""


def enable(directory: Path | None) -> None:
    """Keep traced programs in ``directory`` (None: trace every run)."""
    global _directory
    _directory = directory


@functools.cache
def _fingerprint() -> str:
    """What every program depends on beyond its arguments: this package's source, the
    versions of the libraries that trace it and the backend."""
    digest = hashlib.sha256()
    package = Path(ddsp_jax.__file__).parent
    for path in sorted(package.rglob("*.py")):
        digest.update(str(path.relative_to(package)).encode())
        digest.update(path.read_bytes())
    for name in ("jax", "jaxlib", "flax", "optax"):
        digest.update(f"{name}={importlib.metadata.version(name)}".encode())
    digest.update(jax.default_backend().encode())
    return digest.hexdigest()


def _key(name: str, settings: str, leaves: Sequence[Any], tree: Any) -> str:
    digest = hashlib.sha256(_fingerprint().encode())
    digest.update(f"{name}\n{settings}\n{current_implementation()}\n{tree}".encode())
    for setting in _TRACE_SETTINGS:
        digest.update(f"{setting}={getattr(jax.config, setting)}".encode())
    for leaf in leaves:
        aval = jax.typeof(leaf)
        digest.update(f"{aval.shape}{aval.dtype}{getattr(aval, 'weak_type', False)}".encode())
    return digest.hexdigest()[:32]


class _CachedProgram:
    """``jax.jit(fn)`` whose first call loads or stores the traced program (see module)."""

    def __init__(
        self,
        fn: Callable[..., Any],
        name: str,
        settings: str,
        output_like: Callable[..., Any],
        donate_argnums: tuple[int, ...],
    ) -> None:
        self._fn = fn
        self._name = name
        self._settings = settings
        self._output_like = output_like
        self._donate_argnums = donate_argnums
        self._call: Callable[..., Any] | None = None
        self._in_tree: Any = None
        self._out_tree: Any = None

    def __call__(self, *args: Any) -> Any:
        if self._call is None:
            # Donated arguments come back as outputs, committed to the device: commit them now,
            # or the second call compiles the program again for the other placement.
            device = jax.devices()[0]
            args = tuple(
                jax.device_put(arg, device) if argnum in self._donate_argnums else arg
                for argnum, arg in enumerate(args)
            )
        leaves, in_tree = jax.tree.flatten(args)
        if self._call is None:
            self._in_tree = in_tree
            self._out_tree = jax.tree.structure(self._output_like(*args))
            self._call = self._program(leaves)
        elif in_tree != self._in_tree:
            raise ValueError(
                f"{self._name} was traced for arguments {self._in_tree}, called with {in_tree}."
            )
        return jax.tree.unflatten(self._out_tree, self._call(*leaves))

    def _cache_size(self) -> int:
        """Programs compiled so far (as ``jax.jit``'s): 1 after any number of same-shape calls."""
        return 0 if self._call is None else self._call._cache_size()

    def _program(self, leaves: list[Any]) -> Any:
        """A jitted function of the argument leaves returning the output leaves: the stored
        program, else ``fn`` traced, exported and stored (or just traced, with a warning,
        where ``jax.export`` cannot take it)."""
        assert _directory is not None
        args = jax.tree.unflatten(self._in_tree, leaves)
        arg_leaves = [len(jax.tree.leaves(arg)) for arg in args]
        starts = [sum(arg_leaves[:i]) for i in range(len(arg_leaves))]
        donated = tuple(
            leaf
            for argnum in self._donate_argnums
            for leaf in range(starts[argnum], starts[argnum] + arg_leaves[argnum])
        )
        path = _directory / (_key(self._name, self._settings, leaves, self._in_tree) + _SUFFIX)
        exported = None
        if path.exists():
            try:
                exported = jax.export.deserialize(bytearray(path.read_bytes()))
            except Exception:  # A truncated or foreign file: trace again and replace it.
                exported = None
        if exported is None:
            try:
                exported = jax.export.export(jax.jit(self._flat))(*leaves)
                serialized = exported.serialize()
            except _OutputStructureError:
                raise
            except Exception as error:  # E.g. a host callback, which cannot be stored.
                warnings.warn(
                    f"{self._name} will be traced on every run: jax.export cannot store it "
                    f"({type(error).__name__}: {error})",
                    stacklevel=4,
                )
                return jax.jit(self._flat, donate_argnums=donated)
            try:
                _directory.mkdir(parents=True, exist_ok=True)
                partial = path.with_suffix(".partial")
                partial.write_bytes(serialized)
                partial.replace(path)  # Atomic: a killed run leaves no half-written entry.
            except OSError as error:
                warnings.warn(f"could not store {self._name} in {path}: {error}", stacklevel=4)
        return jax.jit(exported.call, donate_argnums=donated)

    def _flat(self, *leaves: Any) -> list[Any]:
        outputs = self._fn(*jax.tree.unflatten(self._in_tree, leaves))
        if jax.tree.structure(outputs) != self._out_tree:
            raise _OutputStructureError(
                f"{self._name}'s outputs {jax.tree.structure(outputs)} differ from the declared "
                f"{self._out_tree}."
            )
        return jax.tree.leaves(outputs)


def cached_jit(
    fn: Callable[..., Any],
    *,
    name: str,
    settings: str,
    output_like: Callable[..., Any],
    donate_argnums: tuple[int, ...] = (),
) -> Callable[..., Any]:
    """``jax.jit(fn, donate_argnums=donate_argnums)``, whose program is kept across runs once
    ``enable`` has been called (see the module).

    Args:
        fn: The function to compile; it may take and return any pytrees of arrays.
        name: Names the program in errors and in its key.
        settings: Everything that ``fn`` closes over and that changes its program (e.g. the
            ``repr`` of a config), for the key.
        output_like: Called with the arguments, returns any pytree with the structure of
            ``fn``'s outputs (so that a stored program's outputs are rebuilt without tracing
            ``fn``; checked against ``fn`` whenever it is traced).
        donate_argnums: Arguments whose buffers the call may reuse (as ``jax.jit``'s).
    """
    if _directory is None:
        return jax.jit(fn, donate_argnums=donate_argnums)
    return _CachedProgram(fn, name, settings, output_like, donate_argnums)
