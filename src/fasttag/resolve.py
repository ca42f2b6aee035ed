"""What `--model` names, and the ONNX folder that runs it.

`--model` (run, show, eval, info, `Tagger.load`) takes any of four forms:

1. an export folder made by `fasttag export` (model.onnx and fasttag.json): used as it is;
2. an ONNX folder without fasttag.json, such as `optimum-cli export onnx --task token-classification`
   makes: used as it is, its labels and max length read from config.json, once its config and graph
   are checked to be a token classifier's;
3. a transformers checkpoint folder (config.json and weights, no model.onnx): exported once into
   fasttag's cache (`fasttag.cache`) and reused;
4. a hub model id (with `--revision`): resolved through huggingface_hub (its cache, HF_HOME,
   HF_HUB_OFFLINE and tokens as the user set them), then as 3.

Forms 1 and 2, and 3 and 4 once cached, need neither torch nor transformers; an export imports them
(the `train` extra) lazily, and refuses in one line without them. A model whose config asks for custom
code (`auto_map`, transformers' `trust_remote_code`) is refused, never executed.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Callable
from pathlib import Path

from fasttag.errors import EXTRA_MODULES, ModelError, UsageError, first_line, missing_modules
from fasttag.model import (
    _HUB_ID,
    ALLOWED_INPUTS,
    HUB_OFFLINE_ENV,
    MANIFEST,
    ONNX_FILE,
    ModelOrigin,
    _read_json,
    default_model_dir,
    graph_io,
    looks_like_path,
)

CONFIG_FILE = "config.json"
# A checkpoint's files that an export reads, besides its weights: what identifies it, and what to download.
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "added_tokens.json",
                   "vocab.txt", "vocab.json", "merges.txt", "spiece.model", "sentencepiece.bpe.model",
                   "tokenizer.model", "source.spm")
_SAFETENSORS = re.compile(r"^model(-\d+-of-\d+)?\.safetensors$|^model\.safetensors\.index\.json$")
_PYTORCH_BIN = re.compile(r"^pytorch_model(-\d+-of-\d+)?\.bin$|^pytorch_model\.bin\.index\.json$")

Log = Callable[[str], None]


def stderr_log(message: str) -> None:
    print(f"fasttag: {message}", file=sys.stderr, flush=True)


def resolve(name: str | None, revision: str | None = None, precision: str | None = None, device: str = "auto",
            log: Log | None = None) -> tuple[Path, ModelOrigin]:
    """The folder to load for `name` (None: the embedded default model), and what `name` was.

    `precision` chooses the export of a checkpoint or hub model (None: fp16 when CUDA runs, else fp32);
    `log` receives progress lines of an export (default: stderr).
    """
    log = log or stderr_log
    if name is None:
        if revision is not None:
            raise UsageError("--revision chooses a version of a hub model: give its id with --model ORG/NAME")
        folder = default_model_dir()
        return folder, ModelOrigin("default", str(folder))
    p = Path(name).expanduser()
    if p.exists():
        if not p.is_dir():
            raise ModelError(f"model path {name} is not a folder (expected an export folder, an ONNX folder, a "
                             "transformers checkpoint folder or a hub model id)")
        if revision is not None:
            raise UsageError(f"--revision chooses a version of a hub model; {name} is a local folder")
        form = folder_form(p)
        if form == "checkpoint":
            return _from_checkpoint(p, name, precision, device, log)
        if form == "onnx":
            check_onnx_folder(p, name)
        return p, ModelOrigin("export" if form is None else form, name)
    if looks_like_path(name) or not _HUB_ID.match(name):
        raise ModelError(f"model folder {name} does not exist")
    return _from_hub(name, revision, precision, device, log)


def folder_form(p: Path) -> str | None:
    """export, onnx or checkpoint, by the files a folder holds; None when it is none of them."""
    if (p / ONNX_FILE).is_file():
        return "export" if (p / MANIFEST).is_file() else "onnx"
    if (p / CONFIG_FILE).is_file():
        return "checkpoint"
    return None


# -- checks ------------------------------------------------------------------------------------------
def check_token_classifier(config: dict, name: str, what: str = "checkpoint") -> None:
    """Refuse a model that is not a token classifier, saying what it is (from config.json)."""
    architectures = [str(a) for a in config.get("architectures") or []]
    if architectures and not any(a.endswith("ForTokenClassification") for a in architectures):
        kind = architectures[0]
        for suffix, task in (("ForSequenceClassification", "a text classifier"),
                             ("ForQuestionAnswering", "a question-answering model"),
                             ("ForMaskedLM", "a masked language model"), ("ForCausalLM", "a language model"),
                             ("ForConditionalGeneration", "a sequence-to-sequence model"),
                             ("Model", "a bare encoder without a task head")):
            if kind.endswith(suffix):
                raise ModelError(f"{name} is {task} ({', '.join(architectures)}), not a token classifier: fasttag "
                                 "tags tokens; fine-tune it for token classification first ('fasttag train')")
        raise ModelError(f"{name} is not a token classifier (its architecture is {', '.join(architectures)})")
    if not config.get("id2label"):
        raise ModelError(f"{name} has no labels (config.json has no id2label), so it is not a token classifier "
                         f"{what}; fine-tune it for token classification first ('fasttag train')")


def check_no_remote_code(config: dict, name: str, folder: Path) -> None:
    """Refuse a model whose config or tokenizer needs custom Python code: fasttag never runs it."""
    tok_cfg = _read_json(folder / "tokenizer_config.json") if (folder / "tokenizer_config.json").is_file() else {}
    if config.get("auto_map") or tok_cfg.get("auto_map"):
        where = "config.json" if config.get("auto_map") else "tokenizer_config.json"
        raise ModelError(f"{name} needs custom code (its {where} has auto_map, transformers' trust_remote_code); "
                         "fasttag does not run a model's own code: export it yourself to an ONNX folder "
                         "(optimum-cli export onnx --trust-remote-code) and pass that folder, if you trust it")


def check_onnx_folder(p: Path, name: str) -> None:
    """An ONNX folder without fasttag.json: a token classifier's config and a graph fasttag can feed."""
    config = _read_json(p / CONFIG_FILE) if (p / CONFIG_FILE).is_file() else {}
    if not config:
        raise ModelError(f"{name} has {ONNX_FILE} but no {CONFIG_FILE} (its labels) and no {MANIFEST}; "
                         "export it with 'fasttag export' or optimum-cli export onnx --task token-classification")
    check_token_classifier(config, name, what="model")
    io = graph_io(p / ONNX_FILE)
    if io is None:
        return  # unreadable: onnxruntime says why when it loads the graph
    inputs, outputs = io
    if set(inputs) - ALLOWED_INPUTS or "input_ids" not in inputs:
        raise ModelError(f"{p}: unexpected ONNX inputs {sorted(inputs)}; expected input_ids, attention_mask and "
                         "optionally token_type_ids (export with --task token-classification)")
    logits = outputs.get("logits", next(iter(outputs.values()), None))
    n_labels = len(config["id2label"])
    if logits is not None and len(logits) == 2:
        raise ModelError(f"{name} is not a token classifier: its graph gives one row of {logits[-1]} scores per "
                         "text (a text classifier's output), not one per token")
    if logits and isinstance(logits[-1], int) and logits[-1] != n_labels:
        raise ModelError(f"{name}: config.json has {n_labels} labels but the graph outputs {logits[-1]} scores per "
                         "token; the folder's config and model.onnx do not belong together")


