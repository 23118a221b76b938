"""A real S3 API on 127.0.0.1 for the object-storage tests: moto's standalone server, started
and stopped by the tests, with dummy credentials in the environment (no AWS account, nothing
beyond loopback). Python code reaches it through fsspec/s3fs by `AWS_ENDPOINT_URL`."""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import fsspec

BUCKET = "curate-test"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass(frozen=True)
class S3:
    """The running server: its endpoint, the environment that points clients at it, a bucket."""

    endpoint: str
    env: dict[str, str]
    bucket: str = BUCKET

    def url(self, *parts: str) -> str:
        """A fresh prefix of the bucket (each test its own), e.g. s3://curate-test/<hex>/run."""
        return "/".join([f"s3://{self.bucket}", uuid.uuid4().hex[:12], *parts])

    def filesystem(self) -> fsspec.AbstractFileSystem:
        return fsspec.filesystem("s3", skip_instance_cache=True)


@contextlib.contextmanager
def s3_server() -> Iterator[S3]:
    """Start moto's server on a free loopback port, point the environment at it, make a bucket;
    undo all of it on exit."""
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # one log line per request otherwise
    port = _free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    env = {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ENDPOINT_URL": endpoint,
    }
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    fsspec.AbstractFileSystem.clear_instance_cache()  # no client made before the env was set
    try:
        s3 = S3(endpoint, env)
        s3.filesystem().mkdir(BUCKET)
        yield s3
    finally:
        fsspec.AbstractFileSystem.clear_instance_cache()
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        server.stop()
