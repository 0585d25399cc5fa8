"""Benchmarks of the core server: one script per figure, each run as `python -m bench.NAME` (see README.md)."""
