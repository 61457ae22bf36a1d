"""Stand-in of the ModelOps suite (tests of modelops-bundle only)."""

__version__ = "0.9.0"
