"""Loopback fakes of what the certificate sync talks to: the Kubernetes API (Roles and Secrets, with RBAC's rule that
a Role's resourceNames are all its holder may read) and Kong (the Admin API's certificates, plus a TLS listener that
serves, per SNI, the certificate the Admin API holds - as a data plane does once the control plane pushed it).

Behaviour follows the vendors' documentation: Kong Admin API "Certificate Object" (PUT /certificates/{id} creates
or replaces; `snis` shorthand; an SNI belongs to one certificate, a second claim is 409; `GET /certificates?tags=a,b`
lists entities carrying all of the tags; 404 for an unknown id), Kubernetes API conventions (list `{"items": [...]}`,
Secret `data` base64, 404 for a missing object, 403 for what the caller's RBAC does not allow)."""

from __future__ import annotations

import base64
import datetime
import json
import socket
import ssl
import tempfile
import threading
import urllib.parse
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any


def issue(names: list[str], serial: int) -> tuple[str, str]:
    """A self-signed certificate for `names` (PEM cert, PEM key) with a chosen serial: what cert-manager writes."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(serial)
        .not_valid_before(now - datetime.timedelta(minutes=1))
        .not_valid_after(now + datetime.timedelta(days=90))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(n) for n in names]), critical=False)
        .sign(key, hashes.SHA256())
    )
    return (
        cert.public_bytes(serialization.Encoding.PEM).decode(),
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        ).decode(),
    )


class _Server(ThreadingHTTPServer):
    daemon_threads = True


def _handler(app: Any) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            return None

        def _respond(self, status: int, body: Any = None) -> None:
            raw = json.dumps(body).encode() if body is not None else b""
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(raw)))
            self.end_headers()
            self.wfile.write(raw)

        def _handle(self, method: str) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = json.loads(self.rfile.read(length)) if length else None
            status, answer = app.answer(method, self.path, dict(self.headers), body)
            self._respond(status, answer)

        def do_GET(self) -> None:
            self._handle("GET")

        def do_PUT(self) -> None:
            self._handle("PUT")

        def do_DELETE(self) -> None:
            self._handle("DELETE")

    return Handler


class FakeKubernetes:
    def __init__(self, token: str) -> None:
        self.token = token
        self.roles: list[dict[str, Any]] = []
        self.secrets: dict[tuple[str, str], dict[str, str]] = {}
        self.fail_secrets = False

    def write_secret(self, namespace: str, name: str, cert: str, key: str) -> None:
        self.secrets[(namespace, name)] = {
            "tls.crt": base64.b64encode(cert.encode()).decode(),
            "tls.key": base64.b64encode(key.encode()).decode(),
        }

    def add_role(self, namespace: str, name: str, secrets: list[str], labelled: bool = True) -> None:
        labels = {"platform.io/kong-certificate-sync": "true"} if labelled else {}
        self.roles.append(
            {
                "metadata": {"name": name, "namespace": namespace, "labels": labels},
                "rules": [{"apiGroups": [""], "resources": ["secrets"], "verbs": ["get"], "resourceNames": secrets}],
            }
        )

    def answer(self, method: str, path: str, headers: dict[str, str], body: Any) -> tuple[int, Any]:
        if headers.get("Authorization") != f"Bearer {self.token}":
            return 401, {"kind": "Status", "code": 401}
        parts = urllib.parse.urlsplit(path)
        if method == "GET" and parts.path == "/apis/rbac.authorization.k8s.io/v1/roles":
            selector = urllib.parse.parse_qs(parts.query).get("labelSelector", [""])[0]
            key, _, value = selector.partition("=")
            items = [r for r in self.roles if r["metadata"]["labels"].get(key) == value] if selector else self.roles
            return 200, {"kind": "RoleList", "items": items}
        segments = parts.path.strip("/").split("/")
        if method == "GET" and segments[:3] == ["api", "v1", "namespaces"] and len(segments) == 6:
            if self.fail_secrets:
                return 500, {"kind": "Status", "code": 500}
            namespace, name = segments[3], segments[5]
            allowed = any(
                r["metadata"]["namespace"] == namespace and name in rule.get("resourceNames", [])
                for r in self.roles
                for rule in r["rules"]
            )
            if not allowed:
                return 403, {"kind": "Status", "code": 403}
            if (namespace, name) not in self.secrets:
                return 404, {"kind": "Status", "code": 404}
            return 200, {"kind": "Secret", "type": "kubernetes.io/tls", "data": self.secrets[(namespace, name)]}
        return 404, {"kind": "Status", "code": 404}


class FakeKong:
    def __init__(self, token: str) -> None:
        self.token = token
        self.certificates: dict[str, dict[str, Any]] = {}
        self.puts = 0
        self.lock = threading.Lock()

    def answer(self, method: str, path: str, headers: dict[str, str], body: Any) -> tuple[int, Any]:
        if headers.get("Kong-Admin-Token") != self.token:
            return 401, {"message": "Invalid credentials. Token or User credentials required"}
        parts = urllib.parse.urlsplit(path)
        segments = parts.path.strip("/").split("/")
        with self.lock:
            if segments == ["certificates"] and method == "GET":
                wanted = set(urllib.parse.parse_qs(parts.query).get("tags", [""])[0].split(",")) - {""}
                data = [c for c in self.certificates.values() if wanted <= set(c.get("tags") or [])]
                return 200, {"data": data, "next": None}
            if len(segments) != 2 or segments[0] != "certificates":
                return 404, {"message": "Not found"}
            cert_id = segments[1]
            if method == "GET":
                return (
                    (200, self.certificates[cert_id])
                    if cert_id in self.certificates
                    else (404, {"message": "Not found"})
                )
            if method == "DELETE":
                self.certificates.pop(cert_id, None)
                return 204, None
            if method == "PUT":
                for other_id, other in self.certificates.items():
                    if other_id != cert_id and set(other["snis"]) & set(body.get("snis") or []):
                        return 409, {"message": "UNIQUE violation detected on '{name=...}'", "code": 5}
                self.puts += 1
                self.certificates[cert_id] = {"id": cert_id, **body}
                return 200, self.certificates[cert_id]
        return 405, {"message": "Method not allowed"}

    def context_for(self, server_name: str | None) -> ssl.SSLContext | None:
        with self.lock:
            match = next(
                (c for c in self.certificates.values() if server_name and server_name in c.get("snis", [])), None
            )
        if match is None:
            return None
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        with tempfile.TemporaryDirectory() as folder:
            cert, key = Path(folder, "c.pem"), Path(folder, "k.pem")
            cert.write_text(match["cert"])
            key.write_text(match["key"])
            context.load_cert_chain(cert, key)
        return context


@contextmanager
def serve(app: Any) -> Iterator[str]:
    """Serve a fake's HTTP API on loopback; its base URL."""
    server = _Server(("127.0.0.1", 0), _handler(app))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@contextmanager
