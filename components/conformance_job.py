"""ConformanceJob: the conformance run of one integration in one region, after its deploy, recording its result.

A Kubernetes Job in the integration's system namespace that runs `platform-services conformance run` against the
sandbox's health endpoint (the seed's bars: p95, requests/s, error rate) and records the result in the region's
warehouse (`--integration/--region/--image-digest`, its settings from the ConformanceRecording's Secret as
`env_from`). Its own component, apart from IntegrationSandbox, because of the order a first `pulumi up` needs:
sandbox (system namespace, workload) -> ConformanceRecording (its Secret lives in that namespace) -> this Job (a
pod whose `env_from` names a missing Secret stays in CreateContainerConfigError, and the Job's await would run
into its timeout). The caller passes both in `after`. A suspended integration gets none (the caller builds none).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pulumi
import pulumi_kubernetes as k8s

from components.conformance_recording import SECRET_NAME, conformance_record_args
from components.network_policies import CONFORMANCE_LABELS
from components.sandbox_settings import conformance_args, container_security, pod_security
from foundation.naming import integration_namespace, integration_system_namespace
from integrations.rules import ReviewRules
from integrations.spec import IntegrationSpec


@dataclass(frozen=True)
class ConformanceJobArgs:
    spec: IntegrationSpec
    """The published integration spec."""
    digest: str
    """The spec's digest (names the Job: a new digest runs the check again)."""
    rules: ReviewRules
    """Conformance bars and the system namespace's container resources."""
    region: str
    """The region code (where its result is recorded)."""
    conformance_image: str
    """Image whose `platform-services conformance run` command runs the load check."""
    after: Sequence[pulumi.Resource]
    """What the Job waits for: the region's workload and service, and its ConformanceRecording (the Secret)."""
    moved_from: pulumi.Resource | None = None
    """The component that held the Job before (IntegrationSandbox): an alias, so a deployed stack keeps its Job."""


class ConformanceJob(pulumi.ComponentResource):
    """Give `opts` the region's Kubernetes provider."""

    def __init__(self, name: str, args: ConformanceJobArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("platform:conformance_job:ConformanceJob", name, None, opts)
        spec, bars = args.spec, args.rules.conformance
        namespace = integration_namespace(spec.id)
        target = f"http://{spec.id}.{namespace}.svc.cluster.local:{spec.port}{spec.health_path or '/'}"
        resources = dict(args.rules.egress_proxy.resources)  # the system namespace's LimitRange admits these
        job_name = f"{name}-conformance"
        job = k8s.batch.v1.Job(
            job_name,
            # One Job per spec digest: a new version is checked again after its deploy; the old Job is replaced.
            metadata=k8s.meta.v1.ObjectMetaArgs(
                name=f"conformance-{args.digest.removeprefix('sha256:')[:12]}",
                namespace=integration_system_namespace(spec.id),
                labels={"integration_id": spec.id, "isolation": "strict"},
            ),
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
                        security_context=pod_security(),
                        containers=[
                            k8s.core.v1.ContainerArgs(
                                name="conformance",
                                image=args.conformance_image,
                                args=[
                                    *conformance_args(target, args.rules),
                                    *conformance_record_args(spec.id, args.region, spec.image),
                                ],
                                env_from=[
                                    k8s.core.v1.EnvFromSourceArgs(
                                        secret_ref=k8s.core.v1.SecretEnvSourceArgs(name=SECRET_NAME)
                                    )
                                ],
                                resources=k8s.core.v1.ResourceRequirementsArgs(limits=resources, requests=resources),
                                security_context=container_security(),
                            )
                        ],
                    ),
                ),
            ),
            opts=pulumi.ResourceOptions(
                parent=self,
                depends_on=list(args.after),
                custom_timeouts=pulumi.CustomTimeouts(create=f"{bars.duration_seconds + 180}s"),
                aliases=[pulumi.Alias(parent=args.moved_from)] if args.moved_from is not None else None,
            ),
        )
        self.job_name = job.metadata.name
        self.register_outputs({"job": job.metadata.name})
