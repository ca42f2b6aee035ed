"""`fasttag export`: a transformers checkpoint -> ONNX (optimum), validated against PyTorch, optionally int8/fp16."""

from __future__ import annotations

import contextlib
import importlib.util
import json
import shutil
import tempfile
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from fasttag import __version__
from fasttag.errors import MissingExtraError, ModelError, UsageError, ValidationError, first_line
from fasttag.infer import CPU_DISABLED_OPTIMIZERS
from fasttag.model import (
    MANIFEST,
    ONNX_FILE,
    TOKENIZER_FILE,
    _read_json,
    check_source_model,
    external_data_locations,
    is_within,
    max_length_from,
)
from fasttag.options import PRECISIONS, Precision
from fasttag.schemes import SchemeError, recorded_task

DEFAULT_OPSET = 18
FP32_ATOL = 1e-3
MIN_AGREEMENT = 0.98  # int8 / fp16 argmax agreement with PyTorch
DEFAULT_OUTLIER_CHANNELS = 8  # --split-outliers: input channels of each split MatMul multiplied in fp32
CALIBRATION_TEXTS = 512  # generated sentences (fasttag.synthetic) the outlier channels are found on

VALIDATION_TEXTS = [
    "Angela Merkel met Emmanuel Macron in Paris on Tuesday.",
    "Apple Inc. opened a new office in São Paulo, Brazil, in 2021.",
    "The European Central Bank raised rates by 0.25% to 4.5%.",
    "Dr. Jean-Luc Picard (born 2305) commanded the U.S.S. Enterprise.",
    "東京 is the capital of Japan; 北京 is the capital of China.",
    "Zoë Ådahl-Müller flew from Zürich to Reykjavík via Köln.",
    "@nasa posted 🚀 photos of Mars at 10:45 UTC #space",
    "Microsoft's CEO Satya Nadella spoke at the World Economic Forum in Davos.",
    "The 2022 FIFA World Cup final in Lusail ended 3-3 between Argentina and France.",
    "ca. 1,200 km north-east of New York lies Halifax, Nova Scotia.",
    "Sentence without any entity at all.",
    "UNITED NATIONS, Nov 28 (Reuters) - Security Council members voted on Friday.",
]


@dataclass
class Validation:
    max_abs_diff: float
    argmax_agreement: float
    tokens: int
    provider: str
    passed: bool

    def as_dict(self) -> dict:
        return {
            "max_abs_logit_diff": self.max_abs_diff,
            "argmax_agreement": self.argmax_agreement,
            "tokens": self.tokens,
            "provider": self.provider,
            "passed": self.passed,
        }


def _require_train_extra():
    try:
        import torch  # noqa: F401
        import transformers  # noqa: F401
        from optimum.exporters.onnx import main_export  # noqa: F401
    except ImportError as exc:  # the error names every module of the extra that is missing, not only this one
        raise MissingExtraError("train", "fasttag export", exc.name or "optimum") from exc


def check_token_classification(config: dict, model: str) -> None:
    """Refuse a checkpoint without a token-classification head (a bare encoder, a sequence classifier).

    Its config names the head in `architectures` (...ForTokenClassification) and the labels in
    `id2label`; a bare `BertModel` has neither, and exporting it would give a random head.
    """
    architectures = [str(a) for a in config.get("architectures") or []]
    if architectures and not any(a.endswith("ForTokenClassification") for a in architectures):
        why = f"its architecture is {', '.join(architectures)}"
    elif not config.get("id2label"):
        why = "its config.json has no id2label labels"
    else:
        return
    raise ModelError(f"{model} is not a token-classification checkpoint ({why}); fine-tune it for token "
                     f"classification first with 'fasttag train --model {model} --train FILE --output-dir DIR', "
                     "then export DIR")


