"""Certificates reach Kong without a Pulumi run: copy each cert-manager TLS Secret registered for the gateway into
Kong (a Kong certificate with the Secret's DNS names as SNIs), whenever it changes.

Why a reconciler: Kong runs in hybrid mode (components/kong_gateway.py, regional_deployment.py). Its entities live
in the control plane's database and every region's DB-less data plane receives them from there; the Kong Ingress
Controller cannot read Secrets into a hybrid control plane (it drives a data plane's own config in DB-less mode, or
Konnect), and a Pulumi-managed `kong.Certificate` only changes when someone runs `pulumi up`. cert-manager renews a
Let's Encrypt certificate about 30 days before its 90 days run out (`renewBefore` default: 1/3 of the duration,
cert-manager docs "Certificate resource"); this job, run every few minutes by a CronJob in each region, puts the
renewed Secret into Kong within minutes.

Registration is the permission: a stack that wants a Secret served creates a Role in the Secret's namespace,
labelled `platform.io/kong-certificate-sync=true`, that lets this job `get` exactly that Secret (resourceNames) and
binds it to the job's ServiceAccount (components/gateway_certificates.py). The job lists those Roles (it may list
Roles, and read no Secret it was not given), reads each named Secret, and upserts a Kong certificate whose id is
derived from region, namespace and Secret name, so every run and every region writes the same entity. Kong
certificates it made whose Role is gone are deleted, unless the cluster could not be read completely.

APIs used: Kubernetes `GET /apis/rbac.authorization.k8s.io/v1/roles?labelSelector=` and
`GET /api/v1/namespaces/{ns}/secrets/{name}` (Secret `data` is base64, `tls.crt`/`tls.key` for type
kubernetes.io/tls); Kong Admin API `GET /certificates/{id}`, `PUT /certificates/{id}` (create or replace, with the
`snis` shorthand), `GET /certificates?tags=`, `DELETE /certificates/{id}` (Kong Admin API reference, "Certificate
Object", https://developer.konghq.com/api/gateway/admin-ee/). Depends on the standard library and `cryptography` only.
"""

from __future__ import annotations

import base64
import json
import re
import ssl
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from foundation.errors import EngineError, InputError
from foundation.naming import REGION_CODE_PATTERN

SYNC_LABEL = "platform.io/kong-certificate-sync"
"""Label of a Role that registers the Secret(s) it names for the gateway."""
MANAGED_TAG = "managed-by:kong-cert-sync"
"""Tag of every Kong certificate this job owns (it deletes only those)."""
ID_NAMESPACE = uuid.UUID("0f4a8f6e-5d0b-4c53-9a4b-6c1f0e3e7a21")
"""uuid5 namespace of the Kong certificate ids (fixed: ids must be the same in every run)."""
SERVICE_ACCOUNT_DIR = Path("/var/run/secrets/kubernetes.io/serviceaccount")
TIMEOUT_SECONDS = 15.0


def certificate_id(region: str, namespace: str, secret: str) -> str:
    """The Kong certificate id of one region's Secret (Kong entities are global: the region keeps ids apart)."""
    return str(uuid.uuid5(ID_NAMESPACE, f"{region}/{namespace}/{secret}"))


