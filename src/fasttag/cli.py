"""The `fasttag` command line: parses options and calls the library; nothing else."""

from __future__ import annotations

import os
import sys
import traceback

import click

from fasttag import __version__
from fasttag.errors import FasttagError

CONTEXT_SETTINGS = {"help_option_names": ["-h", "--help"], "max_content_width": 100}


@click.group(context_settings=CONTEXT_SETTINGS)
@click.version_option(__version__, "-V", "--version", prog_name="fasttag")
def cli() -> None:
    """fasttag: fast batch tagging (NER and other IOB2 tasks) with ONNX Runtime.

    \b
    Train, export, then tag millions of documents:
      fasttag train --model bert-base-cased --train train.txt --validation valid.txt --output-dir ckpt
      fasttag export ckpt -o model-onnx
      fasttag run corpus.parquet -o entities.parquet --model model-onnx

    Set FASTTAG_DEBUG=1 (or pass --debug to a command) to see full tracebacks.
    """


def main(argv: list[str] | None = None) -> None:
    """Entry point: run the CLI, turning fasttag errors into one-line messages (exit 1, usage 2)."""
    debug = os.environ.get("FASTTAG_DEBUG", "") not in ("", "0")
    args = list(sys.argv[1:] if argv is None else argv)
    if "--debug" in args:
        debug = True
        args.remove("--debug")
    try:
        cli.main(args=args, prog_name="fasttag", standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("Aborted.", err=True)
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except FasttagError as exc:
        if debug:
            traceback.print_exc()
        click.echo(f"Error: {exc}", err=True)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        click.echo("Interrupted.", err=True)
        sys.exit(130)
    except BrokenPipeError:
        sys.exit(1)
    except Exception as exc:  # an unexpected bug: still one line, unless debugging
        if debug:
            raise
        click.echo(
            f"Error: unexpected {type(exc).__name__}: {exc} (set FASTTAG_DEBUG=1 for the traceback)",
            err=True,
        )
        sys.exit(1)


# Commands live in their own modules and register on `cli` when imported.
from fasttag import cli_run  # noqa: E402,F401
from fasttag import cli_model  # noqa: E402,F401
