"""Shared by every model family: config base types, structures, weight files,
the predictor and family interfaces, backbone + FPN and generic ops."""
