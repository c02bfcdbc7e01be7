"""Building from source also vendors the live page's npm packages (tools/vendor_web.py)."""

import runpy
import sys
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

ROOT = Path(__file__).parent


class BuildWithWebAssets(build_py):
    """``build_py`` that first fetches the pinned web assets when they are missing."""

    def run(self) -> None:
        tools = runpy.run_path(str(ROOT / "tools" / "vendor_web.py"))
        if not tools["complete"]():
            try:
                tools["vendor"]()
            except (RuntimeError, OSError) as error:
                print(
                    f"warning: the live page's web assets were not vendored ({error}); "
                    "ddsp app's /play page needs them: python tools/vendor_web.py",
                    file=sys.stderr,
                )
        super().run()


setup(cmdclass={"build_py": BuildWithWebAssets})
