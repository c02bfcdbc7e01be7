"""Examples for training: procedural notes, a prepared dataset (streamed from its shards),
NSynth (prepared on first use) or an ``.npz``, served by a checkpointable source."""

from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol

import numpy as np

from ddsp_jax.data.dataset import DATASET_FILE, PrepareConfig, PreparedDataset, split_columns
from ddsp_jax.data.preparation import NSYNTH_PREFIX, prepare
from ddsp_jax.data.procedural import render_notes
from ddsp_jax.features.extract import compute_features

if TYPE_CHECKING:
    from ddsp_jax.training.config import TrainConfig

REQUIRED_KEYS = ("audio", "f0_hz", "loudness_db")
Examples = dict[str, np.ndarray]


class BatchSource(Protocol):
    """What the training loop draws batches from, and checkpoints the position of."""

    def next_batch(self) -> dict[str, Any]: ...

    def state(self) -> dict[str, Any]: ...

    def restore(self, state: dict[str, Any]) -> None: ...


class ExampleSource:
    """Shuffled batches from host arrays, reshuffled every epoch.

    The order depends only on ``seed`` and the epoch, and the position is two integers, so a
    restored source continues exactly where a checkpoint left it. Arrays stay on the host
    (NumPy arrays, or a prepared dataset's ``Column``s read from disk batch by batch); only
    batches go to the device.

    With ``share`` ``(start, stop)``, ``next_batch`` reads and returns only those rows of each
    batch (one process's part of a batch split over several hosts); the order and the
    position stay those of the whole batch, so they do not depend on the split.
    """

    def __init__(
        self,
        examples: Examples,
        batch_size: int,
        seed: int,
        share: tuple[int, int] | None = None,
    ) -> None:
        self.examples = examples
        self.batch_size = batch_size
        self.seed = seed
        self.share = (0, batch_size) if share is None else share
        self.size = len(next(iter(examples.values())))
        self.epoch = 0
        self.position = 0

    def _order(self, epoch: int) -> np.ndarray:
        return np.random.default_rng([self.seed, epoch]).permutation(self.size)

    def state(self) -> dict[str, int]:
        """The position, for a checkpoint."""
        return {"epoch": self.epoch, "position": self.position}

    def restore(self, state: dict[str, int]) -> None:
        """Continue from a position saved by ``state``."""
        self.epoch, self.position = int(state["epoch"]), int(state["position"])

    def next_batch(self) -> Examples:
        """The next ``batch_size`` examples (crossing into the next epoch when needed), or
        the rows of them in ``share``."""
        indices = []
        while len(indices) < self.batch_size:
            order = self._order(self.epoch)
            take = order[self.position : self.position + self.batch_size - len(indices)]
            indices.extend(take.tolist())
            self.position += len(take)
            if self.position >= self.size:
                self.epoch, self.position = self.epoch + 1, 0
        indices = indices[self.share[0] : self.share[1]]
        return {name: array[indices] for name, array in self.examples.items()}


def validate_examples(examples: Examples, n_samples: int, n_frames: int, origin: str) -> Examples:
    """Check keys, shapes and values; return float32 copies of the required arrays.

    Raises:
        ValueError: Naming ``origin`` and the problem.
    """
    missing = [key for key in REQUIRED_KEYS if key not in examples]
    if missing:
        raise ValueError(f"{origin}: missing arrays {missing} (has {sorted(examples)}).")
    out = {key: np.asarray(examples[key], np.float32) for key in REQUIRED_KEYS}
    n_examples = len(out["audio"])
    expected = {
        "audio": (n_examples, n_samples),
        "f0_hz": (n_examples, n_frames),
        "loudness_db": (n_examples, n_frames),
    }
    for key, shape in expected.items():
        if out[key].shape != shape:
            raise ValueError(
                f"{origin}: {key} has shape {out[key].shape}, expected {shape} "
                f"([examples, {'samples' if key == 'audio' else 'frames'}])."
            )
        if not np.all(np.isfinite(out[key])):
            bad = int(np.sum(~np.all(np.isfinite(out[key]), axis=1)))
            raise ValueError(f"{origin}: {key} has NaN or infinite values in {bad} examples.")
    if n_examples == 0:
        raise ValueError(f"{origin}: no examples.")
    return out


def load_npz(path: str | Path, n_samples: int, n_frames: int) -> Examples:
    """Examples from an ``.npz`` with ``audio``, ``f0_hz``, ``loudness_db`` arrays."""
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as data:
            examples = {key: data[key] for key in data.files}
    except (OSError, ValueError) as error:
        raise ValueError(f"{path}: cannot read as .npz ({error}).") from error
    return validate_examples(examples, n_samples, n_frames, str(path))


def split(examples: Examples, test_fraction: float, seed: int) -> tuple[Examples, Examples]:
    """Split examples into training and held-out sets (at least one of each)."""
    n = len(examples["audio"])
    if n < 2:
        raise ValueError(f"need at least 2 examples to hold one out, got {n}.")
    order = np.random.default_rng(seed).permutation(n)
    n_test = min(max(1, round(n * test_fraction)), n - 1)
    test, train = order[:n_test], order[n_test:]
    return (
        {k: v[train] for k, v in examples.items()},
        {k: v[test] for k, v in examples.items()},
    )


def procedural_examples(
    n_train: int,
    n_test: int,
    seed: int,
    seconds: float,
    sample_rate: int,
    frame_rate: int,
    n_instruments: int,
) -> tuple[Examples, Examples]:
    """Training and held-out procedural notes of the same instruments (rendered at once)."""
    notes = render_notes(
        n_train + n_test,
        seed,
        instrument_seed=seed,
        n_instruments=n_instruments,
        sample_rate=sample_rate,
        seconds=seconds,
        frame_rate=frame_rate,
    )
    train = {key: notes[key][:n_train] for key in REQUIRED_KEYS}
    test = {key: notes[key][n_train:] for key in REQUIRED_KEYS}
    return train, test


