"""The engine's options, in one table that the CLI, the Python API (`Tagger`), the Ray engine and resume state read.

`EngineOptions` is that table: each field is an option with its type, default, CLI flag, help text
and (for `Literal` types) its choices. The CLI's options are generated from it (`engine_options`,
one decorator used by `run`, `show` and `eval`); `Tagger` takes one; `--resume` compares the fields
marked `resume` (those that change the rows written). Every choice list fasttag has is defined here
once, as a `Literal` alias and the tuple of its values, used both by Click and by type hints.

The CLI checks an option as Click parses it, the API when an `EngineOptions` is made; both raise
`UsageError` with the same message, which names the CLI option (``--threads must be at least 1,
got 0``).
"""

from __future__ import annotations

import dataclasses
import functools
import numbers
import types
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, Union, cast, get_args, get_origin, get_type_hints

import click

from fasttag.errors import UsageError

# -- choice lists: each a Literal (for type hints) and its values (for Click and checks) ---------------
Aggregation = Literal["simple", "first", "average", "max", "none"]  # transformers' pipeline aggregation_strategy
Level = Literal["entities", "words", "tokens"]  # what each output row lists
WordBoundaries = Literal["whitespace", "tokenizer", "pipeline"]
Device = Literal["auto", "cpu", "cuda", "tensorrt"]
Precision = Literal["fp32", "fp16", "int8"]  # of an export
Mode = Literal["strict", "default"]  # seqeval's scoring mode
OnError = Literal["stop", "skip"]  # what a bad JSONL line does
Engine = Literal["local", "ray"]
Scheme = Literal["auto", "iob1", "iob2", "bioes", "bilou", "none"]  # tag scheme of labelled data; none: a tag task
ConvertScheme = Literal["iob2", "bioes", "bilou"]  # span scheme labelled data can be converted to for training

AGGREGATIONS: tuple[Aggregation, ...] = get_args(Aggregation)
WORD_BOUNDARIES: tuple[WordBoundaries, ...] = get_args(WordBoundaries)
LEVELS: tuple[Level, ...] = get_args(Level)
DEVICES: tuple[Device, ...] = get_args(Device)
PRECISIONS: tuple[Precision, ...] = get_args(Precision)
MODES: tuple[Mode, ...] = get_args(Mode)
ON_ERROR: tuple[OnError, ...] = get_args(OnError)
ENGINES: tuple[Engine, ...] = get_args(Engine)
SCHEMES: tuple[Scheme, ...] = get_args(Scheme)
CONVERT_SCHEMES: tuple[ConvertScheme, ...] = get_args(ConvertScheme)


def _option(default: Any, help: str, *, minimum: int | None = None, cli: bool = True, resume: bool = False,
            flag: str | None = None, metavar: str | None = None) -> Any:
    """A field of `EngineOptions`: its default and how the CLI, the checks and resume state treat it.

    `minimum`: an integer option (None always means "the default"); `cli=False`: the API's only;
    `resume`: it changes the rows written, so `--resume` refuses a run whose value differs.
    """
    return field(default=default, metadata={"help": help, "minimum": minimum, "cli": cli, "resume": resume,
                                            "flag": flag, "metavar": metavar})


