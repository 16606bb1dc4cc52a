"""Benchmarks that print numbers; targets live here, not in timed tests."""
