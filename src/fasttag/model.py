"""An exported model folder: ONNX graph, tokenizer, labels and the `fasttag.json` manifest."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from fasttag.errors import ModelError

MANIFEST = "fasttag.json"
ONNX_FILE = "model.onnx"
TOKENIZER_FILE = "tokenizer.json"
DEFAULT_MODEL_ENV = "FASTTAG_MODEL"
ALLOWED_INPUTS = {"input_ids", "attention_mask", "token_type_ids"}


def default_model_dir() -> Path:
    """The embedded default model (or $FASTTAG_MODEL): inside the installed package, else the checkout's export/."""
    env = os.environ.get(DEFAULT_MODEL_ENV)
    if env:
        return Path(env)
    packaged = Path(__file__).parent / "default_model"
    if (packaged / ONNX_FILE).exists():
        return packaged
    return Path(__file__).resolve().parents[2] / "export" / "default"


@dataclass
class ModelBundle:
    """Everything the run path needs from an export folder; loading it needs neither torch nor transformers."""

    path: Path
    labels: list[str]
    max_length: int
    manifest: dict = field(default_factory=dict)

    @property
    def onnx_path(self) -> Path:
        return self.path / ONNX_FILE

    @property
    def precision(self) -> str:
        return str(self.manifest.get("precision", "fp32"))

    @classmethod
    def load(cls, path: str | os.PathLike | None = None) -> "ModelBundle":
        explicit = path is not None
        p = Path(path) if explicit else default_model_dir()
        if not p.exists():
            if explicit:
                raise ModelError(f"model folder {p} does not exist")
            raise ModelError(
                f"no model given and the embedded default model is missing ({p}); "
                "pass --model DIR with a folder made by 'fasttag export'"
            )
        if not p.is_dir():
            raise ModelError(f"model path {p} is not a folder (expected a folder made by 'fasttag export')")
        missing = [f for f in (ONNX_FILE, TOKENIZER_FILE) if not (p / f).is_file()]
        if missing:
            raise ModelError(f"model folder {p} lacks {', '.join(missing)}; is it a folder made by 'fasttag export'?")
        manifest = _read_json(p / MANIFEST) if (p / MANIFEST).exists() else {}
        config = _read_json(p / "config.json") if (p / "config.json").exists() else {}
        labels = _labels_from(config, manifest, p)
        max_length = int(manifest.get("max_length") or max_length_from(config, p))
        return cls(path=p, labels=labels, max_length=max_length, manifest=manifest)

    def file_sizes(self) -> dict[str, int]:
        return {f.name: f.stat().st_size for f in sorted(self.path.iterdir()) if f.is_file()}


def _read_json(path: Path) -> dict:
    try:
        with open(path, encoding="utf-8") as fh:
            data = json.load(fh)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelError(f"cannot read {path}: {exc}") from None
    if not isinstance(data, dict):
        raise ModelError(f"{path} is not a JSON object")
    return data


def _labels_from(config: dict, manifest: dict, path: Path) -> list[str]:
    id2label = config.get("id2label")
    from_config = None
    if id2label:
        try:
            from_config = [id2label[k] for k in sorted(id2label, key=int)]
        except (ValueError, TypeError):
            raise ModelError(f"{path / 'config.json'}: id2label keys must be integers") from None
        if sorted(int(k) for k in id2label) != list(range(len(id2label))):
            raise ModelError(f"{path / 'config.json'}: id2label ids must be 0..{len(id2label) - 1}")
    from_manifest = manifest.get("labels")
    if from_config and from_manifest and list(from_manifest) != from_config:
        raise ModelError(
            f"{path}: the labels in {MANIFEST} ({from_manifest}) disagree with config.json's id2label "
            f"({from_config}); re-export the model"
        )
    labels = from_config or from_manifest
    if not labels:
        raise ModelError(f"{path}: no labels found (neither config.json id2label nor {MANIFEST} labels)")
    return [str(x) for x in labels]


def max_length_from(config: dict, path: Path) -> int:
    """The longest input the model takes: tokenizer_config's model_max_length and the position embeddings."""
    limits = []
    tok_cfg = path / "tokenizer_config.json"
    if tok_cfg.exists():
        mml = _read_json(tok_cfg).get("model_max_length")
        if isinstance(mml, (int, float)) and 0 < mml < 1_000_000:
            limits.append(int(mml))
    mpe = config.get("max_position_embeddings")
    if isinstance(mpe, int) and mpe > 0:
        offset = (config.get("pad_token_id", 1) + 1) if config.get("model_type") in _OFFSET_POSITION_MODELS else 0
        limits.append(mpe - offset)
    return min(limits) if limits else 512


# Models whose position ids start after the padding index, so max_position_embeddings overstates the length.
_OFFSET_POSITION_MODELS = {"roberta", "xlm-roberta", "camembert", "longformer", "xlm-roberta-xl", "data2vec-text"}


@dataclass(frozen=True)
class LabelScheme:
    """How each label id groups into entities, as the transformers pipeline does (B-/I- prefixes)."""

    labels: list[str]
    tag_id: np.ndarray  # label id -> id of its tag (label without B-/I-)
    is_begin: np.ndarray  # label id -> True for B-X
    group_label_id: np.ndarray  # label id -> index into group_labels (pipeline's label.split("-", 1)[-1])
    group_labels: list[str]
    ignored_group: np.ndarray  # group label index -> True if it is not an entity ("O")

    @classmethod
    def from_labels(cls, labels: list[str], ignore: tuple[str, ...] = ("O",)) -> "LabelScheme":
        tags: dict[str, int] = {}
        groups: dict[str, int] = {}
        tag_id, is_begin, group_id = [], [], []
        for label in labels:
            if label.startswith("B-"):
                bi, tag = True, label[2:]
            elif label.startswith("I-"):
                bi, tag = False, label[2:]
            else:
                bi, tag = False, label
            tag_id.append(tags.setdefault(tag, len(tags)))
            is_begin.append(bi)
            group_id.append(groups.setdefault(label.split("-", 1)[-1], len(groups)))
        group_labels = list(groups)
        return cls(
            labels=list(labels),
            tag_id=np.asarray(tag_id, dtype=np.int64),
            is_begin=np.asarray(is_begin, dtype=bool),
            group_label_id=np.asarray(group_id, dtype=np.int64),
            group_labels=group_labels,
            ignored_group=np.asarray([g in ignore for g in group_labels], dtype=bool),
        )


def check_source_model(model: str) -> None:
    """A model to train or export: a local folder with config.json, or else a hub name.

    Fails at once (instead of after the hub's retries) for a path that does not exist or a folder
    that is not a transformers model.
    """
    p = Path(model).expanduser()
    if p.is_dir():
        if not (p / "config.json").is_file():
            raise ModelError(f"{model} has no config.json: not a transformers model folder")
        return
    if p.exists():
        raise ModelError(f"{model} is a file; give a model folder or a hub name")
    if model.startswith(("/", "./", "../", "~", ".\\")) or model in (".", ".."):
        raise ModelError(f"model folder {model} does not exist")


def is_within(path: str | Path, folder: str | Path) -> bool:
    """Whether `path` is `folder` or lies inside it (after resolving links and relative parts)."""
    p, f = Path(path).resolve(), Path(folder).resolve()
    return p == f or f in p.parents
