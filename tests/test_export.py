import json

import numpy as np
import pytest
from click.testing import CliRunner

from corpus import varied_sentences
from fasttag import Tagger
from fasttag.cli import cli


def test_export_writes_a_complete_folder(export_factory, family):
    out = export_factory(family)
    names = {p.name for p in out.iterdir()}
    assert {"model.onnx", "tokenizer.json", "config.json", "fasttag.json"} <= names
    manifest = json.loads((out / "fasttag.json").read_text())
    config = json.loads((out / "config.json").read_text())
    assert manifest["labels"] == [config["id2label"][str(i)] for i in range(len(config["id2label"]))]
    assert manifest["precision"] == "fp32" and manifest["max_length"] == 128 and manifest["opset"] == 18
    v = manifest["validation"]
    assert v["passed"] and v["max_abs_logit_diff"] <= 1e-3 and v["argmax_agreement"] == 1.0


def test_int8_export_validates_and_agrees(export_factory):
    int8 = export_factory("bert-trained", "int8")  # a random model's near-ties flip with the CPU's int8 kernels
    manifest = json.loads((int8 / "fasttag.json").read_text())
    assert manifest["precision"] == "int8" and manifest["validation"]["argmax_agreement"] >= 0.98
    assert (int8 / "model.onnx").stat().st_size < (export_factory("bert-trained") / "model.onnx").stat().st_size
    texts = varied_sentences(60)
    a = Tagger.load(export_factory("bert-trained")).tag(texts)
    b = Tagger.load(int8).tag(texts)
    same = np.mean([[(e.start, e.end, e.label) for e in x] == [(e.start, e.end, e.label) for e in y]
                    for x, y in zip(a, b, strict=True)])
    assert same >= 0.9  # a trained model decides with margins: int8 keeps nearly every sentence's entities


def test_non_empty_output_folder_refused(tmp_path, checkpoint_factory):
    out = tmp_path / "out"
    out.mkdir()
    (out / "something").write_text("x")
    res = CliRunner().invoke(cli, ["export", str(checkpoint_factory("bert")), "-o", str(out)])
    assert res.exit_code == 2
    assert "--overwrite" in res.output
    assert [p.name for p in out.iterdir()] == ["something"]


def test_info_shows_labels_and_providers(bert_export):
    res = CliRunner().invoke(cli, ["info", str(bert_export), "--json"])
    assert res.exit_code == 0, res.output
    data = json.loads(res.output)
    assert data["labels"][0] == "O" and "CPUExecutionProvider" in data["providers"]
    assert data["files"]["model.onnx"] > 0


def test_info_takes_the_model_as_model_too(bert_export):
    """--model, as run, show and eval take it (the README says so); MODEL and --model together are refused."""
    res = CliRunner().invoke(cli, ["info", "--model", str(bert_export), "--json"])
    assert res.exit_code == 0, res.output
    assert json.loads(res.output) == json.loads(CliRunner().invoke(cli, ["info", str(bert_export), "--json"]).output)
    res = CliRunner().invoke(cli, ["info", str(bert_export), "--model", str(bert_export)])
    assert res.exit_code == 2 and "give the model once: as MODEL" in res.output, res.output
    assert "Traceback" not in res.output and len(res.output.strip().splitlines()) == 1
    assert "--model MODEL" in CliRunner().invoke(cli, ["info", "--help"]).output


def test_manifest_labels_disagreeing_with_config_is_a_model_error(tmp_path, bert_export):
    import shutil

    broken = tmp_path / "broken"
    shutil.copytree(bert_export, broken)
    manifest = json.loads((broken / "fasttag.json").read_text())
    manifest["labels"] = list(reversed(manifest["labels"]))
    (broken / "fasttag.json").write_text(json.dumps(manifest))
    res = CliRunner().invoke(cli, ["info", str(broken)])
    assert res.exit_code == 1 and "disagree" in res.output


