"""A model's streaming programs for hosts outside Python: serialized StableHLO
(``deploy.stablehlo``) and ONNX graphs (``deploy.onnx_export``, which needs the ``onnx``
extra: its names are imported on first use)."""

from typing import Any

from ddsp_jax.deploy.stablehlo import (
    ExportError,
    export_stablehlo,
    features_program,
    load_stablehlo,
    synth_program,
)

_ONNX_NAMES = (
    "OnnxStream",
    "export_onnx",
    "features_graph",
    "load_onnx",
    "synth_graph",
    "transfer_graph",
)

__all__ = [
    "ExportError",
    "export_stablehlo",
    "features_program",
    "load_stablehlo",
    "synth_program",
    *_ONNX_NAMES,
]


def __getattr__(name: str) -> Any:
    if name in _ONNX_NAMES:
        from ddsp_jax.deploy import onnx_export

        return getattr(onnx_export, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