def level_conditioned(examples: Examples, config: "TrainConfig") -> Examples:
    """In-memory ``examples`` whose ``loudness_db`` is the model's level conditioning
    (``model.level_feature``): unchanged for loudness; for power, the power of their audio as
    ``compute_features`` gives it (as magenta's ``F0PowerPreprocessor`` computes it when the
    data has none), 64 examples at a time."""
    if config.model.level_feature == "loudness_db":
        return examples
    audio, rate = examples["audio"], config.model.synth.sample_rate
    levels = [
        compute_features(audio[i : i + 64], rate, config.frame_rate, None)["power_db"]
        for i in range(0, len(audio), 64)
    ]
    levels = [values[:, : config.n_frames] for values in levels]
    return {**examples, "loudness_db": np.concatenate(levels).astype(np.float32)}


def procedural_split(config: "TrainConfig") -> tuple[Examples, Examples]:
    """The training and held-out procedural notes that ``config.data`` describes, with the
    model's level conditioning (``level_conditioned``)."""
    data, synth = config.data, config.model.synth
    train, test = procedural_examples(
        data.n_train,
        data.n_test,
        config.seed,
        data.example_seconds,
        synth.sample_rate,
        config.frame_rate,
        data.n_instruments,
    )
    return level_conditioned(train, config), level_conditioned(test, config)


def batch_source(
    examples: Examples,
    batch_size: int,
    seed: int,
    engine: str,
    share: tuple[int, int] | None = None,
) -> BatchSource:
    """The training batches of ``engine``: ``ExampleSource`` for ``"jax"`` (reading only the
    rows ``share`` of each batch, when given), a datarax ``Pipeline`` over a ``MemorySource``
    for ``"datarax"`` (which holds the examples in memory, so a prepared dataset is read
    whole)."""
    if engine == "datarax":
        from ddsp_jax.integrations.datarax import PipelineSource

        in_memory = {k: np.asarray(v[np.arange(len(v))]) for k, v in examples.items()}
        return PipelineSource(in_memory, batch_size, seed)
    return ExampleSource(examples, batch_size, seed, share)


MAX_EVAL_EXAMPLES = 64  # Held-out examples of a prepared dataset scored after training.


class TrainingData(NamedTuple):
    train: Examples  # Possibly lazy (``Column``s of a prepared dataset).
    test: Examples  # In memory.
    description: str


def nsynth_dataset_dir(run_dir: str | Path) -> Path:
    """Where ``--data nsynth:PATH`` prepares its dataset: inside the run folder."""
    return Path(run_dir) / "dataset"


def load_training_data(config: "TrainConfig", run_dir: str | Path) -> TrainingData:
    """The examples of ``config.data.source``: ``procedural``, ``nsynth:PATH`` (prepared
    into the run folder on first use; a resumed run reuses it), a prepared dataset folder,
    or an ``.npz``.

    Raises:
        ValueError: For sources that do not exist or do not fit the model (naming them).
    """
    data, synth = config.data, config.model.synth
    source = data.source
    if source == "procedural":
        n_samples = round(data.example_seconds * synth.sample_rate)
        if n_samples != synth.n_samples:
            raise ValueError(
                f"data.example_seconds={data.example_seconds} gives {n_samples} samples; the "
                f"model synthesises {synth.n_samples}."
            )
        train, test = procedural_split(config)
        return TrainingData(train, test, f"{data.n_train + data.n_test} procedural notes")
    if source.startswith(NSYNTH_PREFIX):
        prepare_config = PrepareConfig(
            sample_rate=synth.sample_rate,
            frame_rate=config.frame_rate,
            example_seconds=synth.n_samples / synth.sample_rate,
            eval_fraction=data.test_fraction,
            f0_model=data.f0_model,
            nsynth_subset=data.nsynth_subset,
        )
        directory = nsynth_dataset_dir(run_dir)
        print(f"Preparing {source} into {directory} (f0 with CREPE {data.f0_model})...")
        prepare([source], directory, prepare_config)
        source = str(directory)
    if (Path(source) / DATASET_FILE).exists() or Path(source).is_dir():
        dataset = PreparedDataset(source)
        dataset.check_matches(synth.sample_rate, synth.n_samples, config.frame_rate)
        level = config.model.level_feature
        names = ["audio", "f0_hz", level]
        columns = split_columns(dataset, "train", names)
        train = {
            "audio": columns["audio"],
            "f0_hz": columns["f0_hz"],
            "loudness_db": columns[level],
        }
        eval_index = dataset.index("eval")[:MAX_EVAL_EXAMPLES]
        held_out = "held-out"
        if len(eval_index) == 0:
            eval_index, held_out = dataset.index("train")[:MAX_EVAL_EXAMPLES], "training"
        if len(train["audio"]) == 0:
            raise ValueError(f"{source}: no training examples (all went to eval).")
        test = dataset.read(eval_index, names)
        test["loudness_db"] = test.pop(level)
        return TrainingData(
            train,
            test,
            f"{source}: {len(train['audio'])} training examples, loss on {len(eval_index)} "
            f"{held_out} examples",
        )
    examples = level_conditioned(load_npz(source, synth.n_samples, config.n_frames), config)
    train, test = split(examples, data.test_fraction, config.seed)
    return TrainingData(train, test, f"{source}: {len(train['audio'])} training examples")
