"""Benchmark workloads behind ``plastix bench``."""