@pytest.mark.parametrize("damage", ["{not json", '{"model": {"type": "WordPiece"}}'])
def test_info_of_a_folder_whose_tokenizer_does_not_load_is_the_error_run_gives(tmp_path, bert_export, damage):
    """info reported a corrupt tokenizer.json healthy (exit 0), while run failed "cannot load tokenizer"."""
    import shutil

    broken = tmp_path / "broken"
    shutil.copytree(bert_export, broken)
    (broken / "tokenizer.json").write_text(damage)
    res = CliRunner().invoke(cli, ["info", str(broken)])
    message = f"Error: cannot load tokenizer {broken / 'tokenizer.json'}: "  # then tokenizers' own words
    assert res.exit_code == 1 and len(res.output.splitlines()) == 1, res.output
    assert res.output.startswith(message), res.output
    src = tmp_path / "c.jsonl"
    src.write_text('{"text": "Paris"}\n')
    ran = CliRunner().invoke(cli, ["run", str(src), "-o", "-", "--model", str(broken)])
    assert ran.exit_code == 1 and ran.output.splitlines()[-1].startswith(message), ran.output


def test_export_never_writes_over_its_own_model(tmp_path, checkpoint_factory):
    import shutil

    ckpt = tmp_path / "models" / "ckpt"
    shutil.copytree(checkpoint_factory("bert"), ckpt)
    before = sorted(p.name for p in ckpt.iterdir())
    for out in (ckpt, ckpt.parent):
        res = CliRunner().invoke(cli, ["export", str(ckpt), "-o", str(out), "--overwrite"])
        assert res.exit_code == 2 and "would delete the model" in res.output
    assert sorted(p.name for p in ckpt.iterdir()) == before


@pytest.mark.parametrize("opset", ["9", "13", "24"])
def test_unsupported_opset_is_a_usage_error(tmp_path, opset):
    res = CliRunner().invoke(cli, ["export", str(tmp_path), "-o", str(tmp_path / "o"), "--opset", opset])
    assert res.exit_code == 2 and "--opset" in res.output


def test_source_model_is_checked_before_any_hub_lookup(tmp_path):
    (tmp_path / "notmodel").mkdir()
    (tmp_path / "notmodel" / "x.txt").write_text("x")
    (tmp_path / "file").write_text("x")
    for model, message in [(tmp_path / "notmodel", "has no config.json: not a transformers model folder"),
                           (tmp_path / "missing", "does not exist"),
                           ("./missing-here", "model folder ./missing-here does not exist"),
                           (tmp_path / "file", "is a file; give a model folder or a hub name")]:
        res = CliRunner().invoke(cli, ["export", str(model), "-o", str(tmp_path / "o")])
        assert res.exit_code == 1 and message in res.output and "Hub" not in res.output, res.output


@pytest.mark.torch
def test_encoder_without_a_token_classification_head_is_one_clear_line(tmp_path):
    """A BertModel saved with save_pretrained (no head, no id2label).

    It used to end in `unexpected KeyError: 'id2label'`.
    """
    import transformers as tf

    from tiny_models import build_tokenizer

    tok = tf.BertTokenizerFast(tokenizer_object=build_tokenizer("bert"), unk_token="[UNK]", pad_token="[PAD]",
                               cls_token="[CLS]", sep_token="[SEP]", mask_token="[MASK]")
    config = tf.BertConfig(hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=64,
                           vocab_size=tok.vocab_size, max_position_embeddings=128)
    encoder = tmp_path / "encoder"
    tf.BertModel(config).save_pretrained(encoder)
    tok.save_pretrained(encoder)
    seq = tmp_path / "seq-classifier"
    tf.BertForSequenceClassification(tf.BertConfig(**{**config.to_dict(), "num_labels": 2})).save_pretrained(seq)
    tok.save_pretrained(seq)
    for model, why in [(encoder, "its architecture is BertModel"),
                       (seq, "its architecture is BertForSequenceClassification")]:
        res = CliRunner().invoke(cli, ["export", str(model), "-o", str(tmp_path / "out")])
        assert res.exit_code == 1, res.output
        assert res.output.strip().splitlines() == [
            f"Error: {model} is not a token-classification checkpoint ({why}); fine-tune it for token classification "
            f"first with 'fasttag train --model {model} --train FILE --output-dir DIR', then export DIR"
        ]
        assert not (tmp_path / "out").exists()


