"""An exported model folder: ONNX graph, tokenizer, labels and the `fasttag.json` manifest."""

from __future__ import annotations

import json
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from fasttag.errors import ModelError, UsageError, first_line
from fasttag.schemes import OUTSIDE, Kind, SpanTable, split_label

if TYPE_CHECKING:
    from fasttag.schemes import Task

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


# The forms a model given to --model comes in (fasttag.resolve tells them apart).
MODEL_FORMS = ("default", "export", "onnx", "checkpoint", "hub")


@dataclass(frozen=True)
class ModelOrigin:
    """What `--model` named, and where the folder that runs it came from."""

    form: str  # one of MODEL_FORMS
    name: str  # as given: a folder, a hub id (the default model: its folder)
    commit: str | None = None  # a hub model's resolved commit
    cache_key: str | None = None  # the export cache's entry (checkpoints and hub ids)
    exported: bool = False  # exported by this load (else found in the cache)

    def describe(self, precision: str) -> str:
        """As a command's first line tells it: `dslim/bert-base-NER @ 1a2b3c4 (hub, exported to the cache as fp32)`."""
        name = f"{self.name} @ {self.commit[:7]}" if self.commit else self.name
        if self.form in ("checkpoint", "hub"):
            how = f"exported to the cache as {precision}" if self.exported else f"{precision} export from the cache"
            return f"{name} ({self.form}, {how})"
        what = {"default": "embedded default model", "export": "export folder",
                "onnx": "ONNX folder without fasttag.json"}.get(self.form, self.form)
        return f"{name} ({what}, {precision})"


@dataclass
class ModelBundle:
    """Everything the run path needs from an export folder; loading it needs neither torch nor transformers."""

    path: Path
    labels: list[str]
    max_length: int
    manifest: dict = field(default_factory=dict)
    origin: ModelOrigin | None = None  # what --model named (None: a folder loaded as it is)

    @property
    def onnx_path(self) -> Path:
        return self.path / ONNX_FILE

    @property
    def precision(self) -> str:
        """The manifest's precision; without one, what the graph shows (`graph_precision`), else "unknown"."""
        if self.manifest.get("precision"):
            return str(self.manifest["precision"])
        return graph_precision(self.onnx_path) or "unknown"

    @property
    def task(self) -> Task:
        """The model's task: the manifest's ``kind`` and ``scheme`` where it records them (checked against the
        labels), else detected from the labels (older exports, folders other tools exported)."""
        from fasttag.schemes import SchemeError, recorded_task

        try:
            return recorded_task(self.manifest, self.labels, where=f"the labels of {self.path}")
        except SchemeError as exc:
            raise ModelError(str(exc)) from exc

    def describe(self) -> str:
        """Which model this is and in what form it was found, as each command's first line says it."""
        return (self.origin or ModelOrigin("export", str(self.path))).describe(self.precision)

    @classmethod
    def load(cls, path: str | os.PathLike | None = None, *, revision: str | None = None,
             precision: str | None = None, device: str = "auto", log=None) -> ModelBundle:
        """The model `path` names: an export folder, an ONNX folder, a checkpoint folder or a hub id (see
        `fasttag.resolve`; the last two are exported once into fasttag's cache); None: the default model."""
        from fasttag.resolve import resolve

        folder, origin = resolve(None if path is None else os.fspath(path), revision=revision, precision=precision,
                                 device=device, log=log)
        bundle = cls.from_folder(folder, explicit=path is not None)
        bundle.origin = origin
        ready_made = origin.form in ("default", "export", "onnx")  # --precision cannot change an ONNX folder
        if precision and ready_made and bundle.precision not in ("unknown", precision):
            name = "the default model" if origin.form == "default" else origin.name
            raise UsageError(
                f"--precision {precision}: {name} is an ONNX model in {bundle.precision} already; --precision chooses "
                f"the export fasttag makes of a checkpoint or hub id (for {precision}, export the checkpoint: "
                f"fasttag export CHECKPOINT -o DIR --precision {precision})")
        return bundle

    @classmethod
    def from_folder(cls, path: str | os.PathLike, explicit: bool = True) -> ModelBundle:
        """An ONNX folder as it is (an export, or one with model.onnx, config.json and tokenizer.json)."""
        p = Path(path)
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
        check_contained(p)  # before anything (onnxruntime above all) opens a file a hostile folder points at
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
        raise ModelError(f"cannot read {path}: {exc}") from exc
    if not isinstance(data, dict):
        raise ModelError(f"{path} is not a JSON object")
    return data


