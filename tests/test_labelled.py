"""Reading labelled data: every format, IOB1 conversion, repairs, label order, bad-data errors."""

from __future__ import annotations

import gzip
import json
import re

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from fasttag.errors import InputError, UsageError
from fasttag.labelled import (
    detect_scheme,
    make_labelled,
    order_labels,
    parse_labels,
    read_labelled,
    tag_column_of,
    to_iob2,
)
from fasttag.schemes import Task

CONLL = """\
-DOCSTART- -X- -X- O

Acme NNP B-NP B-ORG
hires VBZ B-VP O
Danish JJ B-NP B-MISC
staff NN I-NP O

Maria NNP B-NP B-PER
Okafor NNP I-NP I-PER

"""
TOKENS = [["Acme", "hires", "Danish", "staff"], ["Maria", "Okafor"]]
TAGS = [["B-ORG", "O", "B-MISC", "O"], ["B-PER", "I-PER"]]


def P(path) -> str:
    """A path as a regular expression that matches it literally."""
    return re.escape(str(path))


def write(path, text: str):
    path.write_text(text, encoding="utf-8")
    return path


def test_conll_space_separated_skips_docstart(tmp_path):
    data = read_labelled(write(tmp_path / "train.txt", CONLL))
    assert data.tokens == TOKENS
    assert data.tags == TAGS
    assert data.locations == [3, 8]
    assert data.scheme == "iob2" and data.repaired == 0
    assert data.labels == ["O", "B-MISC", "I-MISC", "B-ORG", "I-ORG", "B-PER", "I-PER"]
    assert data.n_words == 6


def test_conll_tab_separated_word_may_hold_a_space(tmp_path):
    text = "New York\tB-LOC\nis\tO\n\n\nhere\tO\n"  # several blank lines, no final blank line
    data = read_labelled(write(tmp_path / "dev.conll", text))
    assert data.tokens == [["New York", "is"], ["here"]]
    assert data.tags == [["B-LOC", "O"], ["O"]]


def test_conll_gzipped_and_crlf(tmp_path):
    path = tmp_path / "train.iob.gz"
    with gzip.open(path, "wt", encoding="utf-8", newline="") as f:
        f.write("Paris B-LOC\r\n\r\nRome B-LOC\r\n")
    assert read_labelled(path).tokens == [["Paris"], ["Rome"]]


def test_jsonl_and_gzip(tmp_path):
    rows = [{"tokens": t, "ner_tags": g, "id": i} for i, (t, g) in enumerate(zip(TOKENS, TAGS, strict=True))]
    text = "\n".join(json.dumps(r) for r in rows) + "\n\n"
    plain = read_labelled(write(tmp_path / "train.jsonl", text))
    assert plain.tokens == TOKENS and plain.tags == TAGS
    assert plain.locations == [1, 2]
    path = tmp_path / "train.ndjson.gz"
    with gzip.open(path, "wt", encoding="utf-8") as f:
        f.write(text)
    assert read_labelled(path).tags == TAGS


def test_jsonl_integer_tags_with_labels_and_tag_column(tmp_path):
    labels = ["O", "B-PER", "I-PER"]
    text = json.dumps({"tokens": ["Ann", "Lee", "ran"], "tags": [1, 2, 0]}) + "\n"
    data = read_labelled(write(tmp_path / "t.jsonl", text), tag_column="tags", labels=labels)
    assert data.tags == [["B-PER", "I-PER", "O"]]


def test_jsonl_empty_sentences_are_skipped(tmp_path):
    text = '{"tokens": [], "ner_tags": []}\n{"tokens": ["a"], "ner_tags": ["O"]}\n'
    data = read_labelled(write(tmp_path / "t.jsonl", text))
    assert data.tokens == [["a"]] and data.locations == [2]


def test_parquet_string_tags(tmp_path):
    path = tmp_path / "train.parquet"
    pq.write_table(pa.table({"tokens": TOKENS, "ner_tags": TAGS}), path)
    data = read_labelled(path)
    assert data.tokens == TOKENS and data.tags == TAGS
    assert data.unit == "row"


