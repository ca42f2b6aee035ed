"""fasttag's export cache (`fasttag.cache`, `fasttag cache list|clear`): where it lives, what a key covers, that an
entry appears only complete, and that concurrent processes make one entry. No torch: entries here are made by
copying the committed tiny export (tests/test_bring_model.py exports for real)."""

import json
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from click.testing import CliRunner

from fasttag import cache
from fasttag.cli import cli
from fasttag.errors import UsageError


def invoke(*args):
    return CliRunner().invoke(cli, [str(a) for a in args])


def copy_of(model: Path):
    return lambda out: shutil.copytree(model, out)


def test_the_cache_lives_where_the_user_says(tmp_path, monkeypatch):
    monkeypatch.delenv("FASTTAG_CACHE", raising=False)
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert cache.cache_dir() == tmp_path / "home" / ".cache" / "fasttag"
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache.cache_dir() == tmp_path / "xdg" / "fasttag"
    monkeypatch.setenv("FASTTAG_CACHE", str(tmp_path / "mine"))
    assert cache.cache_dir() == tmp_path / "mine" and cache.exports_dir() == tmp_path / "mine" / "exports"


def test_a_key_covers_what_changes_the_export():
    key = cache.entry_key("dslim/bert-base-NER", "hub:dslim/bert-base-NER@abc", "fp32", 18)
    assert key.startswith("dslim--bert-base-NER-fp32-")
    assert key == cache.entry_key("dslim/bert-base-NER", "hub:dslim/bert-base-NER@abc", "fp32", 18)
    others = {cache.entry_key("dslim/bert-base-NER", "hub:dslim/bert-base-NER@abd", "fp32", 18),
              cache.entry_key("dslim/bert-base-NER", "hub:dslim/bert-base-NER@abc", "int8", 18),
              cache.entry_key("dslim/bert-base-NER", "hub:dslim/bert-base-NER@abc", "fp32", 17)}
    assert key not in others and len(others) == 3
    assert "/" not in cache.entry_key("a weird/name!", "x", "fp16", 18)


def test_an_entry_is_made_once_and_found_after(cache_root, bert_export):
    calls = []

    def make(out):
        calls.append(out)
        shutil.copytree(bert_export, out)

    entry = cache.build("k-fp32-1", {"source": "src", "precision": "fp32"}, make)
    assert entry.exported and entry.path == cache_root / "exports" / "k-fp32-1"
    assert (entry.path / "model.onnx").is_file() and entry.info["source"] == "src" and entry.info["created"]
    again = cache.build("k-fp32-1", {"source": "src"}, make)
    assert len(calls) == 1 and not again.exported and again.path == entry.path
    assert cache.lookup("k-fp32-1").info["precision"] == "fp32"
    assert [e.key for e in cache.entries()] == ["k-fp32-1"] and cache.leftovers() == []


def test_a_failed_export_leaves_nothing(cache_root, bert_export):
    def half_then_fail(out):
        shutil.copytree(bert_export, out)
        raise RuntimeError("validation failed")

    with pytest.raises(RuntimeError):
        cache.build("k-fp32-2", {}, half_then_fail)
    assert cache.lookup("k-fp32-2") is None and cache.entries() == [] and cache.leftovers() == []


def test_a_killed_export_is_never_taken_for_complete(cache_root, bert_export):
    # what SIGKILL leaves: a temporary folder with a whole model in it, but never the entry itself
    stale = cache_root / "exports" / ".k-fp32-3.tmp-dead"
    shutil.copytree(bert_export, stale / "model")
    assert cache.lookup("k-fp32-3") is None and cache.leftovers() == [stale]
    res = invoke("cache", "list")
    assert res.exit_code == 0 and "no exports" in res.output and "plus 1 unfinished export" in res.output
    entry = cache.build("k-fp32-3", {}, copy_of(bert_export))  # the next export of that key clears it away
    assert entry.exported and not stale.exists() and cache.leftovers() == []


def test_clear_all_removes_leftovers_but_not_a_running_export(cache_root, bert_export):
    import fcntl
    import os

    root = cache_root / "exports"
    dead, live = root / ".dead-fp32-1.tmp-x", root / ".live-fp32-1.tmp-y"
    dead.mkdir(parents=True)
    live.mkdir(parents=True)
    fd = os.open(root / ".live-fp32-1.lock", os.O_RDWR | os.O_CREAT)
    fcntl.flock(fd, fcntl.LOCK_EX)  # an export of that key is running (here: in this process, another fd)
    try:
        res = invoke("cache", "clear", "--all")
    finally:
        os.close(fd)
    assert res.exit_code == 0 and "1 unfinished export still running, kept" in res.output, res.output
    assert not dead.exists() and live.exists()


