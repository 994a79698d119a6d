"""IntegrationSandbox: one marketplace integration, sandboxed in each region it is offered in and routed by Kong.

Per offered region (its own Kubernetes provider):
- `integration-<id>`: the sandbox. Pod Security `restricted`, ResourceQuota and LimitRange at the marketplace caps,
  default-deny NetworkPolicies plus: ingress from the gateway (and the conformance job), egress to cluster DNS, to
  the regional gateway (platform APIs, with the installation's key) and to the egress proxy, nothing else. The
  workload runs the image by digest, non-root, read-only root filesystem, no service-account token.
- `integration-<id>-system`: the egress proxy (Squid) and the conformance job, outside the sandbox's quota.

Why a proxy: the VPC CNI's NetworkPolicies match addresses, not names, and a CDN-hosted name's addresses change
and are shared with other tenants of the CDN. The proxy is the only pod with a route out (TCP 443 to public
addresses, never the VPC or link-local ranges), and it accepts only `CONNECT <declared host>:443`: it resolves the
name itself, so the sandbox cannot reach an address by claiming an allowed name. Its limits: it sees the name in
the CONNECT line, not inside TLS (the host decides what is served there); cluster DNS stays reachable, so a DNS
query can still carry data out to a name server (the proxy does not close that channel).

Kong (the global control plane): a service and route under `/integrations/<id>/` that only installing partners'
consumers may call; per scope a route on the platform API matching the scope's paths and methods and the
`X-Platform-Integration: <id>` header, open only to the integration's ACL group; and one consumer per installation,
in that group, whose custom_id `<partner>/<integration>` names the partner's tenant to the upstreams (which read
the tenant from the part before `/`), with its key as a secret. Suspended: every route answers 503 with a body
saying so, and the sandboxes scale to zero; the consumers stay.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, cast

import pulumi
import pulumi_kong as kong
import pulumi_kubernetes as k8s
import pulumi_random as random

from components.partner_tenant import GATEWAY_NAMESPACE, GATEWAY_POD_LABELS
from foundation.naming import (
    REGION_STORAGE_CLASS,
    installation_consumer,
    integration_acl_group,
    integration_namespace,
    integration_system_namespace,
    partner_namespace,
)
from gateway.model import Scope
from integrations.rules import ReviewRules
from integrations.spec import IntegrationSpec

INTEGRATION_HEADER = "X-Platform-Integration"
"""Header an integration sends with platform API calls: it selects the integration's scope routes."""
PRIVATE_RANGES = ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "169.254.0.0/16", "100.64.0.0/10", "127.0.0.0/8")
"""Never reachable through the proxy: the VPC, peered VPCs, link-local (instance metadata), CGNAT, loopback."""
WORKLOAD_LABELS = {"app.kubernetes.io/name": "integration", "app.kubernetes.io/component": "workload"}
PROXY_LABELS = {"app.kubernetes.io/name": "egress-proxy"}
CONFORMANCE_LABELS = {"app.kubernetes.io/name": "conformance"}


