"""A time-varying delay line: vibrato, chorus and flanging (magenta's
``variable_length_delay``)."""

import jax
import jax.numpy as jnp

from ddsp_jax.core.validation import check_positive_int, check_rank


def variable_length_delay(phase: jax.Array, audio: jax.Array, max_length: int = 512) -> jax.Array:
    """Delay audio by a time-varying, fractional number of samples.

    Sample ``t`` of the output is the input ``phase[t] · max_length`` samples earlier,
    interpolated linearly between the two samples around it; the input is silent before
    sample 0. magenta frames the input ``max_length`` samples at a time and reads each frame
    as a wavetable, so delays between ``max_length - 1`` and ``max_length`` samples blend
    towards the undelayed sample (the table wraps around); here they read the samples they
    name.

    Args:
        phase: The delay as a fraction of ``max_length``, ``[batch, n_samples]`` or
            ``[batch, n_samples, 1]``, clipped to [0, 1].
        audio: ``[batch, n_samples]``.
        max_length: The longest delay (samples).

    Returns:
        ``[batch, n_samples]``.

    >>> audio = jnp.arange(1.0, 6.0)[None]
    >>> variable_length_delay(jnp.full((1, 5), 0.5), audio, max_length=3)  # 1.5 samples.
    Array([[0. , 0.5, 1.5, 2.5, 3.5]], dtype=float32)
    """
    check_positive_int("max_length", max_length)
    audio = jnp.asarray(audio, jnp.float32)
    check_rank("audio", audio, (2,), "[batch, n_samples]")
    phase = jnp.asarray(phase, jnp.float32)
    if phase.ndim == 3:
        phase = phase[..., 0]
    if phase.shape != audio.shape:
        raise ValueError(
            f"phase must be [batch, n_samples] like audio {audio.shape}, got {phase.shape}."
        )
    delay = jnp.clip(phase, 0.0, 1.0) * max_length
    whole = jnp.minimum(jnp.floor(delay), max_length - 1)
    fraction = delay - whole
    whole = whole.astype(jnp.int32)
    padded = jnp.pad(audio, ((0, 0), (max_length, 0)))  # Sample t is padded[t + max_length].
    now = jnp.arange(audio.shape[1]) + max_length
    batch = jnp.arange(audio.shape[0])[:, None]
    newer = padded[batch, now - whole]
    older = padded[batch, now - whole - 1]
    return (1.0 - fraction) * newer + fraction * older  # Exact at whole delays.
