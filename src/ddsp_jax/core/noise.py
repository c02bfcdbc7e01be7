"""Counter-based noise: white noise indexed by sample position.

Sample ``n`` of row ``b`` depends only on the key, ``b`` and ``n``: the stream is cut into
chunks of ``NOISE_CHUNK`` samples and chunk ``c`` of row ``b`` is drawn with the key
``fold_in(fold_in(key, b), c)``. Any stretch of the stream can therefore be drawn on its own,
which is what lets a streamed render (one block at a time) repeat an offline render exactly.
The position is ``chunk * NOISE_CHUNK + offset`` with a 32-bit ``chunk``: 2^38 samples, about
200 days at 16 kHz, before the stream repeats.
"""

import jax
import jax.numpy as jnp

from ddsp_jax.core.validation import check_positive_int

NOISE_CHUNK = 64  # Samples drawn per key.


def uniform_noise(
    key: jax.Array,
    batch: int,
    n_samples: int,
    chunk: jax.Array | int = 0,
    offset: jax.Array | int = 0,
) -> jax.Array:
    """Uniform noise in [−1, 1) for samples ``[start, start + n_samples)`` of the stream, with
    ``start = chunk * NOISE_CHUNK + offset``.

    Args:
        key: PRNG key of the stream.
        batch: Rows (independent streams: row ``b`` is drawn from ``fold_in(key, b)``).
        n_samples: Samples to draw.
        chunk: First chunk (uint32-sized, may be traced).
        offset: Samples into that chunk, in ``[0, NOISE_CHUNK)`` (may be traced).

    Returns:
        ``[batch, n_samples]`` float32.

    A stretch drawn on its own is the same stretch of a longer draw:

    >>> key = jax.random.key(0)
    >>> whole = uniform_noise(key, 1, 200)
    >>> part = uniform_noise(key, 1, 50, chunk=1, offset=36)  # Samples 100 to 149.
    >>> bool(jnp.all(part == whole[:, 100:150]))
    True
    """
    check_positive_int("batch", batch)
    check_positive_int("n_samples", n_samples)
    aligned = isinstance(offset, int) and offset == 0
    n_chunks = -(-n_samples // NOISE_CHUNK) + (0 if aligned else 1)
    chunks = jnp.asarray(chunk, jnp.uint32) + jnp.arange(n_chunks, dtype=jnp.uint32)

    def draw(row: jax.Array, index: jax.Array) -> jax.Array:
        chunk_key = jax.random.fold_in(jax.random.fold_in(key, row), index)
        return jax.random.uniform(chunk_key, (NOISE_CHUNK,), jnp.float32, -1.0, 1.0)

    rows = jnp.arange(batch, dtype=jnp.uint32)
    drawn = jax.vmap(lambda row: jax.vmap(lambda index: draw(row, index))(chunks))(rows)
    flat = drawn.reshape(batch, n_chunks * NOISE_CHUNK)
    if aligned:
        return flat[:, :n_samples]
    return jax.lax.dynamic_slice_in_dim(flat, jnp.asarray(offset, jnp.int32), n_samples, axis=1)