def export(
    model: str,
    out_dir: str | Path,
    precision: Precision = "fp32",
    opset: int = DEFAULT_OPSET,
    overwrite: bool = False,
    per_channel: bool = True,
    validate: bool = True,
    log=print,
    keep_fp32: Sequence[str] = (),
    reduce_range: bool = False,
    run_max_length: int | None = None,
    run_stride: int | None = None,
    fuse: bool = False,
    split_outliers: Sequence[str] = (),
    outlier_channels: int = DEFAULT_OUTLIER_CHANNELS,
) -> dict:
    """Export `model` to `out_dir`; returns the manifest written to out_dir/fasttag.json.

    int8 only: `keep_fp32` names parts of the graph left unquantized (each a substring of the names
    of the MatMul nodes to keep, e.g. ``layer.0/`` for the first encoder layer), `reduce_range`
    quantizes weights to 7 bits, and `split_outliers` names MatMuls (by the same substrings) whose input's
    `outlier_channels` largest channels (calibrated on fasttag's generated sentences) are multiplied in fp32 and
    the rest in int8 (see `_split_outliers`). `run_max_length`/`run_stride` record the window `run` uses for this
    model when none is given (the manifest's ``run`` entry). `fuse` runs onnxruntime's transformer optimizer
    (attention, layer-norm and GELU fusions) on the fp32 graph before any conversion; the manifest's
    ``fusions`` counts the fused operators.
    """
    if (keep_fp32 or reduce_range or split_outliers) and precision != "int8":
        raise UsageError("--keep-fp32, --split-outliers and --reduce-range apply to --precision int8 only")
    if split_outliers and outlier_channels < 1:
        raise UsageError(f"--outlier-channels must be at least 1, got {outlier_channels}")
    if run_max_length is not None and run_max_length < 8:
        raise UsageError(f"--run-max-length must be at least 8, got {run_max_length}")
    if run_stride is not None and run_stride < 0:
        raise UsageError(f"--run-stride must be at least 0, got {run_stride}")
    if precision not in PRECISIONS:
        raise UsageError(f"--precision must be one of {', '.join(PRECISIONS)}")
    check_source_model(model)
    if Path(model).expanduser().is_dir():
        from fasttag.resolve import check_no_remote_code

        config = _read_json(Path(model).expanduser() / "config.json")
        check_no_remote_code(config, model, Path(model).expanduser())  # custom code is never run
        check_token_classification(config, model)
    out = Path(out_dir)
    if Path(model).exists() and is_within(model, out):
        raise UsageError(f"output folder {out} is, or holds, the model folder {model}: "
                         "exporting there would delete the model; choose another folder")
    if out.exists() and (not out.is_dir() or any(out.iterdir())) and not overwrite:
        raise UsageError(f"output folder {out} is not empty; pass --overwrite to replace it")
    _require_train_extra()
    import transformers
    from optimum.exporters.onnx import main_export

    if Path(model).expanduser().is_dir():
        check_pickle_weights(Path(model).expanduser(), model, log)
    out.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    work.chmod(0o755)
    try:
        local = Path(model).is_dir()
        log(f"exporting {model} to ONNX (opset {opset}) ...")
        try:
            with warnings.catch_warnings(), _quiet_logs():
                warnings.simplefilter("ignore")  # torch.onnx tracer warnings are noise here
                main_export(
                    model,
                    work,
                    task="token-classification",
                    opset=opset,
                    do_validation=False,
                    local_files_only=local,
                )
        except OSError as exc:
            first = first_line(exc)
            if not local:  # a hub name, or a mistyped folder: say the local part first
                raise ModelError(f"no local folder {model} exists, and the hub did not provide it: {first}") from exc
            raise ModelError(f"cannot export {model}: {first}") from exc
        except (ValueError, KeyError) as exc:
            raise ModelError(f"cannot export {model}: {first_line(exc)}") from exc
        if not (work / TOKENIZER_FILE).exists():
            tok = _fast_tokenizer(model, local)
            if not tok.is_fast:
                raise ModelError(f"{model} has no fast tokenizer; fasttag needs tokenizer.json")
            tok.save_pretrained(work)
        fp32_path = work / ONNX_FILE
        fusions = _fuse(fp32_path, json.loads((work / "config.json").read_text()), log) if fuse else None
        if precision != "fp32":
            _convert(fp32_path, precision, per_channel, log, keep_fp32=tuple(keep_fp32), reduce_range=reduce_range,
                     fused=fusions is not None, split_outliers=tuple(split_outliers), outlier_channels=outlier_channels)
        for location in set(external_data_locations(fp32_path)):  # torch.onnx writes a large model's tensors
            if is_within(work / location, work) and (work / location).is_file():  # 0600: readable by whoever
                shutil.copymode(fp32_path, work / location)                      # can read the graph
        config = json.loads((work / "config.json").read_text())
        check_token_classification(config, model)  # a hub model, seen only now
        labels = [config["id2label"][k] for k in sorted(config["id2label"], key=int)]
        try:  # what `fasttag train` recorded, else what the labels say
            task = recorded_task(config.get("fasttag_task"), labels, where=f"the labels of {model}")
        except SchemeError as exc:
            raise ModelError(f"cannot export {model}: {exc}") from exc
        validation = None
        if validate:
            validation = validate_against_torch(model, work / ONNX_FILE, precision, local)
            log(
                f"validation ({validation.provider}, {validation.tokens} tokens): max |logit diff| "
                f"{validation.max_abs_diff:.2e}, argmax agreement {validation.argmax_agreement:.2%}"
            )
        model_max = max_length_from(config, work)
        if run_max_length is not None and run_max_length > model_max:
            raise UsageError(f"--run-max-length {run_max_length} exceeds the model's maximum of {model_max}")
        run_window = {k: v for k, v in (("max_length", run_max_length), ("stride", run_stride)) if v is not None}
        manifest = {
            "format": 1,
            "task": "token-classification",
            "kind": task.kind,  # span or tag (fasttag.schemes)
            "scheme": task.scheme,
            "labels": labels,
            "max_length": model_max,
            "precision": precision,
            "opset": opset,
            # a local checkpoint by its folder name: the build machine's paths mean nothing elsewhere
            "source_model": Path(model).resolve().name if local else model,
            "source_is_local": local,
            "validation": validation.as_dict() if validation else None,
            "fasttag_version": __version__,
            "transformers_version": transformers.__version__,
        }
        if precision == "int8":
            quantization: dict[str, Any] = {"per_channel": per_channel, "reduce_range": reduce_range,
                                            "kept_fp32": list(keep_fp32)}
            if split_outliers:
                quantization.update(split_outliers=list(split_outliers), outlier_channels=outlier_channels,
                                    calibration=f"{CALIBRATION_TEXTS} generated sentences")
            manifest["quantization"] = quantization
        if fusions is not None:
            manifest["fusions"] = fusions
        if run_window:
            manifest["run"] = run_window  # the window `run` uses unless told (Tagger)
        (work / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
        if validation and not validation.passed:
            limit = (
                f"max |diff| <= {FP32_ATOL} and 100% agreement" if precision == "fp32"
                else f">= {MIN_AGREEMENT:.0%} agreement"
            )
            raise ValidationError(
                f"the {precision} ONNX model disagrees with PyTorch (max |logit diff| {validation.max_abs_diff:.2e}, "
                f"argmax agreement {validation.argmax_agreement:.2%}; required: {limit}); nothing written to {out}"
            )
        if out.exists():
            shutil.rmtree(out) if out.is_dir() else out.unlink()
        work.rename(out)
        return manifest
    finally:
        if work.exists():
            shutil.rmtree(work, ignore_errors=True)


def check_pickle_weights(folder: Path, model: str, log) -> None:
    """Weights are read so that they cannot run code: safetensors when the checkpoint has them (transformers
    prefers them), else pickle weights (pytorch_model*.bin) only through torch.load(weights_only=True), which
    unpickles tensors and nothing else. A pickle holding anything more is refused here, with the reason."""
    import pickle

    import torch

    from fasttag.resolve import _PYTORCH_BIN, weight_files

    weights = weight_files(sorted(f.name for f in folder.iterdir() if f.is_file()))
    pickles = [n for n in weights if _PYTORCH_BIN.match(n) and n.endswith(".bin")]
    if not pickles:
        return
    log(f"{model} has pickle weights only ({', '.join(pickles)}): loading them with torch.load(weights_only=True), "
        "which loads tensors and runs no code")
    for name in pickles:
        try:
            torch.load(folder / name, map_location="cpu", weights_only=True, mmap=True)
        except (pickle.UnpicklingError, RuntimeError, ValueError, EOFError, OSError) as exc:
            text = str(exc)
            # torch names what the pickle asked for ("unsupported GLOBAL posix.system"); its first line is advice
            why = next((line.strip().rstrip(".") for line in text.splitlines() if "GLOBAL" in line.upper()),
                       first_line(exc)[:200])
            raise ModelError(f"{model}: {name} is refused: it holds more than tensors, and torch.load(weights_only="
                             f"True) does not run pickled code ({why}); convert it to safetensors only if you trust "
                             "it") from exc


@contextlib.contextmanager
def _quiet_logs():
    """Library warnings that are not the user's business during export (deprecations, generic advice).

    transformers' own are quieted only where it is already imported: quantizing and converting an ONNX graph
    (`_convert`) need onnxruntime and onnx alone."""
    import logging
    import sys

    transformers = sys.modules.get("transformers")
    root = logging.getLogger()
    level = root.level
    verbosity = transformers.logging.get_verbosity() if transformers else None
    root.setLevel(logging.ERROR)
    if transformers:
        transformers.logging.set_verbosity_error()
    try:
        yield
    finally:
        root.setLevel(level)
        if transformers and verbosity is not None:
            transformers.logging.set_verbosity(verbosity)


# model types whose encoder layers onnxruntime's transformer optimizer fuses as BERT's (its model_type "bert")
FUSABLE_MODEL_TYPES = ("bert", "roberta", "xlm-roberta", "camembert", "electra", "distilbert")


def _fuse(path: Path, config: dict, log) -> dict[str, int]:
    """onnxruntime's transformer fusions on the graph at `path`, in place; the fused operators, by type."""
    model_type = config.get("model_type")
    if model_type not in FUSABLE_MODEL_TYPES:
        raise UsageError(f"--fuse: onnxruntime's transformer optimizer has no fusions for {model_type!r} models "
                         f"(it has for {', '.join(FUSABLE_MODEL_TYPES)}); export without --fuse")
    from onnxruntime.transformers.optimizer import optimize_model

    log("fusing attention, layer norms and GELU (onnxruntime.transformers.optimizer) ...")
    heads = config.get("num_attention_heads") or config.get("n_heads") or 0
    hidden = config.get("hidden_size") or config.get("dim") or 0
    with _quiet_logs():
        optimized = optimize_model(str(path), model_type="bert", num_heads=int(heads), hidden_size=int(hidden),
                                   opt_level=0, use_gpu=False)
    fused = {name: int(n) for name, n in optimized.get_fused_operator_statistics().items() if n}
    tmp = path.with_name("model.fused.onnx")
    # past protobuf's limit, the optimizer writes the tensors to `model.fused.onnx.data`, which the graph then reads
    optimized.save_model_to_file(str(tmp), use_external_data_format=_tensor_bytes(optimized.model) > PROTOBUF_LIMIT)
    _remove_data_files(path, keep=external_data_locations(tmp))
    tmp.replace(path)
    log("fused: " + (", ".join(f"{n} {name}" for name, n in sorted(fused.items())) or "nothing"))
    return fused


def _matmuls(graph, patterns: Sequence[str], option: str) -> list:
    """The MatMul/Gemm nodes of `graph` whose names contain one of `patterns`, each pattern matching one or more."""
    nodes = [n for n in graph.node if n.op_type in ("MatMul", "Gemm")]
    hits: list = []
    for pattern in patterns:
        found = [n for n in nodes if pattern in n.name]
        if not found:
            raise UsageError(f"{option} {pattern!r} matches no MatMul of the graph (e.g. {nodes[0].name!r})")
        hits += [n for n in found if n not in hits]
    return hits


# protobuf cannot serialize one message past 2 GB: a graph whose tensors pass this goes out with its tensors in an
# external-data file (room left for the graph itself)
PROTOBUF_LIMIT = 1_800_000_000


def _save_onnx(model, path: Path) -> None:
    """Save `model`, its tensors in memory, at `path`: past PROTOBUF_LIMIT with every tensor in one external-data file
    beside it, `<name>_data` (optimum's layout for large exports). The data files `path` read before are removed
    first (onnx appends to an existing data file, and a graph of the smaller precision may need none)."""
    import onnx
    from google.protobuf.message import EncodeError

    _remove_data_files(path)
    external = _tensor_bytes(model) > PROTOBUF_LIMIT
    if not external:
        try:
            onnx.save_model(model, str(path))
        except (ValueError, EncodeError):  # past the limit after all (the graph itself, odd tensors)
            path.unlink(missing_ok=True)
            external = True
    if external:
        onnx.save_model(model, str(path), save_as_external_data=True, all_tensors_to_one_file=True,
                        location=f"{path.name}_data", size_threshold=1024)


def _tensor_bytes(model) -> int:
    """The bytes of the graph's tensors, initializers and Constant values (ByteSize() fails on a tensor past 2 GB)."""
    from onnx.helper import tensor_dtype_to_np_dtype

    tensors = list(model.graph.initializer) + [a.t for n in model.graph.node if n.op_type == "Constant"
                                               for a in n.attribute if a.name == "value"]
    return sum(len(t.raw_data) or int(np.prod(t.dims, dtype=np.int64)) * tensor_dtype_to_np_dtype(t.data_type).itemsize
               for t in tensors)


def _data_file_bytes(path: Path) -> int:
    """The size of the external-data files the graph at `path` reads."""
    return sum((path.parent / location).stat().st_size for location in set(external_data_locations(path))
               if (path.parent / location).is_file())


def _remove_data_files(path: Path, keep: Sequence[str] = ()) -> None:
    """Delete the external-data files the graph at `path` reads (all but `keep`), within its folder."""
    if not path.exists():
        return
    for location in set(external_data_locations(path)) - set(keep):
        data = path.parent / location
        if is_within(data, path.parent) and data.is_file():
            data.unlink()


def _split_outliers(path: Path, patterns: Sequence[str], channels: int, log) -> list[str]:
    """Split each chosen MatMul of the fp32 graph at `path` (in place) in two: its input's `channels` channels of
    largest magnitude times their weight rows, in fp32, plus the other channels times theirs (those rows left as
    they are, the outlier channels masked to zero), to be quantized. The two products add up to the original one,
    so the fp32 graph computes the same; quantized, the int8 half no longer has its activation scale set by a few
    outlier channels (LLM.int8()'s mixed-precision decomposition, Dettmers et al. 2022; the first layers of
    BERT-like encoders have such channels). Magnitudes are calibrated on fasttag's generated sentences: for the
    default model, the largest channels are those CoNLL-2003 sentences give (the smaller of the 8 differ some).
    Returns the names of the fp32 halves, to exclude from quantization."""
    import onnx
    import onnxruntime as ort
    from onnx import helper, numpy_helper
    from tokenizers import Tokenizer

    from fasttag import synthetic

    model = onnx.load(str(path))
    weights = {i.name: i for i in model.graph.initializer}
    targets = [n for n in _matmuls(model.graph, patterns, "--split-outliers")
               if n.op_type == "MatMul" and n.input[1] in weights]
    if not targets:
        raise UsageError(f"--split-outliers {', '.join(patterns)}: the MatMuls matched have no constant weights")
    inputs = sorted({n.input[0] for n in targets})
    # the probe: the graph with the split products' inputs as outputs; written beside the model so that a large
    # model's probe reads the model's own external-data file instead of a copy
    probe = onnx.load(str(path), load_external_data=False)
    probe.graph.output.extend(helper.make_tensor_value_info(name, onnx.TensorProto.FLOAT, None) for name in inputs)
    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    probe_path = path.with_name(f"probe.{path.name}")
    onnx.save_model(probe, str(probe_path))
    try:
        session = ort.InferenceSession(str(probe_path), opts, providers=["CPUExecutionProvider"])
    finally:
        probe_path.unlink()
    feeds = {i.name for i in session.get_inputs()}
    tokenizer = Tokenizer.from_file(str(path.parent / TOKENIZER_FILE))
    config_path = path.parent / "config.json"
    config = json.loads(config_path.read_text()) if config_path.exists() else {}
    tokenizer.enable_truncation(min(128, max_length_from(config, path.parent)))  # a model's own limit may be lower
    tokenizer.no_padding()
    log(f"calibrating {len(targets)} MatMuls on {CALIBRATION_TEXTS} generated sentences ...")
    peak = {name: np.zeros(0, np.float32) for name in inputs}
    texts = synthetic.sentences(CALIBRATION_TEXTS)
    for first in range(0, len(texts), 16):
        encoded = tokenizer.encode_batch(texts[first:first + 16])
        width = max(len(e.ids) for e in encoded)
        ids = np.zeros((len(encoded), width), np.int64)
        mask = np.zeros_like(ids)
        for row, e in enumerate(encoded):
            ids[row, :len(e.ids)] = e.ids
            mask[row, :len(e.ids)] = 1
        feed = {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)}
        for name, value in zip(inputs, session.run(inputs, {k: v for k, v in feed.items() if k in feeds}),
                               strict=True):
            seen = np.abs(value[mask.astype(bool)]).max(axis=0)
            peak[name] = seen if not peak[name].size else np.maximum(peak[name], seen)
    nodes, fp32_halves = [], []
    for node in model.graph.node:
        if node not in targets:
            nodes.append(node)
            continue
        weight = numpy_helper.to_array(weights[node.input[1]])
        if weight.ndim != 2 or peak[node.input[0]].shape != (weight.shape[0],):
            raise UsageError(f"--split-outliers: cannot split {node.name} (weights of shape {weight.shape})")
        outliers = np.sort(np.argsort(-peak[node.input[0]], kind="stable")[:min(channels, weight.shape[0])])
        keep = np.ones(weight.shape[0], np.float32)
        keep[outliers] = 0
        name = node.name
        model.graph.initializer.extend([
            numpy_helper.from_array(keep, f"{name}/outliers/mask"),
            numpy_helper.from_array(outliers.astype(np.int64), f"{name}/outliers/index"),
            numpy_helper.from_array(weight[outliers], f"{name}/outliers/weight"),
        ])
        source, result = node.input[0], node.output[0]
        node.input[0], node.output[0] = f"{name}/outliers/rest", f"{name}/outliers/rest_product"
        nodes += [
            helper.make_node("Mul", [source, f"{name}/outliers/mask"], [node.input[0]], name=f"{name}/outliers/Mul"),
            helper.make_node("Gather", [source, f"{name}/outliers/index"], [f"{name}/outliers/input"], axis=-1,
                             name=f"{name}/outliers/Gather"),
            helper.make_node("MatMul", [f"{name}/outliers/input", f"{name}/outliers/weight"],
                             [f"{name}/outliers/product"], name=f"{name}/outliers/MatMul"),
            node,
            helper.make_node("Add", [node.output[0], f"{name}/outliers/product"], [result],
                             name=f"{name}/outliers/Add"),
        ]
        fp32_halves.append(f"{name}/outliers/MatMul")
    del model.graph.node[:]
    model.graph.node.extend(nodes)
    del session
    _save_onnx(model, path)
    log(f"split {len(targets)} MatMuls: {channels} outlier channels each in fp32")
    return fp32_halves