def weight_files(names: list[str]) -> list[str]:
    """The PyTorch weights an export reads: safetensors when there are any, else pytorch_model*.bin."""
    safetensors = [n for n in names if _SAFETENSORS.match(n)]
    return safetensors or [n for n in names if _PYTORCH_BIN.match(n)]


def _checked_checkpoint(p: Path, name: str) -> list[str]:
    """The files that identify a checkpoint folder (config, tokenizer, weights), once it proved exportable."""
    config = _read_json(p / CONFIG_FILE)
    check_no_remote_code(config, name, p)
    check_token_classifier(config, name)
    names = sorted(f.name for f in p.iterdir() if f.is_file())
    weights = weight_files(names)
    if not weights:
        raise ModelError(f"{name} has {CONFIG_FILE} but neither {ONNX_FILE} nor PyTorch weights (model.safetensors "
                         "or pytorch_model.bin): it is not an ONNX folder nor a transformers checkpoint")
    return [CONFIG_FILE, *(n for n in TOKENIZER_FILES if n in names), *weights]


# -- forms 3 and 4: exported into the cache ----------------------------------------------------------
def default_precision(device: str) -> str:
    """fp16 where CUDA runs (--device cuda or tensorrt; auto with a GPU and onnxruntime's CUDA provider); else fp32."""
    if device in ("cuda", "tensorrt"):
        return "fp16"
    if device != "auto":
        return "fp32"
    import onnxruntime as ort

    return "fp16" if "CUDAExecutionProvider" in ort.get_available_providers() and cuda_devices() > 0 else "fp32"


def cuda_devices() -> int:
    """NVIDIA GPUs the CUDA driver sees (0 without a driver), asked without starting onnxruntime's provider."""
    import ctypes

    try:
        lib = ctypes.CDLL("libcuda.so.1")
        count = ctypes.c_int(0)
        if lib.cuInit(0) != 0 or lib.cuDeviceGetCount(ctypes.byref(count)) != 0:
            return 0
    except (OSError, AttributeError):
        return 0
    return count.value


