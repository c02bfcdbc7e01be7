"""Counter-based noise."""

import jax
import numpy as np

from ddsp_jax.core.noise import uniform_noise


def test_counter_noise_is_the_same_drawn_in_any_pieces():
    key = jax.random.key(5)
    whole = np.asarray(uniform_noise(key, 2, 1000))
    start, pieces = 0, []
    for size in (1, 63, 64, 65, 200, 607):
        pieces.append(np.asarray(uniform_noise(key, 2, size, start // 64, start % 64)))
        start += size
    np.testing.assert_array_equal(np.concatenate(pieces, axis=1), whole)
    assert whole.min() >= -1.0 and whole.max() < 1.0
    assert abs(whole.mean()) < 0.05 and abs(whole.std() - 1 / np.sqrt(3)) < 0.02
    assert not np.array_equal(whole[0], whole[1])
