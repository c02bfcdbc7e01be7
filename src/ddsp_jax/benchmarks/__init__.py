"""Benchmarks behind ``ddsp bench``: speed is measured here, never in tests."""
