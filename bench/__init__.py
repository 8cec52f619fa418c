"""Benchmark scripts: each prints its figures and ratios; none is asserted by the tests."""
