"""`--model` takes any model (issue 17): an export folder, an ONNX folder without fasttag.json (optimum's), a
transformers checkpoint folder, or a hub model id; each command's first line says which it found.

No test touches the network: hub ids are served from a Hugging Face cache folder laid out here
(`models--ORG--NAME/snapshots/COMMIT/...`, `refs/main`) with HF_HUB_OFFLINE=1, in subprocesses, so that
huggingface_hub reads HF_HUB_CACHE and HF_HUB_OFFLINE as a user's process does. The fast lane needs no torch;
the `torch` tests export for real (tiny models).
"""

import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from fasttag import Tagger, cache
from fasttag.cli import cli
from fasttag.errors import ModelError, UsageError
from fasttag.export import DEFAULT_OPSET

TEXTS = ["Ada Lovelace was born in London.", "Angela Merkel met Emmanuel Macron in Paris on Tuesday.", "nothing"]
COMMIT = "0123456789abcdef0123456789abcdef01234567"
OTHER_COMMIT = "fedcba9876543210fedcba9876543210fedcba98"
REPO = "tiny-org/tiny-bert"
CHECKPOINT_FILES = ("config.json", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "vocab.txt")


def invoke(*args):
    return CliRunner().invoke(cli, [str(a) for a in args])


def spans(entities):
    return [[(e.start, e.end, e.label) for e in doc] for doc in entities]


def corpus(tmp_path) -> Path:
    path = tmp_path / "corpus.jsonl"
    path.write_text("".join(json.dumps({"text": t}) + "\n" for t in TEXTS))
    return path


def fake_checkpoint(folder: Path, bert_export: Path, **config_changes) -> Path:
    """A checkpoint folder's files (config, tokenizer, a weights file): enough for every check before an export."""
    folder.mkdir(parents=True)
    for name in CHECKPOINT_FILES:
        shutil.copy(bert_export / name, folder / name)
    config = json.loads((folder / "config.json").read_text())
    config.update(config_changes)
    (folder / "config.json").write_text(json.dumps({k: v for k, v in config.items() if v is not None}))
    (folder / "model.safetensors").write_bytes(b"not read before the export")
    return folder


def hf_cache(root: Path, repo: str, files_from: Path, commit: str = COMMIT, refs=("main",)) -> Path:
    """Lay out a Hugging Face hub cache as huggingface_hub writes it: blobs, a snapshot of links, refs."""
    repo_dir = root / ("models--" + repo.replace("/", "--"))
    snapshot = repo_dir / "snapshots" / commit
    (repo_dir / "blobs").mkdir(parents=True, exist_ok=True)
    snapshot.mkdir(parents=True)
    for f in sorted(files_from.iterdir()):
        if f.is_file():
            data = f.read_bytes()
            blob = repo_dir / "blobs" / hashlib.sha256(data).hexdigest()
            blob.write_bytes(data)
            (snapshot / f.name).symlink_to(os.path.relpath(blob, snapshot))
    (repo_dir / "refs").mkdir(exist_ok=True)
    for ref in refs:
        (repo_dir / "refs" / ref).write_text(commit)
    return snapshot


def hub_env(tmp_path) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "HUGGINGFACE_"))}
    env.update(HF_HUB_OFFLINE="1", HF_HOME=str(tmp_path / "hf-home"), HF_HUB_CACHE=str(tmp_path / "hub"),
               FASTTAG_CACHE=str(tmp_path / "fasttag-cache"), FASTTAG_THREADS="1")
    return env


# Runs the CLI with torch, transformers and optimum made unimportable, and says which heavy modules were imported.
NO_TORCH = (
    "import sys\n"
    "for m in ('torch', 'transformers', 'optimum'):\n    sys.modules[m] = None\n"
    "from fasttag.cli import main\n"
    "try:\n    main(sys.argv[1:])\nexcept SystemExit as e:\n    code = e.code\nelse:\n    code = 0\n"
    "heavy = sorted(m for m in ('torch', 'transformers', 'optimum') if sys.modules.get(m))\n"
    "print('IMPORTED', heavy, file=sys.stderr)\n"
    "sys.exit(code)\n"
)


def fasttag_no_torch(args, env) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", NO_TORCH, *map(str, args)], capture_output=True, text=True, env=env,
                          timeout=600)


# -- form 1 and 2: ONNX folders ---------------------------------------------------------------------
def test_an_export_folder_says_so_in_the_first_line(tmp_path, bert_export):
    res = invoke("run", corpus(tmp_path), "-o", tmp_path / "o.jsonl", "--model", bert_export, "--device", "cpu")
    assert res.exit_code == 0, res.output
    assert res.stderr.splitlines()[0] == f"fasttag: {bert_export} (export folder, fp32) on CPUExecutionProvider"


