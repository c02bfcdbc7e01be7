"""Training configuration: dataclasses, presets, files and command-line overrides."""

import dataclasses
import json
import tomllib
import typing
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ddsp_jax.core.validation import check_positive, check_positive_int
from ddsp_jax.defaults import FRAME_RATE, SAMPLE_RATE
from ddsp_jax.models.autoencoder import Autoencoder, AutoencoderConfig
from ddsp_jax.models.decoders import RnnFcDecoderConfig
from ddsp_jax.models.encoders import MfccEncoderConfig
from ddsp_jax.processors.graph import ProcessorGraphConfig
from ddsp_jax.serialization import from_dict, to_dict


@dataclasses.dataclass(frozen=True)
class OptimizerConfig:
    """Adam with exponential learning-rate decay and global-norm clipping (magenta's), and
    optionally a linear warm-up over the first ``warmup_steps`` steps."""

    learning_rate: float = 3e-4
    decay_steps: int = 10000
    decay_rate: float = 0.98
    grad_clip_norm: float = 3.0
    warmup_steps: int = 0

    def __post_init__(self) -> None:
        for name in ("learning_rate", "decay_rate", "grad_clip_norm"):
            check_positive(name, getattr(self, name))
        check_positive_int("decay_steps", self.decay_steps)
        if self.warmup_steps != 0:
            check_positive_int("warmup_steps", self.warmup_steps)


@dataclasses.dataclass(frozen=True)
class LossConfig:
    """The training loss: multi-scale spectral loss weights (``multi_scale_spectral_loss``)
    and, with ``crepe_embedding_weight`` > 0, the pretrained-CREPE embedding loss
    (``pretrained_crepe_embedding_loss`` of CREPE ``crepe_embedding_model``'s layer
    ``crepe_embedding_layer``; 16 kHz models)."""

    fft_sizes: tuple[int, ...] = (2048, 1024, 512, 256, 128, 64)
    mag_weight: float = 1.0
    logmag_weight: float = 1.0
    loudness_weight: float = 0.0  # A-weighted loudness curves (L1, dB), off as in the paper.
    crepe_embedding_weight: float = 0.0
    crepe_embedding_model: str = "tiny"
    crepe_embedding_layer: str = "classifier"

    def __post_init__(self) -> None:
        from ddsp_jax.losses import CREPE_EMBEDDING_SCALES

        if not self.fft_sizes:
            raise ValueError("fft_sizes must name at least one FFT size.")
        for size in self.fft_sizes:
            check_positive_int("each of fft_sizes", size)
        for name in ("mag_weight", "logmag_weight", "loudness_weight", "crepe_embedding_weight"):
            value = getattr(self, name)
            if not np.isfinite(value) or value < 0:
                raise ValueError(f"{name} must be a number >= 0, got {value!r}.")
        if self.crepe_embedding_model not in ("tiny", "full"):
            raise ValueError(
                f"crepe_embedding_model must be tiny or full, got {self.crepe_embedding_model!r}."
            )
        if self.crepe_embedding_layer not in CREPE_EMBEDDING_SCALES:
            raise ValueError(
                f"crepe_embedding_layer must be one of {', '.join(CREPE_EMBEDDING_SCALES)}; got "
                f"{self.crepe_embedding_layer!r}."
            )


@dataclasses.dataclass(frozen=True)
class DataConfig:
    """Where examples come from.

    Attributes:
        source: ``procedural``; a dataset folder made by ``ddsp prepare``; ``nsynth:PATH``
            (an NSynth TFRecord, json/wav tar or folder, prepared into the run folder on
            first use); or an ``.npz`` with ``audio``, ``f0_hz``, ``loudness_db`` arrays.
        example_seconds: Length of procedural examples (s).
        n_train, n_test: Procedural examples for training and held-out evaluation.
        n_instruments: Procedural instruments.
        test_fraction: Share of an ``.npz`` or of NSynth held out for evaluation.
        f0_model: CREPE capacity (``tiny`` or ``full``) for preparing NSynth.
        nsynth_subset: ``gansynth`` (acoustic, MIDI 24-84) or ``all``.
    """

    source: str = "procedural"
    example_seconds: float = 4.0
    n_train: int = 64
    n_test: int = 8
    n_instruments: int = 1
    test_fraction: float = 0.1
    f0_model: str = "full"
    nsynth_subset: str = "gansynth"

    def __post_init__(self) -> None:
        check_positive("example_seconds", self.example_seconds)
        for name in ("n_train", "n_instruments"):
            check_positive_int(name, getattr(self, name))
        if self.n_test < 0:
            raise ValueError(f"n_test must be an integer >= 0, got {self.n_test!r}.")
        if not 0 <= self.test_fraction < 1:
            raise ValueError(f"test_fraction must be in [0, 1), got {self.test_fraction!r}.")
        if self.f0_model not in ("tiny", "full"):
            raise ValueError(f"f0_model must be tiny or full, got {self.f0_model!r}.")
        if self.nsynth_subset not in ("gansynth", "all"):
            raise ValueError(f"nsynth_subset must be gansynth or all, got {self.nsynth_subset!r}.")