def test_parquet_integer_tags_with_labels(tmp_path):
    path = tmp_path / "train.parquet"
    pq.write_table(pa.table({"tokens": [["Ann", "ran"]], "ner_tags": [[1, 0]]}), path)
    assert read_labelled(path, labels=["O", "B-PER", "I-PER"]).tags == [["B-PER", "O"]]


def test_parquet_integer_tags_named_by_huggingface_metadata(tmp_path):
    path = tmp_path / "train.parquet"
    features = {
        "tokens": {"feature": {"dtype": "string", "_type": "Value"}, "_type": "List"},
        "ner_tags": {"feature": {"names": ["O", "B-PER", "I-PER"], "_type": "ClassLabel"},
                     "_type": "List"},
    }
    meta = {b"huggingface": json.dumps({"info": {"features": features}}).encode()}
    table = pa.table({"tokens": [["Ann", "Lee"]], "ner_tags": [[1, 2]]})
    pq.write_table(table.replace_schema_metadata(meta), path)
    assert read_labelled(path).tags == [["B-PER", "I-PER"]]


def test_format_override_and_unknown_extension(tmp_path):
    path = write(tmp_path / "train.data", "a O\n")
    with pytest.raises(InputError, match=r"train\.data: cannot tell the format"):
        read_labelled(path)
    assert read_labelled(path, format="conll").tags == [["O"]]


# --- schemes ---------------------------------------------------------------------------------


def test_to_iob2_converts_entity_starts():
    tags = ["I-PER", "I-PER", "O", "I-LOC", "I-ORG", "B-ORG", "I-ORG"]
    assert to_iob2(tags) == (["B-PER", "I-PER", "O", "B-LOC", "B-ORG", "B-ORG", "I-ORG"], 3)


def test_detect_scheme():
    # IOB1: I- starts entities; B- only between two adjacent entities of one type.
    assert detect_scheme([["I-PER", "I-PER", "B-PER", "O", "I-LOC"]]) == "iob1"
    assert detect_scheme([["B-PER", "I-PER", "O"], ["O"]]) == "iob2"
    # A B- that starts an entity after O rules out IOB1; the stray I- is an error to repair.
    assert detect_scheme([["B-PER", "O", "I-LOC"]]) == "iob2"
    assert detect_scheme([["O", "O"]]) == "iob2"


def test_iob1_file_is_converted_silently(tmp_path):
    text = "Ann I-PER\nLee I-PER\nBob B-PER\nin O\nRome I-LOC\n"
    data = read_labelled(write(tmp_path / "wiki.txt", text))
    assert data.scheme == "iob1"
    assert data.tags == [["B-PER", "I-PER", "B-PER", "O", "B-LOC"]]


def test_iob2_file_with_stray_i_tags_is_repaired_and_counted(tmp_path):
    text = "Ann B-PER\nin O\nRome I-LOC\n\nthe O\nUN I-ORG\nsaid I-PER\n"
    data = read_labelled(write(tmp_path / "train.txt", text))
    assert data.scheme == "iob2"
    assert data.repaired == 3
    assert data.tags == [["B-PER", "O", "B-LOC"], ["O", "B-ORG", "B-PER"]]


def test_forced_scheme(tmp_path):
    path = write(tmp_path / "t.txt", "Ann B-PER\nin O\nRome I-LOC\n")
    assert read_labelled(path, scheme="iob1").scheme == "iob1"
    with pytest.raises(UsageError, match="unknown tag scheme"):
        read_labelled(path, scheme="bio")  # type: ignore[arg-type]


# --- labels ----------------------------------------------------------------------------------


def test_order_labels():
    assert order_labels(["I-PER", "O", "B-LOC", "B-ORG"]) == [
        "O", "B-LOC", "I-LOC", "B-ORG", "I-ORG", "B-PER", "I-PER"
    ]
    assert order_labels([]) == ["O"]