def _labels_from(config: dict, manifest: dict, path: Path) -> list[str]:
    id2label = config.get("id2label")
    from_config = None
    if id2label:
        try:
            from_config = [id2label[k] for k in sorted(id2label, key=int)]
        except (ValueError, TypeError) as exc:
            raise ModelError(f"{path / 'config.json'}: id2label keys must be integers") from exc
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
        kind = config.get("model_type")
        pad = config.get("pad_token_id")
        pad = pad if isinstance(pad, int) and kind != "mpnet" else 1  # MPNet's embeddings fix their padding index at 1
        offset = (pad + 1) if kind in _OFFSET_POSITION_MODELS else 0
        limits.append(mpe - offset)
    return min(limits) if limits else 512


# Models whose position ids start after the padding index, so max_position_embeddings overstates the length.
# (transformers' models with a token-classification head whose embeddings call create_position_ids_from_input_ids)
_OFFSET_POSITION_MODELS = {"roberta", "xlm-roberta", "camembert", "longformer", "xlm-roberta-xl", "data2vec-text",
                           "mpnet", "ibert", "luke", "esm", "roberta-prelayernorm", "xmod", "lilt", "markuplm",
                           "layoutlmv3"}


@dataclass(frozen=True)
class LabelScheme:
    """How each label id groups into entities (by the span rule of `fasttag.schemes`) and reads at each level.

    A span task (any label with a B-/I-/E-/S-/L-/U- prefix) groups words into entities by
    `SpanTable.starts`: for IOB2 labels exactly the transformers pipeline's grouping, for BIOES/BILOU
    the deliberate difference that ``S-X`` is one entity and ``B-X ... E-X`` one entity. Its plain
    labels (``O``, and any other label without a prefix) are outside every entity. A tag task (no
    prefixes: part-of-speech tags, say) has no entities; each of its labels is a word's tag.
    """

    labels: list[str]
    kind: Kind  # "span" or "tag" (see fasttag.schemes)
    spans: SpanTable
    group_label_id: np.ndarray  # label id -> index into group_labels: its type (PER for B-PER, E-PER and S-PER)
    group_labels: list[str]
    ignored_group: np.ndarray  # group label index -> True if it is not an entity (O, and plain labels of a span task)
    ignored_label: np.ndarray  # label id -> True if it is in `ignore` (the pipeline's ignore_labels, full labels)
    # label id -> whether a whitespace word's trailing punctuation with this label is split off as a word of its own:
    # where it is outside the entity in a span task; always in a tag task (punctuation is a word there, as in CoNLL)
    splits_trailing: np.ndarray
    word_labels: list[str]  # the labels of the words level: O, B-X, I-X per type (span task), the labels (tag task)
    word_begin: np.ndarray  # label id -> index into word_labels for a word that starts its entity (B-X; O; a tag)
    word_inside: np.ndarray  # label id -> index into word_labels for a word inside an entity (I-X; O; a tag)

    @classmethod
    def from_labels(cls, labels: Sequence[str], ignore: tuple[str, ...] = ("O",), kind: Kind | None = None
                    ) -> LabelScheme:
        """The scheme of a model's labels (id order); `kind` defaults to span when any label has a prefix."""
        labels = [str(x) for x in labels]
        split = [split_label(x) for x in labels]
        if kind is None:
            kind = "span" if any(prefix is not None for prefix, _ in split) else "tag"
        groups: dict[str, int] = {}
        group_id = [groups.setdefault(kind_ if prefix else label, len(groups))
                    for label, (prefix, kind_) in zip(labels, split, strict=True)]
        group_labels = list(groups)
        plain = {label for label, (prefix, _) in zip(labels, split, strict=True) if prefix is None}
        # a span task's plain labels are outside every entity (the span rule); a tag task has no entities, and
        # grouping its words (which the entities level refuses) gives each word a span of its own
        ignored_group = [g in ignore or (kind == "span" and g in plain) for g in group_labels]
        ignored_label = np.asarray([x in ignore for x in labels], dtype=bool)
        if kind == "span":
            word_labels: list[str] = []
            begin: list[int] = []
            inside: list[int] = []
            for label, g in zip(labels, group_id, strict=True):
                if ignored_group[g]:
                    names = (OUTSIDE if label in ignore else label,) * 2
                else:
                    names = ("B-" + group_labels[g], "I-" + group_labels[g])
                for name, ids in zip(names, (begin, inside), strict=True):
                    if name not in word_labels:
                        word_labels.append(name)
                    ids.append(word_labels.index(name))
            splits = np.asarray([ignored_group[g] for g in group_id], dtype=bool)
        else:
            word_labels = list(labels)
            begin = inside = list(range(len(labels)))
            splits = np.ones(len(labels), dtype=bool)
        return cls(
            labels=labels,
            kind=kind,
            spans=SpanTable.from_labels(labels),
            group_label_id=np.asarray(group_id, dtype=np.int64),
            group_labels=group_labels,
            ignored_group=np.asarray(ignored_group, dtype=bool),
            ignored_label=ignored_label,
            splits_trailing=splits,
            word_labels=word_labels,
            word_begin=np.asarray(begin, dtype=np.int64),
            word_inside=np.asarray(inside, dtype=np.int64),
        )


