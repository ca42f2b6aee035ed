"""Limits of the engine options, in one table that the CLI and the Python API (`Tagger`) both check.

The CLI checks an option as Click parses it, the API when a `Tagger` is made; both raise
`UsageError` with the same message, which names the CLI option (``--threads must be at least 1,
got 0``).
"""

from __future__ import annotations

import numbers

import click

from fasttag.errors import UsageError

# keyword -> (CLI option, smallest value). None always means "the default".
INT_OPTIONS: dict[str, tuple[str, int]] = {
    "max_length": ("--max-length", 8),
    "stride": ("--stride", 0),
    "batch_tokens": ("--batch-tokens", 1),
    "max_batch_size": ("--max-batch-size", 1),  # the API's only
    "threads": ("--threads", 1),
    "streams": ("--streams", 1),
}


def check_int_option(name: str, value):
    """`value` as an int if it is None or an integer within the option's range; else `UsageError`."""
    if value is None:
        return None
    flag, minimum = INT_OPTIONS[name]
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise UsageError(f"{flag} must be an integer, got {value!r}")
    if value < minimum:
        raise UsageError(f"{flag} must be at least {minimum}, got {value}")
    return int(value)


def check_int_options(**values) -> None:
    """Check each keyword's value against INT_OPTIONS (see `check_int_option`)."""
    for name, value in values.items():
        check_int_option(name, value)


class EngineInt(click.ParamType):
    """A CLI integer option checked by `check_int_option`, so that its errors read as the API's."""

    name = "integer"

    def __init__(self, option: str):
        self.option = option

    def convert(self, value, param, ctx):
        if isinstance(value, str):
            value = click.INT.convert(value, param, ctx)
        # UsageError, not click's BadParameter: FasttagGroup prints the message as the API raises it.
        return check_int_option(self.option, value)
