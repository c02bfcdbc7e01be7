"""``ddsp app`` in a real headless Chromium (Debian's, driven by Playwright): a musician's
transfer through the page, checked by numbers, and the docs' screenshot made by its script."""

import importlib.util
import re
import shutil
from pathlib import Path

import numpy as np
import pytest

from crepe import needs_weights

ROOT = Path(__file__).parents[1]
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")

pytest.importorskip("starlette", reason="ddsp app needs the app extra")
pytest.importorskip("playwright", reason="the browser tests need playwright (the dev extra)")
pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason="no Chromium on the PATH (Debian: apt install chromium)"
)


def screenshots_script():
    path = ROOT / "docs" / "app" / "screenshots.py"
    spec = importlib.util.spec_from_file_location("screenshots", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
@needs_weights
def test_a_melody_uploaded_in_the_browser_comes_back_played_by_the_violin(tmp_path):
    from test_app import assert_pitch_follows

    script = screenshots_script()
    audio, rate, report = script.transfer_in_browser(tmp_path, CHROMIUM)
    given = script.melody_wav(tmp_path / "given.wav")
    assert rate == script.RATE and len(audio) == len(given)
    shift = float(re.search(r"Pitch shift (-?\d+) semitones", report["text"]).group(1))
    assert_pitch_follows(audio, given, rate, shift)
    shots = {path.name for path in tmp_path.glob("*.png")}
    assert shots == {"app-transfer.png"} and (tmp_path / "app-transfer.png").stat().st_size > 1e4


def test_the_readme_shows_the_screenshots_the_script_makes():
    made = set(screenshots_script().SCREENSHOTS)
    shown = set(re.findall(r"\]\((docs/app/[\w.-]+\.png)\)", (ROOT / "README.md").read_text()))
    assert shown == {f"docs/app/{name}" for name in made}
    assert {p.name for p in (ROOT / "docs" / "app").glob("*.png")} == made


def median_f0(audio: np.ndarray, rate: int, start: float, stop: float) -> float:
    """The median f0 (Hz, CREPE tiny) of the confident, audible frames in ``[start, stop)``
    seconds of ``audio``."""
    from ddsp_jax.features.extract import compute_features

    features = {k: v[0] for k, v in compute_features(audio[None], rate, 100, "tiny").items()}
    frames = slice(round(100 * start), round(100 * stop))
    confident = features["f0_confidence"][frames] > 0.8
    audible = features["loudness_db"][frames] > -50
    assert np.sum(confident & audible) > 0.5 * (round(100 * stop) - round(100 * start))
    return float(np.median(features["f0_hz"][frames][confident & audible]))


def cents(f0: float, midi: float) -> float:
    return 1200 * np.log2(f0 / (440.0 * 2 ** ((midi - 69) / 12)))


@pytest.mark.slow
@needs_weights
def test_the_live_page_plays_the_keys_and_the_microphone_at_their_pitch(tmp_path):
    """onnxruntime-web in the page's AudioWorklet: each key held and each MIDI note sounds
    at its note, a softer MIDI velocity more quietly, and a sung A4 through Chromium's fake
    microphone, shifted an octave down, sounds at A3."""
    import soundfile as sf

    from ddsp_jax.data.procedural import sung_melody

    script = screenshots_script()
    voice, _ = sung_melody([69.0], 4.0, script.RATE)
    sf.write(tmp_path / "a4.wav", voice.astype(np.float32), script.RATE, subtype="PCM_16")
    found = script.play_in_browser(tmp_path / "shots", CHROMIUM, tmp_path / "a4.wav")
    assert (tmp_path / "shots" / "app-play.png").stat().st_size > 1e4
    assert re.match(r"Ready: violin, latency about \d+ ms", found["ready"])
    keys, rate = found["keys"]
    held = script.LIVE_NOTE_SECONDS
    notes = [*script.LIVE_KEYS.values(), *(note for note, _ in script.LIVE_MIDI)]
    assert rate == 16000 and len(keys) / rate > len(notes) * held
    # The recording starts a little before the first key; each note is judged from its
    # second half-second on, clear of the attack and of the latency.
    levels = []
    for index, note in enumerate(notes):
        start = index * held + 0.5
        assert abs(cents(median_f0(keys, rate, start, start + held - 0.6), note)) < 20
        part = keys[round(rate * start) : round(rate * (start + held - 0.6))]
        levels.append(10 * np.log10(np.mean(part**2)))
    assert min(levels[:-1]) > -40 and levels[-1] > -80  # Not silence (velocity 30: ~-59 dB).
    assert levels[-2] - levels[-1] > 3  # MIDI velocity 120 louder than 30.
    sung, rate = found["microphone"]
    assert abs(cents(median_f0(sung, rate, 0.5, 2.5), 57)) < 30


@pytest.mark.slow
@needs_weights
def test_a_melody_recorded_from_the_microphone_is_transferred(tmp_path):
    """Chromium's fake microphone plays the melody file; the page records it (as WAV),
    then transfers it."""
    import base64
    import io

    import numpy as np
    import soundfile as sf
    from playwright.sync_api import sync_playwright

    from ddsp_jax.app import AppConfig, create_app, serving
    from test_app import assert_pitch_follows

    screenshots_script().melody_wav(tmp_path / "microphone.wav")
    flags = [
        "--use-fake-ui-for-media-stream",
        "--use-fake-device-for-media-stream",
        f"--use-file-for-fake-audio-capture={tmp_path / 'microphone.wav'}",
        "--autoplay-policy=no-user-gesture-required",
    ]
    with serving(create_app(AppConfig())) as url, sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=flags)
        try:
            page = browser.new_page()
            page.goto(url)
            page.wait_for_selector("#model option[value=violin]", state="attached")
            page.click("#record")
            page.wait_for_function(
                "document.getElementById('recording').textContent.startsWith('Rec')"
            )
            page.wait_for_timeout(2500)
            page.click("#record")  # Stop.
            page.wait_for_function(
                "document.getElementById('recording').textContent === 'Recorded.'"
            )
            recorded = page.evaluate(
                """async () => {
                  const source = document.getElementById('input-player').src;
                  const blob = await (await fetch(source)).blob();
                  const bytes = new Uint8Array(await blob.arrayBuffer());
                  let text = '';
                  for (const b of bytes) text += String.fromCharCode(b);
                  return btoa(text);
                }"""
            )
            page.click("#go")
            page.wait_for_selector("#result:not([hidden])", timeout=240_000)
            report = page.inner_text("#report")
            output = page.request.get(url + page.get_attribute("#download", "href")).body()
        finally:
            browser.close()
    heard, heard_rate = sf.read(io.BytesIO(base64.b64decode(recorded)), dtype="float32")
    out, rate = sf.read(io.BytesIO(output), dtype="float32")
    assert 2.0 < len(heard) / heard_rate < 4.0 and rate == heard_rate and len(out) == len(heard)
    assert np.max(np.abs(heard)) > 0.05  # The fake microphone's melody, not silence.
    shift = float(re.search(r"Pitch shift (-?\d+) semitones", report).group(1))
    assert_pitch_follows(out, heard, rate, shift)