# A hub model id: a name, or namespace/name, of letters, digits and ._- (a path never is one).
_HUB_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*(/[A-Za-z0-9][A-Za-z0-9._-]*)?$")
HUB_OFFLINE_ENV = ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")


def check_source_model(model: str) -> None:
    """A model to train or export: a local folder with config.json, or else a hub name.

    Fails at once (instead of after the hub's retries) for a path that does not exist, a name that
    cannot be a hub model, a folder that is not a transformers model, or any name while the hub is
    switched off (HF_HUB_OFFLINE): such a name can only have meant a local folder.
    """
    p = Path(model).expanduser()
    if p.is_dir():
        if not (p / "config.json").is_file():
            raise ModelError(f"{model} has no config.json: not a transformers model folder")
        return
    if p.exists():
        raise ModelError(f"{model} is a file; give a model folder or a hub name")
    if looks_like_path(model):
        raise ModelError(f"model folder {model} does not exist")
    if not _HUB_ID.match(model):
        raise ModelError(f"no local folder {model} exists, and {model!r} cannot be a hub model name")
    offline = next((v for v in HUB_OFFLINE_ENV if os.environ.get(v, "").strip().lower() in ("1", "true", "yes", "on")),
                   None)
    if offline:
        raise ModelError(f"no local folder {model} exists, and the hub is not looked up ({offline} is set)")


def looks_like_path(name: str) -> bool:
    """A name that only a path can have: ./x, ../x, /x, ~/x, .x, a\\b, a/b/c, a/ (hub ids are name or owner/name)."""
    return (name.startswith((".", "/", "~")) or "\\" in name or (os.sep != "/" and os.sep in name)
            or name.count("/") > 1 or name.endswith("/"))


def source_display(manifest: dict) -> str | None:
    """The manifest's source model as `info` shows it: a hub name as it is, a local folder by its name.

    Exports record a local checkpoint by its folder name (and `source_is_local`); older ones recorded
    the build machine's absolute path, which is shown by its last part too.
    """
    source = manifest.get("source_model")
    if not source:
        return None
    source = str(source)
    if manifest.get("source_is_local") or Path(source).is_absolute() or looks_like_path(source):
        return f"{Path(source).name or source} (a local folder)"
    revision = manifest.get("source_revision")  # the hub commit an export from fasttag's cache was made of
    return f"{source} @ {str(revision)[:7]}" if revision else source


def is_within(path: str | Path, folder: str | Path) -> bool:
    """Whether `path` is `folder` or lies inside it (after resolving links and relative parts)."""
    p, f = Path(path).resolve(), Path(folder).resolve()
    return p == f or f in p.parents


# -- what the ONNX graph itself says (for folders without a manifest, and to check the graph loads) --------
# Operators that only quantized graphs hold (onnxruntime's quantize_dynamic writes the first two).
INT8_OPS = {"DynamicQuantizeLinear", "MatMulInteger", "ConvInteger", "QLinearMatMul", "QLinearConv", "QuantizeLinear",
            "DequantizeLinear", "DynamicQuantizeMatMul", "MatMulIntegerToFloat", "QAttention", "QGemm",
            "QEmbedLayerNormalization"}
_TENSOR_TYPES = {1: "fp32", 10: "fp16", 16: "bf16"}  # onnx.TensorProto.DataType of float initializers


def graph_precision(path: Path) -> str | None:
    """int8, fp16, bf16 or fp32 as the graph's operators and initializers show it; None when it cannot tell.

    Reads the ONNX protobuf's node and initializer headers directly (onnx is not a core dependency):
    quantized operators mean int8; otherwise the float type most initializers have.
    """
    import mmap

    try:
        with open(path, "rb") as fh, mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as buf:
            counts: dict[str, int] = {}
            for num, value in _fields(buf, 0, len(buf)):
                if num != 7 or not isinstance(value, tuple):  # ModelProto.graph
                    continue
                for gnum, gvalue in _fields(buf, *value):
                    if gnum == 1 and isinstance(gvalue, tuple):  # GraphProto.node -> NodeProto.op_type (4)
                        op = next((bytes(buf[a:b]) for n, (a, b) in _strings(buf, gvalue) if n == 4), b"")
                        if op.decode("utf-8", "replace") in INT8_OPS:
                            return "int8"
                    elif gnum == 5 and isinstance(gvalue, tuple):  # GraphProto.initializer -> TensorProto.data_type (2)
                        dtype = next((v for n, v in _fields(buf, *gvalue) if n == 2 and isinstance(v, int)), None)
                        if dtype in _TENSOR_TYPES:
                            counts[_TENSOR_TYPES[dtype]] = counts.get(_TENSOR_TYPES[dtype], 0) + 1
    except (OSError, ValueError, IndexError):
        return None
    return max(counts, key=lambda name: counts[name]) if counts else None


