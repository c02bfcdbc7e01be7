"""Inference with a saved model: resynthesis and timbre transfer of audio of any length, rate
and channel count."""

import dataclasses
import functools
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import soxr
from flax import nnx

from ddsp_jax.adjustments import adjust
from ddsp_jax.core.validation import check_positive_int
from ddsp_jax.features.extract import features_in_chunks, level_conditioning
from ddsp_jax.features.notes import SILENCE_PEAK, note_frames
from ddsp_jax.models.autoencoder import Autoencoder, render
from ddsp_jax.models.saved import SavedModel
from ddsp_jax.streaming import Stream

# ``ddsp transfer`` warns when, on the note frames, the output's loudness is this far (dB,
# median) from the loudness it was conditioned on: the model does not follow the input.
LOUDNESS_WARNING_DB = 10.0


def loudness_advice(saved: SavedModel) -> str:
    """What to do about a model that does not follow an input's loudness, from how it was
    trained: models of isolated notes (procedural or NSynth-like data) learn the notes'
    timing, not dynamics; an early checkpoint of a longer run has not learnt them yet.

    >>> from pathlib import Path
    >>> notes = SavedModel(None, 250, None, 400, Path("m"), {"data": {"source": "procedural"}})
    >>> loudness_advice(notes).split(";")[0]
    'it was trained on isolated notes, which teach their timing rather than dynamics'
    """
    source = str(saved.training.get("data", {}).get("source", ""))
    steps = saved.training.get("steps")
    if source == "procedural" or source.startswith("nsynth:"):
        return (
            "it was trained on isolated notes, which teach their timing rather than dynamics; "
            "train on phrases or recordings of playing (ddsp render-soundfont --phrases, "
            "ddsp prepare)"
        )
    if isinstance(steps, int) and saved.step < steps:
        return (
            f"it is at step {saved.step} of its run's {steps}: train it further "
            "(ddsp train --out RUN --resume)"
        )
    return (
        "its training data may not span this input's dynamics: compare the loudness in "
        "`ddsp transfer --plot`, or give --loudness-shift"
    )


class SilentInputError(ValueError):
    """Input with no sound to resynthesise."""


def model_for_length(saved: SavedModel, n_samples: int) -> Autoencoder:
    """The saved model, synthesising ``n_samples`` at a time (no parameter depends on it)."""
    synth = dataclasses.replace(saved.config.synth, n_samples=n_samples)
    config = dataclasses.replace(saved.config, synth=synth)
    graphdef = nnx.split(nnx.eval_shape(lambda: Autoencoder(config, rngs=nnx.Rngs(0))))[0]
    return nnx.merge(graphdef, nnx.state(saved.model))