def require_export_extra(name: str) -> None:
    """Refuse, in one line, an export on a machine without the `train` extra."""
    missing = missing_modules(EXTRA_MODULES["train"])
    if missing:
        verb = "is" if len(missing) == 1 else "are"
        raise ModelError(
            f"{name} must be exported to ONNX once before it runs, and exporting needs the 'train' extra "
            f"({', '.join(missing)} {verb} not installed): pip install 'fasttag[train]', or export it on another "
            f"machine (fasttag export {name} -o DIR) and pass --model DIR")


def _export_into_cache(source: Path, name: str, display: str, key: str, info: dict, precision: str,
                       log: Log, hub: dict | None = None) -> tuple[Path, bool]:
    """Export `source` (a checkpoint folder) as the cache entry `key`, unless it is there already (another
    process may be making it); the entry's folder, and whether this process exported it."""
    from fasttag import cache

    require_export_extra(name)

    def make(out: Path) -> None:
        from fasttag.export import export

        log(f"{display}: exporting to ONNX once ({precision}, into the cache {cache.exports_dir()}); "
            "later runs reuse it")
        export(str(source), out, precision=precision, opset=info["opset"], validate=True,  # type: ignore[arg-type]
               log=lambda m: log(m.replace(str(source), display)))
        if hub is not None:  # a hub snapshot: the manifest names the model and its commit, not the cache's folder
            import json

            manifest = json.loads((out / MANIFEST).read_text(encoding="utf-8"))
            manifest.update(hub)
            (out / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")

    entry = cache.build(key, info, make, log=log, what=display)
    return entry.path, entry.exported


def _cached(key: str) -> Path | None:
    from fasttag import cache

    entry = cache.lookup(key)
    return entry.path if entry is not None else None


def _from_checkpoint(p: Path, name: str, precision: str | None, device: str, log: Log) -> tuple[Path, ModelOrigin]:
    from fasttag import cache
    from fasttag.export import DEFAULT_OPSET

    files = _checked_checkpoint(p, name)
    precision = precision or default_precision(device)
    identity = "sha256:" + cache.folder_digest(p, files)
    key = cache.entry_key(p.resolve().name, identity, precision, DEFAULT_OPSET)
    found = _cached(key)
    if found is not None:
        return found, ModelOrigin("checkpoint", name, cache_key=key)
    info = {"source": str(p.resolve()), "name": name, "form": "checkpoint", "identity": identity,
            "precision": precision, "opset": DEFAULT_OPSET}
    path, exported = _export_into_cache(p, name, name, key, info, precision, log)
    return path, ModelOrigin("checkpoint", name, cache_key=key, exported=exported)


def hub_offline() -> str | None:
    """The variable that switches the hub off (HF_HUB_OFFLINE, TRANSFORMERS_OFFLINE), if one is set."""
    return next((v for v in HUB_OFFLINE_ENV if os.environ.get(v, "").strip().lower() in ("1", "true", "yes", "on")),
                None)


def _why(exc: BaseException) -> str:
    """Why the hub could not be reached, in a few words (requests' messages run to several hundred characters)."""
    text = first_line(exc)
    if "NameResolution" in text or "Failed to resolve" in text:
        return "its address does not resolve: no network?"
    if "timed out" in text.lower() or "Timeout" in type(exc).__name__:
        return "the connection timed out"
    if "Max retries exceeded" in text or "Connection" in type(exc).__name__:
        return "no connection"
    return text[:160]


def _hub_files(files: list[str], name: str) -> list[str]:
    """The files of a hub repo that an export needs: config, tokenizer, and one set of PyTorch weights."""
    top = [f for f in files if "/" not in f]
    weights = weight_files(top)
    if not weights and ONNX_FILE in top and CONFIG_FILE in top:  # an ONNX model on the hub: it runs as it is
        return [f for f in top if f in (CONFIG_FILE, MANIFEST, *TOKENIZER_FILES) or f.startswith(ONNX_FILE)]
    if not weights:
        raise ModelError(f"{name} has no PyTorch weights on the hub (model.safetensors or pytorch_model.bin), "
                         "which exporting needs")
    return [f for f in top if f == CONFIG_FILE or f in TOKENIZER_FILES] + weights


def _from_hub(name: str, revision: str | None, precision: str | None, device: str,
              log: Log) -> tuple[Path, ModelOrigin]:
    from fasttag import cache
    from fasttag.export import DEFAULT_OPSET

    try:
        import huggingface_hub as hf
        from huggingface_hub.utils import (
            GatedRepoError,
            LocalEntryNotFoundError,
            RepositoryNotFoundError,
            RevisionNotFoundError,
        )
    except ImportError as exc:  # a core dependency; only a broken install lacks it
        raise ModelError(f"{name} looks like a hub model id, and resolving it needs huggingface_hub "
                         "(pip install huggingface_hub)") from exc
    precision = precision or default_precision(device)
    at = f"{name} @ {revision}" if revision else name
    offline = hub_offline()
    commit, files, unreachable = None, None, None
    if not offline:
        try:
            repo = hf.model_info(name, revision=revision)
            commit, files = repo.sha, [s.rfilename for s in repo.siblings or []]
        except GatedRepoError as exc:
            raise ModelError(f"{name} is a gated model: accept its terms at https://huggingface.co/{name} and log in "
                             "('hf auth login', or set HF_TOKEN)") from exc
        except RepositoryNotFoundError as exc:
            raise ModelError(f"no local folder {name} exists, and the hub has no model {name} (if it is private, log "
                             "in with 'hf auth login' or set HF_TOKEN)") from exc
        except RevisionNotFoundError as exc:
            raise ModelError(f"{name} has no revision {revision!r} on the hub (give a branch, tag or commit)") from exc
        except Exception as exc:  # no connection, a proxy, the hub down: the local Hugging Face cache may hold it
            unreachable = exc

    def key_of(commit: str) -> str:
        return cache.entry_key(name, f"hub:{name}@{commit}", precision, DEFAULT_OPSET)

    if commit and files is not None:
        found = _cached(key_of(commit))
        if found is not None:
            return found, ModelOrigin("hub", name, commit=commit, cache_key=key_of(commit))
        wanted = _hub_files(files, name)
        try:
            snapshot = Path(hf.snapshot_download(name, revision=commit, allow_patterns=wanted))
        except Exception as exc:
            raise ModelError(f"cannot download {name} from the hub: {first_line(exc)}") from exc
    else:
        try:
            snapshot = Path(hf.snapshot_download(name, revision=revision, local_files_only=True))
        except LocalEntryNotFoundError as exc:
            from huggingface_hub import constants

            where = f"the Hugging Face cache ({constants.HF_HUB_CACHE})"
            download = f"hf download {name}" + (f" --revision {revision}" if revision else "")
            if offline:
                raise ModelError(f"no local folder {name} exists, and {at} is not in {where}, which is all that is "
                                 f"looked at while {offline} is set: run once with the hub reachable (without "
                                 f"{offline}) or '{download}' there, or pass --model a local folder") from exc
            raise ModelError(f"no local folder {name} exists, the hub cannot be reached ({_why(unreachable or exc)}), "
                             f"and {at} is not in {where}: check the connection (or HF_ENDPOINT), or pass --model "
                             "a local folder") from exc
        commit = snapshot.name
        found = _cached(key_of(commit))
        if found is not None:
            return found, ModelOrigin("hub", name, commit=commit, cache_key=key_of(commit))
    if not (snapshot / CONFIG_FILE).is_file():
        raise ModelError(f"{at}: the hub snapshot has no {CONFIG_FILE}; is {name} a transformers model?")
    if not weight_files(sorted(f.name for f in snapshot.iterdir() if f.is_file())):
        form = folder_form(snapshot)
        if form == "onnx":
            check_onnx_folder(snapshot, name)
        if form in ("onnx", "export"):  # an ONNX model on the hub (fasttag's export, or optimum's): as it is
            return snapshot, ModelOrigin(form, name, commit=commit)
        download = f"hf download {name}" + (f" --revision {revision}" if revision else "")
        raise ModelError(f"{at}: the Hugging Face cache's snapshot ({snapshot}) has {CONFIG_FILE} but neither PyTorch "
                         f"weights (model.safetensors or pytorch_model.bin) nor {ONNX_FILE}: an incomplete download? "
                         f"Download it again ('{download}')")
    files_used = _checked_checkpoint(snapshot, name)
    missing = [f for f in files_used if not (snapshot / f).exists()]
    if missing:
        raise ModelError(f"{at}: the Hugging Face cache lacks {', '.join(missing)}; download the model again")
    key = key_of(commit)
    info = {"source": name, "name": name, "form": "hub", "revision": revision, "commit": commit,
            "identity": f"hub:{name}@{commit}", "precision": precision, "opset": DEFAULT_OPSET}
    display = f"{name} @ {commit[:7]}"
    hub = {"source_model": name, "source_is_local": False, "source_revision": commit}
    path, exported = _export_into_cache(snapshot, name, display, key, info, precision, log, hub=hub)
    return path, ModelOrigin("hub", name, commit=commit, cache_key=key, exported=exported)
