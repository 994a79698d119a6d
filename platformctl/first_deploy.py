"""The order a first `pulumi up` of a stack creates its resources in, and how long it may take.

The engine starts a resource as soon as everything it depends on exists (its dependencies, its parent's, its
provider's), with unbounded parallelism by default; a resource is done when its provider says so, which for some
kinds is a wait (Helm's `--wait`, a StatefulSet's readiness, a cert-manager Certificate's Ready condition, an EKS
control plane). So the schedule is the plan's dependency graph with a duration per kind: each step starts when its
last dependency finishes. The critical path is the chain of steps that ends last.

Durations are what these operations usually take and the most they are allowed (the provider's or our own timeout),
from the providers' documentation and defaults (cited per entry)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from policies.deploy_order import Graph
from policies.rules import Resource


@dataclass(frozen=True)
class Wait:
    typical: int
    """Seconds it usually takes."""
    most: int
    """Seconds it may take before the create fails (the timeout)."""
    what: str
    """What the engine waits for."""


WAITS: dict[str, Wait] = {
    "aws:eks/cluster:Cluster": Wait(600, 1800, "EKS control plane ACTIVE (provider create timeout 30 min)"),
    "aws:eks/nodeGroup:NodeGroup": Wait(300, 3600, "managed nodes joined and Ready (provider timeout 60 min)"),
    "aws:eks/addon:Addon": Wait(60, 1200, "add-on ACTIVE: its pods running (provider timeout 20 min)"),
    "aws:eks/podIdentityAssociation:PodIdentityAssociation": Wait(5, 60, "association stored"),
    "aws:elasticache/replicationGroup:ReplicationGroup": Wait(900, 2700, "Redis primary and replica available"),
    "aws:ec2/natGateway:NatGateway": Wait(120, 600, "NAT gateway available"),
    "aws:ec2/vpcEndpoint:VpcEndpoint": Wait(90, 600, "endpoint available"),
    "aws:route53/record:Record": Wait(45, 1800, "change INSYNC on Route 53's servers"),
    "kubernetes:helm.sh/v3:Release": Wait(90, 300, "Helm --wait: the chart's Deployments ready (timeout 300 s)"),
    "kubernetes:apps/v1:StatefulSet": Wait(90, 600, "every replica Ready, volumes provisioned and attached (10 min)"),
    "kubernetes:apps/v1:Deployment": Wait(45, 600, "rollout complete, replicas Ready (10 min)"),
    "kubernetes:cert-manager.io/v1:Certificate": Wait(
        120, 900, "ACME DNS-01 issued: Route 53 propagation, Let's Encrypt validation (waitFor Ready, 900 s)"
    ),
    "kubernetes:cert-manager.io/v1:ClusterIssuer": Wait(10, 600, "ACME account registered"),
    "kubernetes:core/v1:Service": Wait(2, 600, "for type LoadBalancer: the NLB has a hostname (10 min)"),
    "kubernetes:core/v1:Namespace": Wait(2, 300, "namespace active"),
    "kong:index/route:Route": Wait(1, 30, "control plane stored it"),
}
DEFAULT = Wait(3, 60, "")
"""Any other resource: one API call."""


DYNAMIC = Wait(5, 120, "the vendor's API answered (Twilio)")
"""A dynamic resource (pulumi-python:dynamic/...): a few calls to the vendor's API."""


def wait_for(resource: Resource) -> Wait:
    if resource.type.startswith("pulumi-python:dynamic"):
        return DYNAMIC
    wait = WAITS.get(resource.type, DEFAULT)
    if resource.type == "kubernetes:core/v1:Service" and (resource.inputs.get("spec") or {}).get("type") != (
        "LoadBalancer"
    ):
        return DEFAULT
    if resource.type == "aws:eks/addon:Addon" and resource.inputs.get("addonName") in (
        "vpc-cni",
        "eks-pod-identity-agent",
    ):
        return Wait(30, 1200, "add-on ACTIVE (DaemonSet on the nodes as they come)")
    return wait


@dataclass(frozen=True)
class Step:
    resource: Resource
    wait: Wait
    start: int
    """Seconds after the update began (typical durations)."""
    finish: int
    latest_finish: int
    """Finish if every wait before and including it took its most."""
    after: str
    """The dependency it started after (the last to finish), or empty."""


