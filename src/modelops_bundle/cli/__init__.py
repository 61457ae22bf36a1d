"""The command line: one thin module per command, all output through :mod:`.console`."""
