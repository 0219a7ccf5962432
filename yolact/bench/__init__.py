"""Benchmarks and comparisons of predictors: stage timing, side-by-side runs, calibration."""