def _convert(path: Path, precision: str, per_channel: bool, log, keep_fp32: tuple[str, ...] = (),
             reduce_range: bool = False, fused: bool = False, split_outliers: tuple[str, ...] = (),
             outlier_channels: int = DEFAULT_OUTLIER_CHANNELS) -> None:
    tmp = path.with_name(f"model.{precision}.onnx")
    if precision == "int8":
        import onnx
        from onnxruntime.quantization import QuantType, quantize_dynamic

        exclude: list[str] = []
        if keep_fp32:
            graph = onnx.load(str(path), load_external_data=False).graph
            exclude = [n.name for n in _matmuls(graph, keep_fp32, "--keep-fp32")]
        if split_outliers:
            exclude += _split_outliers(path, split_outliers, outlier_channels, log)
        log(f"quantizing to int8 (dynamic, per_channel={per_channel}, reduce_range={reduce_range}"
            + (f", {len(exclude)} MatMuls kept in fp32" if exclude else "") + ") ...")
        with _quiet_logs():  # onnxruntime's root-logger advice to pre-process the graph
            # a fused graph's contrib operators (Attention, SkipLayerNormalization) defeat ONNX shape inference:
            # the tensors it cannot type are float
            extra = {"DefaultTensorType": onnx.TensorProto.FLOAT} if fused else {}
            # int8 tensors take a quarter of the fp32 ones: past the limit still, they go to model.int8.onnx.data
            large = _data_file_bytes(path) > 4 * PROTOBUF_LIMIT
            quantize_dynamic(path, tmp, weight_type=QuantType.QInt8, per_channel=per_channel,
                             reduce_range=reduce_range, nodes_to_exclude=exclude, extra_options=extra,
                             use_external_data_format=large)
        _remove_data_files(path, keep=external_data_locations(tmp))  # the fp32 tensors of a large model
        tmp.replace(path)
    else:
        from onnxruntime.transformers.float16 import convert_float_to_float16

        log("converting weights to fp16 (inputs and outputs stay int64/float32) ...")
        # from the path: shape inference through a file, which a graph past 2 GB needs
        _save_onnx(convert_float_to_float16(str(path), keep_io_types=True), path)