@pytest.mark.torch  # patches optimum's main_export
def test_a_mistyped_local_folder_is_named_before_the_hub(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    cases = [("nonexist/sub/model", "Error: model folder nonexist/sub/model does not exist"),
             (".nonexist", "Error: model folder .nonexist does not exist"),
             ("no such model",
              "Error: no local folder no such model exists, and 'no such model' cannot be a hub model name")]
    for model, line in cases:
        res = CliRunner().invoke(cli, ["export", model, "-o", "x"])
        assert res.exit_code == 1 and res.output.strip().splitlines() == [line], res.output
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    res = CliRunner().invoke(cli, ["export", "nonexist", "-o", "x"])
    assert res.exit_code == 1
    assert res.output.strip().splitlines() == [
        "Error: no local folder nonexist exists, and the hub is not looked up (HF_HUB_OFFLINE is set)"]
    # a plain name with the hub on: the hub is asked, and its failure comes after the local folder's absence
    monkeypatch.delenv("HF_HUB_OFFLINE")
    import optimum.exporters.onnx

    def no_hub(*args, **kwargs):
        raise OSError("We couldn't connect to 'https://huggingface.co' to load the files.\nCheck your connection.")

    monkeypatch.setattr(optimum.exporters.onnx, "main_export", no_hub)
    res = CliRunner().invoke(cli, ["export", "nonexist", "-o", "x"])
    assert res.exit_code == 1
    assert res.output.strip().splitlines()[-1] == (
        "Error: no local folder nonexist exists, and the hub did not provide it: "
        "We couldn't connect to 'https://huggingface.co' to load the files.")


def _without_manifest(src, dst):
    import shutil

    shutil.copytree(src, dst)
    (dst / "fasttag.json").unlink()
    return dst


def test_info_without_manifest_infers_precision_and_says_what_is_unknown(tmp_path, export_factory):
    import onnx
    from onnxruntime.transformers.float16 import convert_float_to_float16

    fp32 = _without_manifest(export_factory("bert"), tmp_path / "fp32")
    int8 = _without_manifest(export_factory("bert-trained", "int8"), tmp_path / "int8")
    fp16 = _without_manifest(export_factory("bert"), tmp_path / "fp16")
    onnx.save(convert_float_to_float16(onnx.load(str(fp16 / "model.onnx")), keep_io_types=True),
              str(fp16 / "model.onnx"))
    for folder, precision in [(fp32, "fp32"), (int8, "int8"), (fp16, "fp16")]:
        res = CliRunner().invoke(cli, ["info", str(folder)])
        assert res.exit_code == 0, res.output
        assert f"precision:  {precision} (inferred from the graph)" in res.output, res.output
        assert "no-validate" not in res.output and "validation: unknown (no fasttag.json)" in res.output
        data = json.loads(CliRunner().invoke(cli, ["info", str(folder), "--json"]).output)
        assert data["precision"] == precision and data["precision_inferred"] and data["manifest"] is False


def test_info_precision_unknown_when_the_graph_does_not_tell(tmp_path, bert_export):
    from fasttag.model import graph_precision

    assert graph_precision(tmp_path / "missing.onnx") is None
    (tmp_path / "garbage.onnx").write_bytes(b"\xff" * 64)
    assert graph_precision(tmp_path / "garbage.onnx") is None


def test_info_on_a_truncated_graph_is_one_error_line(tmp_path, bert_export):
    broken = _without_manifest(bert_export, tmp_path / "broken")
    data = (broken / "model.onnx").read_bytes()
    (broken / "model.onnx").write_bytes(data[:1000])
    res = CliRunner().invoke(cli, ["info", str(broken)])
    assert res.exit_code == 1
    lines = res.output.strip().splitlines()
    # refused by fasttag's check of the graph's external data (before onnxruntime), or by onnxruntime
    assert len(lines) == 1 and lines[0].startswith("Error: ") and "does not load" in lines[0]
    assert str(broken / "model.onnx") in lines[0]


def test_info_does_not_show_the_build_machines_path(tmp_path, bert_export, checkpoint_factory):
    import shutil

    manifest = json.loads((bert_export / "fasttag.json").read_text())
    assert manifest["source_model"] == checkpoint_factory("bert").name and manifest["source_is_local"] is True
    res = CliRunner().invoke(cli, ["info", str(bert_export)])
    assert f"source:     {checkpoint_factory('bert').name} (a local folder)" in res.output
    old = tmp_path / "old"  # an export made before: the absolute path of the build machine's checkpoint
    shutil.copytree(bert_export, old)
    manifest.update(source_model="/home/builder/runs/minilm-conll")
    del manifest["source_is_local"]
    (old / "fasttag.json").write_text(json.dumps(manifest))
    res = CliRunner().invoke(cli, ["info", str(old)])
    assert res.exit_code == 0 and "source:     minilm-conll (a local folder)" in res.output
    assert "/home/builder" not in res.output


@pytest.mark.torch  # the rest of the train extra (optimum, ...) must be installed for the message to be exact
def test_missing_extra_names_every_missing_module(monkeypatch):
    import sys

    from fasttag.errors import MissingExtraError

    for name in ("torch", "transformers", "accelerate"):
        monkeypatch.setitem(sys.modules, name, None)
    assert str(MissingExtraError("train", "fasttag train", "accelerate")) == (
        "fasttag train needs the 'train' extra (torch, transformers, accelerate are not installed). "
        "Install it with: pip install 'fasttag[train]'")


def test_int8_keeps_named_layers_in_fp32_and_records_the_run_window(tmp_path, checkpoint_factory):
    import onnx

    out = tmp_path / "int8-kept"
    res = CliRunner().invoke(cli, ["export", str(checkpoint_factory("bert")), "-o", str(out), "--precision", "int8",
                                   "--keep-fp32", "layer.0/", "--reduce-range", "--run-max-length", "32",
                                   "--run-stride", "8", "--no-validate"])  # validation: test_int8_export_validates
    assert res.exit_code == 0, res.output  # (the random tiny model with 7-bit weights sits near its 98% bar)
    manifest = json.loads((out / "fasttag.json").read_text())
    assert manifest["quantization"] == {"per_channel": True, "reduce_range": True, "kept_fp32": ["layer.0/"]}
    assert manifest["run"] == {"max_length": 32, "stride": 8}
    nodes = onnx.load(str(out / "model.onnx")).graph.node
    kept = [n.name for n in nodes if n.op_type == "MatMul" and "layer.0/" in n.name]
    assert kept and not [n for n in nodes if n.op_type == "MatMulInteger" and "layer.0/" in n.name]
    assert [n for n in nodes if n.op_type == "MatMulInteger"]  # the other layers are quantized
    tagger = Tagger.load(out)
    assert (tagger.max_length, tagger.options.stride) == (32, 8)
    assert Tagger.load(out, max_length=64).options.stride == 31  # a window of one's own: the usual stride


def test_keep_fp32_pattern_matching_nothing_is_refused(tmp_path, checkpoint_factory):
    out = tmp_path / "bad"
    res = CliRunner().invoke(cli, ["export", str(checkpoint_factory("bert")), "-o", str(out), "--precision", "int8",
                                   "--keep-fp32", "layer.99/"])
    assert res.exit_code != 0 and "matches no MatMul" in res.output and not out.exists()
    res = CliRunner().invoke(cli, ["export", str(checkpoint_factory("bert")), "-o", str(out), "--keep-fp32", "x"])
    assert res.exit_code == 2 and "int8 only" in res.output


@pytest.mark.parametrize("precision", ["fp32", "int8"])
def test_fuse_runs_the_transformer_fusions_before_quantizing(tmp_path, checkpoint_factory, export_factory,
                                                               precision):
    import onnx

    out = tmp_path / f"fused-{precision}"
    family = "bert-trained" if precision == "int8" else "bert"  # int8 validation: test_int8_export_validates
    res = CliRunner().invoke(cli, ["export", str(checkpoint_factory(family)), "-o", str(out), "--precision",
                                   precision, "--fuse"])
    assert res.exit_code == 0, res.output
    manifest = json.loads((out / "fasttag.json").read_text())
    assert manifest["fusions"].get("SkipLayerNormalization", 0) > 0 and manifest["validation"]["passed"]
    ops = {n.op_type for n in onnx.load(str(out / "model.onnx")).graph.node}
    assert "SkipLayerNormalization" in ops and ("MatMulInteger" in ops or "QAttention" in ops) == (precision == "int8")
    if precision == "fp32":  # the same entities as the plain export
        texts = varied_sentences(40, seed=3)
        plain = Tagger.load(export_factory("bert")).tag(texts)
        fused = Tagger.load(out).tag(texts)
        assert [[(e.start, e.end, e.label) for e in doc] for doc in fused] == \
            [[(e.start, e.end, e.label) for e in doc] for doc in plain]


def test_fuse_refuses_a_model_type_without_fusions(tmp_path):
    from fasttag.errors import UsageError
    from fasttag.export import _fuse

    with pytest.raises(UsageError, match="no fusions for 'gpt2'"):
        _fuse(tmp_path / "model.onnx", {"model_type": "gpt2"}, log=lambda m: None)


def test_split_outliers_leaves_what_the_fp32_graph_computes(tmp_path, bert_export):
    """The split (fp32 outlier channels + the rest, masked) adds up to the original product: same logits in fp32."""
    import shutil

    import onnx
    import onnxruntime as ort

    from fasttag.export import _split_outliers

    split = tmp_path / "split"
    shutil.copytree(bert_export, split)
    halves = _split_outliers(split / "model.onnx", ["layer.0/", "output/dense"], 3, log=lambda m: None)
    graph = onnx.load(str(split / "model.onnx")).graph
    original = onnx.load(str(bert_export / "model.onnx")).graph
    weights = {i.name for i in original.initializer}
    chosen = {n.name for n in original.node if n.op_type == "MatMul"
              and ("layer.0/" in n.name or "output/dense" in n.name) and n.input[1] in weights}
    assert len(chosen) >= 4 and halves == sorted(halves, key=[n.name for n in graph.node].index)
    assert {h.removesuffix("/outliers/MatMul") for h in halves} == chosen
    index = {i.name: onnx.numpy_helper.to_array(i) for i in graph.initializer if i.name.endswith("/outliers/index")}
    assert len(index) == len(chosen) and all(len(v) == 3 and len(set(v)) == 3 for v in index.values())
    rng = np.random.default_rng(0)
    ids = rng.integers(5, 100, size=(4, 12))
    mask = np.ones_like(ids)
    mask[1, 7:] = 0
    feed = {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)}
    outputs = []
    for path in (bert_export / "model.onnx", split / "model.onnx"):
        session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        outputs.append(session.run(None, {k: v for k, v in feed.items()
                                          if k in {i.name for i in session.get_inputs()}})[0])
    np.testing.assert_allclose(outputs[1], outputs[0], atol=1e-4)


