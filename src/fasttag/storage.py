"""Remote inputs and outputs (`s3://`, `gs://`, `hdfs://`) through pyarrow filesystems.

A remote location is resolved once into a pyarrow `FileSystem` and the path inside it; readers open
streams through it and writers upload finished files to it. Errors from the store (no such bucket,
refused credentials, unreachable endpoint) become one-line `InputError`/`OutputError`s naming the URI.

S3-compatible stores (MinIO, Ceph, a local test server) are reached by setting `FASTTAG_S3_ENDPOINT`
to their URL, e.g. `http://127.0.0.1:9000`; credentials come from the usual AWS variables or files.
"""

from __future__ import annotations

import contextlib
import io
import os
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import IO
from urllib.parse import urlsplit

import pyarrow as pa
import pyarrow.fs as pafs

from fasttag.errors import FasttagError, InputError, OutputError, first_line

REMOTE_SCHEMES = ("s3", "gs", "gcs", "hdfs", "viewfs")
# Object stores show an object only once its upload completed, so uploading to the final key is atomic.
OBJECT_STORES = ("s3", "gs", "gcs")
S3_ENDPOINT_ENV = "FASTTAG_S3_ENDPOINT"
# Attempts per S3 request: transient errors (connection resets, timeouts, HTTP 500/503 "slow down") are retried
# with exponential backoff by the AWS SDK's standard strategy, then reported in one line.
S3_ATTEMPTS = 6


def is_remote(path: str | os.PathLike) -> bool:
    """True for a URI of a remote store (s3://, gs://, hdfs://); local paths and '-' are not."""
    text = str(path)
    scheme, sep, _ = text.partition("://")
    return bool(sep) and scheme.lower() in REMOTE_SCHEMES


def without_query(path: str) -> str:
    """A URI without its query parameters (they configure the filesystem, e.g. ?endpoint_override=...)."""
    return path.split("?", 1)[0] if is_remote(path) else path


def add_suffix(uri: str, suffix: str) -> str:
    """`uri` + `suffix` (e.g. '.rejects.jsonl'), before the query parameters if any."""
    base, sep, query = uri.partition("?")
    return f"{base}{suffix}" + (f"?{query}" if sep else "")


@dataclass(frozen=True)
class RemotePath:
    """A URI resolved into the filesystem that serves it and the path inside that filesystem."""

    uri: str
    fs: pafs.FileSystem
    path: str

    @property
    def scheme(self) -> str:
        return self.uri.partition("://")[0].lower()

    @property
    def name(self) -> str:
        return self.path.rstrip("/").rsplit("/", 1)[-1]

    def sibling(self, name: str) -> RemotePath:
        base, sep, query = self.uri.partition("?")
        uri = f"{base.rstrip('/').rsplit('/', 1)[0]}/{name}" + (f"?{query}" if sep else "")
        return RemotePath(uri, self.fs, f"{self.path.rstrip('/').rsplit('/', 1)[0]}/{name}")

    def info(self, error: type[FasttagError] = InputError) -> pafs.FileInfo:
        with remote_errors(self.uri, error):
            return self.fs.get_file_info(self.path)

    def exists(self, error: type[FasttagError] = InputError) -> bool:
        return self.info(error).type != pafs.FileType.NotFound

    def is_dir(self, error: type[FasttagError] = InputError) -> bool:
        return self.info(error).type == pafs.FileType.Directory

    def missing_container(self, error: type[FasttagError] = InputError) -> str | None:
        """Why nothing can live at this path (a missing bucket or parent folder), or None."""
        if self.scheme in OBJECT_STORES:
            bucket = self.path.split("/", 1)[0]
            with remote_errors(self.uri, error):
                found = self.fs.get_file_info(bucket).type != pafs.FileType.NotFound
            return None if found else f"bucket {bucket!r} does not exist"
        parent = self.path.rstrip("/").rsplit("/", 1)[0] or "/"
        with remote_errors(self.uri, error):
            found = self.fs.get_file_info(parent).type == pafs.FileType.Directory
        return None if found else f"folder {parent} does not exist"


def resolve(uri: str, error: type[FasttagError] = InputError) -> RemotePath:
    """The filesystem and inner path of a remote URI (FASTTAG_S3_ENDPOINT applies to s3://)."""
    parts = urlsplit(uri)
    endpoint = os.environ.get(S3_ENDPOINT_ENV)
    with remote_errors(uri, error):
        if parts.scheme.lower() == "s3" and endpoint and not parts.query:
            fs = s3_filesystem(endpoint)
            return RemotePath(uri, fs, f"{parts.netloc}{parts.path}".rstrip("/") or parts.netloc)
        fs, path = pafs.FileSystem.from_uri(uri)
    return RemotePath(uri, fs, path)


