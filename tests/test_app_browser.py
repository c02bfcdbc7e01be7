"""``ddsp app`` in a real headless Chromium (Debian's, driven by Playwright): a musician's
transfer through the page, checked by numbers, and the docs' screenshot made by its script."""

import importlib.util
import re
import shutil
from pathlib import Path

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
    shown = set(re.findall(r"\]\((docs/app/[\w.-]+\.png)\)", (ROOT / "README.md").read_text()))
    assert shown == {f"docs/app/{name}" for name in shots}  # The README shows what it makes.
    assert {p.name for p in (ROOT / "docs" / "app").glob("*.png")} == shots


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
