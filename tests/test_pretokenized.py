"""Pre-tokenized input (`--tokens-column`, `Tagger.tag_pretokenized`): one tag per input token, both task kinds."""

import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from corpus import varied_sentences
from fasttag import Tagger, UsageError
from fasttag.cli import cli
from fasttag.entities import SCORES_TYPE, TAGS_TYPE, TOKEN_SPANS_TYPE, TokenTags
from fasttag.run import Interrupted, run
from fasttag.schemes import spans
from relabelled import BIOES, POS, relabelled

SENTENCES = [s.split() for s in varied_sentences(40, seed=21)] + [["Ada"], ["New", "York", "City", "."]]


def invoke(*args, input=None):
    return CliRunner().invoke(cli, [str(a) for a in args], input=input)


@pytest.fixture(scope="module")
def models(bert_export, tmp_path_factory):
    root = tmp_path_factory.mktemp("relabelled")
    return {"iob2": bert_export, "bioes": relabelled(bert_export, root / "bioes", BIOES),
            "pos": relabelled(bert_export, root / "pos", POS)}


def write_jsonl(path, rows):
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return path


@pytest.mark.parametrize("scheme", ["iob2", "bioes"])
def test_one_iob2_tag_per_token_and_entities_in_token_indices(models, scheme):
    out = Tagger.load(models[scheme]).tag_pretokenized(SENTENCES)
    assert len(out) == len(SENTENCES) and all(isinstance(r, TokenTags) for r in out)
    n_entities = 0
    for row, tokens in zip(out, SENTENCES, strict=True):
        assert len(row.tags) == len(row.scores) == len(tokens)
        assert all(t == "O" or t[:2] in ("B-", "I-") for t in row.tags)  # IOB2, whatever the model's scheme
        assert [(e.token_start, e.token_end, e.label) for e in row.entities] == spans(row.tags)
        n_entities += len(row.entities)
    assert n_entities > len(SENTENCES) // 2


def test_tag_task_gets_tags_and_no_entities(models):
    tagger = Tagger.load(models["pos"])
    out = tagger.tag_pretokenized(SENTENCES)
    assert all(row.entities is None and set(row.tags) <= set(POS) for row in out)
    assert [len(r.tags) for r in out] == [len(s) for s in SENTENCES]
    assert out[-1].to_dict().keys() == {"tags", "scores"}


def test_words_without_punctuation_get_the_words_levels_tags(bert_export):
    """The same sub-tokens either way: a token's tag is its whitespace word's at the words level."""
    sentences = [["Ada", "Lovelace", "met", "Charles", "Babbage", "in", "London"], ["Paris", "is", "big"]]
    pre = Tagger.load(bert_export).tag_pretokenized(sentences)
    words = Tagger.load(bert_export, level="words").tag([" ".join(s) for s in sentences])
    for row, ws in zip(pre, words, strict=True):
        assert row.tags == [w.label for w in ws]
        assert row.scores == pytest.approx([w.score for w in ws], abs=1e-6)


def test_long_token_lists_go_through_windows(bert_export):
    tokens = [w for s in SENTENCES for w in s] * 3
    tagger = Tagger.load(bert_export, max_length=32, stride=8)
    assert len(tagger.prepare([tokens], pretokenized=True).windows) > 10
    (row,) = tagger.tag_pretokenized([tokens])
    assert len(row.tags) == len(tokens) and None not in row.tags


def test_a_token_the_tokenizer_drops_gets_no_tag(bert_export):
    (row,) = Tagger.load(bert_export).tag_pretokenized([["Ada", "\u200b", "Lovelace"]])
    assert row.tags[1] is None and row.scores[1] is None and None not in (row.tags[0], row.tags[2])
    assert all(not (e.token_start <= 1 < e.token_end) for e in row.entities)  # it breaks an entity


@pytest.mark.parametrize("bad, why", [
    ("Ada Lovelace", "expected a list of strings, got a string"),
    ([], "the token list is empty"),
    (["Ada", ""], "token 1 is an empty string ('')"),
    (["Ada", " \t"], "token 1 is whitespace (' \\t')"),
    (["Ada", 3], "token 1 is not a string (int: 3)"),
])
def test_bad_token_lists_name_their_line_or_are_skipped_and_counted(bert_export, tmp_path, bad, why):
    src = write_jsonl(tmp_path / "in.jsonl", [{"tokens": ["Ada", "Lovelace"]}, {"tokens": bad}, {"tokens": None},
                                              {"tokens": ["Paris"]}])
    out = tmp_path / "out.jsonl"
    res = invoke("run", src, "-o", out, "--model", bert_export, "--tokens-column", "tokens")
    assert res.exit_code == 1 and not out.exists()
    assert res.output.strip().splitlines()[-1] == (f"Error: {src}, line 2: tokens field 'tokens': {why} (use "
                                                   "--on-error skip to skip and record such lines)")
    res = invoke("run", src, "-o", out, "--model", bert_export, "--tokens-column", "tokens", "--on-error", "skip")
    assert res.exit_code == 0, res.output
    assert "1 bad row skipped" in res.output and "1 row with null tokens (empty tags)" in res.output
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["row"] for r in rows] == [0, 1, 2] and [len(r["tags"]) for r in rows] == [2, 0, 1]
    (reject,) = [json.loads(line) for line in (tmp_path / "out.jsonl.rejects.jsonl").read_text().splitlines()]
    assert reject["line"] == 2 and why in reject["error"]
    with pytest.raises(ValueError, match=f"sentences\\[0\\]: {why[:10]}"):
        Tagger.load(bert_export).tag_pretokenized([bad])


