"""Duplicates tagged once (fasttag.dedup): the same output as a run without the window, and bounded memory."""

import json
import random

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from corpus import varied_sentences
from fasttag import Tagger
from fasttag.cli import cli
from fasttag.dedup import DEFAULT_WINDOW_ROWS, DuplicateWindow, value_key, window_rows
from fasttag.errors import Interrupted, UsageError
from fasttag.options import EngineOptions
from fasttag.run import run
from interrupt import stop_after as _stop_after


def invoke(*args):
    return CliRunner().invoke(cli, [str(a) for a in args])


def repeating(n: int, share: float = 0.3, seed: int = 5) -> list:
    """`n` rows of which about `share` repeat an earlier row (some far back, some nulls)."""
    rng = random.Random(seed)
    base = varied_sentences(n, seed=seed)
    rows: list = []
    for i in range(n):
        rows.append(rows[rng.randrange(len(rows))] if rows and rng.random() < share else base[i])
    rows[3] = rows[9] = None
    return rows


def fake_results(values) -> dict[str, pa.Array]:
    """One list per value: the value's characters (a stand-in for a tagger's result column)."""
    return {"entities": pa.array([list(v or "") for v in values], type=pa.list_(pa.string()))}


def tag_with(window: DuplicateWindow, chunks):
    out, tagged_now = [], 0
    for values in chunks:
        plan = window.plan(values)
        tagged_now += len(plan.new_values)
        arrays, _ = window.merge(plan, fake_results(plan.new_values), np.zeros(len(plan.new), dtype=bool))
        out.extend(arrays["entities"].to_pylist())
    return out, tagged_now


def test_window_copies_repeats_within_and_across_chunks():
    chunks = [["a", "b", "a", None, "c"], ["b", "d", "", "a"], ["e", "d", "d"]]
    out, tagged_now = tag_with(DuplicateWindow(100), chunks)
    assert out == [list(v or "") for chunk in chunks for v in chunk]
    assert tagged_now == 6  # a b None c | d "" ("" and None are both the empty text, but None came first) | e
    # "" and None read as the same empty text: tagged once between them
    assert value_key(None) == value_key("") == value_key(3)
    assert value_key(["a b"], pretokenized=True) != value_key(["a", "b"], pretokenized=True)


def test_window_forgets_old_chunks_and_stays_bounded():
    window = DuplicateWindow(max_rows=10)
    chunks = [[f"t{i}-{j}" for j in range(5)] for i in range(50)]
    out, tagged_now = tag_with(window, chunks)
    assert tagged_now == 250 and len(window) <= 10 + 5
    # a value from 3 chunks back (15 distinct rows) is forgotten; one from the previous chunk is copied
    out, tagged_now = tag_with(window, [["t49-0", "t46-0"]])
    assert out == [list("t49-0"), list("t46-0")] and tagged_now == 1


def test_window_smaller_than_a_chunk_keeps_the_last_chunk_only():
    # a chunk is forgotten once the next one has looked into it: x is copied from the previous chunk, not older
    out, tagged_now = tag_with(DuplicateWindow(max_rows=1), [["x", "x", "y"], ["x"], ["y"]])
    assert out == [["x"], ["x"], ["y"], ["x"], ["y"]] and tagged_now == 3


def test_plans_may_run_ahead_of_merges():
    """fasttag run plans chunk k+1 before chunk k is merged: a copy from chunk k resolves once k is merged."""
    window = DuplicateWindow(100)
    first = window.plan(["a", "b"])
    second = window.plan(["b", "c"])
    a, _ = window.merge(first, fake_results(first.new_values), np.zeros(2, dtype=bool))
    b, _ = window.merge(second, fake_results(second.new_values), np.zeros(1, dtype=bool))
    assert a["entities"].to_pylist() + b["entities"].to_pylist() == [["a"], ["b"], ["b"], ["c"]]
    assert second.new_values == ["c"]


