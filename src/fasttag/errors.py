"""The few exceptions fasttag raises; the CLI maps each to a one-line message and an exit code."""


class FasttagError(Exception):
    """Base class: a problem the user can act on, reported without a traceback."""

    exit_code = 1


class UsageError(FasttagError):
    """Options that contradict each other or cannot work together."""

    exit_code = 2


class SchemeError(UsageError):
    """A label set that is no known scheme (e.g. mixing prefixed and plain labels, or BIOES with BILOU)."""


class InputError(FasttagError):
    """The input corpus or data file is unreadable or malformed."""


class ModelError(FasttagError):
    """The model folder is missing, incomplete or inconsistent."""


class OutputError(FasttagError):
    """The output path cannot be written as asked."""


class ValidationError(FasttagError):
    """The exported graph disagrees with PyTorch beyond the tolerance."""


class Interrupted(FasttagError):
    """A run stopped by Ctrl-C; the message says what became of its output."""

    exit_code = 130

    def __init__(self, output: str, resumable: bool = True, stdin: bool = False, hint: str | None = None):
        if hint is None:
            hint = self.default_hint(output, resumable, stdin)
        super().__init__(f"interrupted; {hint}")

    @staticmethod
    def default_hint(output: str, resumable: bool, stdin: bool) -> str:
        if output == "-":
            return "the rows printed so far are complete rows of the input's first chunks"
        if stdin:
            return f"nothing was written to {output} (a run reading stdin cannot be resumed: run it again)"
        if not resumable:
            return f"nothing was written to {output}"
        return (f"nothing was written to {output}; finished chunks are kept: rerun the same command with "
                "--resume to continue")


class Stopped(KeyboardInterrupt):
    """Raised in the main thread by `fasttag run`'s SIGTERM handler: the run stops as on Ctrl-C."""


class Terminated(Interrupted):
    """A run stopped by SIGTERM (as Kubernetes, Slurm and systemd stop a job): as Ctrl-C, exit 143 (128 + 15)."""

    exit_code = 143

    def __init__(self, interrupted: Interrupted):
        Exception.__init__(self, str(interrupted).replace("interrupted", "terminated (SIGTERM)", 1))


def first_line(error: BaseException | str) -> str:
    """The first line of an exception's message (its class name when it has none), as one-line errors quote it.

    pyarrow's S3 errors end with a request id that helps no one reading the message: it is left out.
    """
    text = str(error).strip()
    if not text:
        return type(error).__name__ if isinstance(error, BaseException) else ""
    return text.splitlines()[0].split(" (Request ID:")[0]


# The modules each extra's commands import (import names), in the order to name them when missing.
EXTRA_MODULES = {
    "train": ("torch", "transformers", "accelerate", "optimum"),
    "eval": ("seqeval",),
    "ray": ("ray",),
}


def missing_modules(names) -> list[str]:
    """Those of `names` that cannot be imported (found without importing them)."""
    import importlib.util

    missing = []
    for name in names:
        try:
            found = importlib.util.find_spec(name) is not None
        except (ImportError, ValueError):  # a parent package that fails, or a module set to None
            found = False
        if not found:
            missing.append(name)
    return missing


class MissingExtraError(FasttagError):
    """An optional dependency group is not installed.

    The message names every module of the extra that is missing, not only `missing` (the first
    import that failed): torch, transformers and accelerate, not just accelerate.
    """

    def __init__(self, extra: str, what: str, missing: str):
        modules = EXTRA_MODULES.get(extra, ())
        if missing.split(".")[0] in modules:  # optimum.exporters -> optimum
            missing = missing.split(".")[0]
        names = [m for m in modules if m == missing or missing_modules([m])]
        if missing not in names:
            names.insert(0, missing)
        verb = "is" if len(names) == 1 else "are"
        super().__init__(
            f"{what} needs the '{extra}' extra ({', '.join(names)} {verb} not installed). "
            f"Install it with: pip install 'fasttag[{extra}]'"
        )
