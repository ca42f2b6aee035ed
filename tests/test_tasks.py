"""What task a model is (`ModelBundle.task`, `fasttag info`), from its manifest or its labels (issue 16)."""

from __future__ import annotations

import json
import shutil

import pytest
from click.testing import CliRunner

from fasttag.cli import cli
from fasttag.errors import ModelError
from fasttag.model import ModelBundle
from fasttag.schemes import SchemeError, Task, recorded_task

POS = ["DT", "IN", "JJ", "NN", "NNP", "NNS", "VBD", "VBZ", "."]


def relabelled_export(src, dst, labels, *, kind=None, scheme=None, drop_task=False):
    """A copy of an export whose head is read as `labels` (same count), with the manifest's task changed."""
    shutil.copytree(src, dst)
    config = json.loads((dst / "config.json").read_text())
    config["id2label"] = {str(i): label for i, label in enumerate(labels)}
    config["label2id"] = {label: i for i, label in enumerate(labels)}
    (dst / "config.json").write_text(json.dumps(config))
    manifest = json.loads((dst / "fasttag.json").read_text())
    manifest["labels"] = list(labels)
    for key, value in (("kind", kind), ("scheme", scheme)):
        if drop_task:
            manifest.pop(key, None)
        elif value is not None:
            manifest[key] = value
    (dst / "fasttag.json").write_text(json.dumps(manifest))
    return dst


def test_recorded_task_or_detected():
    bioes = ["O", "B-X", "I-X", "E-X", "S-X"]
    assert recorded_task({"kind": "span", "scheme": "bioes"}, bioes) == Task("span", "bioes")
    assert recorded_task(None, ["NN", "VB"]) == Task("tag", "none")
    assert recorded_task({"kind": "span"}, ["O", "B-X", "E-X"]) == Task("span", "bioes")  # incomplete: detected
    assert recorded_task({"kind": "tag", "scheme": "iob2"}, ["O", "B-X"]) == Task("span", "iob2")  # inconsistent
    with pytest.raises(SchemeError, match="not IOB2"):
        recorded_task({"kind": "span", "scheme": "iob2"}, ["O", "B-X", "E-X"])


def test_bundle_task_from_manifest_and_from_labels(tmp_path, bert_export):
    assert ModelBundle.load(bert_export).task == Task("span", "iob2")
    old = relabelled_export(bert_export, tmp_path / "old", POS, drop_task=True)  # an export from before issue 16
    assert ModelBundle.load(old).task == Task("tag", "none")
    bioes = ["O", "B-LOC", "I-LOC", "E-LOC", "S-LOC", "B-PER", "I-PER", "E-PER", "S-PER"]
    recorded = relabelled_export(bert_export, tmp_path / "b", bioes, kind="span", scheme="bioes")
    assert ModelBundle.load(recorded).task == Task("span", "bioes")
    wrong = relabelled_export(bert_export, tmp_path / "w", bioes, kind="span", scheme="iob2")
    with pytest.raises(ModelError, match="not IOB2 labels"):
        ModelBundle.load(wrong).task  # noqa: B018


def test_info_shows_the_task(tmp_path, bert_export):
    res = CliRunner().invoke(cli, ["info", str(bert_export)])
    assert res.exit_code == 0, res.output
    assert "task:       span (IOB2)" in res.output
    pos = relabelled_export(bert_export, tmp_path / "pos", POS, drop_task=True)
    res = CliRunner().invoke(cli, ["info", str(pos)])
    assert res.exit_code == 0 and "task:       tag (9 labels)" in res.output, res.output
    data = json.loads(CliRunner().invoke(cli, ["info", str(pos), "--json"]).output)
    assert data["task"] == {"kind": "tag", "scheme": "none"}
