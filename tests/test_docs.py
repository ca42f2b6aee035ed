"""Docs that cannot drift: every command is documented, has an example, and every option shown exists."""

import inspect
import json
import os
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
    """A command's options; a group's with those of its subcommands (`fasttag cache clear --all`)."""
    names = {name for p in command.params if isinstance(p, click.Option) for name in (*p.opts, *p.secondary_opts)}
    if isinstance(command, click.Group):
        names |= set().union(*(option_names(c) for c in command.commands.values()))
    return names


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


# -- the quick start's output is a real run's ------------------------------------------------------
# README.md shows what the quick-start command prints on examples/corpus.jsonl with the embedded default
# model. The test runs that command and compares; after a change of the default model (or of the
# engine), rewrite the shown output from a real run with:
#     FASTTAG_UPDATE_README=1 python -m pytest tests/test_docs.py -k quick_start
UPDATE_ENV = "FASTTAG_UPDATE_README"
README_PATH = Path(__file__).parent.parent / "README.md"
SCORE_TOLERANCE = 2e-3  # int8 scores move a little between CPUs (instruction sets); a retrained model moves more
SUMMARY = re.compile(r"([\d,]+) rows, ([\d,]+) windows, ([\d,]+) entities in")


def quick_start_blocks(readme: str) -> tuple[str, str]:
    """The quick start's command (its `fasttag run ...` part) and the output block shown after it."""
    section = readme.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"^```[^\n]*\n(.*?)^```", section, flags=re.S | re.M)
    command = next(s for b in blocks for s in shell_segments(b) if s.startswith("fasttag run"))
    output = next(b for b in blocks if b.startswith("fasttag: "))
    return command, output


def run_quick_start(tmp_path: Path, command: str, monkeypatch) -> dict:
    """Run the README's command (and the `show` it shows) in a fresh folder; what a reader would see."""
    import shlex
    import shutil

    for var in ("FASTTAG_MODEL", "FASTTAG_THREADS", "FASTTAG_STREAMS", "NO_COLOR"):
        monkeypatch.delenv(var, raising=False)
    repo = Path(__file__).parent.parent
    (tmp_path / "examples").mkdir()
    shutil.copy(repo / "examples" / "corpus.jsonl", tmp_path / "examples" / "corpus.jsonl")
    monkeypatch.chdir(tmp_path)
    args = shlex.split(command)[1:]
    res = CliRunner().invoke(cli, args)
    assert res.exit_code == 0, res.output
    out_path = tmp_path / args[args.index("-o") + 1]
    first_line = out_path.read_text(encoding="utf-8").splitlines()[0]
    show_args = ["show", args[1], "--n", "1"]
    shown = CliRunner().invoke(cli, show_args)
    assert shown.exit_code == 0, shown.output
    model_line, summary_line = res.stderr.strip().splitlines()[-2:]
    return {"model_line": model_line, "summary_line": summary_line, "first_row": json.loads(first_line),
            "head_command": f"head -1 {args[args.index('-o') + 1]}", "show_command": "fasttag " + " ".join(show_args),
            "show": shown.stdout.rstrip("\n")}


def render_quick_start(run: dict) -> str:
    """The output block as README.md shows it: model path shortened, the first row wrapped one entity a line."""
    model_line = re.sub(r"^fasttag: (\S+) (\([^)]*\) )?on ",  # the model's path, and what form it is in
                        lambda m: "fasttag: /…/" + "/".join(Path(m.group(1)).parts[-2:]) + f" {m.group(2) or ''}on ",
                        run["model_line"])
    row = run["first_row"]
    head = json.dumps({k: v for k, v in row.items() if k != "entities"}, ensure_ascii=False)[:-1]
    entities = ",\n  ".join(json.dumps(e, ensure_ascii=False) for e in row["entities"])
    return "\n".join([model_line, run["summary_line"], f"$ {run['head_command']}",
                      f'{head}, "entities": [{entities}]}}', f"$ {run['show_command']}", run["show"]]) + "\n"