def test_split_outliers_picks_the_channels_of_largest_magnitude(tmp_path, bert_export):
    """A channel made an outlier by hand (its LayerNorm weight scaled up) is among those split off."""
    import shutil

    import onnx
    from onnx import numpy_helper

    from fasttag.export import _split_outliers

    split = tmp_path / "split"
    shutil.copytree(bert_export, split)
    model = onnx.load(str(split / "model.onnx"))
    norm = next(n for n in model.graph.node if n.op_type == "LayerNormalization" and "embeddings" in n.name)
    gamma = next(i for i in model.graph.initializer if i.name == norm.input[1])
    scaled = numpy_helper.to_array(gamma).copy()
    scaled[5] *= 50
    gamma.CopyFrom(numpy_helper.from_array(scaled, gamma.name))
    onnx.save(model, str(split / "model.onnx"))
    _split_outliers(split / "model.onnx", ["layer.0/attention/self/query"], 1, log=lambda m: None)
    index = [numpy_helper.to_array(i) for i in onnx.load(str(split / "model.onnx")).graph.initializer
             if i.name.endswith("/outliers/index")]
    assert [v.tolist() for v in index] == [[5]]


def test_int8_split_outliers_keeps_a_few_channels_in_fp32(tmp_path, checkpoint_factory):
    import onnx

    out = tmp_path / "int8-split"
    res = CliRunner().invoke(cli, ["export", str(checkpoint_factory("bert-trained")), "-o", str(out),
                                   "--precision", "int8", "--split-outliers", "layer.0/intermediate/",
                                   "--outlier-channels", "2"])
    assert res.exit_code == 0, res.output
    assert "split 1 MatMuls: 2 outlier channels each in fp32" in res.output
    manifest = json.loads((out / "fasttag.json").read_text())
    assert manifest["quantization"] == {"per_channel": True, "reduce_range": False, "kept_fp32": [],
                                        "split_outliers": ["layer.0/intermediate/"], "outlier_channels": 2,
                                        "calibration": "512 generated sentences"}
    assert manifest["validation"]["passed"]
    ops = {n.name: n.op_type for n in onnx.load(str(out / "model.onnx")).graph.node}
    fp32_half = [name for name in ops if name.endswith("layer.0/intermediate/dense/MatMul/outliers/MatMul")]
    assert len(fp32_half) == 1 and ops[fp32_half[0]] == "MatMul"  # left in fp32
    assert [op for name, op in ops.items() if "layer.0/intermediate/" in name and op == "MatMulInteger"]
    texts = varied_sentences(10, seed=4)
    assert len(Tagger.load(out).tag(texts)) == 10