@dataclasses.dataclass(frozen=True)
class InitConfig:
    """Where a new run's parameters start (fine-tuning, ``training.finetune``).

    Attributes:
        from_model: A model folder, a training run or a shipped instrument whose parameters
            the run starts from; None: freshly initialised from the seed.
        keys: The parts taken from it, dotted paths such as ``decoder`` or ``decoder.rnn``;
            empty: all.
        freeze: Parts that training leaves unchanged.
    """

    from_model: str | None = None
    keys: tuple[str, ...] = ()
    freeze: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.keys and self.from_model is None:
            raise ValueError("init.keys names parts to take from init.from_model, which is unset.")


ENGINES = ("jax", "datarax")
CONFIG_FILE = "config.json"  # A run folder's resolved TrainConfig.


def model_class_of(engine: str) -> type[Autoencoder]:
    """The model of a training engine: ``Autoencoder``, or for ``"datarax"`` its subclass that
    synthesises through the datarax operator graph."""
    if engine == "datarax":
        from ddsp_jax.integrations.datarax import DataraxAutoencoder

        return DataraxAutoencoder
    return Autoencoder


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """Everything a training run needs; saved as ``config.json`` in the run folder."""

    model: AutoencoderConfig = dataclasses.field(default_factory=AutoencoderConfig)
    optimizer: OptimizerConfig = dataclasses.field(default_factory=OptimizerConfig)
    loss: LossConfig = dataclasses.field(default_factory=LossConfig)
    data: DataConfig = dataclasses.field(default_factory=DataConfig)
    frame_rate: int = FRAME_RATE
    batch_size: int = 32
    # Each step's batch is split into this many equal micro-batches whose gradients are
    # averaged: the same update (the loss is a mean over the batch) with the activation
    # memory of one micro-batch (the paper's batch 32 at ~2.5 GB instead of ~4 GB).
    micro_batches: int = 1
    steps: int = 30000
    seed: int = 0
    checkpoint_every: int = 1000
    keep_checkpoints: int = 3
    max_nonfinite_steps: int = 10
    tensorboard: bool = True  # Also write TensorBoard event files, if tensorboardX is installed.
    # Every eval_every steps (0: never) `ddsp train` logs the held-out spectral loss and the
    # resynthesis's loudness L1; with eval_f0_model ("tiny" or "full") also its f0 metrics.
    eval_every: int = 0
    eval_f0_model: str | None = None
    # With eval_every, this many held-out examples are also written as summaries: audio
    # (target and resynthesis) and a figure of spectrograms, loudness and f0, in TensorBoard
    # and as PNGs in the run's summaries/ folder.
    eval_summaries: int = 2
    # "jax": batches from an in-memory source, synthesis by ProcessorGraph. "datarax" (needs
    # the extra): as datarax's DDSP example, a datarax Pipeline over a MemorySource feeding
    # the datarax operator graph (ddsp_jax.integrations.datarax).
    engine: typing.Literal["jax", "datarax"] = "jax"
    init: InitConfig = dataclasses.field(default_factory=InitConfig)

    def __post_init__(self) -> None:
        for name in (
            "frame_rate",
            "batch_size",
            "micro_batches",
            "steps",
            "checkpoint_every",
            "keep_checkpoints",
            "max_nonfinite_steps",
        ):
            check_positive_int(name, getattr(self, name))
        if self.batch_size % self.micro_batches:
            raise ValueError(
                f"batch_size {self.batch_size} is not a multiple of micro_batches "
                f"{self.micro_batches} (choose a divisor, e.g. --set micro_batches=1)."
            )
        if self.eval_every < 0:
            raise ValueError(f"eval_every must be >= 0, got {self.eval_every}.")
        if self.eval_summaries < 0:
            raise ValueError(f"eval_summaries must be >= 0, got {self.eval_summaries}.")
        if self.eval_f0_model not in (None, "tiny", "full"):
            raise ValueError(
                f"eval_f0_model must be tiny, full or null, got {self.eval_f0_model!r}."
            )
        if self.engine not in ENGINES:
            raise ValueError(f"engine must be one of {ENGINES}, got {self.engine!r}.")
        if self.engine == "datarax" and self.model.graph is not None:
            raise ValueError(
                "engine datarax synthesises the standard graph; this model declares its own "
                "(model.graph): use engine jax."
            )
        synth = self.model.synth
        if self.loss.crepe_embedding_weight > 0 and synth.sample_rate != 16000:
            raise ValueError(
                f"the CREPE embedding loss compares 16 kHz audio; this model is "
                f"{synth.sample_rate} Hz (set loss.crepe_embedding_weight=0)."
            )
        if synth.n_samples * self.frame_rate % synth.sample_rate:
            raise ValueError(
                f"n_samples={synth.n_samples} at {synth.sample_rate} Hz is not a whole number "
                f"of {self.frame_rate} Hz frames."
            )

    @property
    def n_frames(self) -> int:
        synth = self.model.synth
        return synth.n_samples * self.frame_rate // synth.sample_rate


