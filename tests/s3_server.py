"""A local S3-compatible server for the tests: moto's server mode, bound to 127.0.0.1 only."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator

BUCKET = "fasttag-test"
# What pyarrow's S3 client and fasttag read; AWS_* variables that could point elsewhere are cleared.
CLEARED = ("AWS_SESSION_TOKEN", "AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3")


@contextlib.contextmanager
def local_s3(buckets: tuple[str, ...] = (BUCKET,)) -> Iterator[tuple[str, object]]:
    """Start the server, point FASTTAG_S3_ENDPOINT and test credentials at it; yields (endpoint, S3FileSystem)."""
    import pyarrow.fs as pafs
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    env = {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "FASTTAG_S3_ENDPOINT": endpoint,
    }
    saved = {k: os.environ.get(k) for k in (*env, *CLEARED)}
    for k in CLEARED:
        os.environ.pop(k, None)
    os.environ.update(env)
    try:
        fs = pafs.S3FileSystem(endpoint_override=f"{host}:{port}", scheme="http", region="us-east-1",
                               access_key="testing", secret_key="testing", allow_bucket_creation=True)
        for bucket in buckets:
            fs.create_dir(bucket)
        yield endpoint, fs
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        server.stop()


def put(fs, key: str, local) -> str:
    """Upload a local file to s3://KEY; returns the URI."""
    with open(local, "rb") as src, fs.open_output_stream(key, compression=None) as dst:
        dst.write(src.read())
    return f"s3://{key}"


def get(fs, key: str) -> bytes:
    with fs.open_input_stream(key, compression=None) as fh:
        return fh.read()