def frames_covering(n_samples: int, sample_rate: int, frame_rate: int) -> int:
    """The fewest frames whose hops cover ``n_samples`` at ``sample_rate``."""
    return -(-n_samples * frame_rate // sample_rate)


def extract(saved: SavedModel, audio: np.ndarray, f0_model: str = "full") -> dict[str, np.ndarray]:
    """The model's conditioning of mono ``audio`` ``[n_samples]`` at the model's sample rate:
    ``f0_hz``, ``f0_confidence``, ``loudness_db`` (the model's level feature: loudness, or
    power for a power model; ``features.level_conditioning``) and ``power_db``, each
    ``[n_frames]`` with ``n_frames`` covering ``n_samples`` (``frames_covering``; the audio
    zero beyond its end), computed in bounded memory (``features_in_chunks``).

    Raises:
        ValueError: For audio shorter than one frame or with NaN/inf.
    """
    sample_rate, frame_rate = saved.sample_rate, saved.frame_rate
    _check_length(len(audio), sample_rate, frame_rate)
    n_frames = frames_covering(len(audio), sample_rate, frame_rate)
    blocks = _InputCheck([audio])
    features = features_in_chunks(blocks, sample_rate, n_frames, frame_rate, f0_model)
    return level_conditioning(features, saved.config.level_feature)


@functools.partial(nnx.jit, static_argnums=2)
def _encode(model: Autoencoder, audio: jax.Array, n_frames: int) -> jax.Array:
    return model.encode(audio, n_frames)


def encode_z(saved: SavedModel, audio: np.ndarray, n_frames: int) -> np.ndarray:
    """The model's ``z`` ``[n_frames, z_dims]`` of mono ``audio`` ``[n_samples]`` at its
    sample rate: its encoder over the whole input at once (the encoder normalises each MFCC
    over time, as over a training example)."""
    z = _encode(saved.model, jnp.asarray(audio, jnp.float32)[None], n_frames)
    return np.asarray(z[0])


def timbre_z(saved: SavedModel, timbre: np.ndarray, n_frames: int) -> np.ndarray:
    """The ``z`` of a timbre: ``encode_z`` of mono ``timbre`` audio (at the model's rate)
    averaged over its frames, held for ``n_frames`` frames ``[n_frames, z_dims]``."""
    _check_length(len(timbre), saved.sample_rate, saved.frame_rate)
    frames = frames_covering(len(timbre), saved.sample_rate, saved.frame_rate)
    mean = encode_z(saved, timbre, frames).mean(axis=0)
    return np.broadcast_to(mean, (n_frames, len(mean))).astype(np.float32)


def _check_length(n_samples: int, sample_rate: int, frame_rate: int) -> None:
    if n_samples * frame_rate < sample_rate:
        raise ValueError(
            f"audio of {n_samples} samples is shorter than one frame "
            f"({sample_rate / frame_rate:g} samples at {sample_rate} Hz)."
        )


def synthesize_blocks(
    saved: SavedModel,
    f0_hz: np.ndarray,
    loudness_db: np.ndarray,
    block_frames: int = 250,
    z: np.ndarray | None = None,
) -> Iterator[np.ndarray]:
    """The model's audio for conditioning ``[n_frames]`` (and, for a model with a z encoder,
    ``z`` ``[n_frames, z_dims]``), ``n_frames · hop`` samples at the model's rate in
    consecutive blocks of about ``block_frames · hop`` (the first shorter by the stream's
    latency, the last what remains): the streaming engine (``streaming.Stream``) carries the
    decoder's GRU state, the phase, the noise and the reverb's tail across blocks, so memory
    does not grow with the input and the blocks equal the one-pass render
    (``models.render``) within float32 rounding. A model whose hop is not a whole number of
    samples, or whose synthesis is a declared graph, is rendered in one pass."""
    f0_hz = np.asarray(f0_hz, np.float32)
    loudness_db = np.asarray(loudness_db, np.float32)
    n_frames = len(f0_hz)
    if (saved.config.encoder is None) != (z is None):
        raise ValueError(
            "z is the conditioning of a model with a z encoder, and only of one: "
            f"this model has {'no' if saved.config.encoder is None else 'an'} encoder."
        )
    if saved.sample_rate % saved.frame_rate or saved.config.graph is not None:
        model = model_for_length(saved, n_frames * saved.sample_rate // saved.frame_rate)
        batch_z = None if z is None else jnp.asarray(z, jnp.float32)[None]
        yield np.asarray(render(model, f0_hz[None], loudness_db[None], batch_z)[0])
        return
    hop = saved.sample_rate // saved.frame_rate
    stream = Stream(saved, block_frames * hop)
    skip, left = stream.latency, n_frames * hop  # Samples still to drop, and to return.
    start = 0
    while left > 0:
        values = {"f0_hz": f0_hz[start : start + block_frames]}
        values["loudness_db"] = loudness_db[start : start + block_frames]
        if z is not None:
            values["z"] = z[start : start + block_frames]
        if start + block_frames <= n_frames:
            block = stream.process(**values)
        else:
            block = stream.finish(**values)
        start += block_frames
        block = block[skip : skip + left]
        skip -= min(skip, stream.plan.block_size)
        left -= len(block)
        if len(block):
            yield block


def synthesize(
    saved: SavedModel, f0_hz: np.ndarray, loudness_db: np.ndarray, z: np.ndarray | None = None
) -> np.ndarray:
    """Audio ``[n_frames · hop]`` at the model's sample rate from conditioning
    ``[n_frames]`` (and ``z`` for a model with a z encoder): ``synthesize_blocks`` joined (no
    chunk boundaries: every state runs through the whole input)."""
    return np.concatenate(list(synthesize_blocks(saved, f0_hz, loudness_db, z=z)))


@dataclasses.dataclass
class Rendering:
    """What ``play`` did besides writing the audio.

    Attributes:
        features: The input's conditioning (``extract``).
        adjusted: The conditioning the model played (``adjust``'s), None for resynthesis.
        report: ``adjust``'s report plus ``loudness_error_db``, None for resynthesis.
    """

    features: dict[str, np.ndarray]
    adjusted: dict[str, np.ndarray] | None = None
    report: dict[str, Any] | None = None


class _InputCheck:
    """Mono input blocks checked for NaN/inf as they pass, and their peak once the mean is
    removed (``features.notes.signal_peak``) gathered on the way."""

    def __init__(self, blocks: Iterable[np.ndarray]) -> None:
        self.blocks = blocks
        self.total, self.count = 0.0, 0
        self.low, self.high = np.inf, -np.inf

    def __iter__(self) -> Iterator[np.ndarray]:
        for block in self.blocks:
            block = np.asarray(block, np.float32).reshape(-1)
            if not np.all(np.isfinite(block)):
                raise ValueError("the audio has NaN or infinite samples.")
            if len(block):
                self.total += float(np.sum(block, dtype=np.float64))
                self.count += len(block)
                self.low = min(self.low, float(block.min()))
                self.high = max(self.high, float(block.max()))
            yield block

    def silent(self) -> bool:
        if self.count == 0:
            return True
        mean = self.total / self.count
        return max(self.high - mean, mean - self.low) < SILENCE_PEAK


def _resampler(from_rate: int, to_rate: int) -> Callable[..., np.ndarray]:
    """``resample(block, last=False)``: consecutive mono blocks at ``from_rate`` → at
    ``to_rate`` by soxr's high-quality stream (the same samples as resampling the whole
    signal at once); ``last`` flushes the filter."""
    if from_rate == to_rate:
        return lambda block, last=False: block
    return soxr.ResampleStream(from_rate, to_rate, 1, "float32", "HQ").resample_chunk


def _resampled(blocks: Iterable[np.ndarray], from_rate: int, to_rate: int) -> Iterator[np.ndarray]:
    """``_resampler`` over a sequence of blocks."""
    resample = _resampler(from_rate, to_rate)
    for block in blocks:
        yield resample(block)
    yield resample(np.zeros(0, np.float32), last=True)


ProgressReport = Callable[[str, float], None]  # (stage, fraction done)


class _Progress:
    """A bar in seconds of audio with an ETA (shown on a terminal only) that also tells
    ``report`` its stage and the fraction done."""

    def __init__(
        self, enabled: bool, total: float, stage: str, report: ProgressReport | None
    ) -> None:
        from tqdm.auto import tqdm

        self.total, self.stage, self.report, self.done = total, stage, report, 0.0
        self.bar = tqdm(
            total=round(total, 2),
            unit="s",
            desc=stage,
            dynamic_ncols=True,
            disable=None if enabled else True,
            bar_format="{l_bar}{bar}| {n:.0f}/{total:.0f} s [{elapsed}<{remaining}]",
        )

    def update(self, seconds: float) -> None:
        self.bar.update(seconds)
        self.done += seconds
        if self.report is not None:
            self.report(self.stage, min(1.0, self.done / self.total) if self.total else 1.0)

    def __enter__(self) -> "_Progress":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.bar.close()


def play(
    saved: SavedModel,
    blocks: Iterable[np.ndarray],
    n_samples: int,
    sample_rate: int,
    write: Callable[[np.ndarray], None],
    f0_model: str = "full",
    adjustments: dict[str, Any] | None = None,
    progress: bool = False,
    chunk_seconds: float = 10.0,
    timbre: np.ndarray | None = None,
    on_progress: ProgressReport | None = None,
) -> Rendering:
    """Resynthesis (``adjustments`` None) or timbre transfer (``adjust(**adjustments)``) of
    audio of any length, in memory bounded by a chunk, not by the input.

    The input's mono blocks at ``sample_rate`` are read once: resampled to the model's rate
    as they come (soxr's stream) and turned into conditioning chunk by chunk
    (``features_in_chunks``); then the model plays the (adjusted) conditioning block by
    block (``synthesize_blocks``), and each block, resampled back to ``sample_rate``, goes to
    ``write``: ``n_samples`` samples in all, the input's length. The result equals the
    one-pass computation on the whole input within float32 rounding.

    Args:
        saved: The model.
        blocks: The input, mono ``[n]`` blocks of any sizes, ``n_samples`` in all.
        n_samples: The input's length (samples at ``sample_rate``).
        sample_rate: The input's and output's samples per second (Hz).
        write: Called with each output block, in order.
        f0_model: ``"tiny"`` or ``"full"`` CREPE.
        adjustments: ``adjust``'s settings for timbre transfer; None resynthesises.
        progress: Show progress bars with an ETA on a terminal.
        chunk_seconds: Audio whose features are computed at a time (memory grows with it).
        timbre: For a model with a z encoder, mono audio at the model's rate whose timbre
            to play with (``timbre_z``); by default the input's own ``z`` (``encode_z``: the
            input is then kept at the model's rate, 3.8 MB a minute at 16 kHz).
        on_progress: Called as the work advances with its stage (``"features"``, then
            ``"synthesis"``) and the fraction of that stage done; an exception it raises
            stops the work.

    Raises:
        SilentInputError: For audio without sound (peak below −80 dBFS once the mean is
            removed), or, for transfer, without note frames; nothing has been written then.
        ValueError: For audio shorter than one frame or with NaN/inf, and for a sample rate
            or length that is not a positive integer.
    """
    check_positive_int("sample_rate", sample_rate)
    check_positive_int("n_samples", n_samples)
    frame_rate, model_rate = saved.frame_rate, saved.sample_rate
    _check_length(n_samples * model_rate // sample_rate, model_rate, frame_rate)
    n_frames = frames_covering(n_samples, sample_rate, frame_rate)
    seconds = n_samples / sample_rate
    checked = _InputCheck(blocks)
    encoder = saved.config.encoder
    if timbre is not None and encoder is None:
        raise ValueError("a timbre takes a model with a z encoder (e.g. --preset nsynth_ae).")
    kept: list[np.ndarray] = []  # The input at the model's rate, for its own z.

    def keep(blocks: Iterator[np.ndarray]) -> Iterator[np.ndarray]:
        for block in blocks:
            if encoder is not None and timbre is None:
                kept.append(block)
            yield block

    with _Progress(progress, seconds, "features", on_progress) as bar:
        features = features_in_chunks(
            keep(_resampled(checked, sample_rate, model_rate)),
            model_rate,
            n_frames,
            frame_rate,
            f0_model,
            chunk_frames=max(1, round(chunk_seconds * frame_rate)),
            progress=lambda frames: bar.update(round(frames / frame_rate, 2)),
        )
    if checked.silent():
        raise SilentInputError("the audio is silent: no notes were detected.")
    level = saved.config.level_feature
    features = level_conditioning(features, level)
    z = None
    if timbre is not None:
        z = timbre_z(saved, timbre, n_frames)
    elif encoder is not None:
        z = encode_z(saved, np.concatenate(kept), n_frames)
    rendering = Rendering(features)
    conditioning = features
    if adjustments is not None:
        conditioning, report = adjust(features, saved.statistics, **adjustments)
        if report["note_frames"] == 0:
            raise SilentInputError("no notes were detected (no confidently pitched frames).")
        rendering.adjusted, rendering.report = conditioning, report
    resample, left = _resampler(model_rate, sample_rate), n_samples

    def send(block: np.ndarray) -> None:
        """Write ``block`` (at ``sample_rate``) up to the input's length."""
        nonlocal left
        block = block[:left]
        left -= len(block)
        if len(block):
            write(block.astype(np.float32))

    def played(bar: Any) -> Iterator[np.ndarray]:
        """The model's blocks at its rate, each written as it passes."""
        f0_hz, loudness_db = conditioning["f0_hz"], conditioning["loudness_db"]
        for block in synthesize_blocks(saved, f0_hz, loudness_db, z=z):
            send(resample(block))
            bar.update(round(len(block) / model_rate, 2))
            yield block
        send(resample(np.zeros(0, np.float32), last=True))
        send(np.zeros(left, np.float32))

    with _Progress(progress, seconds, "synthesis", on_progress) as bar:
        blocks_out = played(bar)
        if rendering.report is not None:
            out = features_in_chunks(blocks_out, model_rate, n_frames, frame_rate, None)
            out = level_conditioning(out, level)
            mask = note_frames(features["f0_confidence"], features["loudness_db"])
            error = out["loudness_db"] - conditioning["loudness_db"]
            rendering.report["loudness_error_db"] = float(np.median(error[mask]))
        for _ in blocks_out:  # What the loudness did not need.
            pass
    return rendering


def _play_array(
    saved: SavedModel,
    audio: np.ndarray,
    sample_rate: int,
    f0_model: str,
    adjustments: dict[str, Any] | None,
    chunk: int = 1 << 16,
    **options: Any,
) -> tuple[np.ndarray, Rendering]:
    """``play`` (with ``options``) on an array (``[n_samples]`` or ``[n_samples, channels]``),
    into an array."""
    mono = np.asarray(audio, np.float32)
    mono = mono.mean(axis=1) if mono.ndim == 2 else mono
    out, filled = np.zeros(len(mono), np.float32), 0

    def write(block: np.ndarray) -> None:
        nonlocal filled
        out[filled : filled + len(block)] = block
        filled += len(block)

    blocks = (mono[i : i + chunk] for i in range(0, len(mono), chunk))
    rendering = play(saved, blocks, len(mono), sample_rate, write, f0_model, adjustments, **options)
    return out, rendering


def resynthesize(
    saved: SavedModel,
    audio: np.ndarray,
    sample_rate: int,
    f0_model: str = "full",
    timbre: np.ndarray | None = None,
) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Resynthesise ``audio`` (``[n_samples]`` or ``[n_samples, channels]``, at
    ``sample_rate``) with the model: features extracted at the model's rate, synthesis there,
    the result resampled back to ``sample_rate`` with the input's length (``play``; a model
    with a z encoder takes z from ``audio`` or from ``timbre``, mono at the model's rate).

    Returns:
        ``(audio [n_samples] at sample_rate, features)``.

    Raises:
        SilentInputError: For audio without sound (peak below −80 dBFS).
        ValueError: For audio shorter than one frame or with NaN/inf.
    """
    out, rendering = _play_array(saved, audio, sample_rate, f0_model, None, timbre=timbre)
    return out, rendering.features


def transfer(
    saved: SavedModel,
    audio: np.ndarray,
    sample_rate: int,
    f0_model: str = "full",
    timbre: np.ndarray | None = None,
    **adjustments: Any,
) -> tuple[np.ndarray, dict[str, np.ndarray], dict[str, np.ndarray], dict[str, Any]]:
    """Timbre transfer: ``audio`` (any rate, mono or stereo) played by the model, its
    features adjusted by ``adjust(**adjustments)`` (z as in ``resynthesize``).

    Returns:
        ``(audio [n_samples] at sample_rate, features, adjusted features, report)``; the
        report (see ``adjust``) adds ``loudness_error_db``: the median, over note frames, of
        the output's loudness minus the adjusted loudness it was asked for (near 0 dB for a
        model that follows loudness).

    Raises:
        SilentInputError: For silent audio; ValueError for audio shorter than a frame.
    """
    out, rendering = _play_array(saved, audio, sample_rate, f0_model, adjustments, timbre=timbre)
    return out, rendering.features, rendering.adjusted, rendering.report