# The files transformers builds a fast tokenizer from when a checkpoint has no tokenizer.json.
_SENTENCEPIECE_FILES = ("spm.model", "sentencepiece.bpe.model", "sentencepiece.model", "tokenizer.model",
                        "spiece.model")


def _fast_tokenizer(model: str, local: bool):
    """The checkpoint's tokenizer, converted to a fast one where it has no tokenizer.json; a ModelError that says
    what is missing where transformers fails with a TypeError or AttributeError deep inside."""
    import transformers

    try:
        return transformers.AutoTokenizer.from_pretrained(model, use_fast=True, local_files_only=local)
    except (OSError, ValueError, TypeError, AttributeError, ImportError) as exc:
        folder = Path(model)
        sentencepiece = [f for f in _SENTENCEPIECE_FILES if (folder / f).is_file()] if folder.is_dir() else []
        if sentencepiece and importlib.util.find_spec("sentencepiece") is None:
            raise ModelError(f"{model} has no tokenizer.json, and converting its {sentencepiece[0]} needs the "
                             "sentencepiece package: pip install sentencepiece protobuf") from exc
        raise ModelError(f"cannot load the tokenizer of {model} ({type(exc).__name__}: {first_line(exc)}): fasttag "
                         "needs the model's tokenizer files (tokenizer.json, or those transformers builds it from: "
                         "vocab.txt, vocab.json and merges.txt, or a SentencePiece model)") from exc


