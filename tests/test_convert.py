"""`fasttag convert`: each format checked by the library that reads it (spaCy's DocBin, fasttag's own CoNLL
reader) or against its documented fields (Label Studio, Prodigy, brat), on hand-written outputs with
non-ASCII text, entities at the edges of a text, empty documents and rows without entities."""

import importlib.util
import json
import re
import subprocess
import sys
import tracemalloc

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

import lanes
from fasttag.cli import cli
from fasttag.convert import ConvertOptions, brat_name, convert, iob_tags, tokens
from fasttag.entities import Entity
from fasttag.errors import InputError
from fasttag.labelled import read_labelled


def ent(text: str, piece: str, label: str, score: float = 0.9, nth: int = 0) -> dict:
    start = -1
    for _ in range(nth + 1):
        start = text.index(piece, start + 1)
    return {"start": start, "end": start + len(piece), "label": label, "score": score, "text": piece}


ZOE = "Zoe\u0308"  # decomposed: a combining mark inside the entity
ROWS = [  # (id, text, entities): what a run on the corpus would have written
    ("news/1", "Ada Lovelace met Charles Babbage in London.",
     [("Ada Lovelace", "PER", 0.99), ("Charles Babbage", "PER", 0.8), ("London", "LOC", 0.95)]),
    ("emoji", f"😀 Ada 👩‍👩‍👧 met {ZOE} in 北京", [("Ada", "PER", 0.7), (ZOE, "PER", 0.6), ("北京", "LOC", 0.5)]),
    ("cjk", "我爱北京天安门", [("北京", "LOC", 0.9)]),
    ("empty", "", []),
    ("none", "Nothing to see here.", []),
    ("lines", "Royal\nSociety fellows  met\r\nin  Paris", [("Royal\nSociety", "ORG", 0.9), ("Paris", "LOC", 0.9)]),
    ("CON", "She moved to Zürich", [("Zürich", "LOC", 0.75)]),
    ("news/1", "Bob", [("Bob", "PER", 0.5)]),  # the same id again (brat names it apart)
]
TEXTS = [text for _, text, _ in ROWS]
ENTITIES = [[ent(text, piece, label, score) for piece, label, score in ents] for _, text, ents in ROWS]


def invoke(*args):
    return CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)


@pytest.fixture()
def files(tmp_path):
    corpus = tmp_path / "corpus.jsonl"
    corpus.write_text("".join(json.dumps({"text": t}, ensure_ascii=False) + "\n" for t in TEXTS), encoding="utf-8")
    output = tmp_path / "entities.jsonl"
    output.write_text("".join(json.dumps({"id": rid, "entities": e}, ensure_ascii=False) + "\n"
                              for (rid, _, _), e in zip(ROWS, ENTITIES, strict=True)), encoding="utf-8")
    return output, corpus


def run_convert(files, fmt, dest, *extra):
    output, corpus = files
    res = invoke("convert", output, "--input", corpus, "--to", fmt, "-o", dest, *extra)
    assert res.exit_code == 0, res.output
    return res


def spans_of(entities):
    return [(e["start"], e["end"], e["label"]) for e in entities]


@pytest.fixture(scope="module")
def spacy():
    """spaCy, imported without torch: thinc imports torch when it can, nothing here needs it, and the fast lane
    stays torch-free."""
    if importlib.util.find_spec("spacy") is None:
        lanes.skip_or_fail("spacy is not installed (pip install -e '.[spacy]')")
    blocked = "torch" not in sys.modules
    if blocked:
        sys.modules["torch"] = None  # type: ignore[assignment]
    try:
        import spacy
    finally:
        if blocked:
            del sys.modules["torch"]
    return spacy


# -- tokens ---------------------------------------------------------------------------------------

def test_tokens_are_whitespace_words_cut_at_entity_edges():
    text = "At U.S.-based London. 北京天安门"
    entities = [Entity(3, 7, "LOC", 0.9, "U.S."), Entity(14, 20, "LOC", 0.9, "London"),
                Entity(22, 24, "LOC", 0.9, "北京")]
    spans = tokens(text, entities)
    assert [text[s:e] for s, e in spans] == ["At", "U.S.", "-based", "London", ".", "北京", "天安门"]
    assert iob_tags(spans, entities) == ["O", "B-LOC", "O", "B-LOC", "O", "B-LOC", "O"]
    words = [(0, 2), (3, 7), (7, 8), (8, 13)]  # a words column may cut finer than whitespace
    assert [text[s:e] for s, e in tokens(text, entities, words)][:4] == ["At", "U.S.", "-", "based"]
    assert tokens("", []) == [] and tokens("  \n ", []) == []


# -- spacy ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("alignment", ["expand", "contract", "strict"])
def test_spacy_docbin_loads_back_with_spacy(tmp_path, files, spacy, alignment):
    from spacy.tokens import DocBin

    dest = tmp_path / "out.spacy"
    res = run_convert(files, "spacy", dest, "--alignment", alignment)
    nlp = spacy.blank("xx")
    docs = list(DocBin().from_disk(dest).get_docs(nlp.vocab))
    assert [d.text for d in docs] == TEXTS
    got = [[(e.start_char, e.end_char, e.label_) for e in d.ents] for d in docs]
    # spaCy's multi-language tokenizer does not split 我爱北京天安门: 北京 is inside one token
    cjk = ROWS.index(next(r for r in ROWS if r[0] == "cjk"))
    expected = [spans_of(e) for e in ENTITIES]
    expected[cjk] = {"expand": [(0, 7, "LOC")], "contract": [], "strict": []}[alignment]
    assert got == expected
    summary = res.stderr
    if alignment == "expand":
        assert "1 expanded to spaCy token boundaries (--alignment expand)" in summary
    elif alignment == "contract":
        assert "1 dropped: no whole token inside (--alignment contract)" in summary
    else:
        assert "1 dropped: not on spaCy token boundaries (--alignment strict)" in summary
    assert f"{len(ROWS)} documents (1 without text)" in summary