def test_parse_labels():
    assert parse_labels("O, B-PER,I-PER") == ["O", "B-PER", "I-PER"]
    assert parse_labels("NN,NNP,VB") == ["NN", "NNP", "VB"]  # a tag task's labels
    assert parse_labels(None) is None
    with pytest.raises(UsageError, match="mix schemes.*PER"):
        parse_labels("O,B-PER,PER")
    with pytest.raises(UsageError, match="listed twice"):
        parse_labels("O,O")
    with pytest.raises(UsageError, match="is empty"):
        parse_labels(" , ")


def test_make_labelled_from_rows():
    data = make_labelled([["a", "b"]], [["O", "I-X"]], "ds[train]", locations=[7], unit="row")
    assert data.tags == [["O", "B-X"]] and data.repaired == 1
    assert data.where(0, 1) == "ds[train]: row 7 (word 2)"


# --- bad data: each error names the file and the line (or row) -------------------------------


@pytest.mark.parametrize(
    "text, line, message",
    [
        ("a O\nb\n", 2, "expected a word and a tag"),
        ("a X O\nb X O\n\nc O\n", 4, "2 columns, but line 1 has 3"),
        ("a O\n\nb O\nc B-PER\nd PER\n", 5, "tag 'PER' does not fit .*:4's 'B-PER': the tags mix tags with and"),
        ("a NN\n\nb VB\nc B-NP\n", 4, "tag 'B-NP' does not fit .*:1's 'NN'"),
        ("a S-PER\n\nb U-LOC\n", 3, "mix BIOES .* and BILOU"),
    ],
)
def test_conll_errors_name_file_and_line(tmp_path, text, line, message):
    path = write(tmp_path / "bad.conll", text)
    with pytest.raises(InputError, match=message) as info:
        read_labelled(path)
    assert str(info.value).startswith(f"{path}:{line}:")


@pytest.mark.parametrize("text", ["", "\n\n", "-DOCSTART- O\n\n"])
def test_empty_file(tmp_path, text):
    path = write(tmp_path / "empty.txt", text)
    with pytest.raises(InputError, match=f"^{P(path)}: no labelled sentences found"):
        read_labelled(path)


def test_missing_file(tmp_path):
    with pytest.raises(InputError, match="no such file"):
        read_labelled(tmp_path / "nope.txt")


def test_not_utf8(tmp_path):
    path = tmp_path / "latin.txt"
    path.write_bytes("a O\n\nCaf\xe9 B-LOC\n".encode("latin-1"))
    with pytest.raises(InputError, match=f"^{P(path)}:3: not UTF-8"):
        read_labelled(path)


def test_unknown_tag_against_given_labels(tmp_path):
    path = write(tmp_path / "t.txt", "Ann B-PER\n\nRome B-LOC\n")
    with pytest.raises(InputError, match=f"^{P(path)}:3: tag 'B-LOC' is not in the given labels"):
        read_labelled(path, labels=["O", "B-PER", "I-PER"])


def test_repaired_tag_outside_given_labels(tmp_path):
    path = write(tmp_path / "t.txt", "Ann O\nLee I-PER\n")
    with pytest.raises(InputError, match=f"^{P(path)}:2: tag 'I-PER' starts an entity, as 'B-PER'"):
        read_labelled(path, labels=["O", "I-PER"])


@pytest.mark.parametrize(
    "record, message",
    [
        ({"tokens": ["a", "b"], "ner_tags": ["O"]}, "2 tokens but 1 tags"),
        ({"tokens": ["a"]}, "no 'ner_tags' field"),
        ({"ner_tags": ["O"]}, "no 'tokens' field"),
        ({"tokens": ["a"], "ner_tags": [0]}, "tags are integers; give the label names"),
        ({"tokens": ["a"], "ner_tags": "O"}, "'ner_tags' is not a list"),
        ({"tokens": [1], "ner_tags": ["O"]}, "'tokens' is not a list of strings"),
        ([1, 2], "expected a JSON object"),
    ],
)
def test_jsonl_errors_name_file_and_line(tmp_path, record, message):
    good = json.dumps({"tokens": ["x"], "ner_tags": ["O"]})
    path = write(tmp_path / "bad.jsonl", f"{good}\n\n{json.dumps(record)}\n")
    with pytest.raises(InputError, match=message) as info:
        read_labelled(path)
    assert str(info.value).startswith(f"{path}:3")


