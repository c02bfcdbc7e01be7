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
