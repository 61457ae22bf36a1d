"""Calibration targets: how well a simulation matches what was observed."""
