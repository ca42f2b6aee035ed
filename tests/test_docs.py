"""Docs that cannot drift: every command is documented, has an example, and every option shown exists."""

import inspect
import re
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

import fasttag.cli
from fasttag.cli import cli

README = (Path(__file__).parent.parent / "README.md").read_text(encoding="utf-8")
COMMANDS = dict(cli.commands)
# Every command has the group's help options; --debug is handled by fasttag.cli.main before Click sees it.
HELP_OPTIONS = set(fasttag.cli.CONTEXT_SETTINGS["help_option_names"])
GLOBAL_OPTIONS = {"--debug"} | HELP_OPTIONS
OPTION = re.compile(r"(?<![\w-])--[a-z][a-z0-9-]*")


def option_names(command: click.Command) -> set[str]:
    return {name for p in command.params if isinstance(p, click.Option) for name in (*p.opts, *p.secondary_opts)}


ALL_OPTIONS = set().union(*(option_names(c) for c in COMMANDS.values()), option_names(cli), GLOBAL_OPTIONS)


def code_spans(markdown: str) -> list[str]:
    """Text of fenced code blocks and inline `code` spans, with shell line continuations joined."""
    fenced = re.findall(r"^```[^\n]*\n(.*?)^```", markdown, flags=re.S | re.M)
    rest = re.sub(r"^```[^\n]*\n.*?^```", "", markdown, flags=re.S | re.M)
    inline = re.findall(r"`([^`\n]+)`", rest)
    return [block.replace("\\\n", " ") for block in fenced] + inline


def shell_segments(code: str) -> list[str]:
    """Each command of a shell line (split on newlines, &&, ;, pipes), stripped."""
    return [s.strip() for s in re.split(r"\n|&&|;|\|", code) if s.strip()]


def fasttag_calls(code: str) -> list[tuple[str | None, set[str]]]:
    """(command name or None, options) for each `fasttag ...` call and each bare `--option` mention."""
    calls = []
    for seg in shell_segments(code):
        words = seg.split()
        if words[0] == "fasttag":
            name = next((w for w in words[1:] if not w.startswith("-")), None)
            calls.append((name if name in COMMANDS else None, set(OPTION.findall(seg))))
        elif words[0].startswith("--"):
            calls.append((None, set(OPTION.findall(seg))))
    return calls


def example_block(help_text: str) -> str:
    return help_text.split("Example", 1)[1].replace("\\\n", " ") if "Example" in help_text else ""


def test_parsers_see_what_a_reader_sees():
    md = "Run `fasttag run IN -o OUT --limit N` or `--quiet`; `pip install --upgrade x`.\n\n```bash\n" \
         "cat a | fasttag show - \\\n  --n 3 && pip install --user y\n```\n"
    calls = [c for span in code_spans(md) for c in fasttag_calls(span)]
    assert sorted(calls, key=str) == sorted([("show", {"--n"}), ("run", {"--limit"}), (None, {"--quiet"})], key=str)


def test_global_options_are_handled_by_main():
    source = inspect.getsource(fasttag.cli.main)
    assert all(opt in source for opt in GLOBAL_OPTIONS - HELP_OPTIONS)


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_command_has_help_with_example(name):
    help_text = COMMANDS[name].help or ""
    assert "Example" in help_text, f"'fasttag {name}' has no example in its help (its docstring)"
    assert re.search(rf"^\s+fasttag {re.escape(name)}\b", example_block(help_text), flags=re.M), (
        f"the example of 'fasttag {name}' does not run 'fasttag {name}'"
    )
    res = CliRunner().invoke(cli, [name, "--help"])
    assert res.exit_code == 0 and "Example" in res.output


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_command_is_in_readme(name):
    assert re.search(rf"`fasttag {re.escape(name)}\b", README), f"README.md does not mention `fasttag {name}`"


def test_help_lists_every_command():
    res = CliRunner().invoke(cli, ["--help"])
    assert res.exit_code == 0
    listed = re.findall(r"^  (\S+)\s", res.output.split("Commands:", 1)[1], flags=re.M)
    assert sorted(listed) == sorted(COMMANDS)


def test_help_examples_use_real_options():
    examples = {f"fasttag {name}": example_block(c.help or "") for name, c in COMMANDS.items()}
    examples["fasttag"] = (cli.help or "").replace("\\\n", " ")
    problems = []
    for owner, text in examples.items():
        for name, options in fasttag_calls(text):
            known = option_names(COMMANDS[name]) | option_names(cli) | GLOBAL_OPTIONS if name else ALL_OPTIONS
            problems += [f"help of {owner}: {o}" for o in sorted(options - known)]
    assert not problems, "examples in --help use options that do not exist: " + "; ".join(problems)


def test_readme_options_exist():
    problems = []
    for span in code_spans(README):
        for name, options in fasttag_calls(span):
            known = option_names(COMMANDS[name]) | option_names(cli) | GLOBAL_OPTIONS if name else ALL_OPTIONS
            problems += [f"`{span.strip()[:60]}`: {o}" for o in sorted(options - known)]
    assert not problems, "README.md shows options no command has: " + "; ".join(problems)


def test_readme_commands_table_lists_every_command():
    table = README.split("## Commands", 1)[1].split("\n\n", 2)[1]
    rows = re.findall(r"^\| `fasttag ([\w-]+)", table, flags=re.M)
    assert sorted(rows) == sorted(COMMANDS)
