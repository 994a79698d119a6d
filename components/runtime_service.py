"""RuntimeService: one thin platform service in a region's cluster - workload, Service, HPA, PDB, identity,
network policy - built the same way for every service of the shared image."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import pulumi
import pulumi_kubernetes as k8s

from components.runtime_env import SERVICES_COMMAND, workload_env

SPOOL_MOUNT = "/var/spool/platform"


@dataclass(frozen=True)
class RuntimeServiceArgs:
    service: str
    """Service name (`meter`): names the Kubernetes objects and the pods' `app` label."""
    namespace: pulumi.Input[str]
    """Namespace it runs in (the region's platform namespace)."""
    image: str
    """Container image reference (stack config)."""
    args: tuple[str, ...]
    """Container arguments: the `platform-services` command line after the program name (`meter serve ...`)."""
    port: int
    """HTTP port the service listens on; /healthz there is the readiness probe."""
    admit_from: dict[str, str]
    """Pod labels (same namespace) allowed to connect; nothing else is admitted."""
    command: tuple[str, ...] = SERVICES_COMMAND
    """Container command (the image's ENTRYPOINT is not relied on)."""
    secret_env: dict[str, pulumi.Input[str]] = field(default_factory=dict)
    """Environment from a Secret the service alone reads (tokens, keys); values are Pulumi secrets."""
    env: dict[str, pulumi.Input[str]] = field(default_factory=dict)
    """Plain environment."""
    replicas: int = 2
    """Replicas at least (the HPA's minimum)."""
    max_replicas: int = 10
    """Replicas at most."""
    spool_size: str | None = None
    """Per-replica persistent volume for a durable spool (a StatefulSet then); None: a Deployment."""
    storage_class: str | None = None
    """StorageClass of the spool's claims (the region's encrypted default, named so a claim never waits for one)."""
    cpu: tuple[str, str] = ("250m", "1")
    """CPU request and limit."""
    memory: tuple[str, str] = ("256Mi", "512Mi")
    """Memory request and limit."""
    liveness_path: str = "/healthz"
    """Liveness probe path: what only a restart can fix (the meter answers /livez; its /healthz turns 503 on a full
    spool, which a restart would only make worse)."""
    termination_grace_seconds: int = 35
    """SIGTERM to SIGKILL: the service drains within 30 s."""