def test_jsonl_invalid_json(tmp_path):
    path = write(tmp_path / "bad.jsonl", '{"tokens": ["x"], "ner_tags": ["O"]}\n{"tokens": [\n')
    with pytest.raises(InputError, match=f"^{P(path)}:2: not valid JSON"):
        read_labelled(path)


def test_out_of_range_integer_tag(tmp_path):
    path = write(tmp_path / "t.jsonl", json.dumps({"tokens": ["a", "b"], "ner_tags": [0, 3]}))
    with pytest.raises(InputError, match=rf"^{P(path)}:1 \(word 2\): tag 3 is out of range for 3"):
        read_labelled(path, labels=["O", "B-X", "I-X"])


def test_parquet_errors_name_file_and_row(tmp_path):
    path = tmp_path / "bad.parquet"
    pq.write_table(pa.table({"tokens": [["a"], ["b", "c"]], "ner_tags": [["O"], ["O"]]}), path)
    with pytest.raises(InputError, match=f"^{P(path)}: row 2: 2 tokens but 1 tags"):
        read_labelled(path)
    with pytest.raises(InputError, match=f"^{P(path)}: no 'tags' column .*--tag-column"):
        read_labelled(path, tag_column="tags")
    pq.write_table(pa.table({"tokens": [["a"]], "ner_tags": [[5]]}), path)
    with pytest.raises(InputError, match=rf"^{P(path)}: row 1 \(word 1\): tag 5 is out of range"):
        read_labelled(path, labels=["O"])


def test_conll_docstart_numbers_documents(tmp_path):
    path = tmp_path / "docs.txt"
    path.write_text("-DOCSTART- O\n\nA B-PER\n\nb O\n\n-DOCSTART- O\n\nC B-LOC\n")
    data = read_labelled(path)
    assert data.documents == [0, 0, 1]


# --- the tag column, task kinds, schemes and conversion (issue 16) ----------------------------


def test_conll_tag_column_by_index(tmp_path):
    path = write(tmp_path / "conll2003.txt", CONLL)
    pos = read_labelled(path, tag_column=1)
    assert pos.tags == [["NNP", "VBZ", "JJ", "NN"], ["NNP", "NNP"]]
    assert pos.task == Task("tag", "none") and pos.scheme == "none" and pos.repaired == 0
    assert pos.labels == ["JJ", "NN", "NNP", "VBZ"]  # a tag task's labels: sorted
    chunks = read_labelled(path, tag_column="2")  # as the CLI passes it
    assert chunks.tags[0] == ["B-NP", "B-VP", "B-NP", "I-NP"] and chunks.task == Task("span", "iob2")
    assert read_labelled(path, tag_column=-1).tags == TAGS == read_labelled(path, tag_column=3).tags
    assert read_labelled(path, tag_column=-3).tags == pos.tags


@pytest.mark.parametrize("column, message", [
    (4, r":3: no tag column 4 \(--tag-column\): the line has 4 columns"),
    (-5, r":3: no tag column -5"),
    (-4, r":3: --tag-column -4 is the word column"),
])
def test_conll_tag_column_a_line_lacks(tmp_path, column, message):
    path = write(tmp_path / "t.txt", CONLL)
    with pytest.raises(InputError, match=message) as info:
        read_labelled(path, tag_column=column)
    assert str(info.value).startswith(f"{path}:3:")


def test_tag_column_index_or_name_by_format(tmp_path):
    assert tag_column_of(None, "conll") == -1 and tag_column_of(None, "jsonl") == "ner_tags"
    assert tag_column_of(" 2", "conll") == 2 and tag_column_of("pos_tags", "parquet") == "pos_tags"
    with pytest.raises(UsageError, match="0 is the word column"):
        tag_column_of(0, "conll")
    with pytest.raises(UsageError, match="'pos_tags' names a JSONL/Parquet column, but x.txt is CoNLL"):
        tag_column_of("pos_tags", "conll", "x.txt")
    with pytest.raises(UsageError, match="only CoNLL files take"):
        tag_column_of(1, "jsonl")
    path = write(tmp_path / "t.jsonl", json.dumps({"tokens": ["a"], "ner_tags": ["O"]}) + "\n")
    with pytest.raises(InputError, match="no '1' field .*CoNLL column only"):
        read_labelled(path, tag_column="1")


