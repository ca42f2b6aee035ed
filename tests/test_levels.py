"""Output levels (entities, words, tokens), span schemes (BIOES, BILOU) and tag tasks, through the API and `run`."""

import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from corpus import varied_sentences
from fasttag import Tagger, UsageError
from fasttag.cli import cli
from fasttag.entities import ENTITIES_TYPE, TOKENS_TYPE, WORDS_TYPE, Entity, Token, Word
from fasttag.errors import ModelError
from fasttag.run import Interrupted, run
from fasttag.schemes import spans
from interrupt import stop_after as _stop_after
from relabelled import BILOU, BIOES, POS, relabelled

TEXTS = varied_sentences(40, seed=5) + ["", "Ada Lovelace (London) met U.S. officials."]


def invoke(*args, input=None):
    return CliRunner().invoke(cli, [str(a) for a in args], input=input)


@pytest.fixture(scope="module")
def models(bert_export, tmp_path_factory):
    root = tmp_path_factory.mktemp("relabelled")
    return {"iob2": bert_export, "bioes": relabelled(bert_export, root / "bioes", BIOES),
            "bilou": relabelled(bert_export, root / "bilou", BILOU), "pos": relabelled(bert_export, root / "pos", POS)}


def entities_from_words(words):
    """Entities as the B-/I- runs of a document's word tags (schemes.spans), in character offsets."""
    return [(words[a].start, words[b - 1].end, kind) for a, b, kind in spans([w.label for w in words])]


@pytest.mark.parametrize("scheme", ["iob2", "bioes", "bilou"])
@pytest.mark.parametrize("aggregation", ["first", "max"])
def test_entities_are_the_b_i_runs_of_the_words(models, scheme, aggregation):
    """One span rule at every level: the entities level groups exactly the words that the words level tags."""
    entities = Tagger.load(models[scheme], aggregation=aggregation).tag(TEXTS)
    words = Tagger.load(models[scheme], aggregation=aggregation, level="words").tag(TEXTS)
    assert sum(map(len, entities)) > len(TEXTS) // 2
    for ents, ws in zip(entities, words, strict=True):
        assert all(isinstance(e, Entity) for e in ents) and all(isinstance(w, Word) for w in ws)
        assert [(e.start, e.end, e.label) for e in ents] == entities_from_words(ws)
        # a span task's words carry IOB2 tags, whatever the model's scheme
        assert all(w.label == "O" or w.label[:2] in ("B-", "I-") for w in ws)


def test_bioes_single_and_end_tags_keep_entities_whole(models):
    """S-X is one entity and B-X ... E-X one, where the transformers pipeline splits them (README)."""
    tokens = Tagger.load(models["bioes"], level="tokens", max_length=128).tag(TEXTS)
    entities = Tagger.load(models["bioes"], aggregation="simple").tag(TEXTS)
    seen = {t.label[:2] for row in tokens for t in row}
    assert {"E-", "S-"} <= seen  # the random model predicts both, so the rule is exercised
    for toks, ents in zip(tokens, entities, strict=True):
        # the reference span rule on the tokens the model tagged (simple: token by token), O tokens left out
        if any(b.start > a.end for a, b in zip(toks, toks[1:], strict=False)):
            continue  # an O token in between: the gap breaks runs in the reference but not in the tokens list
        expected = [(toks[a].start, toks[b - 1].end, kind) for a, b, kind in spans([t.label for t in toks])]
        assert [(e.start, e.end, e.label) for e in ents] == expected


def test_hyphenated_types_keep_the_whole_type(models):
    entities = Tagger.load(models["bilou"]).tag(TEXTS)
    words = Tagger.load(models["bilou"], level="words").tag(TEXTS)
    assert "creative-work" in {e.label for row in entities for e in row}
    assert {w.label for row in words for w in row} <= {"O", "B-PER", "I-PER", "B-creative-work", "I-creative-work"}