def test_an_onnx_folder_without_manifest_runs_as_the_export_does(tmp_path, bert_export):
    bare = tmp_path / "bare"
    shutil.copytree(bert_export, bare)
    (bare / "fasttag.json").unlink()
    tagger = Tagger.load(bare)
    assert tagger.bundle.origin.form == "onnx" and tagger.bundle.labels == Tagger.load(bert_export).bundle.labels
    assert spans(tagger.tag(TEXTS)) == spans(Tagger.load(bert_export).tag(TEXTS))
    res = invoke("run", corpus(tmp_path), "-o", tmp_path / "o.jsonl", "--model", bare, "--device", "cpu")
    assert res.exit_code == 0, res.output
    assert res.stderr.splitlines()[0] == (f"fasttag: {bare} (ONNX folder without fasttag.json, fp32) on "
                                          "CPUExecutionProvider")
    res = invoke("info", bare)
    assert res.exit_code == 0 and res.output.startswith(f"model:      {bare} (ONNX folder without fasttag.json"), \
        res.output


def _graph(path: Path, out_dims: list) -> None:
    import onnx
    from onnx import TensorProto, helper

    """A graph that takes input_ids and declares `logits` of shape `out_dims` (it is refused before it runs)."""
    graph = helper.make_graph(
        [helper.make_node("Cast", ["input_ids"], ["logits"], to=TensorProto.FLOAT)], "g",
        [helper.make_tensor_value_info("input_ids", TensorProto.INT64, ["batch", "seq"])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, out_dims)],
    )
    onnx.save(helper.make_model(graph, ir_version=10, opset_imports=[helper.make_opsetid("", 18)]), path)


def test_an_onnx_folder_that_is_not_a_token_classifier_is_refused(tmp_path, bert_export):
    def folder(name, **config_changes):
        p = tmp_path / name
        shutil.copytree(bert_export, p)
        (p / "fasttag.json").unlink()
        config = json.loads((p / "config.json").read_text())
        config.update(config_changes)
        (p / "config.json").write_text(json.dumps({k: v for k, v in config.items() if v is not None}))
        return p

    seq = folder("seq", architectures=["BertForSequenceClassification"])
    with pytest.raises(ModelError, match=r"seq is a text classifier \(BertForSequenceClassification\), not a token"):
        Tagger.load(seq)
    with pytest.raises(ModelError, match="has no labels"):
        Tagger.load(folder("unlabelled", id2label=None, label2id=None))
    per_text = folder("per-text", architectures=None)
    _graph(per_text / "model.onnx", ["batch", 9])
    with pytest.raises(ModelError, match="one row of 9 scores per text"):
        Tagger.load(per_text)
    wrong = folder("wrong-width")
    _graph(wrong / "model.onnx", ["batch", "seq", 5])
    with pytest.raises(ModelError, match="config.json has 9 labels but the graph outputs 5 scores per token"):
        Tagger.load(wrong)
    res = invoke("run", corpus(tmp_path), "-o", tmp_path / "o.jsonl", "--model", seq)
    assert res.exit_code == 1 and len(res.output.strip().splitlines()) == 1 and "Traceback" not in res.output


def test_precision_and_revision_do_not_apply_to_an_onnx_folder(tmp_path, bert_export):
    assert Tagger.load(bert_export, precision="fp32").bundle.precision == "fp32"
    with pytest.raises(UsageError, match=r"--precision int8: .* is an ONNX model in fp32 already"):
        Tagger.load(bert_export, precision="int8")
    with pytest.raises(UsageError, match="--revision chooses a version of a hub model; .* is a local folder"):
        Tagger.load(bert_export, revision="main")
    with pytest.raises(UsageError, match="--precision must be one of fp32, fp16, int8"):
        Tagger.load(bert_export, precision="fp8")
    res = invoke("run", corpus(tmp_path), "-o", tmp_path / "o.jsonl", "--revision", "v1")
    assert res.exit_code == 2 and "give its id with --model ORG/NAME" in res.output


def test_a_missing_path_is_not_looked_up_on_the_hub(tmp_path):
    for name in ("./not-here", str(tmp_path / "nope"), "a/b/c"):
        with pytest.raises(ModelError, match=f"model folder {name} does not exist"):
            Tagger.load(name)


def test_the_resume_state_records_what_ran(bert_export):
    state = Tagger.load(bert_export).options.resume_state()
    assert state["precision"] == "fp32" and state["revision"] is None