@dataclass(frozen=True)
class Endpoint:
    url: str
    """Base URL (no trailing slash)."""
    headers: Mapping[str, str] = field(default_factory=dict)
    """Sent with every request (authorization)."""
    context: ssl.SSLContext | None = None
    """TLS trust for https URLs (None: the system's)."""

    def call(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        """(status, parsed JSON body or None); 404 is a status, other HTTP errors and network failures raise."""
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(self.url + path, data=data, method=method)
        for key, value in self.headers.items():
            request.add_header(key, value)
        if data is not None:
            request.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(request, timeout=TIMEOUT_SECONDS, context=self.context) as response:
                raw = response.read()
                return response.status, (json.loads(raw) if raw else None)
        except urllib.error.HTTPError as exc:
            if exc.code == 404:
                return 404, None
            detail = exc.read()[:300].decode("utf-8", "replace")
            raise EngineError(f"{method} {self.url}{path.split('?')[0]}: HTTP {exc.code}: {detail}") from None
        except (urllib.error.URLError, OSError, ValueError) as exc:
            raise EngineError(f"{method} {self.url}{path.split('?')[0]}: {exc}") from None


def in_cluster_kubernetes(directory: Path = SERVICE_ACCOUNT_DIR) -> Endpoint:
    """The API server as a pod sees it: KUBERNETES_SERVICE_HOST/PORT, the mounted token and CA."""
    import os

    host, port = os.environ.get("KUBERNETES_SERVICE_HOST"), os.environ.get("KUBERNETES_SERVICE_PORT", "443")
    if not host:
        raise EngineError("not in a cluster (KUBERNETES_SERVICE_HOST unset): pass --kubernetes-url and a token")
    token = (directory / "token").read_text().strip()
    context = ssl.create_default_context(cafile=str(directory / "ca.crt"))
    return Endpoint(f"https://{host}:{port}", {"Authorization": f"Bearer {token}"}, context)


@dataclass(frozen=True)
class Issued:
    namespace: str
    secret: str
    cert: str
    """PEM chain."""
    key: str
    """PEM private key."""
    names: tuple[str, ...]
    """DNS names of the leaf certificate (its SANs): the SNIs Kong serves it for."""


@dataclass
class SyncReport:
    written: list[str] = field(default_factory=list)
    """namespace/secret copied into Kong (new or renewed)."""
    unchanged: list[str] = field(default_factory=list)
    """namespace/secret Kong already serves."""
    waiting: list[str] = field(default_factory=list)
    """namespace/secret registered but not issued yet (no Secret, or no certificate in it)."""
    deleted: list[str] = field(default_factory=list)
    """Kong certificate ids removed (their registration is gone)."""
    failed: list[str] = field(default_factory=list)
    """What could not be done, with the reason."""


def _dns_names(pem: str) -> tuple[str, ...]:
    from cryptography import x509

    leaf = x509.load_pem_x509_certificate(pem.encode())
    try:
        san = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return ()
    return tuple(sorted(name.lower() for name in san.get_values_for_type(x509.DNSName)))


def registered(kubernetes: Endpoint) -> list[tuple[str, str]]:
    """(namespace, secret) of every Secret a sync Role names."""
    selector = urllib.parse.quote(f"{SYNC_LABEL}=true")
    _, body = kubernetes.call("GET", f"/apis/rbac.authorization.k8s.io/v1/roles?labelSelector={selector}")
    found: set[tuple[str, str]] = set()
    for role in (body or {}).get("items", []):
        namespace = role.get("metadata", {}).get("namespace", "")
        for rule in role.get("rules") or []:
            if "secrets" in (rule.get("resources") or []) and "get" in (rule.get("verbs") or []):
                found.update((namespace, name) for name in rule.get("resourceNames") or [])
    return sorted(found)


def read_issued(kubernetes: Endpoint, namespace: str, secret: str) -> Issued | None:
    """The Secret's certificate, or None while cert-manager has not written it."""
    status, body = kubernetes.call("GET", f"/api/v1/namespaces/{namespace}/secrets/{secret}")
    data = (body or {}).get("data") or {} if status == 200 else {}
    if not data.get("tls.crt") or not data.get("tls.key"):
        return None
    cert = base64.b64decode(data["tls.crt"]).decode()
    key = base64.b64decode(data["tls.key"]).decode()
    return Issued(namespace, secret, cert, key, _dns_names(cert))


def checked_arguments(region: str, kong_admin_url: str, kubernetes_url: str | None) -> tuple[str, str | None]:
    """The Admin API and Kubernetes URLs, checked with the region (its code goes into every Kong certificate's id and
    tags, and decides which certificates this region deletes): bad input names the option (exit 2)."""
    if not re.fullmatch(REGION_CODE_PATTERN, region):
        raise InputError.single("--region", "", f"{region[:60]!r} is not a region code such as eu-central")
    urls: list[str | None] = []
    for option, value in (("--kong-admin-url", kong_admin_url), ("--kubernetes-url", kubernetes_url)):
        if value is None or value == "":
            urls.append(None)
            continue
        try:
            parts = urllib.parse.urlsplit(value)
            port_ok = parts.port is None or 0 < parts.port < 65536
        except ValueError:
            parts, port_ok = None, False
        if parts is None or parts.scheme not in ("http", "https") or not parts.hostname or not port_ok:
            raise InputError.single(option, "", f"{value[:200]!r} must be an http(s)://HOST[:PORT] URL")
        urls.append(value.rstrip("/"))
    assert urls[0] is not None
    return urls[0], urls[1]


def sync(kubernetes: Endpoint, kong: Endpoint, region: str) -> SyncReport:
    """One reconciliation: every registered Secret served by Kong as it is now; stale certificates removed."""
    report = SyncReport()
    region_tag = f"region:{region}"
    wanted: set[str] = set()
    complete = True
    for namespace, secret in registered(kubernetes):
        where = f"{namespace}/{secret}"
        cert_id = certificate_id(region, namespace, secret)
        wanted.add(cert_id)
        try:
            issued = read_issued(kubernetes, namespace, secret)
        except EngineError as exc:
            complete = False
            report.failed.append(f"{where}: {exc}")
            continue
        if issued is None or not issued.names:
            report.waiting.append(where)
            continue
        try:
            status, current = kong.call("GET", f"/certificates/{cert_id}")
            if (
                status == 200
                and current
                and (current.get("cert"), current.get("key")) == (issued.cert, issued.key)
                and sorted(current.get("snis") or []) == list(issued.names)
            ):
                report.unchanged.append(where)
                continue
            kong.call(
                "PUT",
                f"/certificates/{cert_id}",
                {
                    "cert": issued.cert,
                    "key": issued.key,
                    "snis": list(issued.names),
                    "tags": [MANAGED_TAG, region_tag, f"secret:{namespace}.{secret}"],
                },
            )
            report.written.append(where)
        except EngineError as exc:
            report.failed.append(f"{where}: {exc}")
    if complete:
        report.deleted = _delete_stale(kong, region_tag, wanted, report)
    return report


def _delete_stale(kong: Endpoint, region_tag: str, wanted: set[str], report: SyncReport) -> list[str]:
    deleted = []
    path = f"/certificates?tags={urllib.parse.quote(f'{MANAGED_TAG},{region_tag}')}"
    while path:
        _, page = kong.call("GET", path)
        for item in (page or {}).get("data", []):
            cert_id = item.get("id", "")
            tags = set(item.get("tags") or [])
            if cert_id and cert_id not in wanted and {MANAGED_TAG, region_tag} <= tags:
                try:
                    kong.call("DELETE", f"/certificates/{cert_id}")
                    deleted.append(cert_id)
                except EngineError as exc:
                    report.failed.append(f"delete {cert_id}: {exc}")
        following = (page or {}).get("next")
        path = following if isinstance(following, str) and following.startswith("/") else ""
    return deleted