def test_default_window_is_on_for_every_precision():
    assert window_rows(None, "fp32") == DEFAULT_WINDOW_ROWS and window_rows(None, "fp16") == DEFAULT_WINDOW_ROWS
    assert window_rows(None, "int8") == DEFAULT_WINDOW_ROWS
    assert window_rows(64, "int8") == 64 and window_rows(0, "fp32") == 0


def write_jsonl(path, rows, ids=True):
    with open(path, "w", encoding="utf-8") as fh:
        for i, t in enumerate(rows):
            fh.write(json.dumps({"doc": f"d{i % 97}-{i}", "text": t} if ids else {"text": t}) + "\n")


@pytest.mark.parametrize("window", [16, None])
def test_run_output_is_the_same_with_and_without_the_window(bert_export, tmp_path, window):
    rows = repeating(300)
    rows[20] = rows[40] = "Ada Lovelace \ud800 met Zoë Müller in Paris."  # a lone surrogate, repaired, twice
    src = tmp_path / "in.jsonl"
    write_jsonl(src, rows)
    off = run(Tagger.load(bert_export, dedup_window=0), str(src), str(tmp_path / "off.parquet"), chunk_rows=32,
              id_column="doc")
    on = run(Tagger.load(bert_export, dedup_window=window), str(src), str(tmp_path / "on.parquet"), chunk_rows=32,
             id_column="doc")
    assert pq.read_table(tmp_path / "on.parquet").equals(pq.read_table(tmp_path / "off.parquet"))
    assert off.duplicates == 0 and on.duplicates > 40
    assert on.windows < off.windows and on.tokens < off.tokens  # fewer rows went through the model
    assert (on.entities, on.repaired_texts, on.null_texts, on.rows) == (off.entities, 2, 2, 300)
    assert f"{on.duplicates:,} duplicate rows tagged once" in on.line()


def test_pretokenized_rows_are_deduplicated_too(bert_export, tmp_path):
    rows = [t.split() if t else None for t in repeating(120)]
    src = tmp_path / "in.jsonl"
    with open(src, "w", encoding="utf-8") as fh:
        for tokens in rows:
            fh.write(json.dumps({"tokens": tokens}) + "\n")
    tables, dups = {}, {}
    for window in (0, 1000):
        out = tmp_path / f"out{window}.parquet"
        summary = run(Tagger.load(bert_export, dedup_window=window), str(src), str(out), chunk_rows=25,
                      tokens_column="tokens")
        tables[window], dups[window] = pq.read_table(out), summary
    assert tables[1000].equals(tables[0])
    assert dups[1000].duplicates > 20 and dups[1000].entities == dups[0].entities




def test_resume_with_the_window_gives_the_uninterrupted_output(bert_export, tmp_path):
    src = tmp_path / "in.jsonl"
    write_jsonl(src, repeating(200, share=0.4))
    tagger = Tagger.load(bert_export)  # float model: the window is on by default
    reference = tmp_path / "ref.parquet"
    assert run(tagger, str(src), str(reference), chunk_rows=20, id_column="doc").duplicates > 0
    out = tmp_path / "o.parquet"
    with pytest.raises(Interrupted):
        run(tagger, str(src), str(out), chunk_rows=20, id_column="doc", progress=_stop_after(3))
    summary = run(tagger, str(src), str(out), chunk_rows=20, id_column="doc", resume=True)
    assert summary.resumed_rows == 60
    assert pq.read_table(out).equals(pq.read_table(reference))
    off = tmp_path / "off.parquet"
    run(Tagger.load(bert_export, dedup_window=0), str(src), str(off), chunk_rows=20, id_column="doc")
    assert pq.read_table(out).equals(pq.read_table(off))