@dataclass(frozen=True)
class EngineOptions:
    """How the engine tags: the model, windows, batches, device and aggregation (None: the default)."""

    model_dir: str | None = _option(
        None, "The model: an export folder ('fasttag export'), an ONNX folder (optimum-cli export onnx), a "
        "transformers checkpoint folder or a hub model id such as dslim/bert-base-NER; the last two are exported to "
        "ONNX once, into fasttag's cache (see 'fasttag cache'). Default: the embedded default model.", flag="--model",
        metavar="MODEL")
    revision: str | None = _option(
        None, "With a hub model id: the branch, tag or commit to use (default: the repository's main branch).",
        resume=True, metavar="REV")
    precision: Precision | None = _option(
        None, "Precision of the export made of a checkpoint or hub model (default: fp16 where CUDA runs, else fp32); "
        "an ONNX folder must already be in it.", resume=True)
    aggregation: Aggregation = _option(
        "first", "How tokens become words and entities, as transformers' pipeline aggregation_strategy: first (a "
        "word takes its first sub-token's label), average, max, simple (token by token, the pipeline's entities "
        "exactly; words can be cut into pieces), or none (every sub-token with its own label: --level tokens).",
        resume=True)
    level: Level | None = _option(
        None, "What each output row lists: entities (labelled spans; the default for a span task such as NER), "
        "words (every word with its tag, O included; the default for a tag task such as part-of-speech), or "
        "tokens (every sub-token not tagged O, with its full label, as --aggregation none).", resume=True)
    max_length: int | None = _option(
        None, "Tokens per model window, special tokens included (default: the model's, at most 512).",
        minimum=8, resume=True)
    stride: int | None = _option(
        None, "Tokens of overlap between windows of a long document (default: 128, or half a window if that is "
        "less).", minimum=0, resume=True)
    batch_tokens: int | None = _option(
        None, "Token budget per batch, padding included (default: 1024 on CPU, at most 16 rows; 65536 on GPU).",
        minimum=1, resume=True)
    device: Device = _option(
        "auto", "auto uses CUDA when onnxruntime can, else the CPU; tensorrt adds TensorRT (fp16) before CUDA.")
    threads: int | None = _option(
        None, "onnxruntime threads in all, shared by the streams (default: all cores).", minimum=1)
    streams: int | None = _option(
        None, "CPU: model sessions running batches at once, each on --threads/streams threads, at most --threads "
        "(default: 2 with 2 threads or more, else 1; GPU: 1).", minimum=1)
    word_boundaries: WordBoundaries = _option(
        "whitespace", "Words for first/average/max: whitespace-delimited (edge punctuation split off where the "
        "model tags it outside the entity), the tokenizer's word ids, or transformers' pipeline heuristic.",
        resume=True)
    max_batch_size: int | None = _option(
        None, "Rows per batch at most (default: 16 on CPU, 1024 on GPU).", minimum=1, cli=False, resume=True)

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if f.metadata["minimum"] is not None:
                object.__setattr__(self, f.name, check_int_option(f.name, value))
        # the choices Tagger checked before it loaded anything; device and word boundaries are checked where used
        if self.aggregation not in AGGREGATIONS:
            raise UsageError(f"--aggregation must be one of {', '.join(AGGREGATIONS)}")
        if self.precision is not None and self.precision not in PRECISIONS:
            raise UsageError(f"--precision must be one of {', '.join(PRECISIONS)}")
        if self.revision is not None and (not isinstance(self.revision, str) or not self.revision.strip()):
            raise UsageError(f"--revision must be a branch, tag or commit name, got {self.revision!r}")
        if self.level is not None and self.level not in LEVELS:
            raise UsageError(f"--level must be one of {', '.join(LEVELS)}")
        if self.aggregation == "none" and self.level not in (None, "tokens"):
            raise UsageError(f"--aggregation none lists sub-tokens (--level tokens); it cannot give --level "
                             f"{self.level}")
        if self.aggregation == "simple" and self.level == "words":
            raise UsageError("--level words takes --aggregation first, average or max (simple labels sub-tokens, "
                             "not words)")

    def replace(self, **changes: Any) -> EngineOptions:
        """A copy with `changes` (keyword arguments named as the fields; an unknown one is a TypeError)."""
        return dataclasses.replace(self, **changes)

    def resume_state(self) -> dict[str, Any]:
        """The options that change the rows written, as `--resume` records and compares them."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.metadata["resume"]}


def flag_of(name: str) -> str:
    """The CLI option of a field: `--max-length` for max_length, `--model` for model_dir."""
    meta: Mapping[str, Any] = {f.name: f.metadata for f in dataclasses.fields(EngineOptions)}.get(name, {})
    return meta.get("flag") or "--" + name.replace("_", "-")


def cli_fields() -> list[dataclasses.Field]:
    """The fields the CLI offers as options, in table order."""
    return [f for f in dataclasses.fields(EngineOptions) if f.metadata["cli"]]


CLI_NAMES: tuple[str, ...] = tuple(f.name for f in cli_fields())  # the Click parameter names of engine options


def check_int_option(name: str, value: Any) -> int | None:
    """`value` as an int if it is None or an integer within the option's range; else `UsageError`."""
    if value is None:
        return None
    flag, minimum = flag_of(name), INT_MINIMUMS[name]
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise UsageError(f"{flag} must be an integer, got {value!r}")
    if value < minimum:
        raise UsageError(f"{flag} must be at least {minimum}, got {value}")
    return int(value)


# keyword -> smallest value, from the table
INT_MINIMUMS: dict[str, int] = {f.name: f.metadata["minimum"] for f in dataclasses.fields(EngineOptions)
                                if f.metadata["minimum"] is not None}


def check_int_options(**values: Any) -> None:
    """Check each keyword's value against its option's range (see `check_int_option`)."""
    for name, value in values.items():
        check_int_option(name, value)


class EngineInt(click.ParamType):
    """A CLI integer option checked by `check_int_option`, so that its errors read as the API's."""

    name = "integer"

    def __init__(self, option: str):
        self.option = option

    def convert(self, value, param, ctx):
        if isinstance(value, str):
            value = click.INT.convert(cast(Any, value), param, ctx)
        # UsageError, not click's BadParameter: FasttagGroup prints the message as the API raises it.
        return check_int_option(self.option, value)


def _click_option(f: dataclasses.Field, hint: Any) -> Callable:
    if get_origin(hint) in (Union, types.UnionType):  # Level | None: the choices of the Literal
        hint = next(a for a in get_args(hint) if a is not type(None))
    choices = get_args(hint) if get_origin(hint) is Literal else ()
    if choices:
        return click.option(flag_of(f.name), f.name, type=click.Choice(choices), default=f.default,
                            show_default=True, help=f.metadata["help"])
    if f.metadata["minimum"] is not None:
        return click.option(flag_of(f.name), f.name, type=EngineInt(f.name), default=f.default,
                            help=f.metadata["help"])
    return click.option(flag_of(f.name), f.name, type=str, default=f.default, metavar=f.metadata.get("metavar"),
                        help=f.metadata["help"])


def engine_option(name: str) -> Callable:
    """One engine option, for a command that takes only some of them (`fasttag info`: --revision, --precision)."""
    f = next(f for f in dataclasses.fields(EngineOptions) if f.name == name)
    return _click_option(f, get_type_hints(EngineOptions)[name])


def engine_options(command: Callable) -> Callable:
    """The engine's options for a Click command (run, show, eval), generated from `EngineOptions`.

    The command receives them as one keyword argument, `engine_opts: EngineOptions`; each option
    stays a Click parameter of its own name (for `ctx.get_parameter_source`).
    """
    hints = get_type_hints(EngineOptions)

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        values = {name: kwargs.pop(name) for name in CLI_NAMES}
        return command(*args, engine_opts=EngineOptions(**values), **kwargs)

    for f in reversed(cli_fields()):
        wrapper = _click_option(f, hints[f.name])(wrapper)
    return wrapper
