"""Every command behaves alike: ``--json``, ``-q``, help with an example; ``NO_COLOR``; TTY-only decoration;
shell completion."""

from __future__ import annotations

import argparse
import io
import json
import re
import shutil
import subprocess
import threading
from pathlib import Path

import pytest

from modelops_bundle.cli.app import build_app
from modelops_bundle.cli.completion import bash_script, describe_parser, fish_script, zsh_script
from modelops_bundle.cli.console import Console, DelayedProgress
from modelops_bundle.cli.main import DESCRIPTION
from modelops_bundle.core.plugins import build_plugin_host
from modelops_bundle.testing import BundleProject, CliRunner


def command_parsers() -> dict[str, argparse.ArgumentParser]:
    host = build_plugin_host({"MOPS_DISABLE_PLUGIN_AUTOLOAD": "1"})
    app, failures = build_app(host, "mops bundle", DESCRIPTION)
    assert failures == []
    parser = app.build()
    (subparsers,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return {name: sub for name, sub in subparsers.choices.items() if name == sub.prog.split()[-1]}


COMMANDS = sorted(command_parsers())


def test_the_walk_sees_every_command() -> None:
    assert {"init", "add", "status", "push", "pull", "plugins", "plugin", "completion"} <= set(COMMANDS)


@pytest.mark.parametrize("name", COMMANDS)
def test_every_command_has_json_quiet_and_an_example(name: str) -> None:
    parser = command_parsers()[name]
    flags = {flag for action in parser._actions for flag in action.option_strings}
    assert {"--json", "-q", "--quiet", "-v", "-C"} <= flags
    assert parser.epilog and "example" in parser.epilog.lower(), f"{name}: no example in its --help epilog"
    assert "mops bundle " + name in parser.epilog, f"{name}: the example does not show the command"
    help_text = parser.format_help()
    assert "--json" in help_text and "--quiet" in help_text


@pytest.mark.parametrize(
    "argv",
    [
        ("status", "--offline"),
        ("list",),
        ("tags",),
        ("env", "list"),
        ("plugins",),
        ("target-set", "list"),
        ("completion", "bash"),
    ],
)
def test_json_is_one_document_and_quiet_prints_nothing(bundle_project: BundleProject, argv: tuple[str, ...]) -> None:
    as_json = bundle_project.run(*argv, "--json")
    assert as_json.exit_code == 0, as_json
    json.loads(as_json.stdout)  # exactly one JSON document
    quiet = bundle_project.run(*argv, "-q")
    assert quiet.exit_code == 0, quiet
    if argv[0] == "completion":  # its script is the product, printed like --json output
        return
    if argv[0] in LISTINGS:  # the bare names, one per line, for scripts
        assert quiet.stdout.splitlines() == LISTINGS[argv[0]](as_json.json())
    else:
        assert quiet.stdout == ""


#: What ``-q`` prints for the listing commands: their names or ids, one per line, as ``--json`` has them.
LISTINGS = {
    "list": lambda doc: [item["id"] for item in (*doc["models"], *doc["targets"])],
    "tags": lambda doc: [tag for version in doc["versions"] for tag in version["tags"]],
    "env": lambda doc: [item["name"] for item in doc["environments"]],
    "plugins": lambda doc: [item["name"] for item in doc],
}


# ------------------------------------------------------------------------------------ the terminal


class FakeTTY(io.StringIO):
    def isatty(self) -> bool:
        return True


def console(environ: dict[str, str]) -> tuple[Console, FakeTTY]:
    out = FakeTTY()
    return Console(stdout=out, stderr=io.StringIO(), environ=environ), out


def test_colour_on_a_terminal_and_none_with_no_color() -> None:
    coloured, out = console({"TERM": "xterm"})
    assert coloured.interactive
    coloured.line("synced", style="green")
    coloured.table("Models", ["Model", "Status"], [["SEIR", "Ready"]])
    assert "\x1b[" in out.getvalue()

    plain, out = console({"TERM": "xterm", "NO_COLOR": "1"})
    assert plain.interactive  # still a terminal: tables, markers and progress stay
    plain.line("synced", style="green")
    plain.table("Models", ["Model", "Status"], [["SEIR", "Ready"]])
    assert "\x1b[" not in out.getvalue() and "synced" in out.getvalue() and "SEIR" in out.getvalue()


def test_plain_text_off_a_terminal() -> None:
    out = io.StringIO()
    piped = Console(stdout=out, environ={"TERM": "xterm"})
    assert not piped.interactive
    piped.line("synced", style="green")
    piped.table("Models", ["Model", "Status"], [["SEIR", "Ready"]])
    assert out.getvalue() == "synced\nModels\nModel  Status\nSEIR   Ready\n"
    assert isinstance(piped.progress("hashing"), type(Console(stdout=io.StringIO()).progress("x")))
    assert not isinstance(piped.progress("hashing"), DelayedProgress)


def test_progress_only_on_a_terminal_and_exact_from_many_threads(monkeypatch: pytest.MonkeyPatch) -> None:
    tty, _ = console({"TERM": "xterm", "NO_COLOR": "1"})
    monkeypatch.setattr("modelops_bundle.cli.console.PROGRESS_DELAY_S", 0.0)
    progress = tty.progress("uploads")
    assert isinstance(progress, DelayedProgress)
    progress.start(8 * 500, 8 * 500 * 3)

    def work() -> None:
        for _ in range(500):
            progress.advance(files=1, nbytes=3)

    threads = [threading.Thread(target=work) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert (progress.done_files, progress.done_bytes) == (4000, 12000)
    progress.close()
    assert not isinstance(Console(stdout=FakeTTY(), quiet=True, environ={}).progress("x"), DelayedProgress)


MODEL = "from modelops_calabaria import BaseModel\n\n\nclass SEIR(BaseModel):\n    pass\n"


def test_status_markers_only_on_a_terminal(bundle_project: BundleProject, monkeypatch: pytest.MonkeyPatch) -> None:
    bundle_project.write("models/seir.py", MODEL)
    assert bundle_project.run("register-model", "models/seir.py").exit_code == 0
    piped = bundle_project.run("status", "--offline")
    row = next(line for line in piped.stdout.splitlines() if line.startswith("seir_seir "))
    assert row.split()[1:3] == ["SEIR", "Ready"] and "✓" not in piped.stdout  # id, class, status

    from modelops_bundle.cli import main

    out = FakeTTY()
    code = main.run(
        ["-C", str(bundle_project.root), "status", "--offline"],
        prog="mops bundle",
        environ={**bundle_project.env, "TERM": "xterm"},
        stdout=out,
        stderr=io.StringIO(),
    )
    assert code == 0
    assert "✓ Ready" in out.getvalue()
    bundle_project.write("models/seir.py", MODEL + "\nRATE = 2\n")
    out = FakeTTY()
    main.run(["-C", str(bundle_project.root), "status", "--offline"], prog="mops bundle",
             environ={**bundle_project.env, "TERM": "xterm"}, stdout=out, stderr=io.StringIO())  # fmt: skip
    assert "⚠ Stale (1 changed)" in out.getvalue()


# ------------------------------------------------------------------------------------ completion


def scripts() -> dict[str, str]:
    host = build_plugin_host({"MOPS_DISABLE_PLUGIN_AUTOLOAD": "1"})
    app, _ = build_app(host, "mops bundle", DESCRIPTION)
    options, commands = describe_parser(app.build())
    return {"bash": bash_script(options, commands), "zsh": zsh_script(options, commands),
            "fish": fish_script(options, commands)}  # fmt: skip


def complete(script: str, words: list[str]) -> list[str]:
    line = " ".join(words)
    program = f"""
{script}
COMP_WORDS=({line})
COMP_CWORD={len(words) - 1}
_mops_bundle_complete
printf '%s\\n' "${{COMPREPLY[@]}}"
"""
    done = subprocess.run(["bash", "-c", program], capture_output=True, text=True, timeout=30, check=True)
    return [word for word in done.stdout.splitlines() if word]


@pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")
def test_bash_completion_completes_commands_options_and_choices() -> None:
    script = scripts()["bash"]
    assert complete(script, ["mops", "bu"]) == ["bundle"]
    assert "status" in complete(script, ["mops", "bundle", "st"])
    assert set(complete(script, ["modelops-bundle", "reg"])) == {"register-model", "register-target"}
    assert {"--files", "--untracked-only", "--json"} <= set(complete(script, ["mops", "bundle", "status", "--"]))
    assert complete(script, ["mops", "bundle", "env", "s"]) == ["show", "switch"]
    assert complete(script, ["mops", "bundle", "plugin", "new", "x", "--kind", "st"]) == ["storage"]
    assert complete(script, ["mops", "bundle", "-C", "somewhere", "pu"]) == ["push", "pull"]
    assert complete(script, ["mops", "bundle", "completion", ""]) == ["bash", "zsh", "fish"]


def test_zsh_and_fish_scripts() -> None:
    generated = scripts()
    assert "bashcompinit" in generated["zsh"] and "complete -o default -F _mops_bundle_complete" in generated["zsh"]
    # It needs compinit to have run (every zsh set-up that completes runs it) and never runs it itself.
    runs_compinit = re.compile(r"^(?!\s*print)[^#\n]*(^|[;&|]|autoload[^\n]*\s)\s*compinit\b", re.M)
    assert runs_compinit.search(generated["zsh"]) is None, generated["zsh"][:600]
    assert runs_compinit.search("autoload -U +X compinit && compinit -C\n")  # what it used to do
    assert "run compinit first" in generated["zsh"]
    fish = generated["fish"]
    assert "complete -c mops -n '__fish_seen_subcommand_from bundle; and __fish_seen_subcommand_from push'" in fish
    assert "-l dry-run" in fish and "-x -a 'discovery storage registry packaging'" in fish
    assert "-l tag -l ref -x -a '(mops bundle completion --values tags 2>/dev/null)'" in fish
    assert "-f -a '(modelops-bundle completion --values environments 2>/dev/null)'" in fish  # env NAME
    for shell, check in (("zsh", ["zsh", "-n"]), ("fish", ["fish", "--no-execute"])):
        if shutil.which(check[0]):
            done = subprocess.run([*check, "-c", generated[shell]], capture_output=True, text=True, timeout=30)
            assert done.returncode == 0, done.stderr


def test_completion_command(run_cli: CliRunner, tmp_path: Path) -> None:
    result = run_cli("completion", "bash")
    assert result.exit_code == 0 and result.stdout.startswith("# bash completion for mops bundle")
    as_json = run_cli("completion", "fish", "--json").json()
    assert as_json["shell"] == "fish" and as_json["programs"] == ["mops", "modelops-bundle"]
    assert run_cli("completion", "tcsh").exit_code == 2


MODEL = "from modelops_calabaria import BaseModel\n\n\nclass SEIR(BaseModel):\n    pass\n"


@pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")
def test_completion_completes_values(bundle_project: BundleProject, tmp_path: Path) -> None:
    """Tags, environments, model and target ids come from the project, asked when they are typed."""
    import sys

    launcher = tmp_path / "bin" / "mops"
    launcher.parent.mkdir()
    launcher.write_text(
        f"#!/bin/sh\nexec {sys.executable} -c "
        "'import sys; from modelops_bundle.cli.main import mops_main; sys.exit(mops_main())' \"$@\"\n"
    )
    launcher.chmod(0o755)
    bundle_project.write("models/seir.py", MODEL)
    assert bundle_project.run("register-model", "models/seir.py").ok
    assert bundle_project.run("add", ".").ok
    assert bundle_project.run("push", "--tag", "v1.0.0").ok
    assert bundle_project.run("push", "--tag", "v1.1.0").ok
    home = Path(bundle_project.env["MODELOPS_HOME"])
    (home / "bundle-env").mkdir(parents=True, exist_ok=True)
    (home / "bundle-env" / "dev.yaml").write_text("environment: dev\nregistry:\n  provider: docker\n")
    script = scripts()["bash"]

    def values(*words: str, cwd: Path = bundle_project.root) -> list[str]:
        line = " ".join([str(launcher), "bundle", *words])
        program = f"{script}\nCOMP_WORDS=({line}){chr(10)}COMP_CWORD={len(words) + 1}\n_mops_bundle_complete\n"
        program += 'printf "%s\\n" "${COMPREPLY[@]}"\n'
        done = subprocess.run(
            ["bash", "-c", program], capture_output=True, text=True, timeout=60, check=True,
            env=bundle_project.env, cwd=cwd,
        )  # fmt: skip
        return [word for word in done.stdout.splitlines() if word]

    assert values("pull", "") == ["v1.0.0", "v1.1.0"]
    assert values("pull", "v1.1") == ["v1.1.0"]
    assert values("push", "--tag", "") == ["v1.0.0", "v1.1.0"]
    assert values("diff", "v1.0.0", "v1.1") == ["v1.1.0"]
    assert values("env", "switch", "") == ["dev", "local"]
    assert values("init", "--env", "d") == ["dev"]
    assert values("status", "--explain", "") == ["seir_seir"]
    assert values("ensure", "--model", "se") == ["seir_seir"]
    assert values("env", "") == ["list", "show", "switch"]  # the sub-command words still come first
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    assert values("pull", "", cwd=elsewhere) == []  # no project here: no values, and no error
    assert values("-C", str(bundle_project.root), "pull", "v1.0", cwd=elsewhere) == ["v1.0.0"]
    listed = bundle_project.run("completion", "--values", "tags")
    assert listed.exit_code == 0 and listed.stdout == "v1.0.0\nv1.1.0\n"
    assert "--values" not in bundle_project.run("completion", "--help").stdout  # for the scripts, not people
