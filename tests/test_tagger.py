"""The Python API: what `Tagger.tag` takes, `tag_text`, argument checks shared with the CLI, the entities schema."""

import json
import sys

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from fasttag import Entity, Tagger, UsageError
from fasttag.cli import cli
from fasttag.entities import ENTITIES_TYPE

TEXT = "Angela Merkel visited Paris."
TEXTS = [TEXT, "Ada Lovelace was born in London.", "Nothing here."]


@pytest.fixture(scope="module")
def tagger(bert_export):
    return Tagger.load(bert_export)


def spans(entities):
    return [(e.start, e.end, e.label, e.text) for e in entities]


def test_a_bare_string_is_refused_with_the_fix(tagger):
    with pytest.raises(TypeError, match=r"tag\(\[text\]\).*tag_text\(text\)"):
        tagger.tag(TEXT)  # used to tag each of its 28 characters as a document
    with pytest.raises(TypeError, match="tag_text"):
        tagger.tag(TEXT.encode())


def test_tag_text_is_one_document(tagger):
    one = tagger.tag_text(TEXT)
    assert isinstance(one, list) and all(isinstance(e, Entity) for e in one)
    assert spans(one) == spans(tagger.tag([TEXT])[0])
    assert all(TEXT[e.start:e.end] == e.text for e in one)
    with pytest.raises(TypeError, match="one string"):
        tagger.tag_text(TEXTS)


CONTAINERS = ["arrow string", "arrow large_string", "arrow string_view", "arrow dictionary", "arrow chunked",
              "numpy object", "pandas object", "pandas string", "arrow scalars", "generator"]


def _text_container(kind):
    with_null = TEXTS + [None]
    if kind.startswith("pandas"):
        pd = pytest.importorskip("pandas")
        return pd.Series(with_null, dtype="string" if kind == "pandas string" else object)
    return {
        "arrow string": pa.array(with_null),
        "arrow large_string": pa.array(with_null, type=pa.large_string()),
        "arrow string_view": pa.array(with_null, type=pa.string_view()),
        "arrow dictionary": pa.array(with_null).dictionary_encode(),
        "arrow chunked": pa.chunked_array([with_null[:2], with_null[2:]]),
        "numpy object": np.array(with_null, dtype=object),
        "arrow scalars": list(pa.array(with_null)),
        "generator": (t for t in with_null),
    }[kind]


@pytest.mark.parametrize("kind", CONTAINERS)
def test_arrow_numpy_and_pandas_texts(tagger, kind):
    expected = [spans(x) for x in tagger.tag(TEXTS)] + [[]]
    assert any(expected), "the tiny model found no entity at all: the test would prove nothing"
    got = tagger.tag(_text_container(kind))
    assert [spans(x) for x in got] == expected  # `tag(pa.array(["Paris", None]))` used to give only empty lists


def test_numpy_str_array(tagger):
    assert [spans(x) for x in tagger.tag(np.array(TEXTS))] == [spans(x) for x in tagger.tag(TEXTS)]


@pytest.mark.parametrize("texts, message", [
    (pa.array([1, 2]), "Arrow array of strings, got one of type int64"),
    (np.array([1, 2]), "NumPy array of str or object, got dtype int64"),
    (np.array([TEXTS]), "1-D array"),
    ([TEXT, 3], r"texts\[1\] is not a text"),
    ({"a": TEXT}, "not a dict"),
    (pa.table({"text": TEXTS}), "tag_table"),
    (42, "got int"),
])
def test_anything_else_is_a_clear_type_error(tagger, texts, message):
    with pytest.raises(TypeError, match=message):
        tagger.tag(texts)


def test_pandas_is_not_imported_for_plain_texts(bert_export):
    import subprocess

    code = (f"import sys; from fasttag import Tagger; t = Tagger.load({str(bert_export)!r}); "
            "t.tag(['Ada Lovelace']); t.tag_text('Ada'); assert 'pandas' not in sys.modules")
    subprocess.run([sys.executable, "-c", code], check=True)


