"""A model's streaming programs exported for hosts outside Python, as serialized StableHLO.

``export_stablehlo`` writes a folder:

- ``synth.stablehlo``: one block of ``Stream`` (decoder and synthesis). Inputs: the state's
  arrays (in ``metadata.json``'s order), ``f0_hz`` ``[max_frames, 1]`` (Hz) and
  ``loudness_db`` ``[max_frames, 1]`` (dB: the model's level, ``metadata.json``'s
  ``level_feature``), the block's frames first and the rest padding,
  and ``n_frames`` (int32, the block's real frames); outputs: the block's audio
  ``[block_size]`` and the next state's arrays.
- ``features.stablehlo`` (with an f0 model): ``StreamingFeatures``'s program. Input: the last
  ``buffer_size`` samples of 16 kHz audio, starting ``latency`` samples before the next frame
  to compute; outputs ``f0_hz``, ``f0_confidence``, ``loudness_db`` and ``power_db``, each
  ``[max_frames]``, of the frames centred at ``latency + k * hop`` in the buffer.
- ``initial_state.npz``: the state before the first block (``state_0``, ``state_1``, ...).
- ``metadata.json``: rates, sizes, latencies, the state's shapes and types, how many frames
  each block takes, and the training data's statistics (for pitch and loudness shifts).

The parameters are constants of the programs. ``jax.export.deserialize`` loads them; any
StableHLO runtime (XLA's PJRT, IREE) runs them. docs/deployment.md gives the host's loop.
"""

import io
import json
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from ddsp_jax.features.extract import LEVEL_FEATURES
from ddsp_jax.features.streaming import StreamingFeatures
from ddsp_jax.files import write_files
from ddsp_jax.models.saved import SavedModel
from ddsp_jax.streaming import Stream, check_live_model, priming_frames

FORMAT = "ddsp-jax streaming StableHLO"
VERSION = 1


def synth_program(stream: Stream) -> tuple[jax.export.Exported, list[np.ndarray]]:
    """``stream``'s block step as an exported program, and its initial state's arrays."""
    step, leaves = stream.block_function()
    frames = stream.plan.max_frames

    def program(
        state: list[jax.Array], f0_hz: jax.Array, loudness_db: jax.Array, n_frames: jax.Array
    ) -> tuple[jax.Array, list[jax.Array]]:
        return step(state, {"f0_hz": f0_hz, "loudness_db": loudness_db}, n_frames)

    shapes = [jax.ShapeDtypeStruct(leaf.shape, leaf.dtype) for leaf in leaves]
    column = jax.ShapeDtypeStruct((frames, 1), jnp.float32)
    exported = jax.export.export(jax.jit(program))(
        shapes, column, column, jax.ShapeDtypeStruct((), jnp.int32)
    )
    return exported, [np.asarray(leaf) for leaf in leaves]


def features_program(features: StreamingFeatures) -> jax.export.Exported:
    """``features``' program (one block's frames) as an exported program."""
    buffer = jax.ShapeDtypeStruct((features.buffer_size,), jnp.float32)
    return jax.export.export(jax.jit(features.frames_function()))(buffer)


