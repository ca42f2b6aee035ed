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
    int8 = export_factory("bert", "int8")
    manifest = json.loads((int8 / "fasttag.json").read_text())
    assert manifest["precision"] == "int8" and manifest["validation"]["argmax_agreement"] >= 0.98
    assert (int8 / "model.onnx").stat().st_size < (export_factory("bert") / "model.onnx").stat().st_size
    texts = varied_sentences(60)
    a = Tagger.load(export_factory("bert")).tag(texts)
    b = Tagger.load(int8).tag(texts)
    same = np.mean([[(e.start, e.end, e.label) for e in x] == [(e.start, e.end, e.label) for e in y] for x, y in zip(a, b)])
    assert same > 0.5


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


def test_manifest_labels_disagreeing_with_config_is_a_model_error(tmp_path, bert_export):
    import shutil

    broken = tmp_path / "broken"
    shutil.copytree(bert_export, broken)
    manifest = json.loads((broken / "fasttag.json").read_text())
    manifest["labels"] = list(reversed(manifest["labels"]))
    (broken / "fasttag.json").write_text(json.dumps(manifest))
    res = CliRunner().invoke(cli, ["info", str(broken)])
    assert res.exit_code == 1 and "disagree" in res.output


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