def test_cli_dedup_window_option(bert_export, tmp_path):
    src = tmp_path / "in.jsonl"
    write_jsonl(src, ["Ada Lovelace lives in London."] * 5, ids=False)
    res = invoke("run", src, "-o", tmp_path / "a.parquet", "--model", bert_export)
    assert res.exit_code == 0, res.output
    assert "4 duplicate rows tagged once" in res.output
    res = invoke("run", src, "-o", tmp_path / "b.parquet", "--model", bert_export, "--dedup-window", "0")
    assert res.exit_code == 0 and "duplicate" not in res.output
    assert pq.read_table(tmp_path / "a.parquet").equals(pq.read_table(tmp_path / "b.parquet"))
    res = invoke("run", src, "-o", tmp_path / "c.parquet", "--model", bert_export, "--dedup-window", "-1")
    assert res.exit_code == 2 and "--dedup-window must be at least 0" in res.output
    with pytest.raises(UsageError, match="--dedup-window must be at least 0"):
        EngineOptions(dedup_window=-3)


def test_rows_without_text_are_not_counted_as_duplicates(bert_export, tmp_path):
    """Nulls and numbers share the empty text's key: each after the first was counted a "duplicate row tagged once",
    though no row without text is tagged at all (the summary counts them apart)."""
    window = DuplicateWindow(100)
    assert [window.plan(chunk).duplicates for chunk in (["a", None, 5, "a", None], [None, "a", [1], "b"])] == [1, 1]
    window = DuplicateWindow(100, pretokenized=True)
    assert [window.plan(chunk).duplicates for chunk in ([["a"], None, None, ["a"]], [None, ["a"]])] == [1, 1]
    src = tmp_path / "in.jsonl"
    src.write_text("".join(json.dumps({"text": t}) + "\n" for t in ["Ada Lovelace lives in London.", None, 5, None,
                                                                    "Ada Lovelace lives in London.", [1]]))
    res = invoke("run", src, "-o", tmp_path / "o.parquet", "--model", bert_export)
    assert res.exit_code == 0, res.output
    assert "; 1 duplicate row tagged once;" in res.output and "4 rows with null or non-string text" in res.output


@pytest.mark.parametrize("level", ["words", "tokens"])
def test_every_level_gives_the_same_rows_with_the_window(bert_export, tmp_path, level):
    src = tmp_path / "in.jsonl"
    write_jsonl(src, repeating(150, share=0.5), ids=False)
    tables = {}
    for window in (0, 100):
        out = tmp_path / f"{level}-{window}.parquet"
        summary = run(Tagger.load(bert_export, level=level, dedup_window=window), str(src), str(out), chunk_rows=40)
        tables[window] = (pq.read_table(out), summary.entities)
    assert tables[100][0].equals(tables[0][0]) and tables[100][1] == tables[0][1]


def test_output_options_shape_the_copied_rows_as_the_tagged_ones(bert_export, tmp_path):
    src = tmp_path / "in.jsonl"
    write_jsonl(src, repeating(120, share=0.5))
    outputs = []
    for window in ("0", "500"):
        out = tmp_path / f"flat-{window}.parquet"
        res = invoke("run", src, "-o", out, "--model", bert_export, "--dedup-window", window, "--keep-columns", "doc",
                     "--min-score", "0.3", "--layout", "flat")
        assert res.exit_code == 0, res.output
        assert ("duplicate rows tagged once" in res.output) == (window != "0")
        outputs.append(pq.read_table(out))
    assert outputs[0].num_rows > 0 and outputs[1].equals(outputs[0])


def test_int8_copies_get_their_first_copys_results(tmp_path):
    """The default (int8) model has the window on: every copy of a text gets its first copy's results exactly."""
    rows = repeating(120)
    src = tmp_path / "in.jsonl"
    write_jsonl(src, rows)
    tagger = Tagger.load()
    assert tagger.bundle.precision == "int8"
    summary = run(tagger, str(src), str(tmp_path / "out.parquet"), chunk_rows=16, id_column="doc")
    table = pq.read_table(tmp_path / "out.parquet").to_pylist()
    assert summary.duplicates > 20 and len(table) == len(rows)
    first: dict = {}
    for text, row in zip(rows, table, strict=True):
        first.setdefault(text, row["entities"])
        assert row["entities"] == first[text]


