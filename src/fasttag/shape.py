"""The output rows as `run` writes them: input columns kept beside the results, the filters (`--min-score`,
`--labels`) and the layout (`nested`: one row per input row, its results in a list; `flat`: one row per result).

One place for the local engine, the Ray engine and `Tagger.tag_table`; vectorized with Arrow and numpy
(no Python loop per result or per row).

Filters apply to the items of the run's level: entities (labels such as ``PER``), words (``B-PER``,
``I-PER``, ``O``, or a tag task's tags) or tokens (the model's full labels). At the words and tokens levels
a name also matches the labels of its entity type (``PER`` matches ``B-PER``, ``I-PER``, ``E-PER``, ...);
a full label (``B-PER``) matches only itself, and takes precedence over its type's floor in `--min-score`.
Pre-tokenized output (one tag per input token) cannot be filtered or flattened without losing the tags'
alignment with the tokens: those options are refused there.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from fasttag.entities import LEVEL_TYPES, RESULT_COLUMNS
from fasttag.errors import UsageError
from fasttag.options import KEEP_ALL, Level, OutputOptions
from fasttag.schemes import split_label


@dataclass
class ShapeStats:
    """What the filters dropped, and the rows left without results (absent from a flat output)."""

    below_score: int = 0
    other_label: int = 0
    empty_rows: int = 0

    def add(self, other: ShapeStats) -> None:
        self.below_score += other.below_score
        self.other_label += other.other_label
        self.empty_rows += other.empty_rows

    @property
    def dropped(self) -> int:
        return self.below_score + self.other_label

    def describe(self, options: OutputOptions, result_name: str) -> str:
        """The summary's words for these counts ('' when no option applied), e.g. '; 12 entities dropped (...)'."""
        from fasttag.show import plural

        text = ""
        if options.filters:
            why = [f"{self.below_score:,} below --min-score"] if options.min_score is not None else []
            why += [f"{self.other_label:,} not in --labels"] if options.labels is not None else []
            text += f"; {plural(self.dropped, result_name)} dropped ({', '.join(why)})"
        if options.layout == "flat":
            many = plural(2, result_name).split(" ", 1)[1]  # entities, words, tagged tokens
            had = "row had" if self.empty_rows == 1 else "rows had"
            text += f"; {self.empty_rows:,} {had} no {many} and {'is' if self.empty_rows == 1 else 'are'} absent " \
                    "(--layout flat)"
        return text


def _item_type(level: Level) -> pa.StructType:
    return LEVEL_TYPES[level].value_type


def check_id_column(id_column: str | None, option: str = "id_column") -> None:
    """The output has the id (or "row") and the result columns: the id column cannot take a result column's name,
    nor "row" (`fasttag run --id-column` and the API's `id_column` alike; `option` names it in the message)."""
    if id_column in RESULT_COLUMNS:
        raise UsageError(f"{option} cannot be {id_column!r}: an output result column has that name "
                         "(rename the input column)")
    if id_column == "row":
        raise UsageError(f"{option} cannot be 'row': without an id column the output's row numbers have that "
                         "name, and 'fasttag show' and 'convert' read a 'row' column as row numbers (rename the input "
                         "column)")