class RuntimeService(pulumi.ComponentResource):
    def __init__(self, name: str, args: RuntimeServiceArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("platform:runtime_service:RuntimeService", name, None, opts)
        singleton = args.replicas == args.max_replicas == 1 and args.spool_size is not None
        if (args.replicas < 2 and not singleton) or args.max_replicas < args.replicas:
            # One replica only for a service whose state is its one volume (the webhooks store).
            raise ValueError(
                f"{args.service}: at least 2 replicas (or one stateful replica) and max_replicas >= replicas"
            )
        child = pulumi.ResourceOptions(parent=self)
        labels = {"app": args.service, "app.kubernetes.io/part-of": "platform"}
        selector = {"app": args.service}

        def meta(suffix: str = "") -> k8s.meta.v1.ObjectMetaArgs:
            return k8s.meta.v1.ObjectMetaArgs(name=f"{args.service}{suffix}", namespace=args.namespace, labels=labels)

        account = k8s.core.v1.ServiceAccount(
            f"{name}-sa", metadata=meta(), automount_service_account_token=False, opts=child
        )
        env = workload_env(name, meta("-env"), args.env, args.secret_env, child)
        probe = k8s.core.v1.ProbeArgs(
            http_get=k8s.core.v1.HTTPGetActionArgs(path="/healthz", port=args.port), period_seconds=5
        )
        mounts = [k8s.core.v1.VolumeMountArgs(name="tmp", mount_path="/tmp")]
        if args.spool_size:
            mounts.append(k8s.core.v1.VolumeMountArgs(name="spool", mount_path=SPOOL_MOUNT))
        container = k8s.core.v1.ContainerArgs(
            name=args.service,
            image=args.image,
            command=list(args.command),
            args=list(args.args),
            ports=[k8s.core.v1.ContainerPortArgs(name="http", container_port=args.port)],
            env=env,
            readiness_probe=probe,
            liveness_probe=k8s.core.v1.ProbeArgs(
                http_get=k8s.core.v1.HTTPGetActionArgs(path=args.liveness_path, port=args.port),
                period_seconds=10,
                failure_threshold=6,
            ),
            resources=k8s.core.v1.ResourceRequirementsArgs(
                requests={"cpu": args.cpu[0], "memory": args.memory[0]},
                limits={"cpu": args.cpu[1], "memory": args.memory[1]},
            ),
            volume_mounts=mounts,
            security_context=k8s.core.v1.SecurityContextArgs(
                allow_privilege_escalation=False,
                read_only_root_filesystem=True,
                run_as_non_root=True,
                capabilities=k8s.core.v1.CapabilitiesArgs(drop=["ALL"]),
                seccomp_profile=k8s.core.v1.SeccompProfileArgs(type="RuntimeDefault"),
            ),
        )
        pod = k8s.core.v1.PodTemplateSpecArgs(
            metadata=k8s.meta.v1.ObjectMetaArgs(labels=labels),
            spec=k8s.core.v1.PodSpecArgs(
                service_account_name=account.metadata.name,
                automount_service_account_token=False,
                termination_grace_period_seconds=args.termination_grace_seconds,
                security_context=k8s.core.v1.PodSecurityContextArgs(
                    run_as_non_root=True, run_as_user=10001, fs_group=10001
                ),
                containers=[container],
                volumes=[k8s.core.v1.VolumeArgs(name="tmp", empty_dir=k8s.core.v1.EmptyDirVolumeSourceArgs())],
                topology_spread_constraints=[
                    k8s.core.v1.TopologySpreadConstraintArgs(
                        max_skew=1,
                        topology_key="topology.kubernetes.io/zone",
                        when_unsatisfiable="ScheduleAnyway",
                        label_selector=k8s.meta.v1.LabelSelectorArgs(match_labels=selector),
                    )
                ],
            ),
        )
        if args.spool_size:
            # A Deployment's replicas cannot each keep a volume that outlives the pod; a StatefulSet's can, so a
            # replica that restarts or is rescheduled resumes from its own spool.
            workload: pulumi.CustomResource = k8s.apps.v1.StatefulSet(
                f"{name}-workload",
                metadata=meta(),
                spec=k8s.apps.v1.StatefulSetSpecArgs(
                    replicas=args.replicas,
                    service_name=args.service,
                    selector=k8s.meta.v1.LabelSelectorArgs(match_labels=selector),
                    pod_management_policy="Parallel",
                    template=pod,
                    volume_claim_templates=[
                        k8s.core.v1.PersistentVolumeClaimArgs(
                            metadata=k8s.meta.v1.ObjectMetaArgs(name="spool"),
                            spec=k8s.core.v1.PersistentVolumeClaimSpecArgs(
                                access_modes=["ReadWriteOnce"],
                                storage_class_name=args.storage_class,
                                resources=k8s.core.v1.VolumeResourceRequirementsArgs(
                                    requests={"storage": args.spool_size}
                                ),
                            ),
                        )
                    ],
                    persistent_volume_claim_retention_policy=k8s.apps.v1.StatefulSetPersistentVolumeClaimRetentionPolicyArgs(
                        when_deleted="Retain", when_scaled="Retain"
                    ),
                ),
                opts=child,
            )
            workload_kind = "StatefulSet"
        else:
            workload = k8s.apps.v1.Deployment(
                f"{name}-workload",
                metadata=meta(),
                spec=k8s.apps.v1.DeploymentSpecArgs(
                    replicas=args.replicas,
                    selector=k8s.meta.v1.LabelSelectorArgs(match_labels=selector),
                    template=pod,
                ),
                opts=child,
            )
            workload_kind = "Deployment"
        k8s.core.v1.Service(
            f"{name}-service",
            metadata=meta(),
            spec=k8s.core.v1.ServiceSpecArgs(
                type="ClusterIP",
                selector=selector,
                ports=[k8s.core.v1.ServicePortArgs(name="http", port=args.port, target_port="http")],
            ),
            opts=child,
        )
        if not singleton:
            self._scaling(name, args, meta, selector, workload, workload_kind)
        k8s.networking.v1.NetworkPolicy(
            f"{name}-ingress",
            metadata=meta("-ingress"),
            spec=k8s.networking.v1.NetworkPolicySpecArgs(
                pod_selector=k8s.meta.v1.LabelSelectorArgs(match_labels=selector),
                policy_types=["Ingress"],
                ingress=[
                    k8s.networking.v1.NetworkPolicyIngressRuleArgs(
                        from_=[
                            k8s.networking.v1.NetworkPolicyPeerArgs(
                                pod_selector=k8s.meta.v1.LabelSelectorArgs(match_labels=args.admit_from)
                            )
                        ],
                        ports=[k8s.networking.v1.NetworkPolicyPortArgs(port=args.port, protocol="TCP")],
                    )
                ],
            ),
            opts=child,
        )
        self.workload_kind = workload_kind
        self.cluster_host = pulumi.Output.concat(args.service, ".", args.namespace, ".svc.cluster.local")
        self.register_outputs({"workload": workload.urn, "cluster_host": self.cluster_host})

    def _scaling(
        self,
        name: str,
        args: RuntimeServiceArgs,
        meta: Callable[..., k8s.meta.v1.ObjectMetaArgs],
        selector: dict[str, str],
        workload: pulumi.CustomResource,
        workload_kind: str,
    ) -> None:
        """HPA and PDB (not for a single stateful replica: it cannot scale, and a PDB would block every drain)."""
        child = pulumi.ResourceOptions(parent=self)
        k8s.autoscaling.v2.HorizontalPodAutoscaler(
            f"{name}-hpa",
            metadata=meta(),
            spec=k8s.autoscaling.v2.HorizontalPodAutoscalerSpecArgs(
                scale_target_ref=k8s.autoscaling.v2.CrossVersionObjectReferenceArgs(
                    api_version="apps/v1", kind=workload_kind, name=args.service
                ),
                min_replicas=args.replicas,
                max_replicas=args.max_replicas,
                metrics=[
                    k8s.autoscaling.v2.MetricSpecArgs(
                        type="Resource",
                        resource=k8s.autoscaling.v2.ResourceMetricSourceArgs(
                            name="cpu",
                            target=k8s.autoscaling.v2.MetricTargetArgs(type="Utilization", average_utilization=70),
                        ),
                    )
                ],
            ),
            opts=pulumi.ResourceOptions(parent=self, depends_on=[workload]),
        )
        k8s.policy.v1.PodDisruptionBudget(
            f"{name}-pdb",
            metadata=meta(),
            spec=k8s.policy.v1.PodDisruptionBudgetSpecArgs(
                min_available=1, selector=k8s.meta.v1.LabelSelectorArgs(match_labels=selector)
            ),
            opts=child,
        )
