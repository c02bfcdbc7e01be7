"""Reading audio inputs: any format, rate and channel count; damaged files recognised."""

import numpy as np
import pytest
import soundfile as sf
from test_prepare import tone

from ddsp_jax.data.audio import UnusableInputError, audio_blocks, audio_info, load_audio


def test_stereo_is_downmixed_and_resampled(tmp_path):
    left, right = tone(220.0, 4.0, 44100), tone(220.0, 4.0, 44100, amplitude=0.2)
    sf.write(tmp_path / "s.wav", np.stack([left, right], axis=1), 44100, subtype="FLOAT")
    audio, details = load_audio(tmp_path / "s.wav", 16000)
    assert details == {"sample_rate": 44100, "channels": 2, "subtype": "FLOAT", "seconds": 4.0}
    assert audio.shape == (64000,)
    expected = tone(220.0, 4.0, 16000, amplitude=0.3)
    assert np.max(np.abs(audio[1000:-1000] - expected[1000:-1000])) < 1e-3


def test_a_streamed_wav_with_placeholder_lengths_is_not_called_truncated(tmp_path):
    import struct

    sf.write(tmp_path / "s.wav", tone(220.0, 2.0, 16000), 16000, subtype="PCM_16")
    data = bytearray((tmp_path / "s.wav").read_bytes())
    # A writer that cannot seek back (a pipe) leaves 0xFFFFFFFF as the RIFF and data lengths.
    data[4:8] = struct.pack("<I", 0xFFFFFFFF)
    at = data.find(b"data")
    data[at + 4 : at + 8] = struct.pack("<I", 0xFFFFFFFF)
    (tmp_path / "s.wav").write_bytes(bytes(data))
    audio, details = load_audio(tmp_path / "s.wav", 16000)
    assert audio.shape == (32000,) and details["seconds"] == 2.0
    # The same file cut in half is truncated: its stated length is a real one.
    sf.write(tmp_path / "t.wav", tone(220.0, 2.0, 16000), 16000, subtype="PCM_16")
    whole = (tmp_path / "t.wav").read_bytes()
    (tmp_path / "t.wav").write_bytes(whole[: len(whole) // 2])
    with pytest.raises(UnusableInputError, match="truncated"):
        load_audio(tmp_path / "t.wav", 16000)


@pytest.mark.parametrize(
    ("channels", "subtype", "tolerance"),
    [(6, "PCM_16", 1e-4), (1, "ULAW", 0.02), (1, "ALAW", 0.02), (2, "PCM_U8", 0.01)],
)
def test_multichannel_and_companded_wavs_read_as_their_mono_mix(
    tmp_path, channels, subtype, tolerance
):
    t = np.arange(8000) / 8000
    tracks = np.stack([0.1 * (k + 1) * np.sin(2 * np.pi * 300 * t) for k in range(channels)], 1)
    sf.write(tmp_path / "in.wav", tracks, 8000, subtype=subtype)
    info = audio_info(tmp_path / "in.wav")
    assert info["channels"] == channels and info["frames"] == 8000 and info["subtype"] == subtype
    mono, _ = load_audio(tmp_path / "in.wav", None)
    np.testing.assert_allclose(mono, tracks.mean(axis=1), atol=tolerance)
    blocks = list(audio_blocks(tmp_path / "in.wav", 3000))
    assert [len(b) for b in blocks] == [3000, 3000, 2000]
    np.testing.assert_array_equal(np.concatenate(blocks), mono)
