"""``ddsp app``: the page and its API, a transfer whose pitch follows the melody, bad input
as messages, bounded uploads, separate jobs, and nothing served outside the app's files."""

import io
import time

import numpy as np
import pytest
import soundfile as sf

from crepe import needs_weights
from ddsp_jax.data.procedural import sung_melody
from ddsp_jax.features import compute_features, note_frames

starlette = pytest.importorskip("starlette", reason="ddsp app needs the app extra")
from starlette.testclient import TestClient  # noqa: E402

from ddsp_jax.app import AppConfig, create_app  # noqa: E402

MELODY = [62.0, 64.0, 66.0, 67.0]  # MIDI, one note per 0.5 s.


@pytest.fixture(scope="module")
def client():
    app = create_app(AppConfig())
    with TestClient(app) as test_client:
        yield test_client


def wav(audio: np.ndarray, rate: int) -> bytes:
    buffer = io.BytesIO()
    sf.write(buffer, audio, rate, format="WAV", subtype="PCM_16")
    return buffer.getvalue()


def melody(rate: int = 22050) -> np.ndarray:
    voice, _ = sung_melody(MELODY, 0.5, rate)
    return voice.astype(np.float32)


def submit(client: TestClient, data: bytes, name: str = "melody.wav", **settings: str):
    form = {"model": "violin", "pitch_shift": "auto", "loudness_shift": "auto", **settings}
    return client.post("/api/transfer", data=form, files={"audio": (name, data, "audio/wav")})


def assert_pitch_follows(out: np.ndarray, given: np.ndarray, rate: int, shift: float) -> None:
    """The output's f0 is the input's moved by ``shift`` semitones (whole octaves) on the
    input's note frames: within 30 cents in the median."""
    assert shift % 12 == 0
    n = len(given) * 100 // rate  # Frames every feature has (CREPE's count may be one more).
    found, heard = (
        {k: v[0, :n] for k, v in compute_features(x[None], rate, 100, "tiny").items()}
        for x in (out, given)
    )
    notes = note_frames(heard["f0_confidence"], heard["loudness_db"])
    notes &= found["f0_confidence"] > 0.5
    cents = 1200 * np.log2(found["f0_hz"][notes] / heard["f0_hz"][notes]) - 100 * shift
    assert notes.sum() > 100 and np.median(np.abs(cents)) < 30


def wait(client: TestClient, job: str, seen: list | None = None) -> dict:
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline:
        status = client.get(f"/api/jobs/{job}").json()
        if seen is not None:
            seen.append(status)
        if status["state"] in ("done", "error"):
            return status
        time.sleep(0.05)
    raise AssertionError(f"job {job} did not finish")


def test_the_page_its_assets_and_the_models_are_served(client):
    page = client.get("/")
    assert page.status_code == 200 and "Timbre transfer" in page.text
    assert client.get("/static/app.js").headers["content-type"].startswith("text/javascript")
    models = client.get("/api/models").json()
    names = [model["name"] for model in models["models"]]
    assert names == ["violin", "flute", "trumpet", "tenor-sax"]
    violin = models["models"][0]
    assert violin["sample_rate"] == 16000 and 50 < violin["mean_pitch_midi"] < 90
    low, high = violin["pitch_range_midi"]
    assert low < violin["mean_pitch_midi"] < high
    assert models["limits"]["max_seconds"] == 300.0


def test_the_live_page_its_worklet_and_the_vendored_runtime_are_served(client):
    assert "Play live" in client.get("/play").text
    for name in ("play.js", "common.js", "synth-worklet.mjs", "worklet-scope.mjs"):
        response = client.get(f"/static/{name}")
        assert response.headers["content-type"].startswith("text/javascript"), name
    live = client.get("/api/models").json()["live"]
    assert live["vendored"], "the web runtime is missing: python tools/vendor_web.py"
    assert live["confident"] == 0.85 and live["floor_db"] == -80.0
    wasm = client.get("/static/vendor/ort-wasm-simd-threaded.wasm")
    assert wasm.headers["content-type"] == "application/wasm"
    assert wasm.content[:4] == b"\0asm"
    runtime = client.get("/static/vendor/ort.wasm.bundle.min.mjs").text
    assert "ONNX Runtime Web v1.30.0" in runtime[:200]
    notice = client.get("/static/vendor/NOTICE.txt").text
    assert "onnxruntime-web 1.30.0" in notice and "Licence: MIT" in notice


def test_a_model_that_cannot_be_exported_is_a_message_for_the_live_page(tmp_path):
    import shutil

    from ddsp_jax.instruments import bundled_instrument

    folder = tmp_path / "models" / "broken"
    shutil.copytree(bundled_instrument("violin"), folder)
    (folder / "params.msgpack").write_bytes(b"not parameters")
    with TestClient(create_app(AppConfig(models=tmp_path / "models"))) as test_client:
        for _ in range(2):  # The reason is kept; the export is not tried again.
            response = test_client.get("/api/models/broken/live/metadata.json")
            assert response.status_code == 400
            assert response.json()["error"].startswith("broken cannot be played live: ")
        assert not (test_client.app.state.transfers.live.root / "broken").exists()


@pytest.mark.parametrize(
    "path",
    [
        "/static/..%2F..%2Fpyproject.toml",
        "/static/%2e%2e/%2e%2e/pyproject.toml",
        "/static/server.py",
        "/api/jobs/..%2F..%2Fetc/passwd",
        "/api/jobs/0123/..%2Fmodel.json",
        "/etc/passwd",
        "/static/vendor/..%2F..%2Fserver.py",
        "/static/vendor/onnxruntime-web.package.json",
        "/api/models/violin/live/..%2Fmodel.json",
        "/api/models/violin/live/params.msgpack",
        "/api/models/..%2Fviolin/live/metadata.json",
        "/api/models/cello/live/synth.onnx",
    ],
)
def test_nothing_outside_the_apps_files_is_served(client, path):
    response = client.get(path)
    assert response.status_code == 404
    assert "[project]" not in response.text and "root:" not in response.text


