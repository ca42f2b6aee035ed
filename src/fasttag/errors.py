"""The few exceptions fasttag raises; the CLI maps each to a one-line message and an exit code."""


class FasttagError(Exception):
    """Base class: a problem the user can act on, reported without a traceback."""

    exit_code = 1


class UsageError(FasttagError):
    """Options that contradict each other or cannot work together."""

    exit_code = 2


class InputError(FasttagError):
    """The input corpus or data file is unreadable or malformed."""


class ModelError(FasttagError):
    """The model folder is missing, incomplete or inconsistent."""


class OutputError(FasttagError):
    """The output path cannot be written as asked."""


class MissingExtraError(FasttagError):
    """An optional dependency group is not installed."""

    def __init__(self, extra: str, what: str, missing: str):
        super().__init__(
            f"{what} needs the '{extra}' extra ({missing} is not installed). "
            f"Install it with: pip install 'fasttag[{extra}]'"
        )