def model_config(
    n_harmonics: int,
    reverb: str,
    reverb_length: int,
    ch: int,
    layers: int,
    rnn_channels: int,
    n_samples: int,
    sample_rate: int = SAMPLE_RATE,
    n_noise_bands: int = 65,
    encoder: MfccEncoderConfig | None = None,
) -> AutoencoderConfig:
    """An autoencoder's config from its sizes (``encoder``: the z encoder, whose ``z`` the
    decoder then reads too)."""
    z_inputs = () if encoder is None else (("z", encoder.z_dims),)
    inputs = (("f0_scaled", 1), ("ld_scaled", 1), *z_inputs)
    return AutoencoderConfig(
        decoder=RnnFcDecoderConfig(
            input_keys=tuple(name for name, _ in inputs),
            input_sizes=tuple(size for _, size in inputs),
            output_splits=(
                ("amplitudes", 1),
                ("harmonic_distribution", n_harmonics),
                ("noise_magnitudes", n_noise_bands),
            ),
            ch=ch,
            layers_per_stack=layers,
            rnn_channels=rnn_channels,
        ),
        synth=ProcessorGraphConfig(
            sample_rate=sample_rate,
            n_samples=n_samples,
            n_harmonics=n_harmonics,
            n_noise_bands=n_noise_bands,
            reverb=reverb,  # type: ignore[arg-type]
            reverb_length=reverb_length,
        ),
        encoder=encoder,
    )


PRESETS: dict[str, TrainConfig] = {
    # The paper's NSynth model (without the z encoder): 4 s notes, no reverb.
    "nsynth": TrainConfig(
        model=model_config(100, "none", 48000, 512, 3, 512, 64000),
        data=DataConfig(example_seconds=4.0, n_instruments=8),
        micro_batches=2,  # Batch 32 in ~2.4 GB instead of ~3.9 GB, and no slower.
    ),
    # The paper's NSynth autoencoder (magenta's ae.gin): the nsynth model conditioned also on
    # z from the audio (MFCCs → GRU 512 → 16 values, 125 steps in 4 s), which learns the
    # timbre of each note and makes timbre interpolation possible.
    "nsynth_ae": TrainConfig(
        model=model_config(100, "none", 48000, 512, 3, 512, 64000, encoder=MfccEncoderConfig()),
        data=DataConfig(example_seconds=4.0, n_instruments=8),
        micro_batches=2,
    ),
    # magenta's solo-instrument model: 60 harmonics and a 3 s trainable reverb.
    "solo": TrainConfig(
        model=model_config(60, "ir", 48000, 512, 3, 512, 64000),
        batch_size=16,
        steps=30000,
    ),
    # solo's instrument on a laptop CPU in an hour (docs/benchmarks.md): half the decoder
    # width (a quarter of its FLOPs), 100 Hz control frames (the GRU scans 400 frames, not
    # 1000), a 1 s reverb and batch 8; magenta's learning rate decaying tenfold over the run
    # (`ddsp train --minutes` scales it to the steps that fit). At 1e-3 the harmonic
    # amplitude collapsed to silence in the first 500 steps on flute and tenor sax phrases.
    "solo-cpu": TrainConfig(
        model=model_config(60, "ir", 16000, 256, 3, 256, 64000),
        optimizer=OptimizerConfig(learning_rate=3e-4, decay_rate=0.1, decay_steps=8000),
        batch_size=8,
        steps=8000,
        checkpoint_every=500,
        frame_rate=100,
        eval_every=500,
        eval_f0_model="tiny",
    ),
    # Small enough to learn audibly in about a minute on a laptop CPU: 100 Hz control frames
    # (the GRU's sequential scan is the step's slowest part) and a learning rate that decays
    # tenfold over the run, so the last steps settle instead of jittering.
    "quick": TrainConfig(
        model=model_config(40, "ir", 4000, 96, 2, 96, 16000),
        optimizer=OptimizerConfig(learning_rate=3e-3, decay_rate=0.1, decay_steps=350),
        loss=LossConfig(fft_sizes=(1024, 512, 256, 128)),
        data=DataConfig(example_seconds=1.0, n_train=48, n_test=8),
        batch_size=4,
        steps=350,
        checkpoint_every=100,
        frame_rate=100,
    ),
}


