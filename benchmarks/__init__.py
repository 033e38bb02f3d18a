"""Benchmarks: each module fills what it needs, times it, and prints a results table."""