def test_tag_task_jsonl_and_parquet_by_name(tmp_path):
    rows = [{"tokens": ["New", "York"], "pos": ["NNP", "NNP"]}, {"tokens": ["runs"], "pos": ["VBZ"]}]
    path = write(tmp_path / "t.jsonl", "".join(json.dumps(r) + "\n" for r in rows))
    data = read_labelled(path, tag_column="pos")
    assert data.task == Task("tag", "none") and data.tags == [["NNP", "NNP"], ["VBZ"]]
    # integer tags named by HuggingFace ClassLabel metadata of a POS column
    features = {"pos_tags": {"feature": {"names": ["NN", "NNP", "VBZ"], "_type": "ClassLabel"}, "_type": "List"}}
    meta = {b"huggingface": json.dumps({"info": {"features": features}}).encode()}
    table = pa.table({"tokens": [["New", "York", "runs"]], "pos_tags": [[1, 1, 2]]})
    pq.write_table(table.replace_schema_metadata(meta), tmp_path / "t.parquet")
    assert read_labelled(tmp_path / "t.parquet", tag_column="pos_tags").tags == [["NNP", "NNP", "VBZ"]]


def test_a_tag_task_may_have_an_o_tag_and_hyphens():
    data = make_labelled([["a", "(", "b"]], [["O", "-LRB-", "NN"]], "mem")
    assert data.task == Task("tag", "none") and data.labels == ["-LRB-", "NN", "O"]


@pytest.mark.parametrize("tags, scheme", [
    ("B-PER E-PER O S-LOC", "bioes"),
    ("B-PER L-PER O U-LOC", "bilou"),
    ("O O", "iob2"),  # nothing but O: IOB2 (a span task with no entities)
])
def test_bioes_and_bilou_detected_and_kept(tags, scheme):
    tags = tags.split()
    data = make_labelled([list("abcd"[: len(tags)])], [list(tags)], "mem")
    assert data.scheme == scheme and data.task == Task("span", scheme)
    assert data.tags == [tags] and data.repaired == 0


def test_bioes_labels_in_scheme_order():
    data = make_labelled([["a", "b", "c"]], [["B-PER", "E-PER", "S-LOC"]], "mem")
    assert data.labels == ["O", "B-LOC", "I-LOC", "E-LOC", "S-LOC", "B-PER", "I-PER", "E-PER", "S-PER"]
    assert order_labels(["U-X"]) == ["O", "B-X", "I-X", "L-X", "U-X"]


@pytest.mark.parametrize("text, scheme, line, message", [
    ("a B-PER\nb E-PER\n", "iob2", 2, r"tag 'E-PER' is not a IOB2 tag .*--scheme bioes"),
    ("a B-PER\n\nb U-PER\n", "bioes", 3, r"'U-PER' is not a BIOES tag .*--scheme bilou"),
    ("a NN\nb B-NP\n", "none", 2, r"'B-NP' carries an entity prefix, but the scheme is none"),
    ("a O\nb NN\n", "iob1", 2, r"'NN' is not a IOB1 tag .*--scheme none"),
])
def test_declared_scheme_that_does_not_fit(tmp_path, text, scheme, line, message):
    path = write(tmp_path / "t.txt", text)
    with pytest.raises(InputError, match=message) as info:
        read_labelled(path, scheme=scheme)
    assert str(info.value).startswith(f"{path}:{line}:")


def test_declared_none_keeps_prefixless_tags(tmp_path):
    path = write(tmp_path / "t.txt", "a O\nb NN\n")
    data = read_labelled(path, scheme="none")
    assert data.task == Task("tag", "none") and data.tags == [["O", "NN"]]


