"""Features computed from audio: f0 (CREPE, weights read without torch) and loudness
(``ddsp_jax.core.compute_loudness``)."""