def s3_filesystem(endpoint: str) -> pafs.S3FileSystem:
    """An S3FileSystem for an S3-compatible endpoint such as http://127.0.0.1:9000."""
    split = urlsplit(endpoint if "://" in endpoint else f"https://{endpoint}")
    return pafs.S3FileSystem(
        endpoint_override=split.netloc,
        scheme=split.scheme or "https",
        region=os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1",
        retry_strategy=pafs.AwsStandardS3RetryStrategy(max_attempts=S3_ATTEMPTS),
    )


@contextlib.contextmanager
def remote_errors(uri: str, error: type[FasttagError]) -> Iterator[None]:
    """Turn a store's exception into a one-line fasttag error naming the URI."""
    try:
        yield
    except FasttagError:
        raise
    except (OSError, pa.ArrowException, ValueError) as exc:
        raise error(f"{uri}: {first_line(exc)}") from exc


def open_input_stream(uri: str) -> IO[bytes]:
    """A buffered binary stream of a remote file, bytes as stored (a .gz file stays compressed)."""
    remote = resolve(uri)
    with remote_errors(uri, InputError):
        return io.BufferedReader(remote.fs.open_input_stream(remote.path, compression=None), buffer_size=1 << 20)


def open_input_file(uri: str) -> pa.NativeFile:
    """A random-access remote file (as Parquet needs)."""
    remote = resolve(uri)
    with remote_errors(uri, InputError):
        return remote.fs.open_input_file(remote.path)


def list_files(uri: str, suffix: str = "") -> list[str]:
    """URIs of the files under a remote folder whose names end with `suffix` (any case), sorted; hidden ones
    skipped."""
    from fasttag.formats import is_hidden  # the local listing's rule (formats imports this module)

    remote = resolve(uri)
    with remote_errors(uri, InputError):
        infos = remote.fs.get_file_info(pafs.FileSelector(remote.path, recursive=True))
    base = remote.path.rstrip("/")
    out = []
    for info in infos:
        rel = info.path[len(base):].lstrip("/")
        if info.type != pafs.FileType.File or not info.path.lower().endswith(suffix.lower()):
            continue
        if is_hidden(rel.split("/")):
            continue
        out.append(_join(remote.uri, rel))
    # Sorted by path components, as the local reader sorts a folder's files (`a/b` before `a-c`).
    return sorted(out, key=lambda uri: without_query(uri).split("/"))


def upload(local: str | os.PathLike, uri: str) -> None:
    """Copy a finished local file to `uri` so that the URI holds either nothing or the whole file.

    Object stores show an object only when its upload completed; elsewhere (HDFS) the file is copied
    beside the target under a hidden name, then renamed onto it.
    """
    remote = resolve(uri, OutputError)
    with remote_errors(uri, OutputError):
        if remote.scheme in OBJECT_STORES:
            stopped = _copy(local, remote)
        else:
            hidden = remote.sibling(f".{remote.name}.partial")
            stopped = _copy(local, hidden)
            if stopped is None:
                remote.fs.move(hidden.path, remote.path)
        size, stored = os.path.getsize(local), remote.fs.get_file_info(remote.path).size
    if stored == size:
        return  # whole: a stop that came during the copy is dropped, the run's work is done (see _copy)
    if stopped is not None:
        raise stopped  # the signal cut the upload short, and the store kept nothing: "interrupted, nothing written"
    what = "nothing" if stored is None else f"{stored:,} bytes"
    raise OutputError(f"{uri}: the store holds {what} after the upload of {size:,} bytes")


def _copy(local: str | os.PathLike, remote: RemotePath) -> BaseException | None:
    """Stream a local file to `remote`, so that the store ends with the whole file or none of it.

    pyarrow's copy_files ignores an error of the final close (a multipart upload whose last part failed),
    which would report a missing object as written: the stream is closed here, where its error is raised.
    The copy runs in a thread of its own, which a Ctrl-C or SIGTERM cannot stop halfway: an output stream
    dropped before its close would complete the upload with the bytes written so far. A stop (Ctrl-C,
    SIGTERM) waits for the copy; it is raised if the copy failed, else returned: `upload` raises it only
    if the store does not hold the whole file (a signal can cut a request short without an error), and
    drops it if it does (the run's work is done then: saying "interrupted, nothing written" would be false).
    """
    failed: list[BaseException] = []

    def copy() -> None:
        try:
            with open(local, "rb") as src:
                dst = remote.fs.open_output_stream(remote.path, compression=None)
                while block := src.read(8 << 20):
                    dst.write(block)
                dst.close()
        except BaseException as exc:
            failed.append(exc)

    worker = threading.Thread(target=copy, name="fasttag-upload")
    worker.start()
    stopped: BaseException | None = None
    while worker.is_alive():
        try:
            worker.join()
        except BaseException as exc:  # KeyboardInterrupt, or run's SIGTERM: after the copy
            stopped = stopped or exc
    if failed:
        raise (stopped or failed[0])
    return stopped


def _join(uri: str, rel: str) -> str:
    """`uri`/`rel`, keeping the URI's query parameters (they configure the filesystem)."""
    base, sep, query = uri.partition("?")
    return f"{base.rstrip('/')}/{rel}" + (f"?{query}" if sep else "")