def test_the_default_precision_is_fp16_only_where_cuda_runs(monkeypatch):
    import onnxruntime

    from fasttag import resolve

    assert resolve.default_precision("cpu") == "fp32"
    assert resolve.default_precision("cuda") == resolve.default_precision("tensorrt") == "fp16"
    providers = ["CUDAExecutionProvider", "CPUExecutionProvider"]
    monkeypatch.setattr(onnxruntime, "get_available_providers", lambda: providers)
    for gpus, want in [(0, "fp32"), (1, "fp16")]:
        monkeypatch.setattr(resolve, "cuda_devices", lambda gpus=gpus: gpus)
        assert resolve.default_precision("auto") == want
    providers.remove("CUDAExecutionProvider")  # a GPU, but onnxruntime without its CUDA provider
    assert resolve.default_precision("auto") == "fp32"


# -- forms 3 and 4, refused before any export (no torch needed) ---------------------------------------
def test_a_checkpoint_without_the_train_extra_is_one_line(tmp_path, bert_export, cache_root, monkeypatch):
    ckpt = fake_checkpoint(tmp_path / "ckpt", bert_export)
    for module in ("torch", "transformers", "accelerate", "optimum"):  # the train extra's modules (EXTRA_MODULES)
        monkeypatch.setitem(sys.modules, module, None)  # as if not installed
    res = invoke("run", corpus(tmp_path), "-o", tmp_path / "o.jsonl", "--model", ckpt)
    assert res.exit_code == 1
    lines = res.output.strip().splitlines()
    assert len(lines) == 1, res.output
    assert "needs the 'train' extra (torch, transformers, accelerate, optimum are not installed)" in lines[0]
    assert "pip install 'fasttag[train]'" in lines[0] and f"fasttag export {ckpt} -o DIR" in lines[0]
    assert cache.entries() == [] and cache.leftovers() == []


@pytest.mark.parametrize("changes, message", [
    ({"auto_map": {"AutoModelForTokenClassification": "modeling.MyModel"}},
     r"needs custom code \(its config.json has auto_map, transformers' trust_remote_code\)"),
    ({"architectures": ["BertForSequenceClassification"]},
     r"is a text classifier \(BertForSequenceClassification\), not a token classifier"),
    ({"architectures": ["BertModel"], "id2label": None, "label2id": None}, "is a bare encoder without a task head"),
    ({"architectures": None, "id2label": None, "label2id": None}, "has no labels"),
])
def test_a_checkpoint_that_cannot_be_tagged_with_is_refused(tmp_path, bert_export, cache_root, changes, message):
    ckpt = fake_checkpoint(tmp_path / "ckpt", bert_export, **changes)
    with pytest.raises(ModelError, match=message):
        Tagger.load(ckpt)
    assert not cache_root.exists() or cache.entries() == []


def test_a_checkpoint_without_weights_is_refused(tmp_path, bert_export, cache_root):
    ckpt = fake_checkpoint(tmp_path / "ckpt", bert_export)
    (ckpt / "model.safetensors").unlink()
    with pytest.raises(ModelError, match="neither model.onnx nor PyTorch weights"):
        Tagger.load(ckpt)


def _cached_hub_entry(bert_export: Path, commit: str = COMMIT, precision: str = "fp32") -> Path:
    """Put an export of REPO @ commit in fasttag's cache, as a first run would have."""
    key = cache.entry_key(REPO, f"hub:{REPO}@{commit}", precision, DEFAULT_OPSET)
    return cache.build(key, {"source": REPO, "form": "hub", "commit": commit, "precision": precision},
                       lambda out: shutil.copytree(bert_export, out)).path


def test_a_hub_id_in_the_caches_runs_without_torch(tmp_path, bert_export, monkeypatch):
    """Resolved offline by huggingface_hub from its cache to a commit, whose export fasttag's cache holds."""
    env = hub_env(tmp_path)
    hf_cache(Path(env["HF_HUB_CACHE"]), REPO, fake_checkpoint(tmp_path / "files", bert_export))
    monkeypatch.setenv("FASTTAG_CACHE", env["FASTTAG_CACHE"])
    _cached_hub_entry(bert_export)
    out = tmp_path / "o.jsonl"
    proc = fasttag_no_torch(["run", corpus(tmp_path), "-o", out, "--model", REPO, "--device", "cpu"], env)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stderr.splitlines()
    assert lines[0] == f"fasttag: {REPO} @ 0123456 (hub, fp32 export from the cache) on CPUExecutionProvider"
    assert lines[-1] == "IMPORTED []"
    want = [[e.to_dict() for e in doc] for doc in Tagger.load(bert_export).tag(TEXTS)]
    got = [json.loads(line)["entities"] for line in out.read_text().splitlines()]
    assert [[(e["start"], e["end"], e["label"]) for e in d] for d in got] == \
        [[(e["start"], e["end"], e["label"]) for e in d] for d in want]
    # another precision is another export, which needs torch: refused in one line, naming the extra
    proc = fasttag_no_torch(["info", REPO, "--precision", "int8"], env)
    assert proc.returncode == 1 and "needs the 'train' extra" in proc.stderr.splitlines()[0], proc.stderr