def test_overlapping_entities_are_dropped_where_a_format_cannot_hold_them(tmp_path, spacy):
    from spacy.tokens import DocBin

    text = "AdaBob and New York City"  # spaCy keeps AdaBob one token: Ada and Bob both expand to it
    corpus, output = tmp_path / "c.jsonl", tmp_path / "e.jsonl"
    corpus.write_text(json.dumps({"text": text}) + "\n")
    entities = [ent(text, "Ada", "PER"), ent(text, "Bob", "PER"), ent(text, "New York City", "LOC"),
                ent(text, "York", "LOC")]  # hand-made: York overlaps New York City
    output.write_text(json.dumps({"row": 0, "entities": entities}) + "\n")
    res = invoke("convert", output, "--input", corpus, "--to", "spacy", "-o", tmp_path / "x.spacy")
    assert res.exit_code == 0, res.output
    assert "2 entities of 4; 1 expanded to spaCy token boundaries (--alignment expand); " \
           "2 dropped: overlapping an earlier entity" in res.stderr
    (doc,) = DocBin().from_disk(tmp_path / "x.spacy").get_docs(spacy.blank("xx").vocab)
    assert [(e.text, e.label_) for e in doc.ents] == [("AdaBob", "PER"), ("New York City", "LOC")]
    res = invoke("convert", output, "--input", corpus, "--to", "conll", "-o", tmp_path / "x.conll")
    assert "3 entities of 4; 1 dropped: overlapping an earlier entity" in res.stderr
    assert read_labelled(tmp_path / "x.conll").tags == [["B-PER", "B-PER", "O", "B-LOC", "I-LOC", "I-LOC"]]
    res = invoke("convert", output, "--input", corpus, "--to", "label-studio", "-o", tmp_path / "x.json")
    assert "4 entities" in res.stderr and "dropped" not in res.stderr  # Label Studio holds overlapping spans


def test_spacy_lang_tokenizes_cjk_by_character(tmp_path, files, spacy):
    from spacy.tokens import DocBin

    dest = tmp_path / "zh.spacy"
    res = run_convert(files, "spacy", dest, "--lang", "zh", "--alignment", "strict")
    docs = list(DocBin().from_disk(dest).get_docs(spacy.blank("zh").vocab))
    assert [(e.start_char, e.end_char) for e in docs[2].ents] == [(2, 4)]
    assert "dropped" not in res.stderr


def test_spacy_folder_of_parts(tmp_path, files, spacy):
    from spacy.tokens import DocBin

    dest = tmp_path / "corpus"
    res = run_convert(files, "spacy", dest, "--docs-per-file", 3)
    parts = sorted(dest.iterdir())
    assert [p.name for p in parts] == ["part-00000.spacy", "part-00001.spacy", "part-00002.spacy"]
    nlp = spacy.blank("xx")
    docs = [d for p in parts for d in DocBin().from_disk(p).get_docs(nlp.vocab)]
    assert [d.text for d in docs] == TEXTS
    assert "in 3 files" in res.stderr


def test_spacy_lang_must_be_one_spacy_has(tmp_path, files, spacy):
    output, corpus = files
    res = invoke("convert", output, "--input", corpus, "--to", "spacy", "-o", tmp_path / "x.spacy", "--lang", "zz")
    assert res.exit_code == 2 and "--lang zz: spaCy cannot make a blank pipeline ([E048]" in res.output
    assert not list(tmp_path.glob("*.spacy")) and not list(tmp_path.glob(".fasttag-*"))


def test_spacy_needs_its_extra(tmp_path, files, monkeypatch):
    output, corpus = files
    monkeypatch.setitem(sys.modules, "spacy", None)  # as if it were not installed
    res = invoke("convert", output, "--input", corpus, "--to", "spacy", "-o", tmp_path / "x.spacy")
    assert res.exit_code == 1
    assert "needs the 'spacy' extra" in res.output and "pip install 'fasttag[spacy]'" in res.output
    assert not list(tmp_path.glob("*.spacy")) and not list(tmp_path.glob(".fasttag-*"))


def test_spacy_is_imported_only_for_spacy(tmp_path, files):
    output, corpus = files
    code = ("import sys; from fasttag.cli import main\n"
            f"try: main(['convert', {str(output)!r}, '--input', {str(corpus)!r}, '--to', 'conll', '-o', "
            f"{str(tmp_path / 'x.conll')!r}])\n"
            "except SystemExit as e: assert not e.code, e.code\n"
            "assert 'spacy' not in sys.modules and 'torch' not in sys.modules")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr


# -- label-studio ---------------------------------------------------------------------------------

def test_label_studio_tasks_have_the_documented_fields(tmp_path, files):
    dest = tmp_path / "tasks.json"
    run_convert(files, "label-studio", dest, "--from-name", "ner", "--model-version", "tiny-v1")
    tasks = json.loads(dest.read_text(encoding="utf-8"))
    assert isinstance(tasks, list) and len(tasks) == len(ROWS)
    result_ids = set()
    for task, (rid, text, _), entities in zip(tasks, ROWS, ENTITIES, strict=True):
        assert task["data"] == {"text": text, "id": rid}
        (prediction,) = task["predictions"]
        assert prediction["model_version"] == "tiny-v1"
        results = prediction["result"]
        assert [(r["value"]["start"], r["value"]["end"], r["value"]["labels"][0]) for r in results] == \
            spans_of(entities)
        for r, e in zip(results, entities, strict=True):
            assert r["from_name"] == "ner" and r["to_name"] == "text" and r["type"] == "labels"
            assert set(r["value"]) == {"start", "end", "text", "labels"}
            # code points, as Python indexes: the emoji before an entity count one each (two in UTF-16)
            assert text[r["value"]["start"]:r["value"]["end"]] == r["value"]["text"] == e["text"]
            assert r["score"] == pytest.approx(e["score"])
            result_ids.add(r["id"])
        if entities:
            assert prediction["score"] == pytest.approx(min(e["score"] for e in entities))
        else:
            assert results == [] and "score" not in prediction
    assert len(result_ids) == sum(len(e) for e in ENTITIES)  # Label Studio wants every result id distinct
    emoji = tasks[1]["predictions"][0]["result"][0]["value"]
    assert (emoji["start"], emoji["end"]) == (2, 5)  # "😀 Ada": 2 in code points (3 in UTF-16 units)


