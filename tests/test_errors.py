"""Errors: chained in the library (FASTTAG_DEBUG shows the real cause), cut to one line at the CLI boundary."""

import pytest
from click.testing import CliRunner

from fasttag import errors
from fasttag.cli import cli
from fasttag.errors import InputError
from fasttag.read import CorpusReader


def test_the_library_chains_the_cause(tmp_path):
    bad = tmp_path / "bad.parquet"
    bad.write_bytes(b"PAR1 this is no Parquet file")
    with pytest.raises(InputError) as info:
        list(CorpusReader(str(bad)))
    assert "not a readable Parquet file" in str(info.value)
    assert info.value.__cause__ is not None and "pyarrow" in type(info.value.__cause__).__module__


def test_the_cli_shows_one_line_or_with_debug_the_chain(tmp_path, bert_export):
    bad = tmp_path / "bad.parquet"
    bad.write_bytes(b"PAR1 this is no Parquet file")
    args = ["run", str(bad), "-o", str(tmp_path / "out.jsonl"), "--model", str(bert_export), "-q"]
    res = CliRunner().invoke(cli, args)
    assert res.exit_code == 1 and len(res.output.strip().splitlines()) == 1, res.output
    debug = CliRunner().invoke(cli, args, env={"FASTTAG_DEBUG": "1"})
    assert debug.exit_code == 1
    assert "The above exception was the direct cause" in debug.output and "pyarrow" in debug.output


def test_every_exception_class_lives_in_errors():
    """Apart from the CLI's own Click exception (cli.CommandError), the boundary that shows them."""
    import ast
    from pathlib import Path

    elsewhere = []
    for path in Path(errors.__file__).parent.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ClassDef) and any(
                    getattr(b, "id", getattr(b, "attr", "")).endswith(("Error", "Exception", "Interrupted"))
                    for b in node.bases):
                elsewhere += [] if path.name == "errors.py" else [f"{path.name}: {node.name}"]
    assert elsewhere == ["cli.py: CommandError"]


def test_first_line():
    assert errors.first_line(ValueError("one\ntwo")) == "one"
    assert errors.first_line(ValueError("")) == "ValueError"
    assert errors.first_line(OSError("no bucket (Request ID: 123)")) == "no bucket"
