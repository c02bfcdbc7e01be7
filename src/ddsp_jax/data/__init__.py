"""Data sources: procedural notes and NSynth (``data.nsynth``)."""