def test_words_level_lists_every_word_o_included(models):
    tagger = Tagger.load(models["iob2"], level="words")
    text = TEXTS[-1]
    words = tagger.tag_text(text)
    # the word rule of entities: leading punctuation split off, trailing kept where the model tags it inside
    assert [w.text for w in words][:3] == ["Ada", "Lovelace", "("] and words[3].text.startswith("London")
    assert all(text[w.start:w.end] == w.text for w in words)
    assert "U.S." in [w.text for w in words]
    assert {w.label for w in words} <= set(tagger.scheme.word_labels)
    assert tagger.tag([""]) == [[]]


def test_tag_task_defaults_to_words_and_refuses_entities(models, tmp_path):
    tagger = Tagger.load(models["pos"])
    assert tagger.task.kind == "tag" and tagger.level == "words" and tagger.options.level == "words"
    words = tagger.tag_text("Ada met officials in London. U.S. banks")
    # a tag task's punctuation is a word of its own, as tagged corpora have it; acronyms stay whole
    assert [w.text for w in words] == ["Ada", "met", "officials", "in", "London", ".", "U.S.", "banks"]
    assert {w.label for w in words} <= set(POS)
    message = ("--level entities needs a span task (labels such as B-PER, I-PER); this model is a tag task (one label "
               "per word, no entity prefixes): use --level words (its default) or tokens")
    with pytest.raises(UsageError) as info:
        Tagger.load(models["pos"], level="entities")
    assert str(info.value) == message
    src = tmp_path / "in.jsonl"
    src.write_text(json.dumps({"text": "Ada"}) + "\n")
    res = invoke("run", src, "-o", tmp_path / "o.jsonl", "--model", models["pos"], "--level", "entities")
    assert res.exit_code == 2 and res.output.strip() == f"Error: {message}"
    with pytest.raises(UsageError, match="--aggregation simple labels sub-tokens one by one"):
        Tagger.load(models["pos"], aggregation="simple")
    assert Tagger.load(models["pos"], level="tokens").tag_text("Ada")[0].label in POS


def test_a_label_set_mixing_schemes_is_refused(bert_export, tmp_path):
    mixed = relabelled(bert_export, tmp_path / "mixed", ["O", "B-PER", "I-PER", "NN", "B-LOC", "I-LOC", "VB", "JJ",
                                                         "DT"])
    with pytest.raises((ModelError, UsageError), match="mix schemes"):
        Tagger.load(mixed)


def test_option_combinations(bert_export):
    with pytest.raises(UsageError, match="--aggregation none lists sub-tokens .*--level words"):
        Tagger.load(bert_export, aggregation="none", level="words")
    with pytest.raises(UsageError, match="--level words takes --aggregation first, average or max"):
        Tagger.load(bert_export, aggregation="simple", level="words")
    none, tokens = Tagger.load(bert_export, aggregation="none"), Tagger.load(bert_export, level="tokens")
    assert none.options == tokens.options and none.options.level == "tokens" and none.options.aggregation == "none"
    assert none.tag(TEXTS) == tokens.tag(TEXTS)


def test_tokens_level_is_every_sub_token_not_tagged_o(bert_export):
    tagger = Tagger.load(bert_export, level="tokens")
    text = "Ada Lovelace visited Zürich."
    toks = tagger.tag_text(text)
    assert toks and all(isinstance(t, Token) and t.label != "O" and text[t.start:t.end] == t.text for t in toks)
    chunk = tagger.tokenize([text])
    vocab = [tagger.tokenizer.tokenizer.id_to_token(i) for i in chunk.ids.tolist()]
    for t in toks:  # index: the position in the model input, [CLS] first
        assert t.token == vocab[t.index - 1] or t.token == t.text
    assert [t.index for t in toks] == sorted({t.index for t in toks})