def test_convert_iob2_to_bioes_and_bilou(tmp_path):
    text = "Ann B-PER\nLee I-PER\nin O\nRome I-LOC\n\nParis B-LOC\n"  # a stray I-LOC: mended first
    path = write(tmp_path / "t.txt", text)
    data = read_labelled(path, convert_to="bioes")
    assert data.scheme == "iob2" and data.task == Task("span", "bioes") and data.repaired == 1
    assert data.tags == [["B-PER", "E-PER", "O", "S-LOC"], ["S-LOC"]]
    assert read_labelled(path, convert_to="bilou").tags[0] == ["B-PER", "L-PER", "O", "U-LOC"]
    assert read_labelled(path, convert_to="iob2").tags[0] == ["B-PER", "I-PER", "O", "B-LOC"]
    iob1 = write(tmp_path / "iob1.txt", "Ann I-PER\nBob B-PER\n")
    assert read_labelled(iob1, convert_to="bioes").tags == [["S-PER", "S-PER"]]
    bioes = write(tmp_path / "bioes.txt", "Ann B-PER\nLee E-PER\n")
    assert read_labelled(bioes, convert_to="iob2").tags == [["B-PER", "I-PER"]]


def test_convert_refuses_a_tag_task(tmp_path):
    path = write(tmp_path / "t.txt", "a NN\n")
    with pytest.raises(UsageError, match="--convert-to bioes: .*a tag task"):
        read_labelled(path, convert_to="bioes")


def test_empty_tag_is_an_error(tmp_path):
    path = write(tmp_path / "t.tsv", "a\tO\nb\t \n")
    with pytest.raises(InputError, match=f"^{P(path)}:2: empty tag"):
        read_labelled(path)


def test_conll2003_style_columns(tmp_path):
    """CoNLL-2003's four columns (word, POS, chunk, NER): POS is a tag task, chunks and NER are IOB2 spans."""
    path = write(tmp_path / "c.txt", "EU NNP B-NP B-ORG\nrejects VBZ B-VP O\nGerman JJ B-NP B-MISC\n"
                                     "call NN I-NP O\n. . O O\n\nPeter NNP B-NP B-PER\nBlackburn NNP I-NP I-PER\n")
    pos = read_labelled(path, tag_column=1)
    assert pos.task == Task("tag", "none") and pos.tags[0] == ["NNP", "VBZ", "JJ", "NN", "."]
    assert read_labelled(path, tag_column=2).task == Task("span", "iob2")
    bioes = read_labelled(path, convert_to="bioes")
    assert bioes.task == Task("span", "bioes") and bioes.tags == [["S-ORG", "O", "S-MISC", "O", "O"],
                                                                  ["B-PER", "E-PER"]]


# `fasttag train`'s splits: load_splits needs no torch, so it is tested here, in the fast lane.
WORDS = "Ann Lee met Bob in New York".split()
SPLIT_TAGS = {
    "iob1": "I-PER I-PER O I-PER O I-LOC I-LOC",
    "iob2": "B-PER I-PER O B-PER O B-LOC I-LOC",
    "bioes": "B-PER E-PER O S-PER O B-LOC E-LOC",
    "bilou": "B-PER L-PER O U-PER O B-LOC L-LOC",
}


def write_split(path, scheme: str):
    return write(path, "".join(f"{w} {t}\n" for w, t in zip(WORDS, SPLIT_TAGS[scheme].split(), strict=True)))


