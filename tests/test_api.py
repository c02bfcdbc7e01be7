"""The public API: subpackages export their names, and every docstring example runs."""

import doctest
import importlib
import pkgutil
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

import ddsp_jax

MODULES = sorted(name for _, name, _ in pkgutil.walk_packages(ddsp_jax.__path__, "ddsp_jax."))
PACKAGE_ROOT = Path(ddsp_jax.__file__).parent


def _source(name: str) -> str:
    relative = name.removeprefix("ddsp_jax.").replace(".", "/")
    path = PACKAGE_ROOT / relative / "__init__.py"
    return (path if path.exists() else PACKAGE_ROOT / f"{relative}.py").read_text()


WITH_EXAMPLES = ["ddsp_jax"] + [name for name in MODULES if ">>> " in _source(name)]
EXTRAS = {"ddsp_jax.integrations.datarax": "datarax"}  # Modules of an extra: their package.


@pytest.mark.parametrize("name", WITH_EXAMPLES)
def test_docstring_examples_run(name: str) -> None:
    if name in EXTRAS:
        pytest.importorskip(EXTRAS[name], reason=f"{name} needs the {EXTRAS[name]} extra")
    module = importlib.import_module(name)
    globs = {"jax": jax, "jnp": jnp, "np": np, "nnx": nnx}
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    for test in doctest.DocTestFinder().find(module, name, extraglobs=globs):
        runner.run(test)
    results = runner.summarize(verbose=False)
    assert results.attempted > 0
    assert results.failed == 0


@pytest.mark.parametrize(
    "package", ["core", "processors", "features", "models", "data", "training", "benchmarks"]
)
def test_subpackages_export_what_they_list(package: str) -> None:
    module = getattr(ddsp_jax, package)
    assert module is importlib.import_module(f"ddsp_jax.{package}")
    for public in getattr(module, "__all__", []):
        assert getattr(module, public) is not None, f"ddsp_jax.{package}.{public}"


def test_public_names_are_exported_where_the_readme_imports_them() -> None:
    from ddsp_jax.core import compute_loudness, harmonic_synthesis  # noqa: F401
    from ddsp_jax.features import compute_f0, compute_features, note_frames  # noqa: F401
    from ddsp_jax.inference import resynthesize, transfer  # noqa: F401
    from ddsp_jax.losses import multi_scale_spectral_loss  # noqa: F401
    from ddsp_jax.models import Autoencoder, load_model, save_model  # noqa: F401
    from ddsp_jax.processors import ProcessorGraph, ProcessorGraphConfig  # noqa: F401
    from ddsp_jax.training import PRESETS, Trainer, export_model, resolve  # noqa: F401


def test_an_unknown_attribute_is_an_attribute_error() -> None:
    with pytest.raises(AttributeError, match="no attribute 'nonexistent'"):
        ddsp_jax.nonexistent  # noqa: B018


def test_all_lists_every_subpackage() -> None:
    assert set(ddsp_jax.SUBPACKAGES) <= set(ddsp_jax.__all__)
