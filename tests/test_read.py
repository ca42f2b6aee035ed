"""The corpus reader alone: JSONL details (BOMs, error messages, rejected bytes) and chunk digests."""

import base64
import codecs

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from fasttag.errors import InputError, UsageError
from fasttag.read import CorpusReader, chunk_digest, corpus_format


def read_all(reader):
    return [t for chunk in reader for t in chunk.texts]


def test_a_bom_at_the_start_of_any_line_is_skipped_and_counted(tmp_path):
    one = codecs.BOM_UTF8 + b'{"text": "Paris"}\n{"text": "Rome"}\n'
    two = codecs.BOM_UTF8 + b'{"text": "Oslo"}\n'
    src = tmp_path / "joined.jsonl"
    src.write_bytes(one + two)  # cat one.jsonl two.jsonl
    reader = CorpusReader(str(src))
    assert read_all(reader) == ["Paris", "Rome", "Oslo"]
    assert reader.stats.byte_order_marks == 2 and not reader.stats.rejected


@pytest.mark.parametrize("line, message", [
    (b'{"text": "unterminated', "malformed JSON (Unterminated string starting at column 10)"),  # the last line
    (b'{"text": "unterminated\n', "malformed JSON (Invalid control character at column 23)"),  # its newline
    (b'{"text": "x\x01"}\n', "malformed JSON (Invalid control character at column 12)"),
    (b'{"text": }\n', "malformed JSON (Expecting value at column 10)"),
])
def test_json_error_messages_read_well(tmp_path, line, message):
    src = tmp_path / "in.jsonl"
    src.write_bytes(b'{"text": "ok"}\n' + line)
    with pytest.raises(InputError) as err:
        read_all(CorpusReader(str(src)))
    assert f"line 2: {message}" in str(err.value) and "at at" not in str(err.value)


def test_rejected_invalid_utf8_keeps_its_bytes(tmp_path):
    bad = b'{"text": "caf\xe9 cr\xe8me"}'
    src = tmp_path / "in.jsonl"
    src.write_bytes(b'{"text": "ok"}\n' + bad + b"\r\n" + b"not json\n")
    reader = CorpusReader(str(src), on_error="skip")
    assert read_all(reader) == ["ok"]
    invalid, malformed = reader.stats.rejected
    assert invalid.line == 2 and invalid.raw == '{"text": "caf\ufffd cr\ufffdme"}'
    assert base64.b64decode(invalid.raw_base64) == bad  # the exact bytes, line ending aside
    assert malformed.raw == "not json" and malformed.raw_base64 is None  # valid UTF-8: raw is the line itself


def test_unknown_suffix_is_a_usage_error(tmp_path):
    with pytest.raises(UsageError, match="cannot tell the format of .*c.csv"):
        corpus_format(str(tmp_path / "c.csv"))


def test_chunk_digests_follow_the_rows_and_only_the_rows(tmp_path):
    texts = [f"text {i}" for i in range(25)]
    ids = list(range(25))
    src = tmp_path / "in.parquet"
    pq.write_table(pa.table({"text": texts, "id": ids}), src, row_group_size=7)  # pieces that straddle chunks
    digests = [c.digest for c in CorpusReader(str(src), id_column="id", chunk_rows=10, digests=True)]
    assert len(digests) == 3 and len(set(digests)) == 3
    assert digests[0] == chunk_digest(texts[:10], [pa.array(ids[:10])], 10)
    # the same rows from JSONL, in other pieces: the same digests
    jsonl = tmp_path / "in.jsonl"
    jsonl.write_text("".join(f'{{"text": "{t}", "id": {i}}}\n' for t, i in zip(texts, ids, strict=True)))
    assert [c.digest for c in CorpusReader(str(jsonl), id_column="id", chunk_rows=10, digests=True)] == digests
    # a skipped chunk is seen with its digest; a changed text or id changes it
    seen = []
    reader = CorpusReader(str(src), id_column="id", chunk_rows=10, skip_rows=20, digests=True,
                          on_skipped=lambda row, digest: seen.append((row, digest)))
    assert [c.first_row for c in reader] == [20]
    assert seen == [(0, digests[0]), (10, digests[1])]
    assert chunk_digest(["text 0!"] + texts[1:10], [pa.array(ids[:10])], 10) != digests[0]
    assert chunk_digest(texts[:10], [pa.array([99] + ids[1:10])], 10) != digests[0]
    assert chunk_digest([None, "\ud800"], [], 2) != chunk_digest(["None", "\ud800"], [], 2)
    assert [c.digest for c in CorpusReader(str(src), chunk_rows=10)] == [None] * 3  # only when asked


@pytest.mark.parametrize("limit", [0, 1, 3, 5])
def test_limit_stops_both_formats_at_the_same_row(tmp_path, limit):
    texts = [f"text {i}" for i in range(5)]
    jsonl = tmp_path / "c.jsonl"
    # a malformed line after the fifth: reading must stop at the limit without reaching it
    jsonl.write_text("".join(f'{{"text": "{t}"}}\n' for t in texts) + "{not json\n")
    parquet = tmp_path / "c.parquet"
    pq.write_table(pa.table({"text": texts}), parquet, row_group_size=2)
    for src in (jsonl, parquet):
        reader = CorpusReader(str(src), chunk_rows=2, limit=limit)
        assert read_all(reader) == texts[:limit] and reader.stats.rows == limit, src
