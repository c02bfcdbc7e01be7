"""A streaming polyphase resampler with a delay of about 1.5 ms, for live audio.

soxr's streaming resamplers delay the signal by 30-90 ms at their usual qualities (long
filters, output in bursts); a host at 44.1 or 48 kHz around a 16 kHz model pays that twice.
``PolyphaseResampler`` converts by the rational ratio ``up / down`` with a Kaiser-windowed
sinc designed by ``scipy.signal.kaiserord`` (the ``up`` polyphase branches of one prototype
low-pass at ``up × from_rate``), computed sample-exactly block by block: a block's output
depends only on the input so far, and joined blocks equal the whole signal's conversion.
The pass band ends at 90 % of the lower rate's Nyquist frequency, the stop band starts at
110 % with ``attenuation_db`` (80 dB) of attenuation; the filter spans about 3 ms whatever
the rates, and its delay, half of it, is made a whole number of output samples (about
1.6 ms), so that a chain of conversions delays by whole samples too.
"""

import math

import numpy as np
from scipy.signal import firwin, kaiserord


class PolyphaseResampler:
    """Mono float32 blocks at ``from_rate`` → at ``to_rate``, a block at a time.

    Output sample ``n`` is the signal at time ``n / to_rate - delay`` (``delay`` in seconds,
    ``delay_samples`` whole output samples); ``process`` returns every output sample whose
    inputs have arrived.

    Args:
        from_rate: Input samples per second (Hz).
        to_rate: Output samples per second (Hz).
        attenuation_db: Stop-band attenuation (dB).

    >>> resampler = PolyphaseResampler(48000, 16000)
    >>> t = np.arange(4800) / 48000
    >>> out = np.concatenate([resampler.process(b) for b in np.split(np.sin(2e3 * t), 10)])
    >>> len(out), resampler.taps, resampler.delay_samples, resampler.delay * 1e3
    (1600, 157, 26, 1.625)
    """

    def __init__(self, from_rate: int, to_rate: int, attenuation_db: float = 80.0) -> None:
        if from_rate <= 0 or to_rate <= 0:
            raise ValueError(f"sample rates must be positive, got {from_rate} and {to_rate}.")
        gcd = math.gcd(from_rate, to_rate)
        self.up, self.down = to_rate // gcd, from_rate // gcd
        self.from_rate, self.to_rate = from_rate, to_rate
        nyquist = min(from_rate, to_rate) / 2
        upsampled_nyquist = from_rate * self.up / 2
        length, beta = kaiserord(attenuation_db, 0.2 * nyquist / upsampled_nyquist)
        # A length whose half (the delay) is a whole number of output samples, 2·down apart.
        length = 2 * self.down * -(-(length - 1) // (2 * self.down)) + 1
        self.delay_samples = (length - 1) // (2 * self.down)
        self.taps = -(-length // self.up)  # Input samples per output sample.
        prototype = np.zeros(self.taps * self.up)
        prototype[:length] = firwin(
            length, nyquist, window=("kaiser", beta), fs=2 * upsampled_nyquist
        )
        # Branch p holds the prototype's taps p, p + up, ...: output sample n takes branch
        # (n·down) mod up against the input samples (n·down) // up, one before it, ...
        self._branches = (self.up * prototype.reshape(self.taps, self.up).T).astype(np.float32)
        self.delay = self.delay_samples / to_rate
        self.reset()

    def reset(self) -> None:
        """Start again from silence."""
        self._history = np.zeros(self.taps - 1, np.float32)  # The last inputs before a block.
        self._received = 0  # Input samples so far.
        self._made = 0  # Output samples so far.

    def process(self, block: np.ndarray) -> np.ndarray:
        """The output samples that the input up to the end of ``block`` completes."""
        block = np.asarray(block, np.float32).reshape(-1)
        signal = np.concatenate([self._history, block])
        first = self._received - len(self._history)  # Input index of signal[0].
        self._received += len(block)
        # Output n needs input (n·down) // up, the newest sample of its window.
        end = -(-self._received * self.up // self.down)
        position = np.arange(self._made, end) * self.down
        self._made = end
        newest = position // self.up - first  # At least taps - 1: the history precedes it.
        samples = signal[newest[:, None] - np.arange(self.taps)[None, :]]
        # einsum sums each row the same way whatever the block (a BLAS product need not).
        if self.up == 1:
            out = np.einsum("nk,k->n", samples, self._branches[0])
        else:
            out = np.einsum("nk,nk->n", samples, self._branches[position % self.up])
        self._history = signal[len(signal) - (self.taps - 1) :]
        return out