def test_label_studio_empty_output_is_an_empty_list(tmp_path):
    (tmp_path / "c.jsonl").write_text("")
    (tmp_path / "e.jsonl").write_text("")
    res = invoke("convert", tmp_path / "e.jsonl", "--input", tmp_path / "c.jsonl", "--to", "label-studio",
                 "-o", tmp_path / "t.json")
    assert res.exit_code == 0, res.output
    assert json.loads((tmp_path / "t.json").read_text()) == []


# -- prodigy --------------------------------------------------------------------------------------

def test_prodigy_tasks_spell_the_text_and_index_their_tokens(tmp_path, files):
    dest = tmp_path / "tasks.jsonl"
    run_convert(files, "prodigy", dest)
    lines = dest.read_text(encoding="utf-8").splitlines()
    assert len(lines) == len(ROWS)
    for line, (rid, text, _), entities in zip(lines, ROWS, ENTITIES, strict=True):
        task = json.loads(line)
        assert task["text"] == text and task["meta"] == {"id": rid}
        toks = task["tokens"]
        assert [t["id"] for t in toks] == list(range(len(toks)))
        assert all(set(t) == {"text", "start", "end", "id", "ws"} and text[t["start"]:t["end"]] == t["text"]
                   for t in toks)
        assert "".join(t["text"] + (" " if t["ws"] else "") for t in toks) == text
        assert [(s["start"], s["end"], s["label"]) for s in task["spans"]] == spans_of(entities)
        for s in task["spans"]:  # token_end is inclusive, as Prodigy writes it
            assert toks[s["token_start"]]["start"] == s["start"] and toks[s["token_end"]]["end"] == s["end"]
    lines_task = json.loads(lines[5])
    assert [t["text"] for t in lines_task["tokens"]][:3] == ["Royal", "\n", "Society"]
    assert lines_task["spans"][0]["token_start"] == 0 and lines_task["spans"][0]["token_end"] == 2
    assert json.loads(lines[3])["tokens"] == [] and json.loads(lines[3])["spans"] == []


def test_prodigy_tokens_are_a_spacy_doc(tmp_path, files, spacy):
    """Prodigy builds spaCy Docs from its tokens (words and ws): the Doc has the text and the spans."""
    from spacy.tokens import Doc

    dest = tmp_path / "tasks.jsonl"
    run_convert(files, "prodigy", dest)
    vocab = spacy.blank("xx").vocab
    for line in dest.read_text(encoding="utf-8").splitlines():
        task = json.loads(line)
        doc = Doc(vocab, words=[t["text"] for t in task["tokens"]], spaces=[t["ws"] for t in task["tokens"]])
        assert doc.text == task["text"]
        for s in task["spans"]:
            span = doc[s["token_start"]:s["token_end"] + 1]
            assert (span.start_char, span.end_char) == (s["start"], s["end"])
            assert doc.char_span(s["start"], s["end"]) == span


# -- conll ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("docstart", [False, True])
def test_conll_reads_back_with_the_labelled_reader(tmp_path, files, docstart):
    dest = tmp_path / "silver.conll"
    res = run_convert(files, "conll", dest, *(["--docstart"] if docstart else []))
    # a document with no token has no block: said, since the blocks then do not line up with the rows
    note = "1 document with no token (no text, or only whitespace) left no lines"
    assert (note in res.output) != docstart, res.output
    data = read_labelled(dest)
    non_empty = [(text, e) for (_, text, _), e in zip(ROWS, ENTITIES, strict=True) if text.split()]
    assert len(data) == len(non_empty)  # an empty document has no sentence
    for words, tags, (text, entities) in zip(data.tokens, data.tags, non_empty, strict=True):
        spans = tokens(text, [Entity(**e) for e in entities])
        assert words == [text[s:e] for s, e in spans]
        assert tags == iob_tags(spans, [Entity(**e) for e in entities])
    assert data.repaired == 0 and data.scheme == "iob2"
    assert data.tokens[0][:2] == ["Ada", "Lovelace"] and data.tags[0][:3] == ["B-PER", "I-PER", "O"]
    assert data.tokens[0][-2:] == ["London", "."] and data.tags[0][-2:] == ["B-LOC", "O"]
    assert data.tokens[1][:4] == ["😀", "Ada", "👩‍👩‍👧", "met"]
    assert data.tokens[1][-1] == "北京" and data.tags[1][-1] == "B-LOC"  # an entity at the very end
    assert data.tokens[2] == ["我爱", "北京", "天安门"]
    assert data.tags[4][:2] == ["B-ORG", "I-ORG"]  # Royal\nSociety: two tokens of one entity
    if docstart:
        assert data.documents == [0, 1, 2, 4, 5, 6, 7]  # -DOCSTART- numbers the documents; 3 is empty
    text = dest.read_text(encoding="utf-8")
    assert text.startswith("-DOCSTART-\tO\n\nAda\tB-PER\n" if docstart else "Ada\tB-PER\n")
    assert "\n\n\n" not in text


