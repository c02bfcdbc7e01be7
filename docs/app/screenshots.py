"""Screenshots of ``ddsp app`` for the docs, taken in headless Chromium through Playwright:
the transfer page after a transfer of a sung melody by the violin, and the live page
playing the violin from the keyboard.

Run from the repository root: ``python docs/app/screenshots.py [--out FOLDER] [--chromium
PATH]`` (default: this script's folder; Chromium found on the PATH, e.g. Debian's
``chromium``). Needs the ``app`` extra and ``playwright`` (no browser download: it drives the
given Chromium).
"""

import argparse
import io
import shutil
from pathlib import Path

import numpy as np
import soundfile as sf

from ddsp_jax.app import AppConfig, create_app, serving
from ddsp_jax.data.procedural import sung_melody

MELODY = [62.0, 64.0, 66.0, 67.0, 69.0, 67.0]  # MIDI, half a second each.
RATE = 22050
SCREENSHOTS = ("app-transfer.png", "app-play.png")
LIVE_KEYS = {"h": 69, "l": 74}  # Keys of the live page's keyboard and their notes (octave 4).
LIVE_MIDI = [(64, 120), (64, 30)]  # MIDI notes played after the keys: (note, velocity).
LIVE_NOTE_SECONDS = 1.5


def melody_wav(path: Path) -> np.ndarray:
    """Write the sung melody to ``path``; returns its samples."""
    voice, _ = sung_melody(MELODY, 0.5, RATE)
    audio = voice.astype(np.float32)
    sf.write(path, audio, RATE, subtype="PCM_16")
    return audio


def transfer_in_browser(
    out: Path, chromium: str, timeout_ms: float = 240_000
) -> tuple[np.ndarray, int, dict]:
    """Transfer the melody with the violin through the page, as a musician would, and
    screenshot the result as ``out / "app-transfer.png"``; returns the downloaded audio, its
    rate and the page's report."""
    from playwright.sync_api import sync_playwright

    out.mkdir(parents=True, exist_ok=True)
    source = out / "melody.wav"
    melody_wav(source)
    with serving(create_app(AppConfig())) as url, sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, headless=True)
        try:
            page = browser.new_page(viewport={"width": 1000, "height": 900})
            page.goto(url)
            page.wait_for_selector("#model option[value=violin]", state="attached")
            page.select_option("#model", "violin")
            page.set_input_files("#audio", str(source))
            page.click("#go")
            page.wait_for_selector("#result:not([hidden])", timeout=timeout_ms)
            page.wait_for_function("document.getElementById('plot').complete")
            report = page.inner_text("#report")
            href = page.get_attribute("#download", "href")
            data = page.request.get(url + href).body()
            page.screenshot(path=str(out / "app-transfer.png"), full_page=True)
        finally:
            browser.close()
    source.unlink()
    audio, rate = sf.read(io.BytesIO(data), dtype="float32")
    return audio, rate, {"text": report}


def play_in_browser(
    out: Path, chromium: str, microphone: Path | None = None, timeout_ms: float = 240_000
) -> dict:
    """Play the violin live from the page's keyboard (``LIVE_KEYS`` in turn, each held
    ``LIVE_NOTE_SECONDS``), screenshot the page while the last key sounds as ``out /
    "app-play.png"``, then play ``LIVE_MIDI`` as MIDI messages (given to the page's MIDI
    handler: headless Chromium has no MIDI device), recording the output throughout; then,
    with ``microphone`` (a WAV that Chromium's fake capture plays), sing into it an octave
    lower. Returns the recordings (``keys``, ``microphone``: samples and rate), the status
    line once ready and the meter's (``meter``, ``microphone_meter``: frames, render time,
    late blocks)."""
    from playwright.sync_api import sync_playwright

    flags = ["--autoplay-policy=no-user-gesture-required"]
    if microphone is not None:
        flags += [
            "--use-fake-ui-for-media-stream",
            "--use-fake-device-for-media-stream",
            f"--use-file-for-fake-audio-capture={microphone}",
        ]
    out.mkdir(parents=True, exist_ok=True)
    found: dict = {}

    def recorded(page: object) -> tuple[np.ndarray, int]:
        page.click("#record")  # Stop.
        page.wait_for_selector("#download:not([hidden])")
        samples, rate = page.evaluate(
            "[Array.from(window.liveRecording.samples), window.liveRecording.rate]"
        )
        return np.asarray(samples, np.float32), rate

    with serving(create_app(AppConfig())) as url, sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, headless=True, args=flags)
        try:
            page = browser.new_page(viewport={"width": 1000, "height": 900})
            page.goto(url + "/play")
            page.wait_for_selector("#model option[value=violin]", state="attached")
            page.select_option("#model", "violin")
            page.click("#start")
            page.wait_for_function(
                "document.getElementById('status').textContent.startsWith('Ready')",
                timeout=timeout_ms,
            )
            found["ready"] = page.inner_text("#status")
            page.click("#record")
            for key in LIVE_KEYS:
                page.keyboard.down(key)
                page.wait_for_timeout(1000 * LIVE_NOTE_SECONDS)
                if key == list(LIVE_KEYS)[-1]:
                    page.screenshot(path=str(out / "app-play.png"), full_page=True)
                page.keyboard.up(key)
            for note, velocity in LIVE_MIDI:
                page.evaluate(f"midiMessage({{data: [0x90, {note}, {velocity}]}})")
                page.wait_for_timeout(1000 * LIVE_NOTE_SECONDS)
                page.evaluate(f"midiMessage({{data: [0x80, {note}, 0]}})")
            page.wait_for_timeout(500)
            found["keys"] = recorded(page)
            found["meter"] = page.inner_text("#meter")
            if microphone is not None:
                page.fill("#pitch_shift", "-12")
                page.click("#microphone")
                page.wait_for_function(
                    "document.getElementById('heard').textContent.startsWith('Hearing')"
                )
                page.click("#record")
                page.wait_for_timeout(3000)
                found["microphone"] = recorded(page)
                found["microphone_meter"] = page.inner_text("#meter")
        finally:
            browser.close()
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path(__file__).parent)
    parser.add_argument("--chromium", default=shutil.which("chromium"))
    args = parser.parse_args()
    if args.chromium is None:
        parser.error("no Chromium found: install Debian's chromium or give --chromium PATH.")
    transfer_in_browser(args.out, args.chromium)
    play_in_browser(args.out, args.chromium)


if __name__ == "__main__":
    main()
