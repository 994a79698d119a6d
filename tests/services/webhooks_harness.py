"""A loopback receiver that answers as scripted and records every request, and the real webhooks service
(`platformctl webhooks serve`) as a subprocess."""

from __future__ import annotations

import base64
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx

from tests.services.image_env import ImageEnv
from tests.services.meter_harness import LOOPBACK_TLS, free_port

ROOT = Path(__file__).resolve().parents[2]
PLATFORMCTL = str(Path(sys.executable).parent / "platformctl")
EVENT_TOKEN = "test-event-token-" + "e" * 16
KONG_TOKEN = "test-kong-token-" + "k" * 16
SECRET_KEY = base64.b64encode(b"k" * 32).decode()


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    at: float
    status: int


Script = Callable[[str, dict[str, str], bytes, int], tuple[int, dict[str, str]]]
"""(path, headers, body, how many requests this webhook-id had before) -> (status, headers)."""


def accept(path: str, headers: dict[str, str], body: bytes, seen: int) -> tuple[int, dict[str, str]]:
    return 204, {}


class Receiver:
    """A real HTTP server on 127.0.0.1: what a partner's endpoint is, minus TLS."""

    def __init__(self, script: Script = accept) -> None:
        self.script = script
        self.received: list[Received] = []
        self.lock = threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                return None

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length", "0")))
                headers = {k.lower(): v for k, v in self.headers.items()}
                with outer.lock:
                    seen = sum(1 for r in outer.received if r.headers.get("webhook-id") == headers.get("webhook-id"))
                    status, extra = outer.script(self.path, headers, body, seen)
                    outer.received.append(Received(self.path, headers, body, time.time(), status))
                self.send_response(status)
                for key, value in {"content-length": "0", **extra}.items():
                    self.send_header(key, value)
                self.end_headers()

            do_GET = do_POST  # noqa: N815

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def url(self, path: str = "/hook") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def __enter__(self) -> Receiver:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()

    def for_id(self, webhook_id: str) -> list[Received]:
        with self.lock:
            return [r for r in self.received if r.headers.get("webhook-id") == webhook_id]

    def wait(self, predicate: Callable[[list[Received]], bool], timeout: float = 30.0) -> list[Received]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                snapshot = list(self.received)
            if predicate(snapshot):
                return snapshot
            time.sleep(0.02)
        raise AssertionError(f"receiver: condition not met in {timeout} s; got {len(self.received)} requests")


def event(event_type: str = "call.completed", partner: str = "acme-voice", **data: Any) -> dict[str, Any]:
    if event_type == "call.completed":
        data = {
            "call_id": "CA" + uuid.uuid4().hex,
            "number": "+4930123456",
            "duration_seconds": 61,
            "billable_seconds": 61,
            **data,
        }
    return {"id": f"evt-{uuid.uuid4().hex}", "type": event_type, "partner": partner, "data": data}


def owner_headers(owner: str) -> dict[str, str]:
    return {"authorization": f"Bearer {KONG_TOKEN}", "x-consumer-custom-id": owner}


PRODUCER = {"authorization": f"Bearer {EVENT_TOKEN}"}


def settings(**extra: str) -> dict[str, str]:
    """The service's own variables (tokens, key, the loopback test setting) and `extra`."""
    return {
        "WEBHOOKS_EVENT_TOKEN": EVENT_TOKEN,
        "WEBHOOKS_KONG_TOKEN": KONG_TOKEN,
        "WEBHOOKS_SECRET_KEY": SECRET_KEY,
        "WEBHOOKS_ALLOW_LOOPBACK": "1",
        **extra,
    }


def service_env(**extra: str) -> dict[str, str]:
    """A checkout process's environment (this checkout first on the path)."""
    env = {k: v for k, v in os.environ.items() if k != "KUBERNETES_SERVICE_HOST"}
    return {**env, "PYTHONPATH": str(ROOT), **settings(**extra)}


class Service:
    """The service as a process: `platform-services webhooks serve` from the image environment when `image` is given
    (no checkout on its path, run from an empty folder), else `platformctl webhooks serve` of this checkout."""

    def __init__(self, workdir: Path, image: ImageEnv | None = None, **env: str) -> None:
        self.workdir = workdir
        self.image = image
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.env = env
        self.proc: subprocess.Popen[bytes] | None = None
        self.log = workdir / f"webhooks-{self.port}.log"
        self.extra_args: list[str] = []

    def start(self) -> Service:
        if self.image is None:
            args = [PLATFORMCTL, "--root", str(ROOT), "webhooks", "serve"]
            environment = service_env(**self.env)
        else:
            args = [str(self.image.script), "webhooks", "serve"]
            environment = self.image.environ(**settings(**self.env))
            environment.pop("KUBERNETES_SERVICE_HOST", None)
        args += ["--port", str(self.port), "--store", f"local:{self.workdir / 'store'}", *self.extra_args]
        cwd = self.workdir / "cwd"
        cwd.mkdir(exist_ok=True)
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, env=environment, cwd=cwd)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"webhooks exited {self.proc.returncode}: {self.log.read_text()}")
            try:
                if httpx.get(f"{self.base}/healthz", timeout=1, verify=LOOPBACK_TLS).status_code == 200:
                    return self
            except httpx.HTTPError:
                time.sleep(0.1)
        raise AssertionError(f"webhooks not ready: {self.log.read_text()}")

    def stop(self, sig: int = signal.SIGTERM) -> int:
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise

    def post(self, path: str, owner: str, json: Any = None) -> httpx.Response:
        return httpx.post(
            f"{self.base}{path}", json=json, headers=owner_headers(owner), timeout=10, verify=LOOPBACK_TLS
        )

    def get(self, path: str, owner: str, **params: str) -> httpx.Response:
        return httpx.get(
            f"{self.base}{path}", params=params, headers=owner_headers(owner), timeout=10, verify=LOOPBACK_TLS
        )

    def publish(self, doc: dict[str, Any]) -> httpx.Response:
        return httpx.post(f"{self.base}/events", json=doc, headers=PRODUCER, timeout=10, verify=LOOPBACK_TLS)

    def metrics(self) -> dict[str, float]:
        values = {}
        for line in httpx.get(f"{self.base}/metrics", timeout=5, verify=LOOPBACK_TLS).text.splitlines():
            if line and not line.startswith("#"):
                name, value = line.rsplit(" ", 1)
                values[name] = float(value)
        return values