def test_conll_gz_and_eval_reads_it(tmp_path, files, bert_export):
    dest = tmp_path / "silver.conll.gz"
    run_convert(files, "conll", dest)
    assert dest.read_bytes()[:2] == b"\x1f\x8b"
    assert len(read_labelled(dest)) == 7
    res = invoke("eval", "--model", bert_export, "--data", dest)
    assert res.exit_code == 0, res.output


# -- brat -----------------------------------------------------------------------------------------

# brat's standoff format: ID<TAB>TYPE START END[;START END]*<TAB>TEXT, offsets in characters of the .txt
TEXTBOUND = re.compile(r"^(T\d+)\t(\S+) (\d+ \d+(?:;\d+ \d+)*)\t(.*)$")


def test_brat_pairs_follow_the_standoff_format(tmp_path, files):
    dest = tmp_path / "brat"
    res = run_convert(files, "brat", dest)
    names = ["news_1", "emoji", "cjk", "empty", "none", "lines", "_CON", "news_1~7"]
    assert sorted(p.name for p in dest.iterdir()) == sorted(
        ["annotation.conf", *(f"{n}.txt" for n in names), *(f"{n}.ann" for n in names)])
    assert "in 17 files" in res.stderr  # annotation.conf counted
    for name, (_, text, _), entities in zip(names, ROWS, ENTITIES, strict=True):
        assert (dest / f"{name}.txt").read_bytes() == text.encode("utf-8")
        lines = (dest / f"{name}.ann").read_text(encoding="utf-8").split("\n")
        assert lines[-1] == "" and len(lines) == len(entities) + 1
        for k, (line, e) in enumerate(zip(lines, entities, strict=False), start=1):
            m = TEXTBOUND.match(line)
            assert m, line
            tid, label, offsets, shown = m.groups()
            pieces = [tuple(map(int, p.split())) for p in offsets.split(";")]
            assert tid == f"T{k}" and label == e["label"]
            assert pieces[0][0] == e["start"] and pieces[-1][1] == e["end"]
            assert shown == " ".join(text[s:t] for s, t in pieces)
    assert (dest / "lines.ann").read_text(encoding="utf-8").splitlines()[0] == "T1\tORG 0 5;6 13\tRoyal Society"
    conf = (dest / "annotation.conf").read_text()
    assert conf.startswith("[entities]\nPER\nLOC\nORG\n") and "[relations]" in conf


def test_brat_names_are_safe_file_names():
    assert brat_name("a/b\\c:d e") == "a_b_c_d_e"
    assert brat_name("../etc/passwd") == "_.._etc_passwd"
    assert brat_name(".hidden") == "_.hidden"
    assert brat_name("nul.txt") == "_nul.txt"
    assert brat_name("北京-1") == "北京-1"
    assert brat_name(None) == "_" and brat_name("") == "_" and brat_name(17) == "17"
    assert len(brat_name("é" * 500).encode("utf-8")) <= 120


# -- belonging, DEST, atomic writes ----------------------------------------------------------------

def test_output_that_does_not_belong_to_the_corpus(tmp_path, files):
    output, corpus = files
    other = tmp_path / "other.jsonl"
    other.write_text("".join(json.dumps({"text": t}) + "\n" for t in reversed(TEXTS)))
    res = invoke("convert", output, "--input", other, "--to", "conll", "-o", tmp_path / "x.conll")
    assert res.exit_code == 1 and f"{output} does not belong to {other}: row 0: entity" in res.output
    short = tmp_path / "short.jsonl"
    short.write_text("".join(json.dumps({"text": t}, ensure_ascii=False) + "\n" for t in TEXTS[:3]), encoding="utf-8")
    res = invoke("convert", output, "--input", short, "--to", "conll", "-o", tmp_path / "x.conll")
    assert res.exit_code == 1 and f"{short} has 3 rows but {output} has more" in res.output
    res = invoke("convert", tmp_path / "none.jsonl", "--input", short, "--to", "conll", "-o", tmp_path / "x.conll")
    assert res.exit_code == 1 and "does not exist" in res.output
    assert not list(tmp_path.glob("x.*")) and not list(tmp_path.glob(".fasttag-*"))


def test_more_corpus_rows_than_output_rows(tmp_path, files):
    output, corpus = files
    long = tmp_path / "long.jsonl"
    long.write_text(corpus.read_text(encoding="utf-8") + json.dumps({"text": "one more"}) + "\n", encoding="utf-8")
    with pytest.raises(InputError, match=f"{output} has 8 rows but {long} has more"):
        convert(str(output), str(long), "prodigy", str(tmp_path / "p.jsonl"))
    assert not (tmp_path / "p.jsonl").exists()


def test_corpus_is_read_as_the_run_read_it(tmp_path, files):
    """A run that skipped a text over --max-text-bytes, or tagged only --limit rows: convert given the same
    options pairs the files (it used to say the output does not belong to the corpus)."""
    output, corpus = files
    big = tmp_path / "big.jsonl"
    texts = TEXTS[:2] + ["x " * 600] + TEXTS[2:]  # 1,200 bytes: over --max-text-bytes 1000
    big.write_text("".join(json.dumps({"text": t}, ensure_ascii=False) + "\n" for t in texts), encoding="utf-8")
    dest = tmp_path / "p.jsonl"
    res = invoke("convert", output, "--input", big, "--to", "prodigy", "-o", dest, "--max-text-bytes", "1000")
    assert res.exit_code == 1 and "longer than --max-text-bytes 1,000" in res.output and not dest.exists()
    res = invoke("convert", output, "--input", big, "--to", "prodigy", "-o", dest, "--on-error", "skip")
    assert res.exit_code == 1 and "does not belong" in res.output  # the default limit keeps the long text
    run_convert((output, big), "prodigy", dest, "--max-text-bytes", "1000", "--on-error", "skip")
    assert [json.loads(line)["text"] for line in dest.read_text(encoding="utf-8").splitlines()] == TEXTS
    head = tmp_path / "head.jsonl"
    head.write_text("".join(output.read_text(encoding="utf-8").splitlines(keepends=True)[:3]), encoding="utf-8")
    res = invoke("convert", head, "--input", corpus, "--to", "prodigy", "-o", dest, "--overwrite")
    assert res.exit_code == 1 and "has 3 rows but" in res.output
    run_convert((head, corpus), "prodigy", dest, "--limit", "3", "--overwrite")
    assert [json.loads(line)["text"] for line in dest.read_text(encoding="utf-8").splitlines()] == TEXTS[:3]