def test_a_hub_repo_that_holds_an_onnx_model_runs_as_it_is(tmp_path, bert_export):
    """A hub repo of model.onnx, config.json and the tokenizer (no PyTorch weights) was refused as having "neither
    model.onnx nor PyTorch weights"; a snapshot of config.json alone now says the download is incomplete."""
    env = hub_env(tmp_path)
    files = tmp_path / "onnx-files"
    shutil.copytree(bert_export, files)
    (files / "fasttag.json").unlink()
    hf_cache(Path(env["HF_HUB_CACHE"]), "tiny-org/onnx-ner", files)
    hf_cache(Path(env["HF_HUB_CACHE"]), "tiny-org/export-ner", bert_export)
    want = spans(Tagger.load(bert_export).tag(TEXTS))
    for repo, what in (("tiny-org/onnx-ner", "ONNX folder without fasttag.json"), ("tiny-org/export-ner",
                                                                                   "export folder")):
        out = tmp_path / f"{repo.split('/')[1]}.jsonl"
        proc = fasttag_no_torch(["run", corpus(tmp_path), "-o", out, "--model", repo, "--device", "cpu"], env)
        assert proc.returncode == 0, proc.stderr
        assert proc.stderr.splitlines()[0] == f"fasttag: {repo} @ 0123456 ({what}, fp32) on CPUExecutionProvider"
        got = [json.loads(line)["entities"] for line in out.read_text().splitlines()]
        assert [[(e["start"], e["end"], e["label"]) for e in d] for d in got] == want
    partial = tmp_path / "partial"
    partial.mkdir()
    shutil.copy(bert_export / "config.json", partial / "config.json")
    hf_cache(Path(env["HF_HUB_CACHE"]), "tiny-org/partial", partial)
    proc = fasttag_no_torch(["run", corpus(tmp_path), "-o", tmp_path / "p.jsonl", "--model", "tiny-org/partial"], env)
    assert proc.returncode == 1 and "an incomplete download? Download it again ('hf download tiny-org/partial')" \
        in proc.stderr, proc.stderr


def test_a_hub_id_offline_and_not_cached_says_how_to_fix_it(tmp_path, bert_export):
    env = hub_env(tmp_path)
    hf_cache(Path(env["HF_HUB_CACHE"]), REPO, fake_checkpoint(tmp_path / "files", bert_export))
    for args, what in [([], "tiny-org/absent"), (["--revision", "v2"], f"{REPO} @ v2")]:
        name = what.split(" @ ")[0]
        proc = fasttag_no_torch(["info", name, *args], env)
        assert proc.returncode == 1, proc.stderr
        line = proc.stderr.splitlines()[0]
        assert line.startswith(f"Error: no local folder {name} exists, and {what} is not in the Hugging Face cache "
                               f"({env['HF_HUB_CACHE']})"), line
        assert "while HF_HUB_OFFLINE is set" in line and "hf download" in line and "Traceback" not in proc.stderr


def test_a_hub_model_with_custom_code_is_refused(tmp_path, bert_export):
    env = hub_env(tmp_path)
    files = fake_checkpoint(tmp_path / "files", bert_export, auto_map={"AutoConfig": "configuration_x.XConfig"})
    hf_cache(Path(env["HF_HUB_CACHE"]), REPO, files)
    proc = fasttag_no_torch(["info", REPO], env)
    assert proc.returncode == 1 and "needs custom code" in proc.stderr.splitlines()[0], proc.stderr
    assert "fasttag does not run a model's own code" in proc.stderr