RACE = textwrap.dedent("""
    import shutil, sys, time
    from pathlib import Path
    from fasttag import cache

    def make(out):
        with open(sys.argv[2], "a") as fh:
            fh.write("made\\n")
        time.sleep(1.5)  # long enough for the other process to ask meanwhile
        shutil.copytree(sys.argv[1], out)

    entry = cache.build("race-fp32-1", {"source": "race"}, make, log=lambda m: print(m, file=sys.stderr))
    print(entry.path, entry.exported)
""")


def test_two_processes_asking_at_once_make_one_entry(cache_root, bert_export, tmp_path):
    made = tmp_path / "made.txt"
    procs = [subprocess.Popen([sys.executable, "-c", RACE, str(bert_export), str(made)], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for _ in range(2)]
    results = [p.communicate(timeout=600) for p in procs]
    assert all(p.returncode == 0 for p in procs), results
    assert made.read_text() == "made\n"  # one export
    paths = {out.split()[0] for out, _ in results}
    assert paths == {str(cache_root / "exports" / "race-fp32-1")}
    assert sorted(out.split()[1] for out, _ in results) == ["False", "True"]
    waited = [err for _, err in results if "waiting for another fasttag process" in err]
    assert len(waited) == 1, results  # the second process said why it waited


def test_folder_digest_follows_the_contents(cache_root, tmp_path):
    folder = tmp_path / "ckpt"
    folder.mkdir()
    (folder / "config.json").write_text("{}")
    (folder / "model.safetensors").write_bytes(b"w" * 1000)
    first = cache.folder_digest(folder, ["config.json", "model.safetensors"])
    assert first == cache.folder_digest(folder, ["model.safetensors", "config.json"])
    assert (cache_root / ".hashes.json").is_file()  # remembered by size, mtime and inode
    (folder / "model.safetensors").write_bytes(b"v" * 1001)
    assert cache.folder_digest(folder, ["config.json", "model.safetensors"]) != first
    copy = tmp_path / "copy"
    shutil.copytree(folder, copy)
    assert cache.folder_digest(copy, ["config.json", "model.safetensors"]) == cache.folder_digest(
        folder, ["config.json", "model.safetensors"])  # a copy is the same checkpoint


def test_list_and_clear(cache_root, bert_export, tmp_path):
    for key, source, precision in [("a-fp32-1", "org/a", "fp32"), ("a-int8-1", "org/a", "int8"),
                                   ("b-fp32-1", str(tmp_path / "ckpt-b"), "fp32")]:
        cache.build(key, {"source": source, "precision": precision, "commit": "0123456789" if "/a" in source else None},
                    copy_of(bert_export))
    res = invoke("cache", "list")
    assert res.exit_code == 0, res.output
    lines = res.output.splitlines()
    assert lines[0].startswith(f"{cache_root / 'exports'}: 3 exports, ")
    assert lines[1].split() == ["KEY", "SOURCE", "PRECISION", "SIZE", "CREATED"]
    assert "org/a @ 0123456" in lines[2] and "fp32" in lines[2] and "MB" in lines[2]
    data = json.loads(invoke("cache", "list", "--json").output)
    assert [e["key"] for e in data["entries"]] == ["a-fp32-1", "a-int8-1", "b-fp32-1"]
    assert all(e["size"] > 100_000 for e in data["entries"])

    res = invoke("cache", "clear", "a-int8-1")
    assert res.exit_code == 0 and res.output.startswith("removed 1 export (0.2 MB)"), res.output
    res = invoke("cache", "clear", "org/a")  # a source: all its precisions
    assert res.exit_code == 0 and "removed 1 export" in res.output
    assert [e.key for e in cache.entries()] == ["b-fp32-1"]
    (tmp_path / "ckpt-b").mkdir()
    res = invoke("cache", "clear", tmp_path / "ckpt-b")  # a folder, as it was given to --model
    assert res.exit_code == 0 and cache.entries() == []
    assert not any(p.name.startswith(".") and "tmp" in p.name for p in (cache_root / "exports").iterdir())


@pytest.mark.parametrize("args, message", [
    ([], "Error: give the entries to remove (KEY or SOURCE, see 'fasttag cache list'), or --all"),
    (["x", "--all"], "Error: give the entries to remove (KEY or SOURCE) or --all, not both"),
    (["no-such-key"], "no cache entry 'no-such-key'"),
])
def test_clear_refusals_are_one_line(cache_root, args, message):
    res = invoke("cache", "clear", *args)
    assert res.exit_code == 2 and message in res.output and len(res.output.strip().splitlines()) == 1, res.output


def test_find_refuses_an_unknown_name(cache_root):
    with pytest.raises(UsageError, match="fasttag cache list"):
        cache.find(["nothing"])