def parse_shown(block: str) -> dict:
    lines = block.splitlines()
    head_at = next(i for i, line in enumerate(lines) if line.startswith("$ head"))
    show_at = next(i for i, line in enumerate(lines) if line.startswith("$ fasttag show"))
    return {"model_line": lines[0], "summary": SUMMARY.search(block).groups(),
            "first_row": json.loads("\n".join(lines[head_at + 1:show_at])), "show": "\n".join(lines[show_at + 1:])}


def differences(shown: dict, run: dict) -> list[str]:
    problems = []
    if not re.match(r"fasttag: \S+ (\([^)]*\) )?on CPUExecutionProvider", shown["model_line"]):
        problems.append(f"the first line should say the default model ran on the CPU: {shown['model_line']!r}")
    real = SUMMARY.search(run["summary_line"]).groups()
    if shown["summary"] != real:
        problems.append("summary: README shows {} rows, {} windows, {} entities; a real run gives {}, {}, {}".format(
            *shown["summary"], *real))
    a, b = shown["first_row"], run["first_row"]
    spans = lambda row: [(e["start"], e["end"], e["label"], e["text"]) for e in row["entities"]]  # noqa: E731
    if {k: v for k, v in a.items() if k != "entities"} != {k: v for k, v in b.items() if k != "entities"} \
            or spans(a) != spans(b):
        problems.append(f"first output line: README shows {spans(a)}, a real run gives {spans(b)}")
    elif any(abs(x["score"] - y["score"]) > SCORE_TOLERANCE for x, y in zip(a["entities"], b["entities"], strict=True)):
        problems.append(f"first output line scores: README shows {[e['score'] for e in a['entities']]}, "
                        f"a real run gives {[e['score'] for e in b['entities']]}")
    if shown["show"] != run["show"]:
        problems.append(f"show: README shows {shown['show']!r}, a real run gives {run['show']!r}")
    return problems


def test_quick_start_output_is_a_real_run(tmp_path, monkeypatch):
    readme = README_PATH.read_text(encoding="utf-8")
    command, block = quick_start_blocks(readme)
    run = run_quick_start(tmp_path, command, monkeypatch)
    if "on CPUExecutionProvider" not in run["model_line"]:
        pytest.skip("README shows a CPU run; on a GPU the batches, and so the int8 scores, differ")
    if os.environ.get(UPDATE_ENV):
        README_PATH.write_text(readme.replace(block, render_quick_start(run), 1), encoding="utf-8")
        return
    problems = differences(parse_shown(block), run)
    assert not problems, (
        "README.md's quick start no longer shows what the command prints (" + "; ".join(problems) + "). "
        f"Rewrite it from a real run: {UPDATE_ENV}=1 python -m pytest tests/test_docs.py -k quick_start"
    )


def test_quick_start_render_round_trips():
    """What the update writes is what the comparison reads."""
    run = {"model_line": "fasttag: /x/y/export/default on CPUExecutionProvider", "summary_line":
           "fasttag: 2 rows, 3 windows, 1 entities in 0.1s (20 rows/s, 300 tokens/s) on CPUExecutionProvider",
           "first_row": {"id": "a", "entities": [{"start": 0, "end": 3, "label": "PER", "score": 0.5, "text": "Ada"},
                                                 {"start": 9, "end": 15, "label": "LOC", "score": 0.25,
                                                  "text": "London"}]},
           "head_command": "head -1 e.jsonl", "show_command": "fasttag show c.jsonl --n 1", "show": "row 0\n[Ada PER]"}
    block = render_quick_start(run)
    assert block.splitlines()[0] == "fasttag: /…/export/default on CPUExecutionProvider"
    assert block.splitlines()[3] == ('{"id": "a", "entities": [{"start": 0, "end": 3, "label": "PER", "score": 0.5, '
                                     '"text": "Ada"},')
    assert differences(parse_shown(block), run) == []
