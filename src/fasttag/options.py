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
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Union, cast, get_args, get_origin, get_type_hints

import click

from fasttag.errors import UsageError

# -- choice lists: each a Literal (for type hints) and its values (for Click and checks) ---------------
Aggregation = Literal["simple", "first", "average", "max", "none"]  # transformers' pipeline aggregation_strategy
Level = Literal["entities", "words", "tokens"]  # what each output row lists
WordBoundaries = Literal["whitespace", "tokenizer", "pipeline"]
WindowCuts = Literal["even", "full", "sentences"]  # how a text longer than a window is cut
Device = Literal["auto", "cpu", "cuda", "tensorrt"]
Precision = Literal["fp32", "fp16", "int8"]  # of an export
Mode = Literal["strict", "default"]  # seqeval's scoring mode
Join = Literal["spaces", "natural"]  # eval --end-to-end --join: how labelled words become text
OnError = Literal["stop", "skip"]  # what a bad JSONL line does
Engine = Literal["local", "ray"]
Scheme = Literal["auto", "iob1", "iob2", "bioes", "bilou", "none"]  # tag scheme of labelled data; none: a tag task
ConvertScheme = Literal["iob2", "bioes", "bilou"]  # span scheme labelled data can be converted to for training

# `run --max-text-bytes`: a longer text is a bad row (its tokens and scores would take memory in proportion to it)
DEFAULT_MAX_TEXT_BYTES = 8 << 20  # 8 MiB: about 1.6 GB of memory to tag (bench/huge_rows.py)

AGGREGATIONS: tuple[Aggregation, ...] = get_args(Aggregation)
WORD_BOUNDARIES: tuple[WordBoundaries, ...] = get_args(WordBoundaries)
WINDOW_CUTS: tuple[WindowCuts, ...] = get_args(WindowCuts)
LEVELS: tuple[Level, ...] = get_args(Level)
DEVICES: tuple[Device, ...] = get_args(Device)
PRECISIONS: tuple[Precision, ...] = get_args(Precision)
MODES: tuple[Mode, ...] = get_args(Mode)
JOINS: tuple[Join, ...] = get_args(Join)
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
        None, "Tokens of overlap between the windows of a long document (with --windows sentences, only "
        "where a sentence is too long to pack) (default: the run window the model's export recorded, else 128, "
        "or half a window if that is less).", minimum=0, resume=True)
    windows: WindowCuts = _option(
        "even", "How a text longer than a window is cut: even (as few windows as overlap by --stride, all of one "
        "width, as short as that allows), full (windows of --max-length overlapping by --stride, the last one "
        "ending at the text's end: more tokens to infer) or sentences (whole sentences packed into each window, "
        "cut where one begins: after . ! or ? and a space, before a capital, digit or opening quote; windows meet "
        "without overlap, and a sentence too long to pack is cut as full). See 'Long documents' in the README.",
        resume=True)
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
    dedup_window: int | None = _option(
        None, "Identical texts among about the last N rows are tokenized and inferred once and their results "
        "copied (the same output; the summary counts them). Memory: one 16-byte digest and one row of results per "
        "distinct text kept (default: 8192; 0: off).",
        minimum=0, cli=False)  # in the resume state as resolved (`fasttag.run`)
    tuned: bool = _option(
        False, "Use the settings `fasttag bench --tune` saved for this machine and model architecture when no batch "
        "option (batch_tokens, max_batch_size, streams, threads) is given; `fasttag run` does unless --ignore-tuned.",
        cli=False)

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
        if self.windows not in WINDOW_CUTS:
            raise UsageError(f"--windows must be one of {', '.join(WINDOW_CUTS)}")
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
# Engine options only `fasttag run` offers (each generated from the table with `engine_option`): not `show`/`eval`.
RUN_ONLY_OPTIONS: tuple[str, ...] = ("dedup_window",)


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


# -- what `run` writes of the results: kept input columns, filters, layout -------------------------------
Layout = Literal["nested", "flat"]  # one output row per input row (results in a list), or one per result
LAYOUTS: tuple[Layout, ...] = get_args(Layout)
KEEP_ALL = "all"


@dataclass(frozen=True)
class MinScore:
    """`--min-score`: the lowest score kept, for all labels (`default`) and per label (`per_label`).

    A label without its own floor takes `default`; with no default, it is not filtered by score.
    """

    default: float | None = None
    per_label: tuple[tuple[str, float], ...] = ()

    def floor(self, label: str) -> float | None:
        return dict(self.per_label).get(label, self.default)

    def as_state(self) -> dict[str, Any]:
        return {"default": self.default, "per_label": dict(self.per_label)}


def _score_value(text: Any, where: str) -> float:
    try:
        value = float(text)
    except (TypeError, ValueError):
        raise UsageError(f"--min-score: {where} is not a number: {text!r} (e.g. 0.6, or PER=0.9,ORG=0.7)") from None
    if isinstance(text, bool) or not 0.0 <= value <= 1.0:
        raise UsageError(f"--min-score: {where} must be a score between 0 and 1, got {text!r}")
    return value