class Shaper:
    """Shapes one tagger's results by `OutputOptions`.

    `level_labels` are the labels the level's items can carry (`Tagger.result_labels`); names given to
    `--labels` and `--min-score` must be among them (or their entity types), so that a typo is an error
    rather than an empty output.
    """

    def __init__(self, options: OutputOptions, level: Level, level_labels: Sequence[str],
                 pretokenized: bool = False, result_fields: Sequence[pa.Field] | None = None):
        self.options = options
        self.level = level
        self.pretokenized = pretokenized
        self.result_fields = list(result_fields) if result_fields is not None else [pa.field(level, LEVEL_TYPES[level])]
        if pretokenized and (options.filters or options.layout == "flat"):
            given = [flag for flag, on in (("--min-score", options.min_score is not None),
                                           ("--labels", options.labels is not None),
                                           ("--layout flat", options.layout == "flat")) if on]
            raise UsageError(f"{', '.join(given)} cannot apply to --tokens-column output (one tag and score per "
                             "input token: dropping some would misalign them with the tokens); tag the text "
                             "(--text-column) to filter or flatten its results")
        self.labels = list(level_labels)
        types = [split_label(label)[1] for label in self.labels]  # PER for B-PER; a plain label is its own type
        known = set(self.labels) | set(types)
        given = list(options.labels or ()) + [name for name, _ in (options.min_score.per_label
                                                                   if options.min_score else ())]
        unknown = [name for name in given if name not in known]
        if unknown:
            flag = "--labels" if unknown[0] in (options.labels or ()) else "--min-score"
            raise UsageError(f"{flag}: the model has no label {unknown[0]!r} at the {level} level (its labels: "
                             f"{', '.join(sorted(known))})")
        # per level label: its score floor (NaN: none) and whether --labels keeps it
        floors = np.full(len(self.labels), np.nan)
        allowed = np.ones(len(self.labels), dtype=bool)
        if options.min_score is not None:
            per = dict(options.min_score.per_label)
            for i, (label, kind) in enumerate(zip(self.labels, types, strict=True)):
                floor = per.get(label, per.get(kind, options.min_score.default))
                floors[i] = np.nan if floor is None else floor
        if options.labels is not None:
            wanted = set(options.labels)
            allowed = np.asarray([label in wanted or kind in wanted for label, kind in zip(self.labels, types,
                                                                                           strict=True)], dtype=bool)
        self._floors, self._allowed = floors, allowed
        self._label_set = pa.array(self.labels, type=pa.string())

    # -- names --------------------------------------------------------------------------------
    def own_names(self, id_name: str) -> list[str]:
        """The names the output uses itself: the id and, nested, the result columns; flat, the items' fields."""
        if self.options.layout == "flat":
            return [id_name, *(f.name for f in _item_type(self.level))]
        return [id_name, *(f.name for f in self.result_fields)]

    def kept_names(self, input_names: Sequence[str], value_column: str, id_column: str | None) -> list[str]:
        """The input columns to keep, of those the input has (`input_names`): `--keep-columns all` is every one
        but the text (or tokens) and id columns; named ones are returned as given (the reader says which are
        missing). A name the output uses itself is a `UsageError`."""
        keep = self.options.keep_columns
        if keep == KEEP_ALL:
            names = [n for n in input_names if n not in (value_column, id_column)]
        else:
            names = list(keep)
        self.check_kept(names, id_column or "row")
        return names

    def check_kept(self, names: Sequence[str], id_name: str) -> None:
        own = self.own_names(id_name)
        for name in names:
            if name in own or (self.options.layout == "nested" and name in RESULT_COLUMNS):
                what = "the id column" if name == id_name else f"a column of the {self.options.layout} output"
                raise UsageError(f"--keep-columns: input column {name!r} has the name of {what}; rename it in the "
                                 "input, or leave it out of --keep-columns")

    # -- schema and rows ----------------------------------------------------------------------
    def schema(self, id_field: pa.Field, kept_fields: Sequence[pa.Field] = ()) -> pa.Schema:
        """The output's schema: the id, the kept columns, then the results (nested) or the items' fields (flat)."""
        if self.options.layout == "flat":
            return pa.schema([id_field, *kept_fields, *_item_type(self.level)])
        return pa.schema([id_field, *kept_fields, *self.result_fields])

    def shape(self, id_name: str, ids: pa.Array | pa.ChunkedArray, kept: pa.Table | None,
              results: dict[str, pa.Array]) -> tuple[pa.Table, ShapeStats]:
        """One chunk's output rows and what the filters dropped: `ids`, `kept` (a table of the kept columns, row
        for row) and `results` (`Tagger.result_arrays`)."""
        stats = ShapeStats()
        results = dict(results)
        if self.pretokenized:
            return self._table(id_name, ids, kept, results), stats
        column = results[self.level]
        column = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
        if self.options.filters:
            column = self._filtered(column, stats)
            results[self.level] = column
        lengths = pc.list_value_length(column).to_numpy(zero_copy_only=False)
        stats.empty_rows = int((lengths == 0).sum())
        if self.options.layout == "nested":
            return self._table(id_name, ids, kept, results), stats
        parents = pa.array(np.repeat(np.arange(len(column), dtype=np.int64), lengths))
        items = column.flatten()
        columns: dict[str, pa.Array | pa.ChunkedArray] = {id_name: ids.take(parents)}
        if kept is not None:
            taken = kept.take(parents)
            columns.update(zip(taken.column_names, taken.columns, strict=True))
        for f in _item_type(self.level):
            columns[f.name] = items.field(f.name)
        return pa.table(columns), stats

    def _table(self, id_name: str, ids, kept: pa.Table | None, results: dict[str, pa.Array]) -> pa.Table:
        columns: dict[str, pa.Array | pa.ChunkedArray] = {id_name: ids}
        if kept is not None:
            columns.update(zip(kept.column_names, kept.columns, strict=True))
        columns.update(results)
        return pa.table(columns)

    def _filtered(self, column: pa.ListArray, stats: ShapeStats) -> pa.ListArray:
        """The lists with the items below their label's floor or not among `--labels` removed."""
        items = column.flatten()
        n = len(column)
        lengths = pc.list_value_length(column).to_numpy(zero_copy_only=False)
        index = pc.index_in(items.field("label"), value_set=self._label_set)
        known = index.is_valid().to_numpy(zero_copy_only=False)
        index_np = index.fill_null(0).to_numpy(zero_copy_only=False).astype(np.int64)
        allowed = known & self._allowed[index_np]
        floors = np.where(known, self._floors[index_np], np.nan)
        scores = items.field("score").fill_null(0).to_numpy(zero_copy_only=False)
        below = ~np.isnan(floors) & (scores < np.nan_to_num(floors))
        stats.other_label += int((~allowed).sum())
        stats.below_score += int((allowed & below).sum())
        keep = allowed & ~below
        parents = np.repeat(np.arange(n, dtype=np.int64), lengths)
        offsets = np.zeros(n + 1, dtype=np.int32)
        np.cumsum(np.bincount(parents[keep], minlength=n), out=offsets[1:])
        return pa.ListArray.from_arrays(pa.array(offsets), items.filter(pa.array(keep)), type=column.type)