def override(config: TrainConfig, assignments: list[str]) -> TrainConfig:
    """Apply ``section.name=value`` overrides, e.g. ``optimizer.learning_rate=1e-3``.

    Values are parsed as JSON where possible (numbers, lists, true/false), else as strings.
    """
    data = to_dict(config)
    for assignment in assignments:
        path, sep, raw = assignment.partition("=")
        if not sep:
            raise ValueError(f"override {assignment!r} must look like section.name=value.")
        try:
            value = json.loads(raw)
        except json.JSONDecodeError:
            value = raw
        node = data
        keys = path.strip().split(".")
        for key in keys[:-1]:
            if not isinstance(node.get(key), dict):
                raise ValueError(f"override {assignment!r}: no section {key!r}.")
            node = node[key]
        if keys[-1] not in node:
            raise ValueError(f"override {assignment!r}: no setting {keys[-1]!r}.")
        node[keys[-1]] = value
    return from_dict(TrainConfig, data)


def load(path: str | Path, base: TrainConfig | None = None) -> TrainConfig:
    """Load a TOML or JSON config file; its settings override ``base`` (default: defaults).

    Raises:
        ValueError: For unreadable files and unknown settings, naming the file.
    """
    path = Path(path)
    try:
        text = path.read_text()
        data = tomllib.loads(text) if path.suffix == ".toml" else json.loads(text)
    except (OSError, ValueError) as error:
        raise ValueError(f"cannot read config {path}: {error}") from error
    merged = to_dict(base or TrainConfig())

    def merge(into: dict, new: dict) -> None:
        for key, value in new.items():
            if isinstance(value, dict) and isinstance(into.get(key), dict):
                merge(into[key], value)
            else:
                into[key] = value

    merge(merged, data)
    try:
        return from_dict(TrainConfig, merged)
    except (ValueError, TypeError) as error:
        raise ValueError(f"config {path}: {error}") from error


def resolve(
    preset: str | None = None,
    config_file: str | Path | None = None,
    overrides: Sequence[str] = (),
    *,
    data: str | None = None,
    f0_model: str | None = None,
    learning_rate: float | None = None,
    steps: int | None = None,
    batch_size: int | None = None,
    init_from: str | None = None,
    init_keys: Sequence[str] | None = None,
    freeze: Sequence[str] | None = None,
) -> TrainConfig:
    """A new run's config: ``preset`` (default ``solo``), then the settings of
    ``config_file``, then ``overrides`` (``section.name=value``), then each value given here
    (what ``ddsp train``'s flags set; ``init_from``, ``init_keys`` and ``freeze`` go to
    ``init``).

    Raises:
        ValueError: For an unknown preset, an unreadable file or a bad setting, naming it.

    >>> config = resolve("quick", overrides=["optimizer.learning_rate=1e-3"], steps=10)
    >>> config.optimizer.learning_rate, config.steps, config.frame_rate
    (0.001, 10, 100)
    """
    name = preset or "solo"
    if name not in PRESETS:
        raise ValueError(f"unknown preset {name!r}; presets: {', '.join(PRESETS)}.")
    config = PRESETS[name]
    if config_file is not None:
        config = load(config_file, base=config)
    config = override(config, list(overrides))
    data_config = config.data
    if data is not None:
        data_config = dataclasses.replace(data_config, source=data)
    if f0_model is not None:
        data_config = dataclasses.replace(data_config, f0_model=f0_model)
    optimizer = config.optimizer
    if learning_rate is not None:
        optimizer = dataclasses.replace(optimizer, learning_rate=learning_rate)
    init = config.init
    if init_from is not None:
        init = dataclasses.replace(init, from_model=init_from)
    if init_keys is not None:
        init = dataclasses.replace(init, keys=tuple(init_keys))
    if freeze is not None:
        init = dataclasses.replace(init, freeze=tuple(freeze))
    return dataclasses.replace(
        config,
        data=data_config,
        optimizer=optimizer,
        init=init,
        steps=config.steps if steps is None else steps,
        batch_size=config.batch_size if batch_size is None else batch_size,
    )


def saved_config(run_dir: str | Path, steps: int | None = None) -> TrainConfig:
    """The config a run folder saved (its ``config.json``, what ``--resume`` continues), with
    ``steps`` if given.

    Raises:
        ValueError: When the folder has no readable ``config.json``.
    """
    path = Path(run_dir) / CONFIG_FILE
    try:
        config = from_dict(TrainConfig, json.loads(path.read_text()))
    except FileNotFoundError:
        raise ValueError(f"cannot resume: {path} does not exist.") from None
    except (OSError, TypeError, ValueError) as error:
        raise ValueError(f"{path}: unreadable ({error}).") from error
    return config if steps is None else dataclasses.replace(config, steps=steps)
