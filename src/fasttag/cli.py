"""The `fasttag` command line: parses options and calls the library; nothing else."""

from __future__ import annotations

import os
import sys
import traceback

import click

from fasttag import __version__
from fasttag.cli_bench import bench
from fasttag.cli_cache import cache_group
from fasttag.cli_convert import convert
from fasttag.cli_eval import evaluate
from fasttag.cli_model import export, info
from fasttag.cli_run import run
from fasttag.cli_show import show
from fasttag.cli_train import train_command
from fasttag.errors import FasttagError

CONTEXT_SETTINGS = {"help_option_names": ["-h", "--help"], "max_content_width": 100}


def debug_enabled() -> bool:
    return os.environ.get("FASTTAG_DEBUG", "") not in ("", "0")


class CommandError(click.ClickException):
    """A fasttag error as Click shows it: 'Error: <message>' and the error's exit code."""

    def __init__(self, message: str, exit_code: int = 1):
        super().__init__(message)
        self.exit_code = exit_code  # type: ignore[misc]  # click declares it a class variable; ours varies


class FasttagGroup(click.Group):
    """Maps library exceptions to one-line CLI errors, in one place (FASTTAG_DEBUG=1 keeps tracebacks)."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except FasttagError as exc:
            if debug_enabled():
                traceback.print_exc()
            raise CommandError(str(exc), exc.exit_code) from None
        except KeyboardInterrupt:
            raise CommandError("interrupted", 130) from None
        except (click.ClickException, click.exceptions.Exit, click.exceptions.Abort, BrokenPipeError):
            raise
        except Exception as exc:  # a bug: still one line, unless debugging
            if debug_enabled():
                raise
            raise CommandError(
                f"unexpected {type(exc).__name__}: {exc} (set FASTTAG_DEBUG=1 for the traceback)"
            ) from None


@click.group(cls=FasttagGroup, context_settings=CONTEXT_SETTINGS)
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


# Each command is defined in its own module (cli_*.py, which never imports this one) and registered here.
for command in (train_command, export, run, show, convert, evaluate, info, bench, cache_group):
    cli.add_command(command)


def main(argv: list[str] | None = None) -> None:
    """Entry point. Exit codes: 0 success, 1 error, 2 usage error, 130 interrupted, 143 terminated (run)."""
    args = list(sys.argv[1:] if argv is None else argv)
    if "--debug" in args:
        os.environ["FASTTAG_DEBUG"] = "1"
        args.remove("--debug")
    try:
        cli.main(args=args, prog_name="fasttag")
    except BrokenPipeError:  # `fasttag run ... -o - | head`: the reader left; stop quietly
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        sys.exit(1)