def test_label_studio_keeps_an_id_column_named_text(tmp_path):
    corpus = tmp_path / "c.jsonl"
    corpus.write_text(json.dumps({"text": "id-1", "body": "Ada in Paris."}) + "\n")
    output = tmp_path / "o.jsonl"
    output.write_text(json.dumps({"text": "id-1", "entities": [ent("Ada in Paris.", "Paris", "LOC")]}) + "\n")
    dest = tmp_path / "t.json"
    res = run_convert((output, corpus), "label-studio", dest, "--text-column", "body")
    assert json.loads(dest.read_text())[0]["data"] == {"text": "Ada in Paris.", "text_id": "id-1"}
    assert "the id column 'text' is written as data.text_id" in res.output


def test_non_finite_ids_are_standard_json(tmp_path):
    corpus = tmp_path / "c.parquet"
    pq.write_table(pa.table({"text": ["Paris", "Rome"], "id": [float("nan"), float("-inf")]}), corpus)
    output = tmp_path / "o.parquet"
    pq.write_table(pa.table({"id": [float("nan"), float("-inf")], "entities": pa.array(
        [[ent("Paris", "Paris", "LOC")], []],
        pa.list_(pa.struct([("start", pa.int64()), ("end", pa.int64()), ("label", pa.string()),
                            ("score", pa.float32()), ("text", pa.string())])))}), output)
    for fmt, dest in (("label-studio", tmp_path / "t.json"), ("prodigy", tmp_path / "t.jsonl")):
        run_convert((output, corpus), fmt, dest)
        text = dest.read_text()
        assert "NaN" in text and "-Infinity" in text
        strict = {"parse_constant": lambda c: pytest.fail(f"bare {c} in JSON")}
        found = json.loads(text, **strict) if fmt == "label-studio" else \
            [json.loads(line, **strict) for line in text.splitlines()]
        ids = [t["data"]["id"] for t in found] if fmt == "label-studio" else [t["meta"]["id"] for t in found]
        assert ids == ["NaN", "-Infinity"]


@pytest.mark.parametrize("fmt, name", [("spacy", "a.json"), ("label-studio", "a.jsonl"), ("prodigy", "a.json"),
                                       ("conll", "a.jsonl"), ("brat", "a.txt"), ("conll", "-")])
def test_dest_names_are_checked_first(tmp_path, files, fmt, name):
    output, corpus = files
    res = invoke("convert", output, "--input", corpus, "--to", fmt, "-o", tmp_path / name if name != "-" else name)
    assert res.exit_code == 2 and "-o" in res.output


def test_existing_dest_needs_overwrite_and_survives_a_failed_run(tmp_path, files):
    output, corpus = files
    dest = tmp_path / "tasks.jsonl"
    dest.write_text("keep me")
    res = invoke("convert", output, "--input", corpus, "--to", "prodigy", "-o", dest)
    assert res.exit_code == 2 and "exists; pass --overwrite" in res.output
    bad = tmp_path / "bad.jsonl"  # row 5 of the corpus changed: the run fails there, after writing rows 0-4
    bad.write_text("".join(json.dumps({"text": t if i != 5 else t.upper()}) + "\n" for i, t in enumerate(TEXTS)))
    res = invoke("convert", output, "--input", bad, "--to", "prodigy", "-o", dest, "--overwrite")
    assert res.exit_code == 1 and "row 5" in res.output
    assert dest.read_text() == "keep me" and not list(tmp_path.glob(".fasttag-*"))
    run_convert(files, "prodigy", dest, "--overwrite")
    assert len(dest.read_text(encoding="utf-8").splitlines()) == len(ROWS)
    folder = tmp_path / "brat"  # a folder is replaced whole
    (folder / "old").mkdir(parents=True)
    run_convert(files, "brat", folder, "--overwrite")
    assert not (folder / "old").exists() and (folder / "cjk.ann").exists()
    assert not list(tmp_path.glob(".fasttag-*"))


def test_refusals(tmp_path, files):
    output, corpus = files
    res = invoke("convert", output, "--input", corpus, "--to", "conll", "-o", tmp_path / "x.conll", "--lang", "en")
    assert res.exit_code == 2 and "--lang: not an option of --to conll" in res.output
    res = invoke("convert", output, "--input", corpus, "--to", "prodigy", "-o", output, "--overwrite")
    assert res.exit_code == 2 and "is one of the files being converted" in res.output
    res = invoke("convert", output, "--input", corpus, "--to", "prodigy", "-o", tmp_path / "no" / "x.jsonl")
    assert res.exit_code == 2 and f"the folder of {tmp_path / 'no' / 'x.jsonl'} does not exist" in res.output
    res = invoke("convert", "-", "--input", "-", "--to", "prodigy", "-o", tmp_path / "x.jsonl")
    assert res.exit_code == 2 and "cannot both read stdin" in res.output
    assert output.read_text(encoding="utf-8").count("\n") == len(ROWS)


