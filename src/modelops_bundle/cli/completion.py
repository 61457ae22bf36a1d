"""``completion bash|zsh|fish``: a shell completion script generated from the parser itself.

The script is static text derived from argparse (commands, their options, choices), so it knows
the commands of every installed plugin at the time it was generated and needs no new dependency;
regenerate it after installing a plugin that adds commands. Values that change -- environment names,
tags, model and target ids -- are asked for when they are typed: an argument marked with
``cli.common.complete_with`` makes the script run ``mops bundle completion --values KIND`` (in the
folder being completed in, or the ``-C`` folder), which prints them one per line and never fails.
zsh reuses the bash script through ``bashcompinit``; it expects ``compinit`` to have run already
(every zsh set-up that completes anything runs it) and runs it never itself.
"""

from __future__ import annotations

import argparse
import shlex
from dataclasses import dataclass, field

from modelops_bundle.cli.common import COMPLETION_KINDS
from modelops_bundle.cli.console import Console
from modelops_bundle.core.commands import Command
from modelops_bundle.core.context import CommandContext

SHELLS = ("bash", "zsh", "fish")
#: The executables the scripts complete: ``mops bundle ...`` and ``modelops-bundle ...``.
PROGRAMS = ("mops", "modelops-bundle")


@dataclass
class OptionSpec:
    flags: list[str]
    takes_value: bool
    choices: list[str]
    help: str
    #: What to complete the value with (``tags``, ``environments``, ...), asked when typed.
    values: str | None = None


@dataclass
class CommandSpec:
    name: str
    help: str
    options: list[OptionSpec] = field(default_factory=list)
    #: Choices of the first positional argument (``env list|show|switch``), if it has any.
    words: list[str] = field(default_factory=list)
    #: What to complete the (other) positional arguments with (``pull REF``: ``tags``).
    values: str | None = None


def _options(parser: argparse.ArgumentParser) -> list[OptionSpec]:
    specs = []
    for action in parser._actions:
        if not action.option_strings or isinstance(action, argparse._HelpAction):
            continue
        takes_value = action.nargs != 0
        choices = [str(choice) for choice in action.choices] if action.choices else []
        help_text = action.help if action.help and action.help != argparse.SUPPRESS else ""
        values = getattr(action, "mops_complete", None)
        specs.append(OptionSpec(list(action.option_strings), takes_value, choices, help_text, values))
    specs.append(OptionSpec(["-h", "--help"], False, [], "show this help"))
    return specs


def describe_parser(parser: argparse.ArgumentParser) -> tuple[list[OptionSpec], list[CommandSpec]]:
    """The top-level options and every command (aliases included) of a parser built by ``CommandApp``."""
    commands: list[CommandSpec] = []
    for action in parser._actions:
        if not isinstance(action, argparse._SubParsersAction):
            continue
        helps = {choice.dest: choice.help or "" for choice in action._choices_actions}
        for name, sub in action.choices.items():
            positionals = [a for a in sub._actions if not a.option_strings and a.dest != "help"]
            first = positionals[0] if positionals else None
            words = [str(c) for c in first.choices] if first is not None and first.choices else []
            values = next((a.mops_complete for a in positionals if hasattr(a, "mops_complete")), None)
            commands.append(CommandSpec(name, helps.get(name, ""), _options(sub), words, values))
    return _options(parser), commands


# ------------------------------------------------------------------------------------------- bash


def _words(items: list[str]) -> str:
    return shlex.quote(" ".join(items))


