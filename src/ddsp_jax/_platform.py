"""Work around the XLA CPU FFT deadlock of jax 0.11.x before the backend starts.

jaxlib 0.11.x on CPU can hang forever inside XLA's FFT when Eigen runs multi-threaded (a
jitted multi-scale STFT loss with its gradient hangs every time on a 2-core machine; jaxlib
0.12 does not). The ``datarax`` extra pins jax below 0.11.2, so there we switch Eigen to one
thread unless the user chose their own ``XLA_FLAGS``. The flag is read when the backend
initialises, so this must run before the first JAX computation.
"""

import logging
import os
from importlib import metadata

logger = logging.getLogger("ddsp_jax")

SINGLE_THREAD_EIGEN_FLAG = "--xla_cpu_multi_thread_eigen=false"
FIXED_JAXLIB = (0, 12)


def _version_tuple(version: str) -> tuple[int, ...]:
    parts = []
    for piece in version.split(".")[:2]:
        digits = "".join(ch for ch in piece if ch.isdigit())
        parts.append(int(digits) if digits else 0)
    return tuple(parts)


def needs_fft_workaround(jaxlib_version: str, environ: dict[str, str]) -> bool:
    """Whether to add the single-thread Eigen flag.

    Args:
        jaxlib_version: The installed jaxlib version string, e.g. ``"0.11.1"``.
        environ: The process environment.

    Returns:
        True for jaxlib < 0.12 when the user has not set ``XLA_FLAGS`` and has not restricted
        JAX to a non-CPU platform.
    """
    if _version_tuple(jaxlib_version) >= FIXED_JAXLIB:
        return False
    if "XLA_FLAGS" in environ:
        return False
    platforms = environ.get("JAX_PLATFORMS", "")
    return not platforms or "cpu" in platforms.split(",")


def configure_xla_cpu() -> None:
    """Set ``XLA_FLAGS`` for the jax 0.11.x CPU FFT deadlock, logging that it did."""
    try:
        jaxlib_version = metadata.version("jaxlib")
    except metadata.PackageNotFoundError:
        return
    if needs_fft_workaround(jaxlib_version, dict(os.environ)):
        os.environ["XLA_FLAGS"] = SINGLE_THREAD_EIGEN_FLAG
        logger.warning(
            "jaxlib %s can deadlock in XLA's CPU FFT with multi-threaded Eigen; set "
            "XLA_FLAGS=%s (set XLA_FLAGS yourself to override).",
            jaxlib_version,
            SINGLE_THREAD_EIGEN_FLAG,
        )
