"""tools/vendor_web.py: the live page's npm packages are taken only at their pinned bytes,
with their licence kept, and a failed fetch leaves the vendored folder as it was."""

import base64
import hashlib
import io
import json
import os
import runpy
import stat
import sys
import tarfile
from pathlib import Path

import pytest

TOOL = Path(__file__).parents[1] / "tools" / "vendor_web.py"


def tarball(files: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for name, data in files.items():
            member = tarfile.TarInfo(f"package/{name}")
            member.size = len(data)
            archive.addfile(member, io.BytesIO(data))
    return buffer.getvalue()


@pytest.fixture
def tool(tmp_path, monkeypatch):
    """The tool with a fake ``npm`` on the PATH whose ``pack`` writes ``tmp_path/pack.tgz``."""
    data = tarball(
        {
            "dist/runtime.mjs": b"export const x = 1;\n",
            "dist/runtime.wasm": b"\0asm\1\0\0\0",
            "package.json": json.dumps({"name": "fake", "license": "MIT"}).encode(),
        }
    )
    (tmp_path / "pack.tgz").write_bytes(data)
    npm = tmp_path / "bin" / "npm"
    npm.parent.mkdir()
    npm.write_text(
        f"#!{sys.executable}\n"
        "import shutil, sys, json\n"
        "destination = sys.argv[sys.argv.index('--pack-destination') + 1]\n"
        f"shutil.copy({str(tmp_path / 'pack.tgz')!r}, destination + '/fake-1.0.0.tgz')\n"
        "print(json.dumps([{'filename': 'fake-1.0.0.tgz'}]))\n"
    )
    npm.chmod(npm.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", f"{npm.parent}:{os.environ['PATH']}")
    module = runpy.run_path(str(TOOL))
    integrity = "sha512-" + base64.b64encode(hashlib.sha512(data).digest()).decode()
    module["PACKAGES"].clear()
    module["PACKAGES"]["fake"] = {
        "version": "1.0.0",
        "integrity": integrity,
        "files": ["dist/runtime.mjs", "dist/runtime.wasm"],
        "copyright": "Copyright (c) Fake Authors.",
    }
    return module


def test_the_pinned_package_is_vendored_with_its_licence(tool, tmp_path):
    folder = tmp_path / "vendor"
    tool["vendor"](folder)
    assert (folder / "runtime.wasm").read_bytes() == b"\0asm\1\0\0\0"
    assert json.loads((folder / "fake.package.json").read_text())["license"] == "MIT"
    notice = (folder / "NOTICE.txt").read_text()
    assert notice.startswith("fake 1.0.0 (runtime.mjs, runtime.wasm)\nLicence: MIT\n")
    assert "Copyright (c) Fake Authors." in notice and "Permission is hereby granted" in notice
    assert tool["complete"](folder)


def test_a_tarball_other_than_the_pinned_one_is_refused_and_the_folder_kept(tool, tmp_path):
    folder = tmp_path / "vendor"
    tool["vendor"](folder)
    tool["PACKAGES"]["fake"]["integrity"] = "sha512-" + base64.b64encode(bytes(64)).decode()
    with pytest.raises(RuntimeError, match=r"fake@1\.0\.0: its tarball is sha512-"):
        tool["vendor"](folder)
    assert tool["complete"](folder)  # The earlier copy, whole.
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".vendor-")] == []