@pytest.mark.parametrize("option, value, message", [
    ("max_length", 0, "--max-length must be at least 8, got 0"),
    ("threads", 0, "--threads must be at least 1, got 0"),
    ("threads", -1, "--threads must be at least 1, got -1"),
    ("streams", 0, "--streams must be at least 1, got 0"),
    ("batch_tokens", 0, "--batch-tokens must be at least 1, got 0"),
    ("stride", -1, "--stride must be at least 0, got -1"),
    ("max_batch_size", 0, "--max-batch-size must be at least 1, got 0"),
    ("threads", 1.5, "--threads must be an integer, got 1.5"),
])
def test_api_arguments_are_checked_as_the_cli_checks_them(bert_export, tmp_path, option, value, message):
    with pytest.raises(UsageError) as info:
        Tagger.load(bert_export, **{option: value})
    assert str(info.value) == message
    if option == "max_batch_size" or isinstance(value, float):
        return  # not a CLI option / not an integer the CLI would parse
    src = tmp_path / "in.jsonl"
    src.write_text(json.dumps({"text": TEXT}) + "\n")
    flag = "--" + option.replace("_", "-")
    res = CliRunner().invoke(cli, ["run", str(src), "-o", str(tmp_path / "out.jsonl"), "--model", str(bert_export),
                                   flag, str(value)])
    assert res.exit_code == 2 and res.output.strip() == f"Error: {message}", res.output


def test_one_entities_schema_everywhere(tagger, bert_export, tmp_path):
    table = pa.table({"text": TEXTS})
    tagged = tagger.tag_table(table)
    src, out = tmp_path / "in.parquet", tmp_path / "out.parquet"
    pq.write_table(table, src)
    res = CliRunner().invoke(cli, ["run", str(src), "-o", str(out), "--model", str(bert_export), "-q"])
    assert res.exit_code == 0, res.output
    written = pq.read_table(out)
    # same type, and the same names when printed: list<element: struct<...>>, not list<item: ...>
    assert str(tagged.schema.field("entities").type) == str(written.schema.field("entities").type)
    assert str(tagged.schema.field("entities").type) == str(ENTITIES_TYPE)
    assert str(ENTITIES_TYPE).startswith("list<element: struct<start: int32")
    assert tagged.column("entities").to_pylist() == written.column("entities").to_pylist()


def test_entity_to_dict_is_what_jsonl_output_holds(tagger, bert_export, tmp_path):
    src, out = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    src.write_text("".join(json.dumps({"text": t}) + "\n" for t in TEXTS))
    res = CliRunner().invoke(cli, ["run", str(src), "-o", str(out), "--model", str(bert_export), "-q"])
    assert res.exit_code == 0, res.output
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [[e.to_dict() for e in ents] for ents in tagger.tag(TEXTS)] == [row["entities"] for row in rows]
    e = Entity(0, 3, "PER", np.float32(0.9977015256881714), "Ada")
    assert json.dumps(e.to_dict()) == '{"start": 0, "end": 3, "label": "PER", "score": 0.9977015, "text": "Ada"}'


def test_tag_works_in_bounded_chunks_with_the_same_entities(tagger, monkeypatch):
    import fasttag.tagger as tagger_module

    texts = [TEXTS[i % len(TEXTS)] for i in range(11)] + [None, ""]
    whole = tagger.tag(texts)
    monkeypatch.setattr(tagger_module, "TAG_CHUNK_TEXTS", 3)
    seen = []
    real = tagger.prepare
    monkeypatch.setattr(tagger, "prepare", lambda chunk, *a: seen.append(len(chunk)) or real(chunk, *a))
    chunked = tagger.tag(texts)
    assert seen == [3, 3, 3, 3, 1]
    assert [spans(e) for e in chunked] == [spans(e) for e in whole]
    assert [x.score for e in chunked for x in e] == pytest.approx([x.score for e in whole for x in e], abs=1e-5)
    assert [spans(e) for e in tagger.tag_iter(iter(texts))] == [spans(e) for e in whole]
    table = tagger.tag_table(pa.table({"text": texts}))
    assert table.column("entities").to_pylist() == [[e.to_dict() | {"score": pytest.approx(e.score, abs=1e-5)}
                                                     for e in row] for row in whole]


def test_tag_iter_reads_a_stream_lazily(tagger):
    from fasttag.tagger import TAG_CHUNK_TEXTS

    pulled = 0

    def stream():
        nonlocal pulled
        for i in range(10_000):
            pulled += 1
            yield f"Ada Lovelace met Charles Babbage in London, day {i}."

    entities = tagger.tag_iter(stream())
    assert pulled == 0  # nothing read before the first entities are asked for
    first = next(entities)
    assert spans(first) == spans(tagger.tag_text("Ada Lovelace met Charles Babbage in London, day 0."))
    assert pulled <= TAG_CHUNK_TEXTS + 1  # one chunk (and the text that ended it), not the 10,000
    with pytest.raises(TypeError, match=r"texts\[1\] is not a text"):
        list(tagger.tag_iter(iter(["fine", 3])))