def test_split_outliers_refusals(tmp_path, checkpoint_factory):
    out = tmp_path / "bad"
    res = CliRunner().invoke(cli, ["export", str(checkpoint_factory("bert")), "-o", str(out), "--precision", "int8",
                                   "--split-outliers", "layer.99/"])
    assert res.exit_code != 0 and "--split-outliers 'layer.99/' matches no MatMul" in res.output and not out.exists()
    res = CliRunner().invoke(cli, ["export", str(checkpoint_factory("bert")), "-o", str(out),
                                   "--split-outliers", "layer.0/"])
    assert res.exit_code == 2 and "int8 only" in res.output


def _logits(path, ids, mask):
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    feed = {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)}
    return session.run(None, {k: v for k, v in feed.items() if k in {i.name for i in session.get_inputs()}})[0]


def test_graphs_past_protobufs_limit_keep_their_tensors_beside_them(tmp_path, bert_export, monkeypatch):
    """A model past 2 GB (here: the limit lowered so that tiny-bert counts as one) is converted as a small one is,
    its tensors in one `model.onnx_data` beside the graph (`model.fused.onnx.data` after --fuse, as onnxruntime's
    optimizer names it), and no stale data file is left behind: the fp32 tensors after int8 (which fits in one file),
    the fp32 data after fp16, the data a split or the fusions replace."""
    import shutil

    import onnx

    from fasttag import export
    from fasttag.model import external_data_locations

    rng = np.random.default_rng(1)
    ids, mask = rng.integers(5, 100, size=(3, 10)), np.ones((3, 10), dtype=np.int64)
    reference = _logits(bert_export / "model.onnx", ids, mask)
    monkeypatch.setattr(export, "PROTOBUF_LIMIT", 10_000)

    def large_copy(name):
        folder = tmp_path / name
        shutil.copytree(bert_export, folder)
        export._save_onnx(onnx.load(str(folder / "model.onnx")), folder / "model.onnx")
        assert external_data_locations(folder / "model.onnx")  # every tensor over 1 KB went out
        assert {p.name for p in folder.glob("model.onnx*")} == {"model.onnx", "model.onnx_data"}
        return folder

    fp32 = large_copy("fp32")
    np.testing.assert_allclose(_logits(fp32 / "model.onnx", ids, mask), reference, atol=1e-5)
    data_size = (fp32 / "model.onnx_data").stat().st_size

    fp16 = large_copy("fp16")
    export._convert(fp16 / "model.onnx", "fp16", per_channel=False, log=lambda m: None)
    assert set(external_data_locations(fp16 / "model.onnx")) == {"model.onnx_data"}
    assert (fp16 / "model.onnx_data").stat().st_size < 0.6 * data_size  # fp16 tensors, not appended to fp32 ones
    graph = onnx.load(str(fp16 / "model.onnx")).graph
    assert any(t.data_type == onnx.TensorProto.FLOAT16 for t in graph.initializer)
    assert {p.name for p in fp16.glob("model.onnx*")} == {"model.onnx", "model.onnx_data"}

    split = large_copy("split")
    export._split_outliers(split / "model.onnx", ["layer.0/"], 2, log=lambda m: None)
    assert {p.name for p in split.iterdir() if "onnx" in p.name} == {"model.onnx", "model.onnx_data"}
    np.testing.assert_allclose(_logits(split / "model.onnx", ids, mask), reference, atol=1e-4)

    fused = large_copy("fused")
    export._fuse(fused / "model.onnx", json.loads((fused / "config.json").read_text()), log=lambda m: None)
    assert {p.name for p in fused.iterdir() if "onnx" in p.name} == {"model.onnx", "model.fused.onnx.data"}
    np.testing.assert_allclose(_logits(fused / "model.onnx", ids, mask), reference, atol=1e-4)

    int8_large = large_copy("int8-large")  # int8 tensors past the limit still: onnxruntime's quantizer writes them out
    export._convert(int8_large / "model.onnx", "int8", per_channel=True, log=lambda m: None)
    assert {p.name for p in int8_large.iterdir() if "onnx" in p.name} == {"model.onnx", "model.int8.onnx.data"}
    assert (_logits(int8_large / "model.onnx", ids, mask).argmax(-1) == reference.argmax(-1)).mean() >= 0.9

    int8 = large_copy("int8")
    monkeypatch.setattr(export, "PROTOBUF_LIMIT", 1_800_000_000)  # the int8 graph fits in one file
    export._convert(int8 / "model.onnx", "int8", per_channel=True, log=lambda m: None)
    assert external_data_locations(int8 / "model.onnx") == []
    assert {p.name for p in int8.iterdir() if "onnx" in p.name} == {"model.onnx"}  # the fp32 data is gone
    got = _logits(int8 / "model.onnx", ids, mask)
    assert (got.argmax(-1) == reference.argmax(-1)).mean() >= 0.9


