"""``mops`` hands every command but ``bundle`` to the ModelOps suite's own entry point (in-process tests
with hand-made distributions; the installed, both-orders picture is tests/meta/test_suite_coexistence.py)."""

from __future__ import annotations

import sys
from collections.abc import Callable

import pytest

from modelops_bundle.cli.main import mops_main
from modelops_bundle.cli.suite import find_suite_script

SUITE_CLI = """
import sys

def main():
    print("suite got " + " ".join(sys.argv[1:]))
    return 7

def quits():
    sys.exit(5)
"""


def test_the_suite_entry_point_gets_the_command_line(
    make_dist: Callable[..., object], capsys: pytest.CaptureFixture[str]
) -> None:
    make_dist("modelops", "0.9", entry_points={"mops": "suite_cli_probe:main"}, modules={"suite_cli_probe": SUITE_CLI},
              group="console_scripts")  # fmt: skip
    script = find_suite_script()
    assert script is not None and (script.distribution, script.version) == ("modelops", "0.9")
    before = list(sys.argv)
    assert mops_main(["infra", "up", "--yes"]) == 7
    assert capsys.readouterr().out == "suite got infra up --yes\n"
    assert sys.argv == before


def test_mops_bundle_never_asks_the_suite(make_dist: Callable[..., object], capsys: pytest.CaptureFixture[str]) -> None:
    make_dist("modelops", entry_points={"mops": "suite_cli_probe:main"}, modules={"suite_cli_probe": SUITE_CLI},
              group="console_scripts")  # fmt: skip
    assert mops_main(["bundle", "--version"]) == 0
    assert capsys.readouterr().out.startswith("modelops-bundle ")


def test_the_suites_exit_passes_through(make_dist: Callable[..., object]) -> None:
    make_dist("modelops", entry_points={"mops": "suite_cli_probe:quits"}, modules={"suite_cli_probe": SUITE_CLI},
              group="console_scripts")  # fmt: skip
    with pytest.raises(SystemExit) as exited:
        mops_main(["jobs"])
    assert exited.value.code == 5


def test_an_entry_point_leading_back_here_is_not_the_suite(
    make_dist: Callable[..., object], capsys: pytest.CaptureFixture[str]
) -> None:
    make_dist("modelops", entry_points={"mops": "modelops_bundle.cli.main:mops_console"}, group="console_scripts")
    assert find_suite_script() is None
    assert mops_main(["infra"]) == 2
    assert "is not installed in this environment" in capsys.readouterr().err


def test_another_distributions_mops_is_not_the_suite(make_dist: Callable[..., object]) -> None:
    make_dist("modelops-contracts", entry_points={"mops": "suite_cli_probe:main"}, group="console_scripts")
    assert find_suite_script() is None


def test_a_broken_suite_is_reported_and_bundle_still_works(
    make_dist: Callable[..., object], capsys: pytest.CaptureFixture[str]
) -> None:
    make_dist("modelops", "1.2", entry_points={"mops": "no_such_suite_module:main"}, group="console_scripts")
    assert mops_main(["infra", "up"]) == 1
    err = capsys.readouterr().err
    assert "the ModelOps suite's mops (modelops 1.2, no_such_suite_module:main) could not be loaded" in err
    assert "ModuleNotFoundError" in err and "'mops bundle ...'" in err
    assert mops_main(["bundle", "--version"]) == 0


@pytest.mark.parametrize(
    ("argv", "code", "stream", "text"),
    [
        ([], 2, "out", "usage: mops [--version] bundle COMMAND"),
        (["--help"], 0, "out", "come with the ModelOps suite"),
        (["--version"], 0, "out", "mops (modelops-bundle) "),
        (["--frobnicate"], 2, "err", "unknown option '--frobnicate'"),
        (["workspace", "list"], 2, "err", "'mops workspace' is a command of the ModelOps suite"),
        (["push"], 2, "err", "did you mean 'mops bundle push'?"),
    ],
)
def test_without_the_suite(
    argv: list[str], code: int, stream: str, text: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert find_suite_script() is None
    assert mops_main(argv) == code
    assert text in getattr(capsys.readouterr(), stream)