def serve_tls(kong: FakeKong) -> Iterator[int]:
    """Kong's proxy listener on loopback: the certificate for the client's SNI, as the data plane has it; a
    handshake for a name Kong holds no certificate for fails (the test needs no default certificate)."""
    default = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    default_cert, default_key = issue(["kong-default.invalid"], 1)
    with tempfile.TemporaryDirectory() as folder:
        Path(folder, "c.pem").write_text(default_cert)
        Path(folder, "k.pem").write_text(default_key)
        default.load_cert_chain(Path(folder, "c.pem"), Path(folder, "k.pem"))

    def choose(sock: ssl.SSLObject, server_name: str | None, _: ssl.SSLContext) -> None:
        context = kong.context_for(server_name)
        if context is not None:
            sock.context = context

    default.sni_callback = choose
    listener = socket.create_server(("127.0.0.1", 0))
    stop = threading.Event()

    def accept() -> None:
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            try:
                with default.wrap_socket(conn, server_side=True) as tls:
                    tls.recv(1)
            except (ssl.SSLError, OSError):
                pass

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield listener.getsockname()[1]
    finally:
        stop.set()
        listener.close()
        thread.join(timeout=5)


def served_serial(port: int, server_name: str) -> int:
    """Serial number of the certificate the listener presents for `server_name`."""
    from cryptography import x509

    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    with (
        socket.create_connection(("127.0.0.1", port), timeout=5) as raw,
        context.wrap_socket(raw, server_hostname=server_name) as tls,
    ):
        der = tls.getpeercert(binary_form=True)
        tls.sendall(b"x")
    assert der is not None
    return x509.load_der_x509_certificate(der).serial_number
