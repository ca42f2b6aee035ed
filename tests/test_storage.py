"""Remote storage (storage.py) in the local engine, against a local S3-compatible server (moto, 127.0.0.1)."""

import gzip
import io
import json
import os
import tempfile
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from corpus import varied_sentences
from fasttag import storage
from fasttag.cli import cli
from fasttag.errors import InputError
from fasttag.formats import parquet_files
from s3_server import BUCKET, get, local_s3, put

# Tests that use the `s3` fixture (a local moto server) are in the s3 lane: conftest marks them by that fixture.

TEXTS = varied_sentences(90, seed=11)


def invoke(*args):
    return CliRunner().invoke(cli, [str(a) for a in args])


@pytest.fixture(scope="module")
def s3():
    with local_s3() as (endpoint, fs):
        yield fs


@pytest.fixture(scope="module")
def corpus(tmp_path_factory, s3):
    """The same corpus as local files and as S3 objects: Parquet (with ids), gzipped JSONL, a Parquet folder."""
    root = tmp_path_factory.mktemp("corpus")
    pq.write_table(pa.table({"doc_id": [f"d{i}" for i in range(len(TEXTS))], "text": TEXTS}),
                   root / "corpus.parquet", row_group_size=23)
    with gzip.open(root / "corpus.jsonl.gz", "wt", encoding="utf-8") as fh:
        for t in TEXTS:
            fh.write(json.dumps({"body": t}, ensure_ascii=False) + "\n")
    folder = root / "folder"
    (folder / "b").mkdir(parents=True)
    pq.write_table(pa.table({"text": TEXTS[:40]}), folder / "a.parquet")
    pq.write_table(pa.table({"text": TEXTS[40:]}), folder / "b" / "c.parquet")
    put(s3, f"{BUCKET}/in/corpus.parquet", root / "corpus.parquet")
    put(s3, f"{BUCKET}/in/corpus.jsonl.gz", root / "corpus.jsonl.gz")
    put(s3, f"{BUCKET}/in/folder/a.parquet", folder / "a.parquet")
    put(s3, f"{BUCKET}/in/folder/b/c.parquet", folder / "b" / "c.parquet")
    return root


def test_uris_are_told_from_local_paths():
    assert storage.is_remote("s3://bucket/key.parquet") and storage.is_remote("GS://b/k") and storage.is_remote("hdfs://nn:8020/x")
    assert not storage.is_remote("corpus.parquet") and not storage.is_remote("-") and not storage.is_remote("/tmp/s3://x")
    assert storage.without_query("s3://b/k.jsonl?endpoint_override=h:1") == "s3://b/k.jsonl"


def test_parquet_from_s3_to_parquet_on_s3_same_rows_as_local_files(tmp_path, s3, corpus, bert_export):
    reference = tmp_path / "ref.parquet"
    assert invoke("run", corpus / "corpus.parquet", "-o", reference, "--model", bert_export, "--id-column", "doc_id",
                  "-q").exit_code == 0
    out = f"s3://{BUCKET}/out/entities.parquet"
    res = invoke("run", f"s3://{BUCKET}/in/corpus.parquet", "-o", out, "--model", bert_export, "--id-column", "doc_id")
    assert res.exit_code == 0, res.output
    assert f"{len(TEXTS)} rows" in res.output
    table = pq.read_table(io.BytesIO(get(s3, f"{BUCKET}/out/entities.parquet")))
    assert table.equals(pq.read_table(reference))
    # an existing remote output is kept unless --overwrite
    res = invoke("run", f"s3://{BUCKET}/in/corpus.parquet", "-o", out, "--model", bert_export)
    assert res.exit_code == 2 and "--overwrite" in res.output


def test_jsonl_gz_from_s3_to_jsonl_on_s3_same_bytes_as_local_files(tmp_path, s3, corpus, bert_export):
    reference = tmp_path / "ref.jsonl"
    assert invoke("run", corpus / "corpus.jsonl.gz", "-o", reference, "--model", bert_export, "--text-column", "body",
                  "-q").exit_code == 0
    res = invoke("run", f"s3://{BUCKET}/in/corpus.jsonl.gz", "-o", f"s3://{BUCKET}/out/entities.jsonl",
                 "--model", bert_export, "--text-column", "body", "-q", "--chunk-rows", "32")
    assert res.exit_code == 0, res.output
    data = get(s3, f"{BUCKET}/out/entities.jsonl")
    assert data == reference.read_bytes()
    assert [json.loads(line)["row"] for line in data.decode().splitlines()] == list(range(len(TEXTS)))


