"""ddsp-jax: Differentiable Digital Signal Processing in JAX and Flax NNX.

Layers (imports go downward only): ``core`` (pure DSP functions) → ``processors``
(Flax NNX synths and effects) → ``losses``; ``integrations.datarax`` is optional.
"""

from ddsp_jax._platform import configure_xla_cpu

configure_xla_cpu()

__version__ = "0.1.0"
