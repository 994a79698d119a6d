"""RuntimeJob: one scheduled platform job in a region's cluster (the monthly payouts) - CronJob, identity, its
own Secret and a NetworkPolicy that admits nothing in - the scheduled sibling of RuntimeService."""

from __future__ import annotations

from dataclasses import dataclass, field

import pulumi
import pulumi_kubernetes as k8s

from components.runtime_env import SERVICES_COMMAND, workload_env


@dataclass(frozen=True)
class RuntimeJobArgs:
    job: str
    """Job name (`payouts`): names the Kubernetes objects and the pods' `app` label."""
    namespace: pulumi.Input[str]
    """Namespace it runs in (the region's platform namespace)."""
    image: str
    """Container image reference (stack config)."""
    args: tuple[str, ...]
    """Container arguments: the `platform-services` command line after the program name (`meter serve ...`)."""
    schedule: str
    """Cron schedule, evaluated in UTC."""
    command: tuple[str, ...] = SERVICES_COMMAND
    """Container command (the image's ENTRYPOINT is not relied on)."""
    secret_env: dict[str, pulumi.Input[str]] = field(default_factory=dict)
    """Environment from a Secret the job alone reads (API keys, warehouse key); values are Pulumi secrets."""
    env: dict[str, pulumi.Input[str]] = field(default_factory=dict)
    """Plain environment."""
    backoff_limit: int = 2
    """Retries of a failed run (the job must be safe to rerun)."""
    active_deadline_seconds: int = 3600
    """A run that takes longer is stopped."""
    cpu: tuple[str, str] = ("100m", "500m")
    """CPU request and limit."""
    memory: tuple[str, str] = ("256Mi", "512Mi")
    """Memory request and limit."""
    kubernetes_api: bool = False
    """The job calls the cluster's API server (its ServiceAccount token is mounted; RBAC says what it may do)."""


class RuntimeJob(pulumi.ComponentResource):
    def __init__(self, name: str, args: RuntimeJobArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("platform:runtime_job:RuntimeJob", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        labels = {"app": args.job, "app.kubernetes.io/part-of": "platform"}

        def meta(suffix: str = "") -> k8s.meta.v1.ObjectMetaArgs:
            return k8s.meta.v1.ObjectMetaArgs(name=f"{args.job}{suffix}", namespace=args.namespace, labels=labels)

        account = k8s.core.v1.ServiceAccount(
            f"{name}-sa", metadata=meta(), automount_service_account_token=args.kubernetes_api, opts=child
        )
        env = workload_env(name, meta("-env"), args.env, args.secret_env, child)
        container = k8s.core.v1.ContainerArgs(
            name=args.job,
            image=args.image,
            command=list(args.command),
            args=list(args.args),
            env=env,
            resources=k8s.core.v1.ResourceRequirementsArgs(
                requests={"cpu": args.cpu[0], "memory": args.memory[0]},
                limits={"cpu": args.cpu[1], "memory": args.memory[1]},
            ),
            volume_mounts=[k8s.core.v1.VolumeMountArgs(name="tmp", mount_path="/tmp")],
            security_context=k8s.core.v1.SecurityContextArgs(
                allow_privilege_escalation=False,
                read_only_root_filesystem=True,
                run_as_non_root=True,
                capabilities=k8s.core.v1.CapabilitiesArgs(drop=["ALL"]),
                seccomp_profile=k8s.core.v1.SeccompProfileArgs(type="RuntimeDefault"),
            ),
        )
        cron = k8s.batch.v1.CronJob(
            f"{name}-cronjob",
            metadata=meta(),
            spec=k8s.batch.v1.CronJobSpecArgs(
                schedule=args.schedule,
                time_zone="Etc/UTC",
                # Two runs of one period at once would race on the same statements; the job itself is rerun-safe.
                concurrency_policy="Forbid",
                starting_deadline_seconds=6 * 3600,
                successful_jobs_history_limit=3,
                failed_jobs_history_limit=6,
                job_template=k8s.batch.v1.JobTemplateSpecArgs(
                    metadata=k8s.meta.v1.ObjectMetaArgs(labels=labels),
                    spec=k8s.batch.v1.JobSpecArgs(
                        backoff_limit=args.backoff_limit,
                        active_deadline_seconds=args.active_deadline_seconds,
                        template=k8s.core.v1.PodTemplateSpecArgs(
                            metadata=k8s.meta.v1.ObjectMetaArgs(labels=labels),
                            spec=k8s.core.v1.PodSpecArgs(
                                service_account_name=account.metadata.name,
                                automount_service_account_token=args.kubernetes_api,
                                restart_policy="Never",
                                security_context=k8s.core.v1.PodSecurityContextArgs(
                                    run_as_non_root=True, run_as_user=10001, fs_group=10001
                                ),
                                containers=[container],
                                volumes=[
                                    k8s.core.v1.VolumeArgs(name="tmp", empty_dir=k8s.core.v1.EmptyDirVolumeSourceArgs())
                                ],
                            ),
                        ),
                    ),
                ),
            ),
            opts=child,
        )
        # A job serves nothing: no ingress at all. Egress stays open: Stripe, S3 and Snowflake have no fixed addresses.
        k8s.networking.v1.NetworkPolicy(
            f"{name}-ingress",
            metadata=meta("-ingress"),
            spec=k8s.networking.v1.NetworkPolicySpecArgs(
                pod_selector=k8s.meta.v1.LabelSelectorArgs(match_labels={"app": args.job}),
                policy_types=["Ingress"],
                ingress=[],
            ),
            opts=child,
        )
        self.register_outputs({"cronjob": cron.urn})
