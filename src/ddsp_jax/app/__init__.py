"""``ddsp app``: timbre transfer in the browser, and models played live in the page (the
``app`` extra).

>>> from ddsp_jax.app import transfer_settings
>>> transfer_settings({"pitch_shift": "-12", "quiet_db": "10"})["pitch_shift"]
-12.0
"""

from ddsp_jax.app.live import LiveError, LiveExports
from ddsp_jax.app.server import (
    AppConfig,
    JobError,
    Transfers,
    create_app,
    serving,
    transfer_settings,
)

__all__ = [
    "AppConfig",
    "JobError",
    "LiveError",
    "LiveExports",
    "Transfers",
    "create_app",
    "serving",
    "transfer_settings",
]
