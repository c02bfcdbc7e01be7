import os
import subprocess
import sys

import pytest

from ddsp_jax._platform import SINGLE_THREAD_EIGEN_FLAG, needs_fft_workaround


@pytest.mark.parametrize(
    ("version", "environ", "expected"),
    [
        ("0.11.1", {}, True),
        ("0.11.1", {"JAX_PLATFORMS": "cpu"}, True),
        ("0.11.1", {"JAX_PLATFORMS": "cuda"}, False),
        ("0.11.1", {"XLA_FLAGS": "--xla_dump_to=/tmp"}, False),
        ("0.12.0.1", {}, False),
        ("0.13.0", {}, False),
    ],
)
def test_workaround_only_for_old_jaxlib_on_cpu_without_user_flags(version, environ, expected):
    assert needs_fft_workaround(version, environ) is expected


def test_import_sets_flag_exactly_when_needed():
    from importlib import metadata

    old = needs_fft_workaround(metadata.version("jaxlib"), {})
    env = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"}
    code = "import os, ddsp_jax; print(os.environ.get('XLA_FLAGS', ''))"
    result = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    )
    assert (result.stdout.strip() == SINGLE_THREAD_EIGEN_FLAG) is old
    if old:
        assert "deadlock" in result.stderr
