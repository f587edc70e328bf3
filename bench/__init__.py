"""Benchmarks: `make bench` runs them all; results go to BENCHMARKS.md."""