@pytest.mark.parametrize("train_scheme, other_scheme", [
    ("bioes", "iob2"), ("bioes", "iob1"), ("bilou", "iob2"), ("iob2", "bioes"), ("iob2", "bilou"), ("bioes", "bilou"),
])
def test_train_splits_in_another_span_scheme_are_converted_to_the_training_data_s(tmp_path, train_scheme,
                                                                                  other_scheme):
    """An IOB2 validation file beside BIOES training data is detected and converted, never read as BIOES.

    Read as BIOES its B-/I- tags fit the prefixes, and seqeval's strict IOBES finds no entity in them: support 0.
    """
    from fasttag.metrics import entity_scores
    from fasttag.train import load_splits

    notes: list[str] = []
    valid, test = write_split(tmp_path / "valid.txt", other_scheme), write_split(tmp_path / "test.txt", other_scheme)
    splits = load_splits(train_file=write_split(tmp_path / "train.txt", train_scheme), validation_file=valid,
                         test_file=test, log=notes.append)
    task = splits["train"].task
    held = "iob2" if train_scheme == "iob1" else train_scheme
    assert task == Task("span", held)
    for split in ("validation", "test"):
        data = splits[split]
        assert data.task == task and data.scheme == other_scheme
        assert data.tags == [SPLIT_TAGS[held].split()]
        assert entity_scores(data.tags, data.tags, scheme=task.scheme)["support"] == 3
    read_as = "iob2" if other_scheme == "iob1" else other_scheme
    assert f"{valid}: {read_as.upper()} tags converted to {held.upper()}, the training data's scheme" in notes
    assert (f"{valid}: read as IOB1 and converted to IOB2" in notes) == (other_scheme == "iob1")


def test_train_splits_converted_to_tags_outside_the_given_labels_are_refused(tmp_path):
    from fasttag.train import load_splits

    labels = ["O", "B-PER", "I-PER", "E-PER", "B-LOC", "I-LOC", "E-LOC"]  # no S-PER, which Bob converts to
    train = write(tmp_path / "train.txt", "Ann B-PER\nLee E-PER\nin O\nNew B-LOC\nYork E-LOC\n")
    valid = write_split(tmp_path / "valid.txt", "iob2")
    with pytest.raises(InputError, match=f"^{P(valid)}:4: converted to BIOES .* 'S-PER', which is not in the given"):
        load_splits(train_file=train, validation_file=valid, labels=labels, log=lambda _: None)


def test_train_splits_of_another_kind_are_refused(tmp_path):
    from fasttag.train import load_splits

    pos = write(tmp_path / "pos.txt", "Ann NNP\nran VBD\n")
    span = write_split(tmp_path / "span.txt", "iob2")
    with pytest.raises(InputError, match=f"^validation data {P(pos)} holds a tag .* give every split of one kind"):
        load_splits(train_file=span, validation_file=pos, log=lambda _: None)
    with pytest.raises(InputError, match=f"^{P(span)}:1: tag 'B-PER' carries an entity prefix"):
        load_splits(train_file=pos, validation_file=span, log=lambda _: None)
    only_o = write(tmp_path / "o.txt", "Ann O\n")  # nothing but O fits a tag task
    assert load_splits(train_file=pos, validation_file=only_o, log=lambda _: None)["validation"].task.kind == "tag"


def test_iob_tags_read_with_an_explicit_bioes_scheme_are_refused(tmp_path):
    """`--scheme bioes` (given, not detected) over IOB2 files: B-/I- fit the prefixes, so the file was read, and
    strict scoring found no entity in it (support 0, F1 0 every epoch). A file with entities but no E-/S- tag is
    not BIOES: refused, with what to do."""
    from fasttag.errors import InputError
    from fasttag.train import load_splits

    train, valid = write_split(tmp_path / "train.txt", "bioes"), write_split(tmp_path / "valid.txt", "iob2")
    with pytest.raises(InputError, match=r"valid.txt was read as BIOES \(--scheme bioes\) but no tag of it ends an "
                                         r"entity \(E- or S-\).*--scheme auto"):
        load_splits(train_file=train, validation_file=valid, scheme="bioes", log=lambda _: None)
    with pytest.raises(InputError, match=r"--scheme bilou.*\(L- or U-\)"):
        load_splits(train_file=write_split(tmp_path / "t2.txt", "bilou"), validation_file=valid, scheme="bilou",
                    log=lambda _: None)
    splits = load_splits(train_file=train, validation_file=write_split(tmp_path / "v2.txt", "bioes"), scheme="bioes",
                         log=lambda _: None)
    assert splits["validation"].tags[0][:2] == ["B-PER", "E-PER"]
    only_o = write(tmp_path / "o.txt", "a O\nb O\n")  # no entity at all: nothing to tell
    assert load_splits(train_file=train, validation_file=only_o, scheme="bioes", log=lambda _: None)
