"""A copy of an export folder with other label names (same graph): BIOES, BILOU and tag-task models for tests."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from fasttag.schemes import SchemeError, detect_task

# As many labels as the tiny models' heads have (tests/tiny_models.py LABELS), in other schemes.
BIOES = ["O", "B-PER", "I-PER", "E-PER", "S-PER", "B-LOC", "I-LOC", "E-LOC", "S-LOC"]
BILOU = ["O", "B-PER", "I-PER", "L-PER", "U-PER", "B-creative-work", "I-creative-work", "L-creative-work",
         "U-creative-work"]
POS = ["NNP", "NN", "VBD", "IN", "DT", ".", "JJ", "PRP", ","]


def relabelled(src: Path, dst: Path, labels: list[str]) -> Path:
    """`src` copied to `dst` with `labels` as its id2label (and manifest labels, kind and scheme)."""
    if dst.exists():
        return dst
    shutil.copytree(src, dst)
    config = json.loads((dst / "config.json").read_text())
    assert len(config["id2label"]) == len(labels)
    config["id2label"] = {str(i): label for i, label in enumerate(labels)}
    config["label2id"] = {label: i for i, label in enumerate(labels)}
    (dst / "config.json").write_text(json.dumps(config, indent=2))
    manifest_path = dst / "fasttag.json"
    if manifest_path.exists():
        manifest = json.loads(manifest_path.read_text())
        manifest["labels"] = list(labels)
        try:
            task = detect_task(labels)
        except SchemeError:  # a label set no model should have: no kind or scheme to record
            manifest.pop("kind", None), manifest.pop("scheme", None)
        else:
            if "kind" in manifest or "scheme" in manifest:
                manifest["kind"], manifest["scheme"] = task.kind, task.scheme
        manifest_path.write_text(json.dumps(manifest, indent=2))
    return dst