@pytest.mark.torch
def test_validation_and_run_keep_to_the_position_embeddings(tmp_path):
    """A model with 16 positions whose tokenizer's model_max_length is missing (1e30): validation truncated to
    the tokenizer's length, so the check itself overflowed the position embeddings ("expanded size ... must
    match"); and a run is cut into windows of the model's 16."""
    import transformers as tf

    from tiny_models import LABELS, build_tokenizer

    tok = tf.BertTokenizerFast(tokenizer_object=build_tokenizer("bert"), unk_token="[UNK]", pad_token="[PAD]",
                               cls_token="[CLS]", sep_token="[SEP]", mask_token="[MASK]")
    config = tf.BertConfig(hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=64,
                           vocab_size=tok.vocab_size, max_position_embeddings=16,
                           id2label=dict(enumerate(LABELS)), label2id={x: i for i, x in enumerate(LABELS)})
    ckpt = tmp_path / "short"
    tf.BertForTokenClassification(config).save_pretrained(ckpt)
    tok.save_pretrained(ckpt)
    assert json.loads((ckpt / "tokenizer_config.json").read_text())["model_max_length"] > 1e20
    res = CliRunner().invoke(cli, ["export", str(ckpt), "-o", str(tmp_path / "out")])
    assert res.exit_code == 0, res.output
    assert "max length 16" in res.output
    tagged = Tagger.load(tmp_path / "out").tag([" ".join(varied_sentences(6, seed=3))])
    assert tagged[0] is not None