def test_bad_parquet_rows_name_their_row_or_are_skipped(bert_export, tmp_path):
    src = tmp_path / "in.parquet"
    pq.write_table(pa.table({"id": ["a", "b", "c"], "tokens": [["Ada"], ["x", ""], None]}), src)
    out = tmp_path / "out.parquet"
    res = invoke("run", src, "-o", out, "--model", bert_export, "--tokens-column", "tokens")
    assert res.exit_code == 1 and res.output.strip().splitlines()[-1] == (
        f"Error: {src}, row 1: tokens column 'tokens': token 1 is an empty string ('') (use --on-error skip to skip "
        "and record such rows)")
    res = invoke("run", src, "-o", out, "--model", bert_export, "--tokens-column", "tokens", "--id-column", "id",
                 "--on-error", "skip")
    assert res.exit_code == 0, res.output
    assert pq.read_table(out).column("id").to_pylist() == ["a", "c"]
    (reject,) = [json.loads(line) for line in (tmp_path / "out.parquet.rejects.jsonl").read_text().splitlines()]
    assert reject["row"] == 1 and json.loads(reject["raw"]) == ["x", ""] and "line" not in reject
    wrong = tmp_path / "wrong.parquet"
    pq.write_table(pa.table({"tokens": ["Ada Lovelace"]}), wrong)
    res = invoke("run", wrong, "-o", tmp_path / "w.parquet", "--model", bert_export, "--tokens-column", "tokens")
    assert res.exit_code == 1 and "tokens column 'tokens' has type string, expected a list of strings" in res.output


@pytest.mark.parametrize("model, columns", [("iob2", ["row", "tags", "scores", "entities"]),
                                            ("pos", ["row", "tags", "scores"])])
def test_run_writes_tags_scores_and_entities(models, tmp_path, model, columns):
    src = write_jsonl(tmp_path / "in.jsonl", [{"tokens": s} for s in SENTENCES])
    tagger = Tagger.load(models[model])
    expected = tagger.tag_pretokenized(SENTENCES)
    for suffix in (".parquet", ".jsonl"):
        out = tmp_path / f"out{suffix}"
        res = invoke("run", src, "-o", out, "--model", models[model], "--tokens-column", "tokens")
        assert res.exit_code == 0, res.output
        if suffix == ".parquet":
            table = pq.read_table(out)
            assert table.column_names == columns
            types = {"tags": TAGS_TYPE, "scores": SCORES_TYPE, "entities": TOKEN_SPANS_TYPE}
            assert all(table.schema.field(c).type == types[c] for c in columns[1:])
            assert table.column("tags").to_pylist() == [r.tags for r in expected]
            table_api = tagger.tag_table(pa.table({"tokens": SENTENCES}), tokens_column="tokens")
            assert table_api.equals(table)
        else:
            rows = [json.loads(line) for line in out.read_text().splitlines()]
            assert rows == [{"row": i, **r.to_dict()} for i, r in enumerate(expected)]


def test_options_pre_tokenized_input_cannot_take(bert_export, tmp_path):
    src = write_jsonl(tmp_path / "in.jsonl", [{"tokens": ["Ada"]}])
    for extra, message in ((["--level", "tokens"], "--tokens-column gives one tag per input token"),
                           (["--aggregation", "simple"], "--aggregation simple (sub-token by sub-token) does not")):
        res = invoke("run", src, "-o", tmp_path / "o.jsonl", "--model", bert_export, "--tokens-column", "tokens",
                     *extra)
        assert res.exit_code == 2 and message in res.output, res.output
    with pytest.raises(UsageError, match="--tokens-column gives one tag"):
        Tagger.load(bert_export, level="tokens").tag_pretokenized([["Ada"]])


def test_resume_with_a_tokens_column(bert_export, tmp_path):
    src = write_jsonl(tmp_path / "in.jsonl", [{"tokens": s} for s in SENTENCES])
    tagger = Tagger.load(bert_export)
    reference = tmp_path / "ref.jsonl"
    run(tagger, str(src), str(reference), chunk_rows=10, tokens_column="tokens")
    out = tmp_path / "o.jsonl"
    seen = [0]

    def stop(rows, tokens):
        seen[0] += 1
        if seen[0] == 2:
            raise KeyboardInterrupt

    with pytest.raises(Interrupted):
        run(tagger, str(src), str(out), chunk_rows=10, tokens_column="tokens", progress=stop)
    with pytest.raises(UsageError, match=r"other settings \(tokens_column"):
        run(tagger, str(src), str(out), chunk_rows=10, resume=True)
    summary = run(tagger, str(src), str(out), chunk_rows=10, tokens_column="tokens", resume=True)
    assert summary.resumed_rows == 20 and out.read_bytes() == reference.read_bytes()