@dataclass(frozen=True)
class Schedule:
    stack: str
    steps: list[Step]
    """Every resource the update creates, by start time."""
    critical_path: list[Step]
    """The chain of steps that ends last."""

    @property
    def typical_seconds(self) -> int:
        return max((s.finish for s in self.steps), default=0)

    @property
    def worst_seconds(self) -> int:
        return max((s.latest_finish for s in self.steps), default=0)


def _physical(resource: Resource) -> bool:
    """Creates something (not a component, the stack or a provider)."""
    return (
        ":" in resource.type
        and not resource.type.startswith(("pulumi:pulumi:", "pulumi:providers:"))
        and (resource.type.split(":")[0] not in ("platform",))
    )


def schedule(stack: str, resources: Iterable[Resource]) -> Schedule:
    """When each resource of a first update starts and finishes (typical and worst case)."""
    resources = list(resources)
    graph = Graph(resources)
    by_urn = graph.by_urn
    timing: dict[str, tuple[int, int, str]] = {}

    def timed(urn: str, visiting: frozenset[str] = frozenset()) -> tuple[int, int, str]:
        """(finish, latest finish, the dependency that finished last) of one resource."""
        if urn in timing:
            return timing[urn]
        resource = by_urn.get(urn)
        if resource is None or urn in visiting:
            return 0, 0, ""
        start, latest_start, after = 0, 0, ""
        for dependency in graph.direct(resource):
            finish, latest, _ = timed(dependency, visiting | {urn})
            if finish > start or (finish == start and not after and finish):
                start, after = finish, dependency
            latest_start = max(latest_start, latest)
        wait = wait_for(resource) if _physical(resource) else Wait(0, 0, "")
        if resource.read_id:
            wait = Wait(1, 30, "read")
        timing[urn] = (start + wait.typical, latest_start + wait.most, after)
        return timing[urn]

    steps = []
    for resource in resources:
        if not _physical(resource):
            continue
        finish, latest, after = timed(resource.urn)
        wait = wait_for(resource)
        steps.append(
            Step(resource, wait, finish - wait.typical, finish, latest, _physical_ancestor(after, by_urn, timing))
        )
    steps.sort(key=lambda s: (s.start, s.finish, s.resource.name))
    return Schedule(stack, steps, _critical(steps))


def _physical_ancestor(urn: str, by_urn: dict[str, Resource], timing: dict[str, tuple[int, int, str]]) -> str:
    """The physical resource a step really waited for (through components, which take no time)."""
    seen = set()
    while urn and urn in by_urn and not _physical(by_urn[urn]) and urn not in seen:
        seen.add(urn)
        urn = timing.get(urn, (0, 0, ""))[2]
    return urn if urn in by_urn and _physical(by_urn[urn]) else ""


def _critical(steps: list[Step]) -> list[Step]:
    by_urn = {s.resource.urn: s for s in steps}
    if not steps:
        return []
    current: Step | None = max(steps, key=lambda s: (s.finish, s.latest_finish))
    path = []
    while current is not None:
        path.append(current)
        current = by_urn.get(current.after)
    return list(reversed(path))


def minutes(seconds: int) -> str:
    return f"{seconds // 60}:{seconds % 60:02d}"


def first_deploy(repo: object, stack_name: str) -> tuple[Schedule, list[str]]:
    """Plan `stack_name` offline (no engine, no credentials) and schedule its first update; also the deploy-order
    findings that would make that update stall (each names the resource and the fix)."""
    from fleet.repo import Repo
    from platformctl.offline.planner import plan_stacks
    from platformctl.offline.results import policy_resources
    from platformctl.planning import select_stacks
    from policies.context import context_for
    from policies.deploy_order import check_deploy_order

    assert isinstance(repo, Repo)
    (stack,) = select_stacks(repo, [stack_name], False)
    plan = plan_stacks(repo, [stack])[str(stack)]
    resources = policy_resources(plan.recording.resources)
    context = context_for(repo, stack, plan.config)
    findings = [f"{urn.rsplit('::', 1)[-1]}: {message}" for urn, message in check_deploy_order(resources, context)]
    return schedule(str(stack), resources), findings
