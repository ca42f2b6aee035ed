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
    to_iob2,
)

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
        read_labelled(path, scheme="bioes")


# --- labels ----------------------------------------------------------------------------------


def test_order_labels():
    assert order_labels(["I-PER", "O", "B-LOC", "B-ORG"]) == [
        "O", "B-LOC", "I-LOC", "B-ORG", "I-ORG", "B-PER", "I-PER"
    ]
    assert order_labels([]) == ["O"]


def test_parse_labels():
    assert parse_labels("O, B-PER,I-PER") == ["O", "B-PER", "I-PER"]
    assert parse_labels(None) is None
    with pytest.raises(UsageError, match="'PER' is not O, B-TYPE or I-TYPE"):
        parse_labels("O,PER")
    with pytest.raises(UsageError, match="listed twice"):
        parse_labels("O,O")


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
        ("a O\n\nb O\nc B-PER\nd PER\n", 5, "tag 'PER' is not O, B-TYPE or I-TYPE"),
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