def parse_min_score(value: Any) -> MinScore | None:
    """`--min-score` as the CLI or the API gives it: ``0.6``, ``"PER=0.9,ORG=0.7"``, ``"0.5,PER=0.9"``, a number,
    a mapping of label to score (the key ``"*"`` or None: the default), or a `MinScore`."""
    if value is None or isinstance(value, MinScore):
        return value
    default: float | None = None
    per_label: dict[str, float] = {}
    if isinstance(value, Mapping):
        items: list[tuple[Any, Any]] = list(value.items())
    elif isinstance(value, numbers.Real) and not isinstance(value, bool):
        items = [(None, value)]
    elif isinstance(value, str):
        items = []
        for part in value.split(","):
            part = part.strip()
            if not part:
                raise UsageError(f"--min-score: an empty item in {value!r} (e.g. 0.6, or PER=0.9,ORG=0.7)")
            label, eq, score = part.rpartition("=")
            items.append((label.strip() if eq else None, score.strip()))
            if eq and not label.strip():
                raise UsageError(f"--min-score: {part!r} names no label (e.g. PER=0.9)")
    else:
        raise UsageError(f"--min-score takes a score, a mapping of label to score or a string such as "
                         f"'PER=0.9,ORG=0.7', got {type(value).__name__}")
    for label, score in items:
        if label is None or label == "*":
            if default is not None:
                raise UsageError("--min-score: more than one default score (a score without a label)")
            default = _score_value(score, "the default")
        else:
            if not isinstance(label, str):
                raise UsageError(f"--min-score: labels must be strings, got {label!r}")
            if label in per_label:
                raise UsageError(f"--min-score: label {label!r} is given twice")
            per_label[label] = _score_value(score, f"the score of {label}")
    return MinScore(default, tuple(sorted(per_label.items())))


def _names(value: Any, flag: str) -> tuple[str, ...]:
    names = [n.strip() for n in value.split(",")] if isinstance(value, str) else list(value)
    if not names or any(not isinstance(n, str) or not n for n in names):
        raise UsageError(f"{flag} takes names separated by commas (e.g. a,b), got {value!r}")
    if len(set(names)) < len(names):
        raise UsageError(f"{flag} names {next(n for n in names if names.count(n) > 1)!r} twice")
    return tuple(names)


def parse_labels(value: Any) -> tuple[str, ...] | None:
    """`--labels` as the CLI (``"PER,ORG"``) or the API (a list of labels) gives it."""
    if value is None:
        return None
    if not isinstance(value, (str, Sequence)):
        raise UsageError(f"--labels takes labels separated by commas (e.g. PER,ORG), got {type(value).__name__}")
    return _names(value, "--labels")


def parse_keep_columns(value: Any) -> tuple[str, ...] | Literal["all"]:
    """`--keep-columns`: ``"a,b"`` (or a list of names), or ``"all"``; None and ``()`` keep none."""
    if value is None or (not isinstance(value, str) and isinstance(value, Sequence) and not value):
        return ()
    if value == KEEP_ALL:
        return "all"
    if not isinstance(value, (str, Sequence)):
        raise UsageError(f"--keep-columns takes column names separated by commas, or all; got {type(value).__name__}")
    return _names(value, "--keep-columns")


@dataclass(frozen=True)
class OutputOptions:
    """What `run` (and `Tagger.tag_table`) writes of the results: input columns kept, filters, layout.

    Each field is an option of `fasttag run` (see `output_options`); all of them change the rows written,
    so `--resume` compares them (`resume_state`). Values are normalized as the CLI's strings are parsed.
    """

    keep_columns: Any = _option(
        (), "Input columns (or JSON fields) copied to the output beside the id, with their types, nested ones "
        "included: names separated by commas, or all (every column but the text and id columns; for JSONL, the "
        "first line's fields). A name the output uses itself is refused.", metavar="A,B|all", resume=True)
    min_score: Any = _option(
        None, "Drop results scored below this: 0.6 for every label, PER=0.9,ORG=0.7 per label (the others are "
        "not filtered), or both (0.5,PER=0.9). The summary counts what was dropped.", metavar="SCORE|L=SCORE,...",
        resume=True)
    labels: Any = _option(
        None, "Keep only results of these labels (PER,ORG). At --level words and tokens, a label also matches "
        "its B-/I- (and other prefixed) forms.", metavar="L,...", resume=True)
    layout: Layout = _option(
        "nested", "nested: one output row per input row, its results in a list; flat: one row per result (id, "
        "kept columns, start, end, label, score, text), for SQL engines and dataframes; rows without results are "
        "then absent (the summary counts them).", resume=True)

    def __post_init__(self) -> None:
        object.__setattr__(self, "keep_columns", parse_keep_columns(self.keep_columns))
        object.__setattr__(self, "min_score", parse_min_score(self.min_score))
        object.__setattr__(self, "labels", parse_labels(self.labels))
        if self.layout not in LAYOUTS:
            raise UsageError(f"--layout must be one of {', '.join(LAYOUTS)}")

    @property
    def filters(self) -> bool:
        return self.min_score is not None or self.labels is not None

    def resume_state(self) -> dict[str, Any]:
        """The options as `--resume` records and compares them (JSON values; all of them change the rows)."""
        keep = self.keep_columns
        return {"keep_columns": keep if keep == KEEP_ALL else list(keep),
                "min_score": self.min_score.as_state() if self.min_score else None,
                "labels": list(self.labels) if self.labels is not None else None, "layout": self.layout}


OUTPUT_DEFAULTS: dict[str, Any] = OutputOptions().resume_state()  # what a run made before these options wrote


def output_options(command: Callable) -> Callable:
    """`fasttag run`'s output options (`OutputOptions`), given to the command as `output_opts`."""
    names = [f.name for f in dataclasses.fields(OutputOptions)]

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        values = {name: kwargs.pop(name) for name in names}
        return command(*args, output_opts=OutputOptions(**values), **kwargs)

    for f in reversed(dataclasses.fields(OutputOptions)):
        flag = "--" + f.name.replace("_", "-")
        if f.name == "layout":
            option = click.option(flag, f.name, type=click.Choice(LAYOUTS), default=f.default, show_default=True,
                                  help=f.metadata["help"])
        else:
            option = click.option(flag, f.name, type=str, default=None, metavar=f.metadata["metavar"],
                                  help=f.metadata["help"])
        wrapper = option(wrapper)
    return wrapper