def test_skipped_corpus_lines_line_up_with_on_error_skip(tmp_path, files):
    output, corpus = files
    broken = tmp_path / "broken.jsonl"
    lines = corpus.read_text(encoding="utf-8").splitlines(keepends=True)
    broken.write_text("".join(lines[:2]) + "{not json\n" + "".join(lines[2:]), encoding="utf-8")
    res = invoke("convert", output, "--input", broken, "--to", "conll", "-o", tmp_path / "x.conll")
    assert res.exit_code == 1 and "line 3" in res.output
    res = invoke("convert", output, "--input", broken, "--to", "conll", "-o", tmp_path / "x.conll",
                 "--on-error", "skip")
    assert res.exit_code == 0, res.output


def word(text: str, piece: str, label: str, score: float = 0.9, nth: int = 0) -> dict:
    return ent(text, piece, label, score, nth)


WORDS_TEXT = "Ada Lovelace saw New-York."
SPAN_WORDS = [word(WORDS_TEXT, p, t, sc) for p, t, sc in [
    ("Ada", "B-PER", 0.9), ("Lovelace", "I-PER", 0.7), ("saw", "O", 0.99), ("New", "B-LOC", 0.8),
    ("-", "I-LOC", 0.6), ("York", "I-LOC", 0.7), (".", "O", 0.99)]]
POS_TEXT = "The cat  sat.\n"
POS_WORDS = [word(POS_TEXT, p, t) for p, t in [("The", "DT"), ("cat", "NN"), ("sat", "VBD"), (".", ".")]]


def words_files(tmp_path, text, words):
    corpus, output = tmp_path / "c.jsonl", tmp_path / "words-out.jsonl"
    corpus.write_text(json.dumps({"text": text}) + "\n" + json.dumps({"text": ""}) + "\n")
    output.write_text(json.dumps({"row": 0, "words": words}) + "\n" + json.dumps({"row": 1, "words": []}) + "\n")
    return output, corpus


def test_words_level_of_a_span_task(tmp_path):
    """A words-level output (`run --level words`): the words are the tokens, the entities their B-/I- runs."""
    files = words_files(tmp_path, WORDS_TEXT, SPAN_WORDS)
    res = run_convert(files, "conll", tmp_path / "w.conll")
    assert "2 documents (1 without text), 7 words, 2 entities" in res.stderr
    data = read_labelled(tmp_path / "w.conll")
    assert data.tokens == [["Ada", "Lovelace", "saw", "New", "-", "York", "."]]
    assert data.tags == [["B-PER", "I-PER", "O", "B-LOC", "I-LOC", "I-LOC", "O"]]
    run_convert(files, "prodigy", tmp_path / "w.jsonl")
    task = json.loads((tmp_path / "w.jsonl").read_text().splitlines()[0])
    assert [t["text"] for t in task["tokens"]] == ["Ada", "Lovelace", "saw", "New", "-", "York", "."]
    assert [(s["start"], s["end"], s["label"], s["token_start"], s["token_end"]) for s in task["spans"]] == \
        [(0, 12, "PER", 0, 1), (17, 25, "LOC", 3, 5)]
    run_convert(files, "label-studio", tmp_path / "w.json")
    (prediction,) = json.loads((tmp_path / "w.json").read_text())[0]["predictions"]
    assert [(r["value"]["text"], r["value"]["labels"], r["score"]) for r in prediction["result"]] == \
        [("Ada Lovelace", ["PER"], 0.8), ("New-York", ["LOC"], 0.7)]  # the mean of the words' scores
    run_convert(files, "brat", tmp_path / "b")
    assert (tmp_path / "b" / "0.ann").read_text() == "T1\tPER 0 12\tAda Lovelace\nT2\tLOC 17 25\tNew-York\n"


def test_words_level_of_a_tag_task(tmp_path):
    """A tag task's words (part-of-speech): CoNLL word/tag lines, each word a span of its tag elsewhere."""
    files = words_files(tmp_path, POS_TEXT, POS_WORDS)
    run_convert(files, "conll", tmp_path / "p.conll")
    assert (tmp_path / "p.conll").read_text() == "The\tDT\ncat\tNN\nsat\tVBD\n.\t.\n\n"
    data = read_labelled(tmp_path / "p.conll", scheme="none")
    assert data.tokens == [["The", "cat", "sat", "."]] and data.tags == [["DT", "NN", "VBD", "."]]
    run_convert(files, "prodigy", tmp_path / "p.jsonl")
    task = json.loads((tmp_path / "p.jsonl").read_text().splitlines()[0])
    assert [(s["label"], s["token_start"], s["token_end"]) for s in task["spans"]] == \
        [("DT", 0, 0), ("NN", 1, 1), ("VBD", 3, 3), (".", 4, 4)]  # token 2 is the second space
    run_convert(files, "brat", tmp_path / "b")
    assert (tmp_path / "b" / "0.ann").read_text().splitlines()[1] == "T2\tNN 4 7\tcat"


def test_words_level_of_a_tag_task_in_spacy(tmp_path, spacy):
    from spacy.tokens import DocBin

    files = words_files(tmp_path, POS_TEXT, POS_WORDS)
    res = run_convert(files, "spacy", tmp_path / "p.spacy")
    assert "4 entities" in res.stderr
    doc, empty = DocBin().from_disk(tmp_path / "p.spacy").get_docs(spacy.blank("xx").vocab)
    assert doc.text == POS_TEXT and empty.text == ""
    assert [(t.text, t.tag_) for t in doc] == [("The", "DT"), ("cat", "NN"), (" ", "_SP"), ("sat", "VBD"),
                                               (".", "."), ("\n", "_SP")]
    assert list(doc.ents) == []