@pytest.mark.torch
def test_a_checkpoint_whose_tokenizer_cannot_load_is_one_line(tmp_path, checkpoint_factory, monkeypatch):
    """No tokenizer files at all, or only a SentencePiece model without the sentencepiece package (DeBERTa-v3 as
    the hub has it): transformers failed deep inside, with "unexpected TypeError" / "AttributeError"."""
    import shutil

    import fasttag.export

    bare = tmp_path / "bare"
    bare.mkdir()
    for f in ("config.json", "model.safetensors"):
        shutil.copy(checkpoint_factory("bert") / f, bare / f)
    res = CliRunner().invoke(cli, ["export", str(bare), "-o", str(tmp_path / "out")])
    assert res.exit_code == 1 and f"Error: cannot load the tokenizer of {bare}" in res.output, res.output
    assert "fasttag needs the model's tokenizer files" in res.output and "unexpected" not in res.output
    (bare / "spm.model").write_bytes(b"a SentencePiece model")
    real = fasttag.export.importlib.util.find_spec
    monkeypatch.setattr(fasttag.export.importlib.util, "find_spec",
                        lambda name, *a: None if name == "sentencepiece" else real(name, *a))
    res = CliRunner().invoke(cli, ["export", str(bare), "-o", str(tmp_path / "out")])
    assert res.exit_code == 1, res.output
    assert f"{bare} has no tokenizer.json, and converting its spm.model needs the sentencepiece package: pip " \
        "install sentencepiece protobuf" in res.output
    assert not (tmp_path / "out").exists()