def _varint(buf, i: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        byte = buf[i]
        i += 1
        result |= (byte & 0x7F) << shift
        if byte < 0x80:
            return result, i
        shift += 7
        if shift > 63:
            raise ValueError("bad varint")


def _fields(buf, start: int, end: int):
    """(field number, value) of a protobuf message in buf[start:end].

    The value is an int, or (start, end) of a length-delimited field.
    """
    i = start
    while i < end:
        key, i = _varint(buf, i)
        num, wire = key >> 3, key & 7
        if wire == 0:
            value, i = _varint(buf, i)
            yield num, value
        elif wire == 2:
            n, i = _varint(buf, i)
            if i + n > end:
                raise ValueError("truncated message")
            yield num, (i, i + n)
            i += n
        elif wire in (1, 5):
            i += 8 if wire == 1 else 4
        else:
            raise ValueError(f"unexpected wire type {wire}")
    if i != end:
        raise ValueError("truncated message")


def _strings(buf, span: tuple[int, int]):
    return ((n, v) for n, v in _fields(buf, *span) if isinstance(v, tuple))


def graph_io(path: Path) -> tuple[dict[str, list], dict[str, list]] | None:
    """The graph's inputs and outputs, each name with its shape (an int, a symbolic dim's name, or None per
    dimension); None when the file cannot be read as a graph (onnxruntime then says what is wrong)."""
    import mmap

    try:
        with open(path, "rb") as fh, mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as buf:
            graph = next((v for n, v in _fields(buf, 0, len(buf)) if n == 7 and isinstance(v, tuple)), None)
            if graph is None:
                return None
            found: tuple[dict[str, list], dict[str, list]] = ({}, {})
            initializers: set[str] = set()
            for num, value in _strings(buf, graph):
                if num in (11, 12):  # GraphProto.input, GraphProto.output: ValueInfoProto
                    name, shape = _value_info(buf, value)
                    found[num - 11][name] = shape
                elif num == 5:  # GraphProto.initializer -> TensorProto.name (8)
                    initializers.update(bytes(buf[a:b]).decode("utf-8", "replace")
                                        for n, (a, b) in _strings(buf, value) if n == 8)
            for name in initializers & set(found[0]):  # graphs before IR 4 list their weights as inputs too
                del found[0][name]
            return found
    except (OSError, ValueError, IndexError):
        return None


def _value_info(buf, span: tuple[int, int]) -> tuple[str, list]:
    """ValueInfoProto -> (name, dims): name (1), type (2) -> tensor_type (1) -> shape (2) -> dim (1)."""
    name, dims = "", []
    for num, value in _strings(buf, span):
        if num == 1:
            name = bytes(buf[value[0]:value[1]]).decode("utf-8", "replace")
        elif num == 2:
            for tnum, tensor in _strings(buf, value):
                if tnum != 1:
                    continue
                for snum, shape in _strings(buf, tensor):
                    if snum != 2:
                        continue
                    for dnum, dim in _strings(buf, shape):
                        if dnum == 1:
                            dims.append(_dim(buf, dim))
    return name, dims


def _dim(buf, span: tuple[int, int]) -> int | str | None:
    for num, value in _fields(buf, *span):
        if num == 1 and isinstance(value, int):  # dim_value
            return value
        if num == 2 and isinstance(value, tuple):  # dim_param
            return bytes(buf[value[0]:value[1]]).decode("utf-8", "replace")
    return None


def check_graph(path: Path) -> None:
    """Raise ModelError unless onnxruntime can load the graph (a truncated or corrupt model.onnx fails here)."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL  # loading is the test, not speed
    opts.log_severity_level = 4
    opts.intra_op_num_threads = 1
    try:
        ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    except Exception as exc:
        message = first_line(exc)
        if "NOT_IMPLEMENTED" in message:  # a valid graph with operators only a GPU provider runs (fp16)
            return
        raise ModelError(f"{path} does not load in onnxruntime (truncated or not an ONNX model?): {message}") from exc


# -- a model folder reads nothing outside itself -----------------------------------------------------------
MODEL_FILES = (ONNX_FILE, TOKENIZER_FILE, MANIFEST, "config.json", "tokenizer_config.json")


def check_contained(folder: Path) -> None:
    """Refuse a model folder whose files reach outside it, before onnxruntime or the tokenizer opens them.

    Refused: a file fasttag reads that is a link out of the folder, and ONNX external-data locations that
    are absolute, hold `..`, or lead out of the folder through a link. A Hugging Face cache snapshot's
    links into its own repository's `blobs/` are the cache's layout, and allowed.
    """
    root = folder.resolve()
    allowed = [root]
    if root.parent.name == "snapshots":  # huggingface_hub: snapshots/REV/FILE -> ../../blobs/HASH
        allowed.append(root.parent.parent / "blobs")

    def outside(path: Path) -> bool:
        target = path.resolve()
        return not any(target == a or a in target.parents for a in allowed)

    for name in MODEL_FILES:
        if (folder / name).is_symlink() and outside(folder / name):
            raise ModelError(f"{folder}: {name} is a link to {(folder / name).resolve()}, outside the model folder; "
                             "refused (copy the file into the folder if you trust it)")
    for location in external_data_locations(folder / ONNX_FILE):
        parts = Path(location).parts
        if Path(location).is_absolute() or ".." in parts or not parts or outside(folder / location):
            raise ModelError(f"{folder}: {ONNX_FILE} reads external data from {location!r}, outside the model "
                             "folder; refused (an ONNX model's weights must lie in its own folder)")


def external_data_locations(path: Path) -> list[str]:
    """The `location` of every tensor of the graph stored as external data (initializers, sparse ones, node
    attributes, subgraphs and functions), read from the protobuf without onnx or onnxruntime.

    A file that cannot be read as ONNX's protobuf is refused: onnxruntime must not load what was not checked.
    """
    import mmap

    try:
        with open(path, "rb") as fh:
            if os.fstat(fh.fileno()).st_size == 0:
                return []  # onnxruntime says an empty file is no model
            with mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as buf:
                found: list[str] = []
                for num, value in _fields(buf, 0, len(buf)):
                    if num == 7 and isinstance(value, tuple):  # ModelProto.graph
                        _graph_locations(buf, value, found)
                    elif num == 25 and isinstance(value, tuple):  # ModelProto.functions -> FunctionProto.node (7)
                        for fnum, node in _strings(buf, value):
                            if fnum == 7:
                                _node_locations(buf, node, found)
                return found
    except (ValueError, IndexError) as exc:
        raise ModelError(f"cannot load {path}: it does not load as an ONNX model (truncated or corrupt?): {exc}"
                         ) from exc
    except OSError as exc:
        raise ModelError(f"cannot load {path}: {first_line(exc)}") from exc


def _graph_locations(buf, span: tuple[int, int], found: list[str]) -> None:
    for num, value in _strings(buf, span):
        if num == 1:  # GraphProto.node
            _node_locations(buf, value, found)
        elif num == 5:  # GraphProto.initializer: TensorProto
            _tensor_location(buf, value, found)
        elif num == 15:  # GraphProto.sparse_initializer: SparseTensorProto
            _sparse_locations(buf, value, found)


def _node_locations(buf, span: tuple[int, int], found: list[str]) -> None:
    for num, attribute in _strings(buf, span):
        if num != 5:  # NodeProto.attribute: AttributeProto
            continue
        for anum, value in _strings(buf, attribute):
            if anum in (5, 8):  # t, tensors
                _tensor_location(buf, value, found)
            elif anum in (6, 10):  # g, graphs
                _graph_locations(buf, value, found)
            elif anum in (22, 23):  # sparse_tensor, sparse_tensors
                _sparse_locations(buf, value, found)


def _sparse_locations(buf, span: tuple[int, int], found: list[str]) -> None:
    for num, value in _strings(buf, span):
        if num in (1, 2):  # SparseTensorProto.values, indices: TensorProto
            _tensor_location(buf, value, found)


def _tensor_location(buf, span: tuple[int, int], found: list[str]) -> None:
    """TensorProto.external_data (13): key/value entries (1, 2); its `location` is the file it reads."""
    for num, entry in _strings(buf, span):
        if num != 13:
            continue
        fields = {n: bytes(buf[a:b]).decode("utf-8", "replace") for n, (a, b) in _strings(buf, entry)}
        if fields.get(1) == "location":
            found.append(fields.get(2, ""))