def test_chunks_are_bounded_by_texts_and_characters():
    from fasttag.tagger import bounded_chunks

    assert [len(c) for c in bounded_chunks(["a"] * 5, max_texts=2)] == [2, 2, 1]
    assert list(bounded_chunks(["aaa", "bb", "c", None, "dddddd"], max_chars=4)) == [["aaa"], ["bb", "c", None],
                                                                                    ["dddddd"]]
    assert list(bounded_chunks([])) == []


@pytest.mark.parametrize("cuda", ["absent", "no driver", "falls back", "runs"])
def test_cpu_sessions_leave_out_the_fusions_the_cpu_runs_slower(bert_export, monkeypatch, cuda):
    """On the CPU, sessions are built without the fusions whose CPU kernel is slower than the operators it replaces
    (SkipLayerNormalization: bench/cpu_fusions.py) and without memory patterns (one plan per input shape: peak RSS
    grew with the corpus, bench/rss.py); a session that asked for CUDA and got the CPU is built again without
    them; one that runs on CUDA keeps both. The GPU wheel on a machine without the NVIDIA driver (no
    libcuda.so.1) builds the CPU session only."""
    from pathlib import Path

    import onnxruntime as ort

    from fasttag import infer

    built: list[tuple[list[str], list[str], bool]] = []

    class Recording(ort.InferenceSession):  # records what fasttag asks for, builds a CPU session
        def __init__(self, path, sess_options=None, providers=None, disabled_optimizers=None, **kwargs):
            self.asked = [p if isinstance(p, str) else p[0] for p in providers]
            built.append((self.asked, list(disabled_optimizers or []), sess_options.enable_mem_pattern))
            super().__init__(path, sess_options=sess_options, providers=["CPUExecutionProvider"],
                             disabled_optimizers=disabled_optimizers, **kwargs)

        def get_providers(self):
            return self.asked if cuda == "runs" else super().get_providers()

    monkeypatch.setattr(ort, "InferenceSession", Recording)
    available = ["CPUExecutionProvider"] if cuda == "absent" else ["CUDAExecutionProvider", "CPUExecutionProvider"]
    monkeypatch.setattr(ort, "get_available_providers", lambda: available)
    monkeypatch.setattr(infer, "cuda_driver_loads", lambda: cuda != "no driver")
    model = infer.OnnxModel(Path(bert_export) / "model.onnx", device="auto")
    cpu = (["CPUExecutionProvider"], ["SkipLayerNormFusion"], False)
    cuda_asked = (["CUDAExecutionProvider", "CPUExecutionProvider"], [], True)
    assert built == {"absent": [cpu], "no driver": [cpu], "falls back": [cuda_asked, cpu], "runs": [cuda_asked]}[cuda]
    assert model.provider == ("CUDAExecutionProvider" if cuda == "runs" else "CPUExecutionProvider")
    assert ("using CPU" in model.note) == (cuda in ("falls back", "no driver"))



def test_the_fusions_left_out_are_names_onnxruntime_knows(tmp_path):
    """onnxruntime ignores an optimizer name it does not know: on a graph it would fuse, the fused node must be there
    with every fusion and gone with CPU_DISABLED_OPTIMIZERS left out (a renamed fusion would come back silently)."""
    import onnx
    import onnxruntime as ort
    from onnx import TensorProto, helper

    from fasttag.infer import CPU_DISABLED_OPTIMIZERS

    hidden = 8
    inits = [onnx.numpy_helper.from_array(np.ones(hidden, np.float32), name) for name in ("gamma", "beta")]
    x, skip = (helper.make_tensor_value_info(n, TensorProto.FLOAT, ["B", "S", hidden]) for n in ("x", "skip"))
    nodes = [helper.make_node("Add", ["x", "skip"], ["sum"]),
             helper.make_node("LayerNormalization", ["sum", "gamma", "beta"], ["y"], axis=-1, epsilon=1e-12)]
    model = helper.make_model(helper.make_graph(nodes, "g", [x, skip], [helper.make_tensor_value_info(
        "y", TensorProto.FLOAT, None)], inits), opset_imports=[helper.make_operatorsetid("", 17)])
    model.ir_version = 8
    ops = {}
    for name, disabled in (("all", []), ("cpu", list(CPU_DISABLED_OPTIMIZERS))):
        opts = ort.SessionOptions()
        opts.optimized_model_filepath = str(tmp_path / f"{name}.onnx")
        ort.InferenceSession(model.SerializeToString(), opts, providers=["CPUExecutionProvider"],
                             disabled_optimizers=disabled)
        ops[name] = {n.op_type for n in onnx.load(str(tmp_path / f"{name}.onnx")).graph.node}
    assert "SkipLayerNormalization" in ops["all"]
    assert "SkipLayerNormalization" not in ops["cpu"] and "LayerNormalization" in ops["cpu"]
