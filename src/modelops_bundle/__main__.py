"""``python -m modelops_bundle COMMAND ...``: the same commands as ``modelops-bundle COMMAND ...``."""

from modelops_bundle.cli.main import module_console

if __name__ == "__main__":
    module_console()