# -- forms 3 and 4, exported for real ---------------------------------------------------------------
@pytest.mark.torch
def test_a_checkpoint_folder_is_exported_once_and_reused(checkpoint_factory, export_factory, cache_root, capsys):
    ckpt = checkpoint_factory("bert")
    first = Tagger.load(ckpt, device="cpu")
    origin = first.bundle.origin
    assert origin.form == "checkpoint" and origin.exported and first.bundle.path.parent == cache_root / "exports"
    assert first.bundle.describe() == f"{ckpt} (checkpoint, exported to the cache as fp32)"
    assert "exporting to ONNX once (fp32" in capsys.readouterr().err
    assert spans(first.tag(TEXTS)) == spans(Tagger.load(export_factory("bert")).tag(TEXTS))
    again = Tagger.load(ckpt, device="cpu")
    assert not again.bundle.origin.exported and again.bundle.path == first.bundle.path
    assert again.bundle.describe() == f"{ckpt} (checkpoint, fp32 export from the cache)"
    assert capsys.readouterr().err == ""
    manifest = json.loads((first.bundle.path / "fasttag.json").read_text())
    assert manifest["validation"]["passed"] and manifest["precision"] == "fp32"  # validated as fasttag export does


@pytest.mark.torch
def test_an_optimum_export_is_used_without_a_manifest(checkpoint_factory, export_factory, tmp_path):
    from optimum.exporters.onnx import main_export

    folder = tmp_path / "optimum-onnx"
    main_export(str(checkpoint_factory("bert")), folder, task="token-classification", do_validation=False)
    assert not (folder / "fasttag.json").exists() and (folder / "model.onnx").exists()
    tagger = Tagger.load(folder, device="cpu")
    assert tagger.bundle.origin.form == "onnx" and tagger.bundle.max_length == 128
    assert spans(tagger.tag(TEXTS)) == spans(Tagger.load(export_factory("bert")).tag(TEXTS))


def _fasttag(args, env) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "fasttag", *map(str, args)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env)


@pytest.mark.torch
def test_two_processes_on_one_hub_model_make_one_export(checkpoint_factory, tmp_path):
    env = hub_env(tmp_path)
    hf_cache(Path(env["HF_HUB_CACHE"]), REPO, checkpoint_factory("bert"))
    src = corpus(tmp_path)
    procs = [_fasttag(["run", src, "-o", tmp_path / f"o{i}.jsonl", "--model", REPO, "--device", "cpu"], env)
             for i in range(2)]
    results = [p.communicate(timeout=900) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], results
    errs = [err for _, err in results]
    assert sum(err.count("exporting to ONNX once") for err in errs) == 1, errs
    firsts = sorted(next(x for x in err.splitlines() if " on CPUExecutionProvider" in x) for err in errs)
    assert firsts == [f"fasttag: {REPO} @ 0123456 (hub, exported to the cache as fp32) on CPUExecutionProvider",
                      f"fasttag: {REPO} @ 0123456 (hub, fp32 export from the cache) on CPUExecutionProvider"], errs
    assert (tmp_path / "o0.jsonl").read_text() == (tmp_path / "o1.jsonl").read_text()
    listed = json.loads(subprocess.run([sys.executable, "-m", "fasttag", "cache", "list", "--json"], env=env,
                                       capture_output=True, text=True, check=True).stdout)
    assert [(e["source"], e["commit"], e["precision"]) for e in listed["entries"]] == [(REPO, COMMIT, "fp32")]
    assert listed["unfinished"] == []
    manifest = json.loads((Path(listed["entries"][0]["path"]) / "fasttag.json").read_text())
    assert (manifest["source_model"], manifest["source_revision"]) == (REPO, COMMIT)
    info = subprocess.run([sys.executable, "-m", "fasttag", "info", REPO], env=env, capture_output=True, text=True)
    assert f"source:     {REPO} @ 0123456" in info.stdout, info.stdout + info.stderr


@pytest.mark.torch
def test_an_export_killed_midway_leaves_nothing_a_later_run_takes(checkpoint_factory, tmp_path, monkeypatch):
    env = hub_env(tmp_path)
    ckpt = tmp_path / "ckpt"
    shutil.copytree(checkpoint_factory("bert"), ckpt)
    proc = _fasttag(["info", ckpt, "--precision", "fp32"], env)
    exports = Path(env["FASTTAG_CACHE"]) / "exports"
    deadline = time.monotonic() + 600  # generous: on a busy machine, importing torch alone takes minutes
    try:  # kill it once the ONNX graph is being written or validated inside the temporary folder
        while not list(exports.glob(".*.tmp-*/**/model.onnx")):
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "the export did not start"
            time.sleep(0.01)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.communicate()
    monkeypatch.setenv("FASTTAG_CACHE", env["FASTTAG_CACHE"])
    assert cache.entries() == [] and len(cache.leftovers()) == 1
    tagger = Tagger.load(ckpt, device="cpu")  # the lock died with the process: this export proceeds
    assert tagger.bundle.origin.exported and [e.key for e in cache.entries()] == [tagger.bundle.origin.cache_key]
    assert cache.leftovers() == [] and len(tagger.tag(TEXTS)) == len(TEXTS)
