"""A gateway host's certificate: obtained by cert-manager (ACME DNS-01), then bound to Kong for the host (SNI).

Used by every stack that routes a host through Kong (a partner's names and domain, a region's meter), so Kong never
answers a routed host with its default certificate: routes depend on the binding this returns.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping, Sequence

import pulumi
import pulumi_kong as kong
import pulumi_kubernetes as k8s

from components.outputs import secret
from gateway.tls import ACME_ISSUER


def bind_certificate(
    name: str,
    purpose: str,
    hosts: Sequence[pulumi.Input[str]],
    namespace: str,
    labels: dict[str, str],
    tags: list[str],
    parent: pulumi.Resource,
    depends_on: list[pulumi.Resource],
    k8s_provider: pulumi.ProviderResource | None = None,
) -> kong.Certificate:
    """cert-manager obtains the certificate into `namespace`; once it is Ready, its Secret is read and bound to the
    gateway for `hosts` (a Kong certificate with those SNIs)."""
    secret_name = f"tls-{purpose}"
    certificate = k8s.apiextensions.CustomResource(
        f"{name}-cert-{purpose}",
        api_version="cert-manager.io/v1",
        kind="Certificate",
        metadata=k8s.meta.v1.ObjectMetaArgs(
            name=purpose,
            namespace=namespace,
            labels=labels,
            # pulumi-kubernetes >= 4.18: the create waits until cert-manager reports the certificate issued.
            annotations={"pulumi.com/waitFor": "condition=Ready", "pulumi.com/timeoutSeconds": "900"},
        ),
        spec={
            "secretName": secret_name,
            "dnsNames": list(hosts),
            "issuerRef": {"kind": "ClusterIssuer", "name": ACME_ISSUER},
            "privateKey": {"algorithm": "ECDSA", "size": 256, "rotationPolicy": "Always"},
        },
        opts=pulumi.ResourceOptions(parent=parent, depends_on=depends_on, provider=k8s_provider),
    )
    issued = k8s.core.v1.Secret.get(
        f"{name}-cert-{purpose}-secret",
        f"{namespace}/{secret_name}",
        opts=pulumi.ResourceOptions(parent=parent, depends_on=[certificate], provider=k8s_provider),
    )
    return kong.Certificate(
        f"{name}-kong-cert-{purpose}",
        certificate=secret(issued.data.apply(lambda d: _pem(d, "tls.crt"))),
        private_key=secret(issued.data.apply(lambda d: _pem(d, "tls.key"))),
        snis=list(hosts),
        tags=tags,
        opts=pulumi.ResourceOptions(parent=parent),
    )


def _pem(data: Mapping[str, str] | None, key: str) -> str:
    """A PEM value of a Secret's base64 `data` (empty until cert-manager has written it)."""
    return base64.b64decode((data or {}).get(key, "")).decode()
