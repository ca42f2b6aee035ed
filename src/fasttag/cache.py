"""fasttag's export cache: ONNX exports of checkpoints and hub models, made once and reused.

It lives in `$FASTTAG_CACHE`, else `$XDG_CACHE_HOME/fasttag`, else `~/.cache/fasttag`; each entry is a
folder `exports/KEY` that `fasttag run` loads as it loads any export folder. The key covers what changes
the result: the source's identity (a hub commit, or a hash of a folder's config, tokenizer and weight
files), the precision, the opset and fasttag's version.

An entry is written in a temporary folder beside it (`.KEY.tmp-*`), validated, and renamed into place
only when complete, so an entry that exists is complete: a failed or killed export leaves only a
temporary folder, which no lookup takes for an entry and the next export of that key removes. An
exclusive `flock` on `.KEY.lock` makes concurrent processes asking for the same entry wait for one
export and share it.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import re
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from fasttag import __version__
from fasttag.errors import ModelError, UsageError

CACHE_ENV = "FASTTAG_CACHE"
ENTRY_INFO = "fasttag-cache.json"  # written into an entry last, before it is renamed into place
CACHE_FORMAT = 1
_TMP = ".tmp-"
_LOCK = ".lock"
# flock is not available on every file system (some FUSE and SMB mounts): then exports are not serialized,
# and a second export of the same key is simply discarded at the rename
_NO_FLOCK = {errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOSYS, errno.EINVAL}


def cache_dir() -> Path:
    """$FASTTAG_CACHE, else $XDG_CACHE_HOME/fasttag, else ~/.cache/fasttag."""
    env = os.environ.get(CACHE_ENV, "").strip()
    if env:
        return Path(env).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME", "").strip()
    return (Path(xdg).expanduser() if xdg else Path.home() / ".cache") / "fasttag"


def exports_dir() -> Path:
    return cache_dir() / "exports"


def entry_key(name: str, identity: str, precision: str, opset: int) -> str:
    """`SLUG-PRECISION-HASH`: readable, and different whenever anything that changes the export differs."""
    digest = hashlib.sha256(json.dumps(
        {"format": CACHE_FORMAT, "source": identity, "precision": precision, "opset": opset, "fasttag": __version__},
        sort_keys=True).encode()).hexdigest()[:16]
    slug = re.sub(r"[^A-Za-z0-9._-]+", "-", name.replace("/", "--")).strip("-.")[:64] or "model"
    return f"{slug}-{precision}-{digest}"


@dataclass
class CacheEntry:
    """A complete export in the cache: `path` is an export folder; `info` says what it was made of."""

    key: str
    path: Path
    info: dict = field(default_factory=dict)
    exported: bool = False  # made by this process (else found in the cache)

    def size(self) -> int:
        return _size(self.path)


def lookup(key: str) -> CacheEntry | None:
    """The complete entry `key`, or None (only a complete entry is ever at its path)."""
    path = exports_dir() / key
    if not (path / ENTRY_INFO).is_file():
        return None
    return CacheEntry(key, path, _read_info(path))


def entries() -> list[CacheEntry]:
    """Every complete entry, oldest first."""
    root = exports_dir()
    if not root.is_dir():
        return []
    found = [e for p in root.iterdir() if not p.name.startswith(".") and (e := lookup(p.name)) is not None]
    return sorted(found, key=lambda e: (str(e.info.get("created", "")), e.key))


def leftovers() -> list[Path]:
    """Temporary folders of exports that did not finish (a killed or failed run), or that are running now."""
    root = exports_dir()
    return sorted(p for p in root.glob(f".*{_TMP}*") if p.is_dir()) if root.is_dir() else []


def build(key: str, info: dict, make: Callable[[Path], None], log: Callable[[str], None] | None = None,
          what: str = "this model") -> CacheEntry:
    """The entry `key`, made by `make(folder)` unless it exists (or another process makes it meanwhile).

    `make` writes a complete, validated export folder at the path it is given (which does not exist yet);
    it is called at most once per key at a time across processes (a flock on `.KEY.lock`).
    """
    root = exports_dir()
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ModelError(f"cannot create fasttag's cache folder {root} ({exc.strerror or exc}); set {CACHE_ENV} "
                         "to a writable folder") from exc
    with _key_lock(root / f".{key}{_LOCK}", log, what):
        entry = lookup(key)
        if entry is not None:  # made by the process we waited for
            return entry
        for stale in root.glob(f".{key}{_TMP}*"):  # we hold the key's lock: no live export owns these
            shutil.rmtree(stale, ignore_errors=True)
        work = Path(tempfile.mkdtemp(prefix=f".{key}{_TMP}", dir=root))
        try:
            out = work / "model"
            make(out)
            info = {**info, "format": CACHE_FORMAT, "key": key, "fasttag_version": __version__,
                    "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
            (out / ENTRY_INFO).write_text(json.dumps(info, indent=2) + "\n", encoding="utf-8")
            target = root / key
            if target.exists():  # not complete (lookup said so): a folder someone left by hand
                shutil.rmtree(target)
            try:
                out.rename(target)
            except OSError:
                if lookup(key) is None:  # without flock, another process may have renamed its copy first
                    raise
        finally:
            shutil.rmtree(work, ignore_errors=True)
    entry = lookup(key)
    if entry is None:
        raise ModelError(f"the export cache entry {root / key} vanished as it was made (was the cache cleared?)")
    entry.exported = True
    return entry


def remove(entry: CacheEntry) -> None:
    """Delete an entry: renamed out of place first, so that no lookup sees it half deleted."""
    doomed = entry.path.with_name(f".{entry.key}{_TMP}removed-{os.getpid()}")
    try:
        entry.path.rename(doomed)
    except FileNotFoundError:
        return
    shutil.rmtree(doomed, ignore_errors=True)


def remove_leftover(path: Path) -> bool:
    """Delete an unfinished export's temporary folder unless an export of its key is running now."""
    key = path.name[1:].split(_TMP, 1)[0]
    try:
        fd = os.open(path.parent / f".{key}{_LOCK}", os.O_RDWR | os.O_CREAT, 0o644)
    except OSError:
        return False
    try:
        import fcntl

        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False  # being exported now
        except OSError as exc:
            if exc.errno not in _NO_FLOCK:
                raise
        shutil.rmtree(path, ignore_errors=True)
        return True
    finally:
        os.close(fd)


