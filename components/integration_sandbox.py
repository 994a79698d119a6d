"""IntegrationSandbox: one marketplace integration, sandboxed in each region it is offered in and routed by Kong.

Per offered region (its own Kubernetes provider):
- `integration-<id>`: the sandbox. Pod Security `restricted`, ResourceQuota and LimitRange at the marketplace caps,
  default-deny NetworkPolicies plus: ingress from the gateway (and the conformance job), egress to cluster DNS, to
  the regional gateway (platform APIs, with the installation's key) and to the egress proxy, nothing else. The
  workload runs the image by digest, non-root, read-only root filesystem, no service-account token.
- `integration-<id>-system`: the egress proxy (Squid), outside the sandbox's quota; the conformance job and its
  warehouse access are added there by the program after this component (components/conformance_job.py,
  components/conformance_recording.py), from `system_namespaces` and `deployed`.

Why a proxy: the VPC CNI's NetworkPolicies match addresses, not names, and a CDN-hosted name's addresses change
and are shared with other tenants of the CDN. The proxy is the only pod with a route out (TCP 443 to public
addresses, never the VPC or link-local ranges), and it accepts only `CONNECT <declared host>:443`: it resolves the
name itself, so the sandbox cannot reach an address by claiming an allowed name. Its limits: it sees the name in
the CONNECT line, not inside TLS (the host decides what is served there); cluster DNS stays reachable, so a DNS
query can still carry data out to a name server (the proxy does not close that channel).

Kong (the global control plane, components/integration_gateway.py): a service and route under `/integrations/<id>/`
for installing partners, scope routes open only to the integration's ACL group, one consumer per installation.
Suspended: every route answers 503 with a body saying so, and the sandboxes scale to zero; the consumers stay.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

import pulumi
import pulumi_kubernetes as k8s

from components.integration_gateway import build_integration_routes
from components.network_policies import (
    PROXY_LABELS,
    WORKLOAD_LABELS,
    sandbox_network_policies,
    system_network_policies,
)
from components.sandbox_settings import (
    container_security,
    pod_security,
    sandbox_quota,
    squid_config,
    system_quota,
)
from foundation.naming import REGION_STORAGE_CLASS, integration_namespace, integration_system_namespace
from gateway.model import Scope
from integrations.rules import ReviewRules
from integrations.spec import IntegrationSpec

Meta = Callable[[str, str], k8s.meta.v1.ObjectMetaArgs]
"""(object name, namespace) -> the object's metadata with the integration's labels."""


@dataclass(frozen=True)
class IntegrationSandboxArgs:
    spec: IntegrationSpec
    """The published integration spec."""
    digest: str
    """The spec's digest (labels the workload)."""
    rules: ReviewRules
    """Caps, egress proxy and conformance settings."""
    scopes: Mapping[str, Scope]
    """The scope table (gateway/apis.yaml), for the scope routes."""
    kubernetes: Mapping[str, pulumi.ProviderResource]
    """Kubernetes provider of each offered region's cluster."""
    kong_service_ids: pulumi.Input[Mapping[str, str]]
    """Core API service ids by API name (global stack)."""
    installations: tuple[str, ...]
    """Ids of the partners that installed it."""
    suspended: bool
    """Out of service: routes answer 503, sandboxes scale to zero."""


