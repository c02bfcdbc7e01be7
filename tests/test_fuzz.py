"""Property-based tests where bytes become arrays: mutated inputs raise only our own errors."""

import contextlib
import json
from pathlib import Path

import numpy as np
import soundfile as sf
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from data.test_nsynth import example, notes, write_tfrecord
from ddsp_jax.data.audio import UnusableInputError, load_audio
from ddsp_jax.data.nsynth import NSynthError, read_notes
from ddsp_jax.serialization import from_dict, to_dict
from ddsp_jax.training.config import PRESETS, TrainConfig

FUZZ = settings(
    max_examples=60,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)


def mutate(data: bytes, edits: list[tuple[int, int]], cut: int | None) -> bytes:
    """``data`` with bytes overwritten (position modulo its length, new value) and cut."""
    buffer = bytearray(data)
    for position, value in edits:
        buffer[position % len(buffer)] = value
    return bytes(buffer[:cut] if cut is not None else buffer)


# Half the edits land in the first 80 bytes, where headers and protobuf keys are.
POSITIONS = st.integers(0, 80) | st.integers(0, 10**6)
EDITS = st.lists(st.tuples(POSITIONS, st.integers(0, 255)), max_size=8)
CUTS = st.none() | st.integers(0, 4000)


@FUZZ
@given(edits=EDITS, cut=CUTS, subtype=st.sampled_from(["PCM_16", "FLOAT", "PCM_U8"]))
def test_a_mutated_wav_reads_or_is_refused_as_unusable(tmp_path, edits, cut, subtype):
    path = tmp_path / "in.wav"
    audio = 0.3 * np.sin(np.arange(1000) / 5.0)
    sf.write(path, audio, 16000, subtype=subtype)
    path.write_bytes(mutate(path.read_bytes(), edits, cut))
    try:
        samples, info = load_audio(path, 16000)
    except UnusableInputError:
        return
    assert samples.ndim == 1 and np.all(np.isfinite(samples)) and info["sample_rate"] > 0


@FUZZ
@given(data=st.binary(max_size=3000))
def test_random_bytes_are_refused_as_unusable_audio(tmp_path, data):
    path = tmp_path / "noise.wav"
    path.write_bytes(data)
    with contextlib.suppress(UnusableInputError):
        load_audio(path, None)


@FUZZ
@given(edits=EDITS, cut=st.none() | st.integers(0, 400))
def test_a_mutated_nsynth_record_reads_or_is_refused(tmp_path, edits, cut):
    records = [mutate(example(note), edits, cut) for note in notes()[:2]]
    write_tfrecord(tmp_path / "notes.tfrecord", records)  # Valid CRCs over mutated records.
    try:
        for note in read_notes(tmp_path / "notes.tfrecord"):
            assert np.all(np.isfinite(note.audio)) or note.audio.size == 0
    except NSynthError:
        pass


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=5),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner),
    max_leaves=8,
)


def _paths(data: dict, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    found = []
    for key, value in data.items():
        found += _paths(value, (*prefix, key)) if isinstance(value, dict) else [(*prefix, key)]
    return found


SETTINGS = _paths(to_dict(PRESETS["quick"]))


@FUZZ
@given(setting=st.sampled_from(SETTINGS), value=JSON)
def test_any_value_for_any_setting_builds_a_config_or_names_the_setting(setting, value):
    data = to_dict(PRESETS["quick"])
    node = data
    for key in setting[:-1]:
        node = node[key]
    node[setting[-1]] = value
    try:
        from_dict(TrainConfig, data)
    except ValueError as error:
        assert setting[-1] in str(error) or setting[0] in str(error), (setting, str(error))


@FUZZ
@given(choice=st.integers(0, 10**6), value=JSON)
def test_any_value_in_a_model_json_loads_or_is_a_model_error(tmp_path, choice, value):
    from flax import nnx

    from ddsp_jax.models.autoencoder import Autoencoder
    from ddsp_jax.models.saved import MODEL_FILE, ModelError, SavedModel, load_model, save_model

    folder = tmp_path / "model"
    if not folder.exists():
        config = PRESETS["quick"]
        model = Autoencoder(config.model, rngs=nnx.Rngs(0))
        save_model(SavedModel(model, config.frame_rate, None, 0, Path(".")), folder)
        (tmp_path / "model.json").write_text((folder / MODEL_FILE).read_text())
    info = json.loads((tmp_path / "model.json").read_text())
    settings = _paths(info["config"])
    setting = settings[choice % len(settings)]
    node = info["config"]
    for key in setting[:-1]:
        node = node[key]
    node[setting[-1]] = value
    (folder / MODEL_FILE).write_text(json.dumps(info))
    with contextlib.suppress(ModelError):
        load_model(folder)