@contextlib.contextmanager
def _key_lock(path: Path, log: Callable[[str], None] | None, what: str) -> Iterator[None]:
    """An exclusive flock on `path`, waited for (saying so) when another process holds it.

    The kernel drops a flock when its holder dies, even by SIGKILL: a killed export never blocks the next.
    Lock files stay in place (empty): removing one while another process waits on it would let a third lock
    a new file at the same path, and two exports run at once.
    """
    import fcntl

    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as exc:
        raise ModelError(f"cannot write in fasttag's cache ({path}: {exc.strerror or exc}); set {CACHE_ENV} "
                         "to a writable folder") from exc
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            if log:
                log(f"waiting for another fasttag process that is exporting {what} into the cache ...")
            fcntl.flock(fd, fcntl.LOCK_EX)
        except OSError as exc:
            if exc.errno not in _NO_FLOCK:
                raise
        yield
    finally:
        os.close(fd)  # releases the lock


def _read_info(path: Path) -> dict:
    try:
        data = json.loads((path / ENTRY_INFO).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return {}
    return data if isinstance(data, dict) else {}


def _size(path: Path) -> int:
    total = 0
    for dirpath, _, files in os.walk(path):
        for name in files:
            with contextlib.suppress(OSError):
                total += os.lstat(os.path.join(dirpath, name)).st_size
    return total


def leftover_size(path: Path) -> int:
    return _size(path)


# -- what identifies a local checkpoint: a hash of its config, tokenizer and weight files ---------------
def folder_digest(folder: Path, names: list[str]) -> str:
    """sha256 over `names` (files of `folder`) and their contents; each file's hash is remembered by its
    size, modification time and inode (in the cache's `.hashes.json`), so a large checkpoint is read once."""
    memo_path = cache_dir() / ".hashes.json"
    try:
        memo = json.loads(memo_path.read_text(encoding="utf-8"))
        if not isinstance(memo, dict):
            memo = {}
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        memo = {}
    changed = False
    outer = hashlib.sha256()
    for name in sorted(names):
        path = (folder / name).resolve()
        try:
            st = path.stat()
        except OSError as exc:
            raise ModelError(f"cannot read {folder / name} ({exc.strerror or exc})") from exc
        stamp = [st.st_size, st.st_mtime_ns, st.st_ino]
        known = memo.get(str(path))
        if isinstance(known, list) and len(known) == 4 and known[:3] == stamp:
            digest = known[3]
        else:
            digest = _file_sha256(path)
            memo[str(path)] = [*stamp, digest]
            changed = True
        outer.update(f"{name}\0{digest}\n".encode())
    if changed:
        _write_memo(memo_path, memo)
    return outer.hexdigest()


def _file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    try:
        with open(path, "rb") as fh:
            while block := fh.read(1 << 20):
                h.update(block)
    except OSError as exc:
        raise ModelError(f"cannot read {path} ({exc.strerror or exc})") from exc
    return h.hexdigest()


def _write_memo(path: Path, memo: dict) -> None:
    """Best effort: a cache that cannot be written only means hashing again next time."""
    with contextlib.suppress(OSError):
        path.parent.mkdir(parents=True, exist_ok=True)
        if len(memo) > 1000:  # forget the oldest half (dicts keep insertion order)
            memo = dict(list(memo.items())[len(memo) // 2:])
        fd, tmp = tempfile.mkstemp(prefix=".hashes.", dir=path.parent)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(memo, fh)
        os.replace(tmp, path)


def find(names: list[str]) -> list[CacheEntry]:
    """The entries each of `names` means: a key, or a source (every entry made of that hub id or folder)."""
    all_entries = entries()
    found: list[CacheEntry] = []
    for name in names:
        matches = [e for e in all_entries if name in (e.key, e.info.get("source"))]
        if not matches:
            raise UsageError(f"no cache entry {name!r} (see 'fasttag cache list' for the keys and sources)")
        found += [e for e in matches if e not in found]
    return found