class IntegrationSandbox(pulumi.ComponentResource):
    def __init__(self, name: str, args: IntegrationSandboxArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("platform:integration_sandbox:IntegrationSandbox", name, None, opts)
        spec = args.spec
        self.namespace = integration_namespace(spec.id)
        self.system_namespace = integration_system_namespace(spec.id)
        self.outputs: dict[str, object] = {
            "integration_id": spec.id,
            "namespace": self.namespace,
            "regions": list(spec.regions),
            "suspended": args.suspended,
            "installations": list(args.installations),
        }
        self.system_namespaces: dict[str, k8s.core.v1.Namespace] = {}
        """Each region's system namespace (the conformance job's Secret goes there)."""
        self.prefixes: dict[str, str] = {}
        """Each region's resource-name prefix (the conformance job's and its recording's names continue it)."""
        self.deployed: dict[str, list[pulumi.Resource]] = {}
        """Each region's workload and its service: what the conformance job checks once they are up."""
        for region, provider in args.kubernetes.items():
            self._region(name, region, args, pulumi.ResourceOptions(parent=self, provider=provider))
        self.outputs.update(
            build_integration_routes(
                name,
                spec,
                args.scopes,
                args.kong_service_ids,
                args.installations,
                args.suspended,
                self.namespace,
                pulumi.ResourceOptions(parent=self),
            )
        )
        self.register_outputs(self.outputs)

    # ------------------------------------------------------------------ Kubernetes, per region

    def _region(self, name: str, region: str, args: IntegrationSandboxArgs, opts: pulumi.ResourceOptions) -> None:
        spec, rules = args.spec, args.rules
        prefix = f"{name}-{region}"
        labels = {"integration_id": spec.id, "isolation": "strict"}
        restricted = {
            "pod-security.kubernetes.io/enforce": "restricted",
            "pod-security.kubernetes.io/warn": "restricted",
        }
        sandbox = k8s.core.v1.Namespace(
            f"{prefix}-namespace",
            metadata=k8s.meta.v1.ObjectMetaArgs(name=self.namespace, labels={**labels, **restricted}),
            opts=opts,
        )
        system = k8s.core.v1.Namespace(
            f"{prefix}-system-namespace",
            metadata=k8s.meta.v1.ObjectMetaArgs(
                name=self.system_namespace, labels={**labels, "platform/role": "integration-system", **restricted}
            ),
            opts=opts,
        )
        in_sandbox = pulumi.ResourceOptions.merge(opts, pulumi.ResourceOptions(depends_on=[sandbox]))
        in_system = pulumi.ResourceOptions.merge(opts, pulumi.ResourceOptions(depends_on=[system]))

        def meta(object_name: str, namespace: str) -> k8s.meta.v1.ObjectMetaArgs:
            return k8s.meta.v1.ObjectMetaArgs(name=object_name, namespace=namespace, labels=labels)

        caps = rules.caps
        k8s.core.v1.ResourceQuota(
            f"{prefix}-quota",
            metadata=meta("integration-quota", self.namespace),
            spec=k8s.core.v1.ResourceQuotaSpecArgs(hard=sandbox_quota(rules)),
            opts=in_sandbox,
        )
        limits = spec.resources.limits
        requests = spec.resources.requests
        # The review refused a spec without limits; the caps stand in should one reach here unreviewed.
        container_limits = {
            "cpu": (limits.cpu if limits else None) or caps.cpu,
            "memory": (limits.memory if limits else None) or caps.memory,
        }
        k8s.core.v1.LimitRange(
            f"{prefix}-limits",
            metadata=meta("integration-limits", self.namespace),
            spec=k8s.core.v1.LimitRangeSpecArgs(
                limits=[
                    k8s.core.v1.LimitRangeItemArgs(
                        type="Container",
                        max={"cpu": caps.cpu, "memory": caps.memory},
                        default=container_limits,
                        default_request={"cpu": requests.cpu or "50m", "memory": requests.memory or "64Mi"},
                    ),
                    k8s.core.v1.LimitRangeItemArgs(type="PersistentVolumeClaim", max={"storage": caps.storage}),
                ]
            ),
            opts=in_sandbox,
        )
        for policy_name, policy_spec in sandbox_network_policies(spec, rules).items():
            k8s.networking.v1.NetworkPolicy(
                f"{prefix}-{policy_name}", metadata=meta(policy_name, self.namespace), spec=policy_spec, opts=in_sandbox
            )
        account = k8s.core.v1.ServiceAccount(
            f"{prefix}-sa",
            metadata=meta(spec.id, self.namespace),
            automount_service_account_token=False,
            opts=in_sandbox,
        )
        volumes = [
            k8s.core.v1.VolumeArgs(name="tmp", empty_dir=k8s.core.v1.EmptyDirVolumeSourceArgs(size_limit="64Mi"))
        ]
        mounts = [k8s.core.v1.VolumeMountArgs(name="tmp", mount_path="/tmp")]
        if spec.resources.storage:
            claim = k8s.core.v1.PersistentVolumeClaim(
                f"{prefix}-data",
                metadata=meta("data", self.namespace),
                spec=k8s.core.v1.PersistentVolumeClaimSpecArgs(
                    access_modes=["ReadWriteOnce"],
                    # The region's encrypted default (EBS CSI, the region's key), installed by the region stack.
                    storage_class_name=REGION_STORAGE_CLASS,
                    resources=k8s.core.v1.VolumeResourceRequirementsArgs(requests={"storage": spec.resources.storage}),
                ),
                opts=pulumi.ResourceOptions.merge(in_sandbox, pulumi.ResourceOptions(retain_on_delete=True)),
            )
            volumes.append(
                k8s.core.v1.VolumeArgs(
                    name="data",
                    persistent_volume_claim=k8s.core.v1.PersistentVolumeClaimVolumeSourceArgs(
                        claim_name=claim.metadata.name
                    ),
                )
            )
            mounts.append(k8s.core.v1.VolumeMountArgs(name="data", mount_path="/data"))
        proxy_url = f"http://egress-proxy.{self.system_namespace}.svc.cluster.local:{rules.egress_proxy.port}"
        probe = k8s.core.v1.ProbeArgs(
            http_get=k8s.core.v1.HTTPGetActionArgs(path=spec.health_path or "/", port=spec.port),
            period_seconds=10,
        )
        workload = k8s.apps.v1.Deployment(
            f"{prefix}-workload",
            metadata=meta(spec.id, self.namespace),
            spec=k8s.apps.v1.DeploymentSpecArgs(
                replicas=0 if args.suspended else 1,
                selector=k8s.meta.v1.LabelSelectorArgs(match_labels=WORKLOAD_LABELS),
                template=k8s.core.v1.PodTemplateSpecArgs(
                    metadata=k8s.meta.v1.ObjectMetaArgs(
                        labels={**WORKLOAD_LABELS, **labels},
                        annotations={"platform/spec-digest": args.digest},
                    ),
                    spec=k8s.core.v1.PodSpecArgs(
                        service_account_name=account.metadata.name,
                        automount_service_account_token=False,
                        enable_service_links=False,
                        security_context=pod_security(),
                        containers=[
                            k8s.core.v1.ContainerArgs(
                                name="integration",
                                image=spec.image,
                                ports=[k8s.core.v1.ContainerPortArgs(container_port=spec.port, name="http")],
                                env=[
                                    k8s.core.v1.EnvVarArgs(name="HTTPS_PROXY", value=proxy_url),
                                    k8s.core.v1.EnvVarArgs(name="https_proxy", value=proxy_url),
                                    k8s.core.v1.EnvVarArgs(name="NO_PROXY", value=".svc,.svc.cluster.local"),
                                    k8s.core.v1.EnvVarArgs(name="PLATFORM_INTEGRATION_ID", value=spec.id),
                                ],
                                resources=k8s.core.v1.ResourceRequirementsArgs(
                                    limits=container_limits,
                                    requests={
                                        k: v for k, v in (("cpu", requests.cpu), ("memory", requests.memory)) if v
                                    }
                                    or None,
                                ),
                                security_context=container_security(),
                                readiness_probe=probe,
                                liveness_probe=probe,
                                volume_mounts=mounts,
                            )
                        ],
                        volumes=volumes,
                    ),
                ),
            ),
            opts=in_sandbox,
        )
        service = k8s.core.v1.Service(
            f"{prefix}-service",
            metadata=meta(spec.id, self.namespace),
            spec=k8s.core.v1.ServiceSpecArgs(
                type="ClusterIP",
                selector=WORKLOAD_LABELS,
                ports=[k8s.core.v1.ServicePortArgs(name="http", port=spec.port, target_port=spec.port)],
            ),
            opts=in_sandbox,
        )
        self._egress_proxy(prefix, args, meta, in_system)
        self.prefixes[region] = prefix
        self.system_namespaces[region] = system
        self.deployed[region] = [workload, service]

    def _egress_proxy(
        self, prefix: str, args: IntegrationSandboxArgs, meta: Meta, opts: pulumi.ResourceOptions
    ) -> None:
        rules, ns = args.rules, self.system_namespace
        proxy = rules.egress_proxy
        metadata = meta  # (name, namespace) -> ObjectMetaArgs
        k8s.core.v1.ResourceQuota(
            f"{prefix}-system-quota",
            metadata=metadata("system-quota", ns),
            spec=k8s.core.v1.ResourceQuotaSpecArgs(hard=system_quota(rules)),
            opts=opts,
        )
        k8s.core.v1.LimitRange(
            f"{prefix}-system-limits",
            metadata=metadata("system-limits", ns),
            spec=k8s.core.v1.LimitRangeSpecArgs(
                limits=[
                    k8s.core.v1.LimitRangeItemArgs(
                        type="Container",
                        max=dict(proxy.resources),
                        default=dict(proxy.resources),
                        default_request=dict(proxy.resources),
                    )
                ]
            ),
            opts=opts,
        )
        for policy_name, policy_spec in system_network_policies(args.spec, rules).items():
            k8s.networking.v1.NetworkPolicy(
                f"{prefix}-system-{policy_name}",
                metadata=metadata(policy_name, ns),
                spec=policy_spec,
                opts=opts,
            )
        config = k8s.core.v1.ConfigMap(
            f"{prefix}-egress-allowlist",
            metadata=metadata("egress-allowlist", ns),
            data={"squid.conf": squid_config(args.spec.egress, proxy.port)},
            opts=opts,
        )
        proxy_account = k8s.core.v1.ServiceAccount(
            f"{prefix}-proxy-sa",
            metadata=metadata("egress-proxy", ns),
            automount_service_account_token=False,
            opts=opts,
        )
        k8s.apps.v1.Deployment(
            f"{prefix}-egress-proxy",
            metadata=metadata("egress-proxy", ns),
            spec=k8s.apps.v1.DeploymentSpecArgs(
                replicas=0 if args.suspended else 1,
                selector=k8s.meta.v1.LabelSelectorArgs(match_labels=PROXY_LABELS),
                template=k8s.core.v1.PodTemplateSpecArgs(
                    metadata=k8s.meta.v1.ObjectMetaArgs(
                        labels=PROXY_LABELS,
                        # A changed allowlist rolls the proxy (Squid reads its config at start).
                        annotations={"platform/allowlist": ",".join(args.spec.egress)},
                    ),
                    spec=k8s.core.v1.PodSpecArgs(
                        service_account_name=proxy_account.metadata.name,
                        automount_service_account_token=False,
                        enable_service_links=False,
                        security_context=pod_security(),
                        containers=[
                            k8s.core.v1.ContainerArgs(
                                name="squid",
                                image=proxy.image,
                                args=["-N", "-f", "/etc/squid/squid.conf"],
                                ports=[k8s.core.v1.ContainerPortArgs(container_port=proxy.port, name="proxy")],
                                resources=k8s.core.v1.ResourceRequirementsArgs(
                                    limits=dict(proxy.resources), requests=dict(proxy.resources)
                                ),
                                security_context=container_security(),
                                volume_mounts=[
                                    k8s.core.v1.VolumeMountArgs(name="config", mount_path="/etc/squid", read_only=True),
                                    k8s.core.v1.VolumeMountArgs(name="run", mount_path="/var/run/squid"),
                                ],
                            )
                        ],
                        volumes=[
                            k8s.core.v1.VolumeArgs(
                                name="config",
                                config_map=k8s.core.v1.ConfigMapVolumeSourceArgs(name=config.metadata.name),
                            ),
                            k8s.core.v1.VolumeArgs(name="run", empty_dir=k8s.core.v1.EmptyDirVolumeSourceArgs()),
                        ],
                    ),
                ),
            ),
            opts=opts,
        )
        k8s.core.v1.Service(
            f"{prefix}-egress-proxy-service",
            metadata=metadata("egress-proxy", ns),
            spec=k8s.core.v1.ServiceSpecArgs(
                type="ClusterIP",
                selector=PROXY_LABELS,
                ports=[k8s.core.v1.ServicePortArgs(name="proxy", port=proxy.port, target_port=proxy.port)],
            ),
            opts=opts,
        )