@dataclass(frozen=True)
class IntegrationSandboxArgs:
    spec: IntegrationSpec
    """The published integration spec."""
    digest: str
    """The spec's digest (labels the workload; a new digest re-runs the conformance job)."""
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
    conformance_image: str
    """Image whose `platform-services conformance run` command runs the load check."""


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
        for region, provider in args.kubernetes.items():
            self._region(name, region, args, pulumi.ResourceOptions(parent=self, provider=provider))
        self._gateway(name, args, pulumi.ResourceOptions(parent=self))
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
                        security_context=_pod_security(),
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
                                security_context=_container_security(),
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
        self._conformance(prefix, args, meta, in_system, [workload, service])

    def _egress_proxy(
        self, prefix: str, args: IntegrationSandboxArgs, meta: object, opts: pulumi.ResourceOptions
    ) -> None:
        rules, ns = args.rules, self.system_namespace
        proxy = rules.egress_proxy
        metadata = meta  # (name, namespace) -> ObjectMetaArgs
        k8s.core.v1.ResourceQuota(
            f"{prefix}-system-quota",
            metadata=metadata("system-quota", ns),  # type: ignore[operator]
            spec=k8s.core.v1.ResourceQuotaSpecArgs(hard=system_quota(rules)),
            opts=opts,
        )
        k8s.core.v1.LimitRange(
            f"{prefix}-system-limits",
            metadata=metadata("system-limits", ns),  # type: ignore[operator]
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
                metadata=metadata(policy_name, ns),  # type: ignore[operator]
                spec=policy_spec,
                opts=opts,
            )
        config = k8s.core.v1.ConfigMap(
            f"{prefix}-egress-allowlist",
            metadata=metadata("egress-allowlist", ns),  # type: ignore[operator]
            data={"squid.conf": squid_config(args.spec.egress, proxy.port)},
            opts=opts,
        )
        proxy_account = k8s.core.v1.ServiceAccount(
            f"{prefix}-proxy-sa",
            metadata=metadata("egress-proxy", ns),  # type: ignore[operator]
            automount_service_account_token=False,
            opts=opts,
        )
        k8s.apps.v1.Deployment(
            f"{prefix}-egress-proxy",
            metadata=metadata("egress-proxy", ns),  # type: ignore[operator]
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
                        security_context=_pod_security(),
                        containers=[
                            k8s.core.v1.ContainerArgs(
                                name="squid",
                                image=proxy.image,
                                args=["-N", "-f", "/etc/squid/squid.conf"],
                                ports=[k8s.core.v1.ContainerPortArgs(container_port=proxy.port, name="proxy")],
                                resources=k8s.core.v1.ResourceRequirementsArgs(
                                    limits=dict(proxy.resources), requests=dict(proxy.resources)
                                ),
                                security_context=_container_security(),
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
            metadata=metadata("egress-proxy", ns),  # type: ignore[operator]
            spec=k8s.core.v1.ServiceSpecArgs(
                type="ClusterIP",
                selector=PROXY_LABELS,
                ports=[k8s.core.v1.ServicePortArgs(name="proxy", port=proxy.port, target_port=proxy.port)],
            ),
            opts=opts,
        )

    def _conformance(
        self,
        prefix: str,
        args: IntegrationSandboxArgs,
        meta: object,
        opts: pulumi.ResourceOptions,
        after: list[pulumi.Resource],
    ) -> None:
        if args.suspended:
            return
        spec, bars = args.spec, args.rules.conformance
        target = f"http://{spec.id}.{self.namespace}.svc.cluster.local:{spec.port}{spec.health_path or '/'}"
        proxy = args.rules.egress_proxy.resources
        k8s.batch.v1.Job(
            f"{prefix}-conformance",
            # One Job per spec digest: a new version is checked again after its deploy; the old Job is replaced.
            metadata=meta(f"conformance-{args.digest.removeprefix('sha256:')[:12]}", self.system_namespace),  # type: ignore[operator]
            spec=k8s.batch.v1.JobSpecArgs(
                backoff_limit=0,
                ttl_seconds_after_finished=7 * 24 * 3600,
                active_deadline_seconds=bars.duration_seconds + 120,
                template=k8s.core.v1.PodTemplateSpecArgs(
                    metadata=k8s.meta.v1.ObjectMetaArgs(labels=CONFORMANCE_LABELS),
                    spec=k8s.core.v1.PodSpecArgs(
                        restart_policy="Never",
                        automount_service_account_token=False,
                        enable_service_links=False,
                        security_context=_pod_security(),
                        containers=[
                            k8s.core.v1.ContainerArgs(
                                name="conformance",
                                image=args.conformance_image,
                                args=conformance_args(target, args.rules),
                                resources=k8s.core.v1.ResourceRequirementsArgs(
                                    limits=dict(proxy), requests=dict(proxy)
                                ),
                                security_context=_container_security(),
                            )
                        ],
                    ),
                ),
            ),
            opts=pulumi.ResourceOptions.merge(
                opts,
                pulumi.ResourceOptions(
                    depends_on=after,
                    custom_timeouts=pulumi.CustomTimeouts(create=f"{bars.duration_seconds + 180}s"),
                ),
            ),
        )

    # ------------------------------------------------------------------ Kong (global control plane)

    def _gateway(self, name: str, args: IntegrationSandboxArgs, opts: pulumi.ResourceOptions) -> None:
        spec = args.spec
        group = integration_acl_group(spec.id)
        tags = [f"integration:{spec.id}"]
        service = kong.Service(
            f"{name}-service",
            name=f"integration-{spec.id}",
            protocol="http",
            # Each region's data plane resolves the name in its own cluster: traffic stays in the region.
            host=f"{spec.id}.{self.namespace}.svc.cluster.local",
            port=spec.port,
            path="/",
            retries=2,
            connect_timeout=5000,
            read_timeout=60_000,
            write_timeout=60_000,
            tags=tags,
            opts=opts,
        )
        kong.Plugin(
            f"{name}-key-auth",
            name="key-auth",
            service_id=service.id,
            config_json=json.dumps({"key_names": ["apikey"], "hide_credentials": True}),
            tags=tags,
            opts=opts,
        )
        route = kong.Route(
            f"{name}-route",
            name=f"integration-{spec.id}",
            service_id=service.id,
            protocols=["https"],
            paths=[f"/integrations/{spec.id}/"],
            strip_path=True,
            preserve_host=False,
            https_redirect_status_code=426,
            tags=tags,
            opts=opts,
        )
        # Only partners that installed it reach it (their consumers carry their private group).
        kong.Plugin(
            f"{name}-route-acl",
            name="acl",
            route_id=route.id,
            config_json=json.dumps(
                {"allow": [group, *(partner_namespace(p) for p in args.installations)], "hide_groups_header": True}
            ),
            tags=tags,
            opts=opts,
        )
        routes = [("route", route)]
        for scope_name in spec.scopes:
            scope = args.scopes[scope_name]
            slug = scope_name.replace(":", "-")
            scope_route = kong.Route(
                f"{name}-scope-{slug}",
                name=f"integration-{spec.id}-{slug}",
                service_id=pulumi.Output.from_input(args.kong_service_ids).apply(_service_of(scope.api)),
                protocols=["https"],
                paths=list(scope.paths),
                methods=list(scope.methods),
                headers=[kong.RouteHeaderArgs(name=INTEGRATION_HEADER, values=[spec.id])],
                strip_path=False,
                preserve_host=False,
                https_redirect_status_code=426,
                tags=[*tags, f"scope:{scope_name}"],
                opts=opts,
            )
            # The route's ACL replaces the service's tier ACL here: only this integration's installations pass.
            kong.Plugin(
                f"{name}-scope-{slug}-acl",
                name="acl",
                route_id=scope_route.id,
                config_json=json.dumps({"allow": [group], "hide_groups_header": True}),
                tags=tags,
                opts=opts,
            )
            routes.append((f"scope-{slug}", scope_route))
        if args.suspended:
            for label, suspended_route in routes:
                kong.Plugin(
                    f"{name}-{label}-suspended",
                    name="request-termination",
                    route_id=suspended_route.id,
                    config_json=json.dumps(suspended_response(spec.id)),
                    tags=tags,
                    opts=opts,
                )
        keys: dict[str, pulumi.Output[str]] = {}
        for partner_id in args.installations:
            username = installation_consumer(spec.id, partner_id)
            consumer = kong.Consumer(
                f"{name}-install-{partner_id}",
                username=username,
                custom_id=f"{partner_id}/{spec.id}",
                tags=[*tags, f"installation:{partner_id}"],
                opts=opts,
            )
            key = random.RandomPassword(f"{name}-install-{partner_id}-key", length=48, special=False, opts=opts)
            kong.ConsumerKeyAuth(
                f"{name}-install-{partner_id}-key-auth", consumer_id=consumer.id, key=key.result, tags=tags, opts=opts
            )
            kong.ConsumerAcl(
                f"{name}-install-{partner_id}-acl", consumer_id=consumer.id, group=group, tags=tags, opts=opts
            )
            keys[partner_id] = key.result
        self.outputs["installation_keys"] = pulumi.Output.secret(cast(Any, pulumi.Output.all(**keys)) if keys else {})
        self.outputs["route_path"] = f"/integrations/{spec.id}/"


def _service_of(api: str) -> Callable[[Mapping[str, str]], str]:
    return lambda ids: ids[api]


def suspended_response(integration_id: str) -> dict[str, object]:
    """request-termination config of a suspended integration's routes (Kong 3.9 schema fields)."""
    return {
        "status_code": 503,
        "message": f"The integration {integration_id} is suspended by the marketplace; installations are kept.",
    }


def sandbox_quota(rules: ReviewRules) -> dict[str, str]:
    caps = rules.caps
    return {
        "requests.cpu": caps.cpu,
        "limits.cpu": caps.cpu,
        "requests.memory": caps.memory,
        "limits.memory": caps.memory,
        "requests.storage": caps.storage,
        "persistentvolumeclaims": "1",
        "services.loadbalancers": "0",
        "services.nodeports": "0",
    }


def system_quota(rules: ReviewRules) -> dict[str, str]:
    """Room for the proxy and one conformance job (each sized like the proxy)."""
    from integrations.rules import quantity

    cpu = quantity(rules.egress_proxy.resources["cpu"]) * 2
    memory = quantity(rules.egress_proxy.resources["memory"]) * 2
    cpu_text = f"{int(cpu * 1000)}m"
    memory_text = f"{int(memory / 2**20)}Mi"
    return {
        "requests.cpu": cpu_text,
        "limits.cpu": cpu_text,
        "requests.memory": memory_text,
        "limits.memory": memory_text,
        "persistentvolumeclaims": "0",
        "services.loadbalancers": "0",
        "services.nodeports": "0",
    }


def squid_config(hosts: tuple[str, ...], port: int) -> str:
    """Squid config allowing CONNECT to port 443 of exactly `hosts` and nothing else.

    `dstdomain -n`: an exact name (no leading dot) matches that host only, not its subdomains, and `-n` stops Squid
    from matching an IP-address request by its reverse DNS name (a PTR record the requester may control)."""
    lines = [
        f"http_port {port}",
        "pid_filename /var/run/squid/squid.pid",
        "cache deny all",
        "coredump_dir /var/run/squid",
        "access_log stdio:/dev/stdout",
        "cache_log stdio:/dev/stderr",
        "acl ssl_port port 443",
        "acl CONNECT method CONNECT",
        "http_access deny !CONNECT",
        "http_access deny !ssl_port",
    ]
    if hosts:
        lines += [f"acl allowed_hosts dstdomain -n {' '.join(hosts)}", "http_access allow CONNECT allowed_hosts"]
    lines += ["http_access deny all", ""]
    return "\n".join(lines)


def conformance_args(target: str, rules: ReviewRules) -> list[str]:
    bars = rules.conformance
    return [
        "conformance",
        "run",
        "--url",
        target,
        "--duration",
        str(bars.duration_seconds),
        "--min-rps",
        str(bars.min_rps),
        "--max-p95",
        str(bars.p95_seconds),
        "--max-error-rate",
        str(bars.max_error_rate),
    ]


def _pod_security() -> k8s.core.v1.PodSecurityContextArgs:
    return k8s.core.v1.PodSecurityContextArgs(
        run_as_non_root=True,
        run_as_user=65532,
        run_as_group=65532,
        fs_group=65532,
        seccomp_profile=k8s.core.v1.SeccompProfileArgs(type="RuntimeDefault"),
    )


def _container_security() -> k8s.core.v1.SecurityContextArgs:
    return k8s.core.v1.SecurityContextArgs(
        allow_privilege_escalation=False,
        read_only_root_filesystem=True,
        run_as_non_root=True,
        capabilities=k8s.core.v1.CapabilitiesArgs(drop=["ALL"]),
    )


def _peer(
    namespace: str | None = None,
    pods: dict[str, str] | None = None,
    cidr: str | None = None,
    exclude: tuple[str, ...] = (),
) -> k8s.networking.v1.NetworkPolicyPeerArgs:
    np = k8s.networking.v1
    if cidr is not None:
        return np.NetworkPolicyPeerArgs(ip_block=np.IPBlockArgs(cidr=cidr, except_=list(exclude) or None))
    return np.NetworkPolicyPeerArgs(
        namespace_selector=(
            k8s.meta.v1.LabelSelectorArgs(match_labels={"kubernetes.io/metadata.name": namespace})
            if namespace is not None
            else None
        ),
        pod_selector=k8s.meta.v1.LabelSelectorArgs(match_labels=pods or {}),
    )


def _port(number: int, protocol: str = "TCP") -> k8s.networking.v1.NetworkPolicyPortArgs:
    return k8s.networking.v1.NetworkPolicyPortArgs(protocol=protocol, port=number)


def _dns() -> k8s.networking.v1.NetworkPolicySpecArgs:
    np = k8s.networking.v1
    return np.NetworkPolicySpecArgs(
        pod_selector=k8s.meta.v1.LabelSelectorArgs(),
        policy_types=["Egress"],
        egress=[
            np.NetworkPolicyEgressRuleArgs(
                to=[_peer("kube-system", {"k8s-app": "kube-dns"})], ports=[_port(53, "UDP"), _port(53)]
            )
        ],
    )


def sandbox_network_policies(
    spec: IntegrationSpec, rules: ReviewRules
) -> dict[str, k8s.networking.v1.NetworkPolicySpecArgs]:
    """Default deny; in: the gateway and the conformance job, to the workload's port; out: DNS, the regional gateway
    and the egress proxy. No other namespace, no metadata address, no internet but through the proxy."""
    np = k8s.networking.v1
    everything = k8s.meta.v1.LabelSelectorArgs()
    system = integration_system_namespace(spec.id)
    return {
        "default-deny": np.NetworkPolicySpecArgs(pod_selector=everything, policy_types=["Ingress", "Egress"]),
        "allow-gateway": np.NetworkPolicySpecArgs(
            pod_selector=everything,
            policy_types=["Ingress", "Egress"],
            ingress=[
                np.NetworkPolicyIngressRuleArgs(
                    from_=[_peer(GATEWAY_NAMESPACE, GATEWAY_POD_LABELS), _peer(system, CONFORMANCE_LABELS)],
                    ports=[_port(spec.port)],
                )
            ],
            # Platform API calls (the installation's key, the scope routes) go through the regional gateway.
            egress=[np.NetworkPolicyEgressRuleArgs(to=[_peer(GATEWAY_NAMESPACE, GATEWAY_POD_LABELS)])],
        ),
        "allow-dns": _dns(),
        "allow-egress-proxy": np.NetworkPolicySpecArgs(
            pod_selector=everything,
            policy_types=["Egress"],
            egress=[
                np.NetworkPolicyEgressRuleArgs(to=[_peer(system, PROXY_LABELS)], ports=[_port(rules.egress_proxy.port)])
            ],
        ),
    }


def system_network_policies(
    spec: IntegrationSpec, rules: ReviewRules
) -> dict[str, k8s.networking.v1.NetworkPolicySpecArgs]:
    """Default deny; the proxy: in from the sandbox on its port, out to public addresses on 443; the conformance
    job: out to the sandbox's port. Both: DNS."""
    np = k8s.networking.v1
    everything = k8s.meta.v1.LabelSelectorArgs()
    sandbox = integration_namespace(spec.id)
    proxy = k8s.meta.v1.LabelSelectorArgs(match_labels=PROXY_LABELS)
    return {
        "default-deny": np.NetworkPolicySpecArgs(pod_selector=everything, policy_types=["Ingress", "Egress"]),
        "allow-proxy": np.NetworkPolicySpecArgs(
            pod_selector=proxy,
            policy_types=["Ingress", "Egress"],
            ingress=[
                np.NetworkPolicyIngressRuleArgs(
                    from_=[_peer(sandbox, WORKLOAD_LABELS)], ports=[_port(rules.egress_proxy.port)]
                )
            ],
            egress=(
                [
                    np.NetworkPolicyEgressRuleArgs(
                        to=[_peer(cidr="0.0.0.0/0", exclude=PRIVATE_RANGES)], ports=[_port(443)]
                    )
                ]
                if spec.egress
                else []
            ),
        ),
        "allow-conformance": np.NetworkPolicySpecArgs(
            pod_selector=k8s.meta.v1.LabelSelectorArgs(match_labels=CONFORMANCE_LABELS),
            policy_types=["Egress"],
            egress=[np.NetworkPolicyEgressRuleArgs(to=[_peer(sandbox, WORKLOAD_LABELS)], ports=[_port(spec.port)])],
        ),
        "allow-dns": _dns(),
    }