def test_words_level_of_the_engine_gives_the_entities_level(tmp_path, bert_export):
    """Converting `run --level words` gives the entities `run` gives at its entities level."""
    from corpus import varied_sentences

    texts = varied_sentences(40)
    corpus = tmp_path / "corpus.jsonl"
    corpus.write_text("".join(json.dumps({"text": t}) + "\n" for t in texts))
    for level in ("entities", "words"):
        out = tmp_path / f"{level}.jsonl"
        assert invoke("run", corpus, "-o", out, "--model", bert_export, "--level", level, "-q").exit_code == 0
        run_convert((out, corpus), "label-studio", tmp_path / f"{level}.json")
    by_level = [[[(r["value"]["start"], r["value"]["end"], r["value"]["labels"][0]) for r in
                  task["predictions"][0]["result"]] for task in json.loads((tmp_path / f"{level}.json").read_text())]
                for level in ("entities", "words")]
    assert by_level[0] == by_level[1] and sum(map(len, by_level[0])) > 0


def test_tokens_level_entities_are_the_runs_of_consecutive_sub_tokens():
    from fasttag.convert import entities_of_tokens
    from fasttag.entities import Token

    text = "Ada Lovelace met Zoë in New York"
    def tok(piece, label, index, score=0.8, nth=0):
        e = ent(text, piece, label, score, nth)
        return Token(e["start"], e["end"], label, score, piece, index, piece.lower())
    tokens = [tok("Ada", "B-PER", 1, 0.9), tok("Love", "I-PER", 2, 0.7), tok("lace", "I-PER", 3, 0.8),
              tok("Zo", "S-PER", 5), tok("ë", "B-LOC", 6),  # S- ends its entity; B- starts one
              tok("New", "B-LOC", 8), tok("York", "I-LOC", 10)]  # a gap (index 9: an O sub-token) ends it
    got = [(e.start, e.end, e.label, e.text, round(e.score, 4)) for e in entities_of_tokens(tokens, text)]
    assert got == [(0, 12, "PER", "Ada Lovelace", 0.8), (17, 19, "PER", "Zo", 0.8), (19, 20, "LOC", "ë", 0.8),
                   (24, 27, "LOC", "New", 0.8), (28, 32, "LOC", "York", 0.8)]
    # a tag task's tokens (labels without prefixes) are spans of their own
    assert [(e.text, e.label) for e in entities_of_tokens([tok("Ada", "NNP", 1)], text)] == [("Ada", "NNP")]


def test_tokens_level_of_the_engine_gives_the_simple_aggregations_entities(tmp_path, bert_export):
    """Grouping a --level tokens output's sub-tokens gives what --aggregation simple writes, entity for entity."""
    from corpus import varied_sentences

    texts = varied_sentences(40, seed=9) + ["", "Émile Zola à Paris 😀"]
    corpus = tmp_path / "corpus.parquet"
    pq.write_table(pa.table({"text": texts}), corpus)
    results = []
    for name, flags in (("tokens", ["--level", "tokens"]), ("simple", ["--aggregation", "simple"])):
        output = tmp_path / f"{name}.jsonl"
        assert invoke("run", corpus, "-o", output, "--model", bert_export, "-q", *flags).exit_code == 0
        res = invoke("convert", output, "--input", corpus, "--to", "label-studio", "-o", tmp_path / f"{name}.json")
        assert res.exit_code == 0, res.output
        tasks = json.loads((tmp_path / f"{name}.json").read_text(encoding="utf-8"))
        results.append([[(r["value"]["start"], r["value"]["end"], r["value"]["labels"], round(r["score"], 4))
                         for r in t["predictions"][0]["result"]] for t in tasks])
    assert results[0] == results[1] and sum(map(len, results[0])) > 0
    res = invoke("convert", tmp_path / "tokens.jsonl", "--input", corpus, "--to", "conll", "-o", tmp_path / "t.conll")
    assert res.exit_code == 0, res.output
    tags = read_labelled(tmp_path / "t.conll").tags
    assert sum(tag.startswith("B-") for sentence in tags for tag in sentence) == sum(map(len, results[0]))


def test_other_outputs_are_refused(tmp_path):
    corpus, output = tmp_path / "c.jsonl", tmp_path / "t.jsonl"
    corpus.write_text(json.dumps({"text": "Ada"}) + "\n")
    output.write_text(json.dumps({"row": 0, "tags": ["B-PER"], "scores": [0.9]}) + "\n")
    res = invoke("convert", output, "--input", corpus, "--to", "conll", "-o", tmp_path / "x.conll")
    assert res.exit_code == 1 and "an output of 'fasttag run --tokens-column'" in res.output
    output.write_text(json.dumps({"row": 0, "labels": ["B-PER"]}) + "\n")
    res = invoke("convert", output, "--input", corpus, "--to", "conll", "-o", tmp_path / "x.conll")
    assert res.exit_code == 1 and "no 'entities' or 'words' or 'tokens' list" in res.output


@pytest.mark.parametrize("suffix", [".jsonl", ".parquet"])
def test_a_flat_layout_output_is_refused_with_the_fix(tmp_path, suffix):
    corpus, output = tmp_path / "c.jsonl", tmp_path / f"flat{suffix}"
    corpus.write_text(json.dumps({"text": "Ada"}) + "\n")
    rows = [{"row": 0, "start": 0, "end": 3, "label": "PER", "score": 0.9, "text": "Ada"}]
    if suffix == ".parquet":
        pq.write_table(pa.Table.from_pylist(rows), output)
    else:
        output.write_text(json.dumps(rows[0]) + "\n")
    res = invoke("convert", output, "--input", corpus, "--to", "brat", "-o", tmp_path / "brat")
    assert res.exit_code == 1 and "a 'fasttag run --layout flat' output (one row per result)" in res.output
    assert "run again without --layout flat" in res.output and not (tmp_path / "brat").exists()