@pytest.mark.slow
@needs_weights
def test_a_melody_is_transferred_with_progress_and_its_pitch_follows_the_input(client):
    audio = melody()
    response = submit(client, wav(audio, 22050), quiet_db="20", note_threshold="0.5")
    assert response.status_code == 202
    job = response.json()["id"]
    waiting = submit(client, b"not audio", "second.wav").json()  # Queued behind the first.
    assert waiting["state"] == "queued" and waiting["position"] in (1, 2)
    answered = client.get("/api/models")  # The server answers while the transfer runs.
    assert answered.status_code == 200
    assert client.get(f"/api/jobs/{job}").json()["state"] in ("queued", "running")
    seen: list[dict] = []
    status = wait(client, job, seen)
    assert status["state"] == "done", status
    stages = {s["stage"] for s in seen if s["state"] == "running"}
    assert stages <= {"", "features", "synthesis"} and seen[-1]["fraction"] == 1.0
    output = client.get(status["audio"])
    assert output.headers["content-disposition"].startswith("attachment")
    out, rate = sf.read(io.BytesIO(output.content), dtype="float32")
    assert rate == 22050 and len(out) == len(audio)
    assert client.get(status["plot"]).content[:8] == b"\x89PNG\r\n\x1a\n"
    assert_pitch_follows(out, audio, 22050, status["report"]["pitch_shift_semitones"])


@needs_weights
def test_bad_input_is_a_message_on_the_page(client, tmp_path):
    not_audio = submit(client, b"not audio at all\n" * 50, "notes.wav")
    status = wait(client, not_audio.json()["id"])
    assert status["state"] == "error" and "is not audio this server can read" in status["message"]
    silent = submit(client, wav(np.zeros(22050, np.float32), 22050), "silence.wav")
    status = wait(client, silent.json()["id"])
    assert status["state"] == "error" and status["message"].startswith("silence.wav: the audio")
    assert "silent" in status["message"]
    buffer = io.BytesIO()
    stereo_nan = np.stack([melody(), melody()], axis=1)
    stereo_nan[100, 0] = np.nan
    sf.write(buffer, stereo_nan, 22050, format="WAV", subtype="FLOAT")
    status = wait(client, submit(client, buffer.getvalue(), "nan.wav").json()["id"])
    assert status["state"] == "error" and status["message"].startswith("nan.wav: ")
    assert "NaN" in status["message"]
    for form, message in (
        ({"model": "../violin"}, "no model called '../violin'"),
        ({"autotune_amount": "2"}, "autotune_amount must be between 0 and 1"),
        ({"pitch_shift": "up"}, "pitch_shift must be a number"),
    ):
        response = submit(client, wav(melody(), 22050), **form)
        assert response.status_code == 400 and message in response.json()["error"]
    missing = client.post("/api/transfer", data={"model": "violin"})
    assert missing.status_code == 400 and "choose or record a sound" in missing.json()["error"]


def test_uploads_are_bounded_in_size_and_length():
    config = AppConfig(max_upload_bytes=50_000, max_seconds=1.0)
    with TestClient(create_app(config)) as small:
        too_large = submit(small, wav(melody(), 22050))  # 2 s of 16-bit audio: 88 kB.
        assert too_large.status_code == 413
        assert "larger than" in too_large.text
        too_long = submit(small, wav(melody()[:24000], 16000))  # 1.5 s: 48 kB.
        assert too_long.status_code == 202
        status = wait(small, too_long.json()["id"])
        assert "the limit is 1 s" in status["message"]


@pytest.mark.slow
@needs_weights
def test_a_transfer_past_the_time_limit_is_stopped_with_a_message():
    with TestClient(create_app(AppConfig(time_limit=0.0))) as strict:
        job = submit(strict, wav(melody(), 22050)).json()
        status = wait(strict, job["id"])
        assert status["state"] == "error"
        assert status["message"] == "the transfer took longer than 0 s."


def test_each_upload_has_its_own_folder_removed_when_it_expires():
    app = create_app(AppConfig(keep_seconds=60.0))
    with TestClient(app) as local:
        transfers = app.state.transfers
        first = submit(local, b"one", "a.wav").json()
        second = submit(local, b"two", "b.wav").json()
        assert first["id"] != second["id"]
        folders = {transfers.jobs[job["id"]].folder for job in (first, second)}
        assert len(folders) == 2 and all(f.parent == transfers.root for f in folders)
        for job in (first, second):
            assert wait(local, job["id"])["state"] == "error"  # Not audio.
        transfers.expire()
        assert all(folder.exists() for folder in folders)  # Kept for keep_seconds.
        for job in (first, second):
            transfers.jobs[job["id"]].finished -= 61.0
        transfers.expire()
        assert not any(folder.exists() for folder in folders)
        assert local.get(f"/api/jobs/{first['id']}").status_code == 404
    assert not transfers.root.exists()  # The server removed its folder when it stopped.


def test_the_app_command_refuses_a_models_folder_that_is_not_one(tmp_path, capsys):
    from ddsp_jax.cli import main

    assert main(["app", "--models", str(tmp_path / "missing")]) == 1
    assert capsys.readouterr().err.strip() == (
        f"ddsp app: error: --models {tmp_path / 'missing'}: not a folder."
    )
    (tmp_path / "empty").mkdir()
    assert main(["app", "--models", str(tmp_path / "empty")]) == 1
    assert "no model folders in" in capsys.readouterr().err
