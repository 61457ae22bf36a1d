"""Simulation models of this project."""