def validate_against_torch(model: str, onnx_path: Path, precision: str, local: bool) -> Validation:
    """Logits of PyTorch and onnxruntime on VALIDATION_TEXTS, compared on real (non-padding) tokens."""
    import onnxruntime as ort
    import torch
    import transformers

    tok = transformers.AutoTokenizer.from_pretrained(model, local_files_only=local)
    # weights_only: pickle weights (pytorch_model.bin) are read as tensors only (check_pickle_weights)
    pt = transformers.AutoModelForTokenClassification.from_pretrained(model, local_files_only=local,
                                                                      weights_only=True).eval()
    # the model's own limit: a tokenizer's model_max_length may be missing (1e30) or above the position embeddings
    limit = max_length_from(json.loads((onnx_path.parent / "config.json").read_text()), onnx_path.parent)
    enc = tok(VALIDATION_TEXTS, padding=True, truncation=True, max_length=limit, return_tensors="np")
    with torch.no_grad():
        ref = pt(**{k: torch.from_numpy(v) for k, v in enc.items()}).logits.float().numpy()
    providers = ["CPUExecutionProvider"]
    if precision == "fp16" and "CUDAExecutionProvider" in ort.get_available_providers():
        providers.insert(0, "CUDAExecutionProvider")
    ort.set_default_logger_severity(4)  # a missing CUDA library is not an export failure
    try:
        # the graph `fasttag run` runs: on the CPU, without the fusions it leaves out there
        sess = ort.InferenceSession(str(onnx_path), providers=providers,
                                    disabled_optimizers=[] if len(providers) > 1 else list(CPU_DISABLED_OPTIMIZERS))
    except Exception as exc:
        raise ModelError(f"onnxruntime cannot load the {precision} export: {first_line(exc)}") from exc
    finally:
        ort.set_default_logger_severity(2)
    names = {i.name for i in sess.get_inputs()}
    try:
        got = sess.run(None, {k: v.astype(np.int64) for k, v in enc.items() if k in names})[0].astype(np.float32)
    except Exception as exc:
        raise ModelError(
            f"onnxruntime ({sess.get_providers()[0]}) cannot run the {precision} export: {first_line(exc)}"
            + ("; fp16 models need a GPU (onnxruntime-gpu with CUDA)" if precision == "fp16" else "")
        ) from exc
    mask = enc["attention_mask"].astype(bool)
    diff = float(np.abs(ref - got)[mask].max())
    agree = float((ref.argmax(-1) == got.argmax(-1))[mask].mean())
    passed = (diff <= FP32_ATOL and agree == 1.0) if precision == "fp32" else agree >= MIN_AGREEMENT
    return Validation(diff, agree, int(mask.sum()), sess.get_providers()[0], passed)