@pytest.mark.parametrize("level", ["entities", "words", "tokens"])
def test_long_documents_use_the_same_windows_at_every_level(bert_export, level):
    text = " ".join(TEXTS[:30])
    tagger = Tagger.load(bert_export, level=level, max_length=32, stride=8)
    chunk = tagger.tokenize([text])
    assert len(chunk.windows) > 5
    results = tagger.tag_text(text)
    assert all(text[r.start:r.end] == r.text for r in results)
    assert all(a.end <= b.start for a, b in zip(results, results[1:], strict=False))
    if level == "words":  # every word of the text, along its whole length
        assert "".join(w.text for w in results) == "".join(text.split())
    if level == "tokens":
        assert max(t.index for t in results) > 32  # positions in the whole document, past the first window


LEVEL_TYPES = {"entities": ENTITIES_TYPE, "words": WORDS_TYPE, "tokens": TOKENS_TYPE}


@pytest.mark.parametrize("level", ["entities", "words", "tokens"])
def test_run_writes_the_levels_column_with_its_schema(bert_export, tmp_path, level):
    src = tmp_path / "in.jsonl"
    src.write_text("".join(json.dumps({"id": i, "text": t}) + "\n" for i, t in enumerate(TEXTS)))
    tagger = Tagger.load(bert_export, level=level)
    for suffix in (".parquet", ".jsonl"):
        out = tmp_path / f"out{suffix}"
        res = invoke("run", src, "-o", out, "--model", bert_export, "--level", level, "--id-column", "id")
        assert res.exit_code == 0, res.output
        noun = {"entities": "entit", "words": "words", "tokens": "tagged tokens"}[level]
        assert noun in res.output
        if suffix == ".parquet":
            table = pq.read_table(out)
            assert table.schema.names == ["id", level] and table.schema.field(level).type == LEVEL_TYPES[level]
            assert table.column(level).to_pylist() == tagger.tag_table(pa.table({"text": TEXTS})).column(
                level).to_pylist()
        else:
            rows = [json.loads(line) for line in out.read_text().splitlines()]
            assert [list(r) for r in rows] == [["id", level]] * len(TEXTS)
            assert [r[level] for r in rows] == [[x.to_dict() for x in row] for row in tagger.tag(TEXTS)]
    # an empty input: a valid empty output with the level's schema
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    out = tmp_path / "empty.parquet"
    assert invoke("run", empty, "-o", out, "--model", bert_export, "--level", level).exit_code == 0
    assert pq.read_schema(out).field(level).type == LEVEL_TYPES[level]




@pytest.mark.parametrize("level", ["words", "tokens"])
def test_resume_gives_the_uninterrupted_rows_at_every_level(bert_export, tmp_path, level):
    src = tmp_path / "in.jsonl"
    src.write_text("".join(json.dumps({"text": t}) + "\n" for t in varied_sentences(50, seed=8)))
    tagger = Tagger.load(bert_export, level=level)
    reference = tmp_path / "ref.parquet"
    run(tagger, str(src), str(reference), chunk_rows=10)
    out = tmp_path / "o.parquet"
    with pytest.raises(Interrupted):
        run(tagger, str(src), str(out), chunk_rows=10, progress=_stop_after(2))
    # another level is another job
    with pytest.raises(UsageError, match=r"other settings \(.*level"):
        run(Tagger.load(bert_export), str(src), str(out), chunk_rows=10, resume=True)
    summary = run(tagger, str(src), str(out), chunk_rows=10, resume=True)
    assert summary.resumed_rows == 20
    assert pq.read_table(out).equals(pq.read_table(reference))


def test_id_column_cannot_take_a_result_columns_name(bert_export, tmp_path):
    src = tmp_path / "in.jsonl"
    src.write_text(json.dumps({"words": "w1", "text": "Ada"}) + "\n")
    res = invoke("run", src, "-o", "-", "--model", bert_export, "--id-column", "words")
    assert res.exit_code == 2 and "--id-column cannot be 'words'" in res.output
