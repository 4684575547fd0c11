"""A real S3-compatible server on 127.0.0.1 for the tests: moto's standalone server (``moto_server``).

It enforces conditional writes (``If-None-Match: *`` answers 412 to the loser), which is what the
store's commits rely on. The tests point boto3, pyarrow and polars at it through the usual
``AWS_*`` environment variables, with throwaway credentials.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class S3Server:
    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        exe = shutil.which("moto_server") or str(Path(sys.executable).with_name("moto_server"))
        self.proc = subprocess.Popen(
            [exe, "-H", "127.0.0.1", "-p", str(self.port)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.time() + 30
        while True:
            try:
                urllib.request.urlopen(self.url, timeout=1)
                break
            except OSError:
                if time.time() > deadline or self.proc.poll() is not None:
                    raise RuntimeError("moto_server did not start") from None
                time.sleep(0.1)
        self.env = {
            "AWS_ACCESS_KEY_ID": "tracekit-test",
            "AWS_SECRET_ACCESS_KEY": "tracekit-test-secret",
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_ENDPOINT_URL": self.url,
        }

    def bucket(self, name: str) -> str:
        import boto3

        boto3.client("s3", endpoint_url=self.url, region_name="us-east-1").create_bucket(Bucket=name)
        return name

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=10)


def env_with(server: S3Server) -> dict[str, str]:
    return {**os.environ, **server.env}