def bash_script(options: list[OptionSpec], commands: list[CommandSpec]) -> str:
    cases = []
    for command in commands:
        value_cases = []
        for option in command.options:
            if not option.takes_value:
                continue
            pattern = "|".join(option.flags)
            if option.values:
                reply = f'COMPREPLY=($(compgen -W "$(_mops_bundle_values {option.values})" -- "$cur"))'
                value_cases.append(f"                {pattern}) {reply}; return ;;")
            elif option.choices:
                reply = f'COMPREPLY=($(compgen -W {_words(option.choices)} -- "$cur"))'
                value_cases.append(f"                {pattern}) {reply}; return ;;")
            else:  # a free value: let bash complete file names (complete -o default)
                value_cases.append(f"                {pattern}) return ;;")
        flags = [flag for option in command.options for flag in option.flags]
        body = "\n".join(value_cases) or "                *) ;;"
        cases.append(
            f"        {shlex.quote(command.name)})\n"
            f'            case "$prev" in\n{body}\n            esac\n'
            f"            flags={_words(flags)}; words={_words(command.words)}; values={command.values or ''} ;;"
        )
    global_flags = [flag for option in options for flag in option.flags]
    command_names = [command.name for command in commands]
    return f"""# bash completion for mops bundle / modelops-bundle (generated by 'mops bundle completion bash')
# Values (tags, environments, model ids): asked of the command itself, in the folder being completed in.
_mops_bundle_values() {{
    local program="${{COMP_WORDS[0]}}" i folder=""
    for (( i = 1; i < COMP_CWORD; i++ )); do
        [[ "${{COMP_WORDS[i]}}" == -C ]] && folder="${{COMP_WORDS[i+1]}}"
    done
    set -- completion --values "$1"
    if [[ "${{program##*/}}" == mops ]]; then set -- bundle "$@"; fi
    if [[ -n "$folder" ]]; then set -- "$@" -C "$folder"; fi
    "$program" "$@" 2>/dev/null
}}
_mops_bundle_complete() {{
    local cur prev word command="" flags words values="" i start=1
    COMPREPLY=()
    cur="${{COMP_WORDS[COMP_CWORD]}}"
    prev="${{COMP_WORDS[COMP_CWORD-1]}}"
    if [[ "${{COMP_WORDS[0]##*/}}" == mops ]]; then
        if (( COMP_CWORD == 1 )); then
            COMPREPLY=($(compgen -W "bundle --version --help" -- "$cur"))
            return
        fi
        [[ "${{COMP_WORDS[1]}}" == bundle ]] || return
        start=2
    fi
    for (( i = start; i < COMP_CWORD; i++ )); do
        word="${{COMP_WORDS[i]}}"
        case "$word" in
            -C) (( i++ )) ;;
            -*) ;;
            *) command="$word"; break ;;
        esac
    done
    [[ "$prev" == -C ]] && return
    case "$command" in
        "")
            flags={_words(global_flags)}; words={_words(command_names)} ;;
{chr(10).join(cases)}
        *) return ;;
    esac
    if [[ "$cur" == -* ]]; then
        COMPREPLY=($(compgen -W "$flags" -- "$cur"))
    elif [[ -z "$command" ]] || [[ -n "$words" && "$prev" == "$command" ]]; then
        COMPREPLY=($(compgen -W "$words" -- "$cur"))
    elif [[ -n "$values" ]]; then
        COMPREPLY=($(compgen -W "$(_mops_bundle_values "$values")" -- "$cur"))
    fi
}}
complete -o default -F _mops_bundle_complete {" ".join(PROGRAMS)}
"""


def zsh_script(options: list[OptionSpec], commands: list[CommandSpec]) -> str:
    return (
        "# zsh completion for mops bundle / modelops-bundle (generated by 'mops bundle completion zsh')\n"
        "# It is the bash completion, run through zsh's bashcompinit. Source it after 'compinit' (which your\n"
        "# .zshrc or framework runs already: this script never runs it, nor slows your shell's start with it).\n"
        "if (( ! ${+functions[compdef]} )); then\n"
        "    print -u2 'mops completion: run compinit first (autoload -U compinit && compinit), then source this'\n"
        "    return 1\n"
        "fi\n"
        "autoload -U +X bashcompinit && bashcompinit\n" + bash_script(options, commands)
    )


# ------------------------------------------------------------------------------------------- fish


def _fish(text: str) -> str:
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def fish_script(options: list[OptionSpec], commands: list[CommandSpec]) -> str:
    names = " ".join(command.name for command in commands)
    lines = ["# fish completion for mops bundle / modelops-bundle (generated by 'mops bundle completion fish')"]
    lines.append(
        "complete -c mops -n 'not __fish_seen_subcommand_from bundle' -f -a bundle -d 'package, push and pull'"
    )
    lines.append("complete -c mops -n 'not __fish_seen_subcommand_from bundle' -l version -d 'show the version'")
    for program, before in (("mops", "__fish_seen_subcommand_from bundle; and "), ("modelops-bundle", "")):
        ask = f"{program} bundle" if program == "mops" else program
        no_command = f"{before}not __fish_seen_subcommand_from {names}"
        for command in commands:
            lines.append(
                f"complete -c {program} -n {_fish(no_command)} -f -a {_fish(command.name)} -d {_fish(command.help)}"
            )
        for option in options:
            lines.append(_fish_option(program, no_command, option))
        for command in commands:
            condition = f"{before}__fish_seen_subcommand_from {command.name}"
            if command.words:
                lines.append(f"complete -c {program} -n {_fish(condition)} -f -a {_fish(' '.join(command.words))}")
            if command.values:
                values = f"({ask} completion --values {command.values} 2>/dev/null)"
                lines.append(f"complete -c {program} -n {_fish(condition)} -f -a {_fish(values)}")
            for option in command.options:
                lines.append(_fish_option(program, condition, option, ask))
    return "\n".join(lines) + "\n"


