"""Data sources: procedural notes and in-memory example sets."""
