"""Probe commands for modelops-bundle's coexistence tests."""
