"""The streaming polyphase resampler: exact in blocks, flat pass band, 80 dB stop band."""

import numpy as np
import pytest

from ddsp_jax.polyphase import PolyphaseResampler

RATES = [(48000, 16000), (44100, 16000), (16000, 48000), (16000, 44100), (22050, 16000)]


def tone(frequency: float, rate: int, seconds: float = 0.5) -> np.ndarray:
    return np.sin(2 * np.pi * frequency * np.arange(round(seconds * rate)) / rate).astype(
        np.float32
    )


@pytest.mark.parametrize(("from_rate", "to_rate"), RATES)
def test_blocks_of_any_size_equal_the_whole_signal(from_rate, to_rate):
    signal = np.random.default_rng(0).standard_normal(from_rate // 2).astype(np.float32)
    resampler = PolyphaseResampler(from_rate, to_rate)
    whole = resampler.process(signal)
    assert len(whole) == len(signal) * to_rate // from_rate
    resampler.reset()
    sizes = np.random.default_rng(1).integers(1, 700, 200)
    pieces, start = [], 0
    for size in sizes:
        pieces.append(resampler.process(signal[start : start + size]))
        start += size
    pieces.append(resampler.process(signal[start:]))
    np.testing.assert_array_equal(np.concatenate(pieces), whole)


@pytest.mark.parametrize(("from_rate", "to_rate"), RATES)
def test_a_pass_band_tone_comes_out_delayed_by_the_stated_delay(from_rate, to_rate):
    resampler = PolyphaseResampler(from_rate, to_rate)
    assert 1e-3 < resampler.delay < 2e-3
    for fraction in (0.05, 0.44):  # Of the lower rate: low, and the pass band's edge.
        frequency = fraction * min(from_rate, to_rate)
        resampler.reset()
        out = resampler.process(tone(frequency, from_rate))[200:-200]
        time = (200 + np.arange(len(out))) / to_rate - resampler.delay
        ideal = np.sin(2 * np.pi * frequency * time)
        error_db = 10 * np.log10(np.mean((out - ideal) ** 2) / np.mean(ideal**2))
        assert error_db < -70, (frequency, error_db)


@pytest.mark.parametrize(("from_rate", "to_rate"), RATES)
def test_what_would_alias_or_image_is_80_db_down(from_rate, to_rate):
    resampler = PolyphaseResampler(from_rate, to_rate)
    lower = min(from_rate, to_rate)
    if from_rate > to_rate:  # A tone above the output's Nyquist frequency must not fold back.
        out = resampler.process(tone(0.56 * lower, from_rate))[400:-400]
        assert 20 * np.log10(np.max(np.abs(out))) < -78
    else:  # Upsampling a pass-band tone makes no images above the input's Nyquist frequency.
        out = resampler.process(tone(0.3 * lower, from_rate))[400:-400]
        spectrum = np.abs(np.fft.rfft(out * np.hanning(len(out))))
        frequencies = np.fft.rfftfreq(len(out), 1 / to_rate)
        images = spectrum[frequencies > 0.56 * lower].max() / spectrum.max()
        assert 20 * np.log10(images) < -78


def test_bad_rates_are_refused():
    with pytest.raises(ValueError, match="positive"):
        PolyphaseResampler(0, 16000)