# -- with the engine: run, then convert ------------------------------------------------------------

def test_run_then_convert_every_format(tmp_path, bert_export):
    from corpus import varied_sentences

    texts = varied_sentences(30) + ["", "Émile Zola à Paris 😀"]
    corpus = tmp_path / "corpus.parquet"
    pq.write_table(pa.table({"doc_id": [f"d{i}" for i in range(len(texts))], "text": texts}), corpus)
    output = tmp_path / "entities.parquet"
    assert invoke("run", corpus, "-o", output, "--model", bert_export, "--id-column", "doc_id", "-q").exit_code == 0
    n_entities = sum(len(e) for e in pq.read_table(output).column("entities").to_pylist())
    for fmt, dest in [("label-studio", "t.json"), ("prodigy", "t.jsonl"), ("conll", "t.conll"), ("brat", "b")]:
        res = invoke("convert", output, "--input", corpus, "--to", fmt, "-o", tmp_path / dest)
        assert res.exit_code == 0, res.output
        assert f"{len(texts)} documents (1 without text), {n_entities} entities" in res.stderr
    tasks = json.loads((tmp_path / "t.json").read_text(encoding="utf-8"))
    assert [t["data"]["doc_id"] for t in tasks] == [f"d{i}" for i in range(len(texts))]
    assert (tmp_path / "b" / "d31.txt").read_text(encoding="utf-8") == texts[-1]


@pytest.mark.parametrize("level", ["entities", "words"])
def test_run_with_kept_columns_and_filters_then_convert(tmp_path, bert_export, level):
    """An output with kept columns beside the id (and filtered results) converts as a plain one: the id is the
    first column, the results the level's column."""
    from corpus import varied_sentences

    texts = varied_sentences(12, seed=5)
    corpus = tmp_path / "corpus.parquet"
    pq.write_table(pa.table({"doc_id": [f"d{i}" for i in range(len(texts))], "text": texts,
                             "meta": [{"n": i} for i in range(len(texts))]}), corpus)
    output = tmp_path / "out.jsonl"
    assert invoke("run", corpus, "-o", output, "--model", bert_export, "--id-column", "doc_id", "--level", level,
                  "--keep-columns", "all", "--min-score", "0.2", "-q").exit_code == 0
    assert list(json.loads(output.read_text().splitlines()[0])) == ["doc_id", "meta", level]
    res = invoke("convert", output, "--input", corpus, "--to", "label-studio", "-o", tmp_path / "t.json")
    assert res.exit_code == 0, res.output
    tasks = json.loads((tmp_path / "t.json").read_text(encoding="utf-8"))
    assert [t["data"]["doc_id"] for t in tasks] == [f"d{i}" for i in range(len(texts))]
    assert [t["data"]["text"] for t in tasks] == texts


# -- streaming -------------------------------------------------------------------------------------

def test_memory_does_not_grow_with_the_corpus(tmp_path):
    """Converting 10x the rows takes no more memory (the writers stream; one that kept its documents would take
    10x: 0.37 MB against 3.0 MB here)."""
    def peak(n: int, fmt: str, dest: str) -> int:
        text = "Ada Lovelace met Charles Babbage in London . " * 4
        corpus, output = tmp_path / f"c{n}.jsonl", tmp_path / f"e{n}.jsonl"
        corpus.write_text("".join(json.dumps({"text": text}) + "\n" for _ in range(n)))
        entities = [ent(text, "Ada Lovelace", "PER", nth=k) for k in range(4)]
        output.write_text("".join(json.dumps({"row": i, "entities": entities}) + "\n" for i in range(n)))
        tracemalloc.start()
        convert(str(output), str(corpus), fmt, str(tmp_path / f"{n}{dest}"), ConvertOptions(), chunk_rows=50)
        _, top = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        return top

    peak(10, "label-studio", ".warm-up.json")  # the first call imports the readers
    for fmt, dest in [("label-studio", ".json"), ("conll", ".conll")]:
        small, large = peak(150, fmt, dest), peak(1500, fmt, dest)
        assert large < small * 1.5 + 200_000, (fmt, small, large)


def test_conll_counts_the_words_that_read_back_as_document_markers(tmp_path):
    text = "Ada said -DOCSTART- in Paris."
    corpus = tmp_path / "c.jsonl"
    corpus.write_text(json.dumps({"text": text}) + "\n")
    output = tmp_path / "o.jsonl"
    output.write_text(json.dumps({"row": 0, "entities": [ent(text, "Paris", "LOC")]}) + "\n")
    res = run_convert((output, corpus), "conll", tmp_path / "x.conll")
    assert "1 word '-DOCSTART-' of the text written as they are" in res.output
    assert "-DOCSTART-\tO" in (tmp_path / "x.conll").read_text()


@pytest.mark.parametrize("suffix", [".jsonl", ".parquet"])
def test_a_pretokenized_output_is_refused_in_one_line_that_says_so(tmp_path, bert_export, suffix):
    corpus = tmp_path / "tokens.jsonl"
    corpus.write_text('{"tokens": ["Ada", "lives", "in", "Paris"]}\n')
    output = tmp_path / f"tags{suffix}"
    res = invoke("run", corpus, "-o", output, "--tokens-column", "tokens", "--model", bert_export, "-q")
    assert res.exit_code == 0, res.output
    res = invoke("convert", output, "--input", corpus, "--to", "conll", "-o", tmp_path / "x.conll")
    assert res.exit_code == 1 and len(res.output.strip().splitlines()) == 1, res.output
    assert "an output of 'fasttag run --tokens-column' (a tag per input token" in res.output
    assert not (tmp_path / "x.conll").exists()