def test_parquet_folder_on_s3_to_local_file(tmp_path, s3, corpus, bert_export):
    reference = tmp_path / "ref.parquet"
    assert invoke("run", corpus / "folder", "-o", reference, "--model", bert_export, "-q").exit_code == 0
    s3.create_dir(f"{BUCKET}/in/folder/_tmp")
    put(s3, f"{BUCKET}/in/folder/_tmp/stray.parquet", corpus / "corpus.parquet")  # hidden: not input
    out = tmp_path / "o.parquet"
    res = invoke("run", f"s3://{BUCKET}/in/folder", "-o", out, "--model", bert_export, "-q")
    assert res.exit_code == 0, res.output
    table = pq.read_table(out)
    assert table.column("row").to_pylist() == list(range(len(TEXTS)))
    assert table.equals(pq.read_table(reference))


def test_endpoint_in_the_uri_query(tmp_path, s3, corpus, bert_export, monkeypatch):
    host = os.environ["FASTTAG_S3_ENDPOINT"].split("://", 1)[1]
    monkeypatch.delenv("FASTTAG_S3_ENDPOINT")
    out = tmp_path / "o.parquet"
    uri = f"s3://{BUCKET}/in/corpus.parquet?endpoint_override={host}&scheme=http"
    res = invoke("run", uri, "-o", out, "--model", bert_export, "-q", "--limit", "5")
    assert res.exit_code == 0, res.output
    assert pq.read_table(out).num_rows == 5


def test_missing_bucket_is_a_one_line_error(tmp_path, s3, corpus, bert_export):
    res = invoke("run", "s3://no-such-bucket/corpus.parquet", "-o", tmp_path / "o.parquet", "--model", bert_export,
                 "-q")
    assert res.exit_code == 1
    assert res.output.strip().splitlines() == [
        "Error: input s3://no-such-bucket/corpus.parquet does not exist (bucket 'no-such-bucket' does not exist)"
    ]
    res = invoke("run", corpus / "corpus.parquet", "-o", "s3://no-such-bucket/o.parquet", "--model", bert_export, "-q")
    assert res.exit_code == 1
    assert res.output.strip().splitlines() == [
        "Error: cannot write s3://no-such-bucket/o.parquet: bucket 'no-such-bucket' does not exist"
    ]


def test_failed_run_leaves_nothing_at_the_uri_and_no_staging(tmp_path, s3, bert_export):
    src = tmp_path / "in.jsonl"
    src.write_text("".join(json.dumps({"text": t}) + "\n" for t in TEXTS[:30]) + "{oops\n")
    staged = set(Path(tempfile.gettempdir()).glob("fasttag-upload-*"))
    out = f"s3://{BUCKET}/out/failed.parquet"
    res = invoke("run", src, "-o", out, "--model", bert_export, "-q", "--chunk-rows", "8")
    assert res.exit_code == 1 and "line 31" in res.output and "Traceback" not in res.output
    assert not storage.resolve(out).exists()
    assert set(Path(tempfile.gettempdir()).glob("fasttag-upload-*")) == staged
    # skipping the bad line: the output and its rejects land side by side
    res = invoke("run", src, "-o", out, "--model", bert_export, "-q", "--on-error", "skip")
    assert res.exit_code == 0, res.output
    assert pq.read_table(io.BytesIO(get(s3, f"{BUCKET}/out/failed.parquet"))).num_rows == 30
    rejects = [json.loads(line) for line in get(s3, f"{BUCKET}/out/failed.parquet.rejects.jsonl").decode().splitlines()]
    assert [r["line"] for r in rejects] == [31]
    assert set(Path(tempfile.gettempdir()).glob("fasttag-upload-*")) == staged


def test_resume_is_refused_for_a_remote_output(tmp_path, s3, corpus, bert_export):
    res = invoke("run", corpus / "corpus.parquet", "-o", f"s3://{BUCKET}/out/r.parquet", "--model", bert_export,
                 "--resume")
    assert res.exit_code == 2 and "--resume is not available for a remote output" in res.output


def test_list_files_sorted_like_the_local_reader(s3, corpus):
    files = storage.list_files(f"s3://{BUCKET}/in/folder", ".parquet")
    assert files == [f"s3://{BUCKET}/in/folder/a.parquet", f"s3://{BUCKET}/in/folder/b/c.parquet"]


def test_a_remote_parquet_folder_with_other_files_is_refused(s3, corpus):
    """As a local folder: a file that is not Parquet would have been left out without a word."""
    put(s3, f"{BUCKET}/in/mixed/A.PARQUET", corpus / "folder" / "a.parquet")
    assert parquet_files(f"s3://{BUCKET}/in/mixed") == [f"s3://{BUCKET}/in/mixed/A.PARQUET"]
    put(s3, f"{BUCKET}/in/mixed/notes.jsonl", corpus / "corpus.jsonl.gz")
    with pytest.raises(InputError, match="holds s3://.*/in/mixed/notes.jsonl, which is not a .parquet file"):
        parquet_files(f"s3://{BUCKET}/in/mixed")
