"""A gateway host's certificate: obtained by cert-manager (ACME DNS-01) and registered for the region's certificate
sync, which serves it from Kong for the host (SNI) and again after every renewal (gateway/tls.py, Binding).

Used by every stack that routes a host through Kong (a partner's names and domain, a region's meter): routes depend
on the Certificate this returns, which the create waits for until cert-manager reports it Ready.

Nothing here reads the Secret: a `Secret.get` in the update that creates the Certificate is read by the preview from
the live cluster before the Secret exists and fails the preview (pulumi/pulumi#16395), and a Pulumi-held copy of the
certificate in Kong would only change when someone runs `pulumi up` again (expired after 90 days).
"""

from __future__ import annotations

from collections.abc import Sequence

import pulumi
import pulumi_kubernetes as k8s

from gateway.tls import ACME_ISSUER, CERT_SYNC_ACCOUNT, CERT_SYNC_LABEL, CERT_SYNC_NAMESPACE

CERTIFICATE_TIMEOUT_SECONDS = 900
"""How long the create waits for issuance (DNS-01: Route 53 propagation plus Let's Encrypt's checks, minutes)."""


def bind_certificate(
    name: str,
    purpose: str,
    hosts: Sequence[pulumi.Input[str]],
    namespace: str,
    labels: dict[str, str],
    parent: pulumi.Resource,
    depends_on: list[pulumi.Resource],
    k8s_provider: pulumi.ProviderResource | None = None,
) -> k8s.apiextensions.CustomResource:
    """cert-manager obtains the certificate into `namespace` (Secret `tls-<purpose>`); the region's sync may read
    that one Secret and serves it from Kong for `hosts`. Returns the Certificate (Ready once issued).

    `depends_on` must hold what makes the Certificate kind and its issuer exist in the cluster when the same stack
    installs them (cert-manager's release, the ClusterIssuer)."""
    secret_name = f"tls-{purpose}"
    opts = pulumi.ResourceOptions(parent=parent, depends_on=depends_on, provider=k8s_provider)
    certificate = k8s.apiextensions.CustomResource(
        f"{name}-cert-{purpose}",
        api_version="cert-manager.io/v1",
        kind="Certificate",
        metadata=k8s.meta.v1.ObjectMetaArgs(
            name=purpose,
            namespace=namespace,
            labels=labels,
            # pulumi-kubernetes >= 4.18: the create waits until cert-manager reports the certificate issued.
            annotations={
                "pulumi.com/waitFor": "condition=Ready",
                "pulumi.com/timeoutSeconds": str(CERTIFICATE_TIMEOUT_SECONDS),
            },
        ),
        spec={
            "secretName": secret_name,
            "dnsNames": list(hosts),
            "issuerRef": {"kind": "ClusterIssuer", "name": ACME_ISSUER},
            "privateKey": {"algorithm": "ECDSA", "size": 256, "rotationPolicy": "Always"},
        },
        opts=opts,
    )
    # The registration is the permission: the sync reads exactly this Secret, found through this labelled Role.
    role = k8s.rbac.v1.Role(
        f"{name}-cert-sync-{purpose}",
        metadata=k8s.meta.v1.ObjectMetaArgs(
            name=f"{CERT_SYNC_ACCOUNT}-{purpose}", namespace=namespace, labels={**labels, CERT_SYNC_LABEL: "true"}
        ),
        rules=[
            k8s.rbac.v1.PolicyRuleArgs(
                api_groups=[""], resources=["secrets"], verbs=["get"], resource_names=[secret_name]
            )
        ],
        opts=opts,
    )
    k8s.rbac.v1.RoleBinding(
        f"{name}-cert-sync-{purpose}-binding",
        metadata=k8s.meta.v1.ObjectMetaArgs(name=f"{CERT_SYNC_ACCOUNT}-{purpose}", namespace=namespace, labels=labels),
        role_ref=k8s.rbac.v1.RoleRefArgs(api_group="rbac.authorization.k8s.io", kind="Role", name=role.metadata.name),
        subjects=[
            k8s.rbac.v1.SubjectArgs(kind="ServiceAccount", name=CERT_SYNC_ACCOUNT, namespace=CERT_SYNC_NAMESPACE)
        ],
        opts=opts,
    )
    return certificate