def _fish_option(program: str, condition: str, option: OptionSpec, ask: str | None = None) -> str:
    parts = [f"complete -c {program} -n {_fish(condition)}"]
    for flag in option.flags:
        parts.append(f"-l {flag[2:]}" if flag.startswith("--") else f"-s {flag[1:]}")
    if option.values and ask:
        parts.append(f"-x -a {_fish(f'({ask} completion --values {option.values} 2>/dev/null)')}")
    elif option.choices:
        parts.append(f"-x -a {_fish(' '.join(option.choices))}")
    elif option.takes_value:
        parts.append("-r")
    if option.help:
        parts.append(f"-d {_fish(option.help.replace(chr(10), ' '))}")
    return " ".join(parts)


RENDERERS = {"bash": bash_script, "zsh": zsh_script, "fish": fish_script}


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("shell", nargs="?", choices=SHELLS, help="the shell to complete for")
    # What the generated scripts call for values that change; not for people (hidden from --help).
    parser.add_argument("--values", choices=COMPLETION_KINDS, help=argparse.SUPPRESS)


def completion_values(ctx: CommandContext, kind: str) -> list[str]:
    """The current values of ``kind`` here: environment names, the project's tags, its model and target
    ids. Anything that goes wrong (no project, registry unreachable) means no values, never an error."""
    from modelops_bundle.core.errors import BundleError

    try:
        if kind == "environments":
            from modelops_bundle.core.envfiles import list_environments

            return list_environments(ctx.environ)
        from modelops_bundle.cli.common import open_session

        session = open_session(ctx)
        ws = session.ws
        if kind == "tags":
            from modelops_bundle.core.provenance import is_fallback_tag

            reference = session.reference()
            backend = session.open_registry(reference)
            try:
                return [tag for tag in backend.list_tags(reference.repository) if not is_fallback_tag(tag)]
            finally:
                backend.close()
        from modelops_bundle.core.model_registry import load_registry

        registry = load_registry(ws)
        return list(registry.targets) if kind == "targets" else [*registry.models, *registry.targets]
    except (BundleError, OSError):
        return []


def run(ctx: CommandContext, args: argparse.Namespace) -> int:
    from modelops_bundle.cli.app import build_app
    from modelops_bundle.cli.main import DESCRIPTION

    if args.values:
        for value in completion_values(ctx, args.values):
            ctx.out.emit_text(value)
        return 0
    if args.shell is None:
        from modelops_bundle.core.errors import UsageError

        raise UsageError("which shell? bash, zsh or fish", hint="mops bundle completion bash")

    app, _ = build_app(ctx.plugins, "mops bundle", DESCRIPTION)
    options, commands = describe_parser(app.build())
    script = RENDERERS[args.shell](options, commands)
    if ctx.out.json_mode:
        ctx.out.emit_json({"shell": args.shell, "programs": list(PROGRAMS), "script": script})
    elif isinstance(ctx.out, Console):
        ctx.out.emit_text(script)  # the product: printed with -q too, like --json output
    else:
        ctx.out.line(script.rstrip("\n"))
    return 0


COMMAND = Command(
    name="completion",
    help="print a shell completion script (bash, zsh, fish)",
    run=run,
    configure=configure,
    epilog="examples:\n"
    "  mops bundle completion bash > ~/.local/share/bash-completion/completions/mops\n"
    "  ln -s mops ~/.local/share/bash-completion/completions/modelops-bundle\n"
    "  echo 'source <(mops bundle completion zsh)' >> ~/.zshrc\n"
    "  echo 'mops bundle completion fish | source' >> ~/.config/fish/config.fish\n"
    "regenerate the script after installing a plugin that adds commands",
)