def test_int8_resume_gives_the_uninterrupted_output(tmp_path, monkeypatch):
    """An int8 model's scores depend on the rows batched together: a resumed run must start with the window the
    interrupted one had (each chunk's share is saved beside its part), or the rows it copies are tagged again and
    every later batch differs."""
    from fasttag import write

    src = tmp_path / "in.jsonl"
    write_jsonl(src, repeating(400, share=0.4, seed=11))
    tagger = Tagger.load()  # the default model: int8
    assert tagger.bundle.precision == "int8"
    reference = tmp_path / "ref.parquet"
    run(tagger, str(src), str(reference), chunk_rows=20, id_column="doc")
    windows_seen = []
    real = write.PartsWriter.drop_windows

    def counting(self, indexes):
        real(self, indexes)
        windows_seen.append(len(list(self.dir.glob("window-*.arrow"))))

    monkeypatch.setattr(write.PartsWriter, "drop_windows", counting)
    small = Tagger.load(dedup_window=60)  # a window of about 3 chunks: shares are let go of, and their files
    small_ref = tmp_path / "small-ref.parquet"
    run(small, str(src), str(small_ref), chunk_rows=20, id_column="doc")
    assert windows_seen and max(windows_seen) <= 5  # bounded on disk as in memory, not one file per chunk
    for t, ref, stop in ((tagger, reference, 7), (small, small_ref, 9)):
        out = tmp_path / f"o-{stop}.parquet"
        with pytest.raises(Interrupted):
            run(t, str(src), str(out), chunk_rows=20, id_column="doc", progress=_stop_after(stop))
        summary = run(t, str(src), str(out), chunk_rows=20, id_column="doc", resume=True)
        assert summary.resumed_rows == stop * 20
        assert pq.read_table(out).equals(pq.read_table(ref)), "the resumed rows differ from an uninterrupted run's"
        assert not write.work_dir(str(out)).exists()
    # a resume with another window would give neither run's output: refused
    out = tmp_path / "other.parquet"
    with pytest.raises(Interrupted):
        run(tagger, str(src), str(out), chunk_rows=20, id_column="doc", progress=_stop_after(3))
    with pytest.raises(UsageError, match="dedup_window"):
        run(Tagger.load(dedup_window=0), str(src), str(out), chunk_rows=20, id_column="doc", resume=True)


def test_a_stop_after_the_output_is_complete_is_no_failure(bert_export, tmp_path, monkeypatch):
    """Ctrl-C or SIGTERM while the work folder is being removed, after the output was committed: the run succeeded
    (it must not say that nothing was written, nor leave a folder that blocks the next run)."""
    from fasttag import write

    src = tmp_path / "in.jsonl"
    write_jsonl(src, repeating(60))
    real, calls = write.PartsWriter.remove_parts, []

    def interrupted_once(self):
        calls.append(1)
        if len(calls) == 1:
            raise KeyboardInterrupt
        real(self)

    monkeypatch.setattr(write.PartsWriter, "remove_parts", interrupted_once)
    out = tmp_path / "o.parquet"
    summary = run(Tagger.load(bert_export), str(src), str(out), chunk_rows=20, id_column="doc")
    assert summary.rows == 60 and pq.read_table(out).num_rows == 60 and len(calls) == 2
    assert not write.work_dir(str(out)).exists()
    monkeypatch.setattr(write.PartsWriter, "remove_parts", real)
    # a removal cut short by a kill leaves a renamed folder, which the next run on that output removes
    leftover = write.work_dir(str(out)).with_name(write.work_dir(str(out)).name + ".done-1")
    (leftover / "sub").mkdir(parents=True)
    run(Tagger.load(bert_export), str(src), str(out), chunk_rows=20, id_column="doc", overwrite=True)
    assert not leftover.exists()