def export_stablehlo(
    saved: SavedModel, out: str | Path, block_size: int = 320, f0_model: str | None = "tiny"
) -> Path:
    """Write ``saved``'s streaming programs for blocks of ``block_size`` samples to the folder
    ``out`` (see the module); returns ``out``. ``f0_model`` None leaves out the features."""
    check_live_model(saved, "a StableHLO export")
    stream = Stream(saved, block_size)
    plan = stream.plan
    level_feature = saved.config.level_feature
    level = f"{LEVEL_FEATURES[level_feature]}, the features' {level_feature}"
    synth, state = synth_program(stream)
    arrays = io.BytesIO()
    np.savez(arrays, **{f"state_{i}": leaf for i, leaf in enumerate(state)})
    contents = {"synth.stablehlo": bytes(synth.serialize()), "initial_state.npz": arrays.getvalue()}
    metadata: dict[str, Any] = {
        "format": FORMAT,
        "version": VERSION,
        "sample_rate": saved.sample_rate,
        "frame_rate": saved.frame_rate,
        "hop": plan.hop,
        "block_size": block_size,
        "max_frames": plan.max_frames,
        "synth_latency": plan.latency,
        "frames_per_block": (
            "block i takes the frames j with i * block_size <= j * hop < (i + 1) * block_size"
        ),
        "level_feature": level_feature,
        "inputs": {"f0_hz": "Hz", "loudness_db": f"dB ({level}, floor -80)"},
        "state": [{"shape": list(leaf.shape), "dtype": str(leaf.dtype)} for leaf in state],
        "statistics": saved.statistics,
    }
    if f0_model is not None:
        if saved.sample_rate != StreamingFeatures.sample_rate:
            raise ValueError(
                f"the features run at {StreamingFeatures.sample_rate} Hz; this model is "
                f"{saved.sample_rate} Hz (export with f0_model=None)."
            )
        features = StreamingFeatures(block_size, saved.frame_rate, f0_model)
        contents["features.stablehlo"] = bytes(features_program(features).serialize())
        metadata["features"] = {
            "f0_model": f0_model,
            "latency": features.latency,
            "buffer_size": features.buffer_size,
            "priming_frames": priming_frames(block_size, plan.hop, features.latency),
        }
    contents["metadata.json"] = (json.dumps(metadata, indent=1) + "\n").encode()
    stale = [] if f0_model is not None else ["features.stablehlo"]
    write_files(out, contents, stale)  # All or nothing; metadata.json last.
    return Path(out)


class ExportError(ValueError):
    """An exported folder that is incomplete or whose files do not agree."""


def load_stablehlo(
    folder: str | Path,
) -> tuple[jax.export.Exported, jax.export.Exported | None, list[np.ndarray], dict[str, Any]]:
    """Read a folder ``export_stablehlo`` wrote: ``(synth, features or None, initial state,
    metadata)``, each program checked against ``metadata.json``.

    Raises:
        ExportError: Naming the file and what does not fit.
    """
    folder = Path(folder)
    try:
        metadata = json.loads((folder / "metadata.json").read_text())
        synth = jax.export.deserialize(bytearray((folder / "synth.stablehlo").read_bytes()))
        initial = np.load(folder / "initial_state.npz")
        state = [initial[f"state_{i}"] for i in range(len(metadata["state"]))]
        features = None
        if "features" in metadata:
            data = bytearray((folder / "features.stablehlo").read_bytes())
            features = jax.export.deserialize(data)
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise ExportError(f"{folder}: not a complete exported folder ({error}).") from error
    if metadata.get("format") != FORMAT or metadata.get("version") != VERSION:
        raise ExportError(f"{folder / 'metadata.json'}: not a {FORMAT} of version {VERSION}.")
    frames = metadata["max_frames"]
    expected = [
        *[(tuple(entry["shape"]), entry["dtype"]) for entry in metadata["state"]],
        ((frames, 1), "float32"),
        ((frames, 1), "float32"),
        ((), "int32"),
    ]
    found = [(tuple(aval.shape), str(aval.dtype)) for aval in synth.in_avals]
    if found != expected or synth.out_avals[0].shape != (metadata["block_size"],):
        raise ExportError(
            f"{folder / 'synth.stablehlo'}: its inputs {found} do not match metadata.json "
            f"(state, then f0_hz and loudness_db of {frames} frames, then n_frames) or its "
            f"block of {metadata['block_size']} samples."
        )
    if features is not None:
        size = metadata["features"]["buffer_size"]
        if [tuple(aval.shape) for aval in features.in_avals] != [(size,)]:
            raise ExportError(
                f"{folder / 'features.stablehlo'}: its input is not the {size}-sample buffer "
                "metadata.json gives."
            )
    return synth, features, state, metadata
