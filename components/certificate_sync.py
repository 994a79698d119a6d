"""KongCertificateSync: the region's job that keeps Kong serving the current cert-manager certificates
(services/certsync.py says why a job and how it finds what to copy). It may list Roles (the registrations) and
nothing else cluster-wide; each stack that registers a Secret grants it `get` on that one Secret."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_kubernetes as k8s

from components.runtime_job import RuntimeJob, RuntimeJobArgs
from gateway.tls import CERT_SYNC_ACCOUNT, CERT_SYNC_NAMESPACE

SYNC_SCHEDULE = "*/2 * * * *"
"""Every two minutes: a renewal (30 days before expiry) is served within minutes, and a first issuance soon after
the Certificate is Ready."""


@dataclass(frozen=True)
class KongCertificateSyncArgs:
    region_code: str
    """The region (Kong certificate ids and tags are per region: Kong's entities are global)."""
    namespace: pulumi.Input[str]
    """The region's platform namespace (CERT_SYNC_NAMESPACE), as its Namespace resource's output."""
    image: str
    """The platform services image (`platformctl certs sync`)."""
    kong_admin_url: pulumi.Input[str]
    """The Kong control plane's Admin API."""
    kong_admin_token: pulumi.Input[str]
    """Its admin token (secret stack config), given to the job through its own Secret."""


class KongCertificateSync(pulumi.ComponentResource):
    def __init__(self, name: str, args: KongCertificateSyncArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("platform:certificate_sync:KongCertificateSync", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        role = k8s.rbac.v1.ClusterRole(
            f"{name}-role",
            metadata=k8s.meta.v1.ObjectMetaArgs(name=CERT_SYNC_ACCOUNT),
            rules=[
                k8s.rbac.v1.PolicyRuleArgs(
                    api_groups=["rbac.authorization.k8s.io"], resources=["roles"], verbs=["list"]
                )
            ],
            opts=child,
        )
        job = RuntimeJob(
            f"{name}-job",
            RuntimeJobArgs(
                job=CERT_SYNC_ACCOUNT,
                namespace=args.namespace,
                image=args.image,
                args=("certs", "sync", "--region", args.region_code),
                schedule=SYNC_SCHEDULE,
                secret_env={"KONG_ADMIN_TOKEN": args.kong_admin_token},
                env={"KONG_ADMIN_URL": args.kong_admin_url},
                backoff_limit=0,
                active_deadline_seconds=110,
                cpu=("50m", "200m"),
                memory=("64Mi", "128Mi"),
                kubernetes_api=True,
            ),
            opts=child,
        )
        k8s.rbac.v1.ClusterRoleBinding(
            f"{name}-binding",
            metadata=k8s.meta.v1.ObjectMetaArgs(name=CERT_SYNC_ACCOUNT),
            role_ref=k8s.rbac.v1.RoleRefArgs(
                api_group="rbac.authorization.k8s.io", kind="ClusterRole", name=role.metadata.name
            ),
            subjects=[
                k8s.rbac.v1.SubjectArgs(kind="ServiceAccount", name=CERT_SYNC_ACCOUNT, namespace=CERT_SYNC_NAMESPACE)
            ],
            opts=pulumi.ResourceOptions(parent=self, depends_on=[job]),
        )
        self.register_outputs({"job": job.urn})
