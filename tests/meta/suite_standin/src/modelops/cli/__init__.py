"""The stand-in suite's command line."""
