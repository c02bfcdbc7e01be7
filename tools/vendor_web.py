"""Vendor the npm packages of ``ddsp app``'s live page into the package, pinned.

    python tools/vendor_web.py [--force]

fetches each package below with ``npm pack`` (from the npm registry, at its pinned version),
checks the tarball against its pinned SHA-512, and copies the files the page loads, with the
package's ``package.json`` and a ``NOTICE.txt`` keeping its licence, into
``src/ddsp_jax/app/static/vendor/`` (not tracked by git). ``setup.py`` runs it when the
package is built or installed from source and the folder is incomplete; without npm the
package installs without them and the live page says how to add them.
"""

import argparse
import base64
import hashlib
import io
import json
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

VENDOR = Path(__file__).parents[1] / "src" / "ddsp_jax" / "app" / "static" / "vendor"
PACKAGES = {
    "onnxruntime-web": {
        "version": "1.30.0",
        "integrity": "sha512-q0y+JrrtukXSzsBWEMccVfqX25LRmosXHF+CaRJmg8pZClzcV7svNc4rK"
        "Y3jL02Vb7QmRMDs1SigqR4CXAfKYQ==",
        # ONNX Runtime's API with its wasm backend in one ES module (no dynamic import, which
        # an AudioWorklet cannot do), and the single-threaded SIMD wasm build it runs.
        "files": ["dist/ort.wasm.bundle.min.mjs", "dist/ort-wasm-simd-threaded.wasm"],
        "copyright": "Copyright (c) Microsoft Corporation. All rights reserved.",
    },
}
MIT_LICENSE = """Permission is hereby granted, free of charge, to any person obtaining a copy
of this software and associated documentation files (the "Software"), to deal
in the Software without restriction, including without limitation the rights
to use, copy, modify, merge, publish, distribute, sublicense, and/or sell
copies of the Software, and to permit persons to whom the Software is
furnished to do so, subject to the following conditions:

The above copyright notice and this permission notice shall be included in all
copies or substantial portions of the Software.

THE SOFTWARE IS PROVIDED "AS IS", WITHOUT WARRANTY OF ANY KIND, EXPRESS OR
IMPLIED, INCLUDING BUT NOT LIMITED TO THE WARRANTIES OF MERCHANTABILITY,
FITNESS FOR A PARTICULAR PURPOSE AND NONINFRINGEMENT. IN NO EVENT SHALL THE
AUTHORS OR COPYRIGHT HOLDERS BE LIABLE FOR ANY CLAIM, DAMAGES OR OTHER
LIABILITY, WHETHER IN AN ACTION OF CONTRACT, TORT OR OTHERWISE, ARISING FROM,
OUT OF OR IN CONNECTION WITH THE SOFTWARE OR THE USE OR OTHER DEALINGS IN THE
SOFTWARE.
"""


def vendored_files() -> list[str]:
    """The names the page's assets have in the vendor folder."""
    return [Path(path).name for spec in PACKAGES.values() for path in spec["files"]]


def complete(folder: Path = VENDOR) -> bool:
    """Whether ``folder`` holds every vendored file and its notice."""
    return all((folder / name).is_file() for name in [*vendored_files(), "NOTICE.txt"])


def fetch(name: str, version: str, integrity: str) -> bytes:
    """The tarball of ``name@version`` from the npm registry, checked against ``integrity``.

    Raises:
        RuntimeError: Without npm, when npm fails, or for a tarball of other contents.
    """
    npm = shutil.which("npm")
    if npm is None:
        raise RuntimeError("npm is not installed (Debian: apt install npm)")
    with tempfile.TemporaryDirectory() as folder:
        done = subprocess.run(
            [npm, "pack", f"{name}@{version}", "--json", "--pack-destination", folder],
            capture_output=True,
            text=True,
        )
        if done.returncode:
            raise RuntimeError(f"npm pack {name}@{version} failed: {done.stderr.strip()[-500:]}")
        (packed,) = json.loads(done.stdout)
        data = (Path(folder) / packed["filename"]).read_bytes()
    digest = "sha512-" + base64.b64encode(hashlib.sha512(data).digest()).decode()
    if digest != integrity:
        raise RuntimeError(f"{name}@{version}: its tarball is {digest}, pinned {integrity}")
    return data


def vendor(folder: Path = VENDOR) -> None:
    """Write every pinned package's files, its ``package.json`` and ``NOTICE.txt`` into
    ``folder``, replacing it whole (a failure leaves the folder as it was)."""
    staging = Path(tempfile.mkdtemp(prefix=".vendor-", dir=folder.parent))
    try:
        notices = []
        for name, spec in PACKAGES.items():
            data = fetch(name, spec["version"], spec["integrity"])
            with tarfile.open(fileobj=io.BytesIO(data)) as archive:
                for path in [*spec["files"], "package.json"]:
                    member = archive.extractfile(f"package/{path}")
                    target = f"{name}.package.json" if path == "package.json" else Path(path).name
                    (staging / target).write_bytes(member.read())
            licence = json.loads((staging / f"{name}.package.json").read_text())["license"]
            if licence != "MIT":
                raise RuntimeError(f"{name}: licence {licence}; only MIT's text is kept here")
            notices.append(
                f"{name} {spec['version']} ({', '.join(Path(p).name for p in spec['files'])})\n"
                f"Licence: {licence}\n{spec['copyright']}\n\n{MIT_LICENSE}"
            )
        (staging / "NOTICE.txt").write_text("\n\n".join(notices))
        staging.chmod(0o755)  # mkdtemp's folder is the user's alone.
        if folder.exists():
            shutil.rmtree(folder)
        staging.rename(folder)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--force", action="store_true", help="fetch again even if complete")
    args = parser.parse_args()
    if complete() and not args.force:
        print(f"{VENDOR}: complete.")
        return 0
    try:
        vendor()
    except (RuntimeError, OSError) as error:
        print(f"vendor_web: error: {error}", file=sys.stderr)
        return 1
    print(f"Vendored {', '.join(vendored_files())} into {VENDOR}.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
