"""Deploy order: what a *first* `pulumi up` of a stack needs to succeed in one go, read from the plan's dependency
graph. The engine creates a resource as soon as the resources it depends on exist, so anything the cluster needs
before an object can work must be among the object's dependencies, directly or through its parents (a child is
registered only once its parent is, and a component waits for its own dependencies).

Each finding names the resource and the fix. Pure functions over one stack's planned resources, like
policies/rules.py (which lists the policy)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from policies.deploy_checks import BUILT_IN_GROUPS

if TYPE_CHECKING:
    from policies.rules import Finding, Resource, StackContext

NODE_GROUP = "aws:eks/nodeGroup:NodeGroup"
ADDON = "aws:eks/addon:Addon"
POD_IDENTITY = "aws:eks/podIdentityAssociation:PodIdentityAssociation"
HELM_RELEASE = "kubernetes:helm.sh/v3:Release"
STORAGE_CLASS = "kubernetes:storage.k8s.io/v1:StorageClass"
CRD = "kubernetes:apiextensions.k8s.io/v1:CustomResourceDefinition"
PVC = "kubernetes:core/v1:PersistentVolumeClaim"
SERVICE_ACCOUNT = "kubernetes:core/v1:ServiceAccount"
SECRET = "kubernetes:core/v1:Secret"
CERTIFICATE = "kubernetes:cert-manager.io/v1:Certificate"
HPA_PREFIX = "kubernetes:autoscaling/"
WORKLOAD_KINDS = {
    "kubernetes:apps/v1:Deployment": ("spec", "template", "spec"),
    "kubernetes:apps/v1:StatefulSet": ("spec", "template", "spec"),
    "kubernetes:apps/v1:DaemonSet": ("spec", "template", "spec"),
    "kubernetes:apps/v1:ReplicaSet": ("spec", "template", "spec"),
    "kubernetes:batch/v1:Job": ("spec", "template", "spec"),
    "kubernetes:batch/v1:CronJob": ("spec", "jobTemplate", "spec", "template", "spec"),
    "kubernetes:core/v1:Pod": ("spec",),
}
"""Objects that make pods, and where their pod spec is."""
IRSA_ANNOTATION = "eks.amazonaws.com/role-arn"
DEFAULT_CLASS_ANNOTATION = "storageclass.kubernetes.io/is-default-class"


@dataclass(frozen=True)
class Installer:
    """What installs a piece of cluster software: an EKS add-on name, or a Helm chart name."""

    addons: tuple[str, ...] = ()
    charts: tuple[str, ...] = ()

    def matches(self, resource: Resource) -> bool:
        if resource.type == ADDON:
            return resource.inputs.get("addonName") in self.addons
        if resource.type == HELM_RELEASE:
            return resource.inputs.get("chart") in self.charts
        return False


CRD_INSTALLERS: dict[str, Installer] = {
    "cert-manager.io": Installer(charts=("cert-manager",)),
    "acme.cert-manager.io": Installer(charts=("cert-manager",)),
}
"""API group -> what installs its CRDs (cert-manager's chart with `crds.enabled`)."""
REGION_PROVIDED_GROUPS = frozenset(CRD_INSTALLERS)
"""Groups a partner stack may use without installing them: its home region stack (deployed first) installs them."""
CSI_DRIVERS: dict[str, Installer] = {
    "ebs.csi.aws.com": Installer(addons=("aws-ebs-csi-driver",), charts=("aws-ebs-csi-driver",)),
    "efs.csi.aws.com": Installer(addons=("aws-efs-csi-driver",), charts=("aws-efs-csi-driver",)),
}
"""StorageClass provisioner -> what installs the CSI driver (EKS 1.30+ has none of them by default)."""
RESOURCE_METRICS = Installer(addons=("metrics-server",), charts=("metrics-server",))
"""Source of `Resource`/`ContainerResource` HPA metrics (the metrics.k8s.io API)."""
CUSTOM_METRICS = Installer(charts=("prometheus-adapter", "keda"))
"""Sources of `Pods`/`Object`/`External` HPA metrics (custom.metrics.k8s.io / external.metrics.k8s.io)."""
POD_RUNNING_ADDONS = frozenset({"aws-ebs-csi-driver", "aws-efs-csi-driver", "metrics-server", "coredns"})
"""EKS add-ons whose Deployments need nodes: CreateAddon stays DEGRADED without them and the create times out."""


class Graph:
    """What each resource waits for before the engine creates it: its dependencies, its parents' and its
    provider's, transitively."""

    def __init__(self, resources: list[Resource]) -> None:
        self.by_urn = {r.urn: r for r in resources}
        self._memo: dict[str, frozenset[str]] = {}

    def direct(self, resource: Resource) -> set[str]:
        found = set(resource.dependencies)
        if resource.parent in self.by_urn:
            found.add(resource.parent)
        provider = resource.provider.rsplit("::", 1)[0] if resource.provider.count("::") > 3 else resource.provider
        if provider in self.by_urn:
            found.add(provider)
        for urns in resource.property_dependencies.values():
            found.update(urns)
        return found

    def waits_for(self, resource: Resource) -> frozenset[str]:
        if resource.urn in self._memo:
            return self._memo[resource.urn]
        self._memo[resource.urn] = frozenset()  # a cycle (the engine refuses one) ends here
        found: set[str] = set()
        stack = list(self.direct(resource))
        while stack:
            urn = stack.pop()
            if urn in found:
                continue
            found.add(urn)
            other = self.by_urn.get(urn)
            if other is not None:
                stack.extend(self.direct(other) - found)
        self._memo[resource.urn] = frozenset(found)
        return self._memo[resource.urn]

    def waits(self, resource: Resource, other: Resource) -> bool:
        return other.urn in self.waits_for(resource)


def _get(value: Any, *path: str) -> Any:
    for key in path:
        if not isinstance(value, dict):
            return None
        value = value.get(key)
    return value


def _name(resource: Resource) -> str:
    return str(_get(resource.inputs, "metadata", "name") or resource.name)


def _namespace(resource: Resource) -> str:
    if resource.type == HELM_RELEASE:
        return str(resource.inputs.get("namespace") or "default")
    return str(_get(resource.inputs, "metadata", "namespace") or "default")


def _custom_group(resource: Resource) -> str | None:
    parts = resource.type.split(":")
    if len(parts) != 3 or parts[0] != "kubernetes" or "/" not in parts[1]:
        return None
    group = parts[1].split("/", 1)[0]
    if group in ("helm.sh", "kustomize", "yaml") or group in BUILT_IN_GROUPS or group.endswith(".k8s.io"):
        return None
    return group


def _installs_crds(release: Resource) -> bool:
    values = release.inputs.get("values") or {}
    return bool(_get(values, "crds", "enabled") or values.get("installCRDs"))


def check_crds_installed_first(resources: list[Resource], context: StackContext) -> Iterator[Finding]:
    """Each custom resource waits for what installs its CRD (the engine gives up on an unknown kind after ~31 s)."""
    graph = Graph(resources)
    for resource in resources:
        group = _custom_group(resource)
        if group is None:
            continue
        installers = [
            r
            for r in resources
            if (r.type == CRD and _get(r.inputs, "spec", "group") == group)
            or (group in CRD_INSTALLERS and CRD_INSTALLERS[group].matches(r) and _installs_crds(r))
        ]
        kind = resource.type.rsplit(":", 1)[-1]
        if not installers:
            if context.kind == "partner" and group in REGION_PROVIDED_GROUPS:
                continue  # installed by the home region's stack, which is deployed before any partner's
            yield (
                resource.urn,
                (
                    f"{kind} ({group}) has no CRD in this stack: nothing installs its "
                    f"CustomResourceDefinition; install it "
                    "in the stack (a Helm release with its CRDs) or in a stack deployed before this one"
                ),
            )
        elif not any(graph.waits(resource, i) for i in installers):
            names = ", ".join(i.name for i in installers)
            yield (
                resource.urn,
                (
                    f"{kind} ({group}) does not wait for {names}, which installs its CRD: on a first "
                    f"deploy the kind does "
                    f"not exist yet; add depends_on=[{installers[0].name}] (or on something created after it)"
                ),
            )


def _pod_spec(resource: Resource) -> dict[str, Any] | None:
    path = WORKLOAD_KINDS.get(resource.type)
    spec = _get(resource.inputs, *path) if path else None
    return spec if isinstance(spec, dict) else None


def _service_account(resource: Resource) -> str | None:
    """The ServiceAccount a workload's pods (or a Helm release's main pods) run as."""
    if resource.type == HELM_RELEASE:
        name = _get(resource.inputs.get("values") or {}, "serviceAccount", "name")
        return str(name) if name else None
    spec = _pod_spec(resource)
    if spec is None:
        return None
    return str(spec.get("serviceAccountName") or spec.get("serviceAccount") or "default")


def check_workloads_wait_for_nodes(resources: list[Resource], context: StackContext) -> Iterator[Finding]:
    """Helm releases, workloads and pod-running EKS add-ons wait for the node group that runs them."""
    graph = Graph(resources)
    node_groups = [r for r in resources if r.type == NODE_GROUP]
    if not node_groups:
        return  # the stack creates no nodes: its cluster's nodes come from a stack deployed before it
    for resource in resources:
        if resource.type == ADDON and resource.inputs.get("addonName") not in POD_RUNNING_ADDONS:
            continue
        if resource.type not in (HELM_RELEASE, ADDON) and resource.type not in WORKLOAD_KINDS:
            continue
        if not any(graph.waits(resource, n) for n in node_groups):
            what = "Helm release" if resource.type == HELM_RELEASE else resource.type.rsplit(":", 1)[-1]
            yield (
                resource.urn,
                (
                    f"{what} {resource.name} does not wait for the node group {node_groups[0].name}: its pods have no "
                    "node to run on and the create's readiness wait times out; add "
                    f"depends_on=[{node_groups[0].name}]"
                ),
            )


def check_identity_before_pods(resources: list[Resource], context: StackContext) -> Iterator[Finding]:
    """A workload whose ServiceAccount has a Pod Identity association (or an IRSA role) waits for it: both are
    applied when a pod is admitted, so pods started before them have no AWS credentials until restarted."""
    graph = Graph(resources)
    associations = {
        (str(r.inputs.get("namespace")), str(r.inputs.get("serviceAccount"))): r
        for r in resources
        if r.type == POD_IDENTITY
    }
    agents = [r for r in resources if r.type == ADDON and r.inputs.get("addonName") == "eks-pod-identity-agent"]
    irsa = {
        (_namespace(r), _name(r)): r
        for r in resources
        if r.type == SERVICE_ACCOUNT and _get(r.inputs, "metadata", "annotations", IRSA_ANNOTATION)
    }
    for resource in resources:
        if resource.type != HELM_RELEASE and resource.type not in WORKLOAD_KINDS:
            continue
        account = _service_account(resource)
        if account is None:
            continue
        key = (_namespace(resource), account)
        association = associations.get(key)
        if association is not None:
            if not graph.waits(resource, association):
                yield (
                    resource.urn,
                    (
                        f"{resource.name} runs as {key[0]}/{key[1]}, whose Pod Identity association "
                        f"{association.name} it does not wait for: its first pods get no AWS credentials; add "
                        f"depends_on=[{association.name}]"
                    ),
                )
            for agent in agents:
                if not graph.waits(resource, agent):
                    yield (
                        resource.urn,
                        (
                            f"{resource.name} uses Pod Identity but does not wait for the agent "
                            f"add-on {agent.name} that "
                            f"serves its credentials; add depends_on=[{agent.name}]"
                        ),
                    )
        account_resource = irsa.get(key)
        if account_resource is not None and not graph.waits(resource, account_resource):
            yield (
                resource.urn,
                (
                    f"{resource.name} runs as {key[0]}/{key[1]}, whose IRSA role annotation it does not wait for; add "
                    f"depends_on=[{account_resource.name}]"
                ),
            )


def _claims(resource: Resource) -> Iterator[tuple[str, dict[str, Any]]]:
    """(claim name, claim spec) of a PVC or a StatefulSet's volumeClaimTemplates."""
    if resource.type == PVC:
        yield _name(resource), resource.inputs.get("spec") or {}
    elif resource.type == "kubernetes:apps/v1:StatefulSet":
        for template in _get(resource.inputs, "spec", "volumeClaimTemplates") or []:
            yield str(_get(template, "metadata", "name") or "?"), template.get("spec") or {}


def check_claims_have_storage(resources: list[Resource], context: StackContext) -> Iterator[Finding]:
    """Every claim's StorageClass exists (in the plan, or the default class the plan installs), its CSI driver is
    installed, and the claim's owner waits for both: otherwise the claim stays Pending (EKS 1.30+ has no default)."""
    graph = Graph(resources)
    classes = {_name(r): r for r in resources if r.type == STORAGE_CLASS}
    defaults = [
        r for r in classes.values() if _get(r.inputs, "metadata", "annotations", DEFAULT_CLASS_ANNOTATION) == "true"
    ]
    for resource in resources:
        for claim, spec in _claims(resource):
            where = f"{resource.name} (claim {claim})"
            wanted = spec.get("storageClassName")
            if wanted:
                storage_class = classes.get(str(wanted))
                if storage_class is None:
                    yield (
                        resource.urn,
                        (
                            f"{where} asks for StorageClass {wanted!r}, which this stack does not create; create it "
                            "(with its CSI driver) in the stack"
                        ),
                    )
                    continue
            elif defaults:
                storage_class = defaults[0]
            else:
                yield (
                    resource.urn,
                    (
                        f"{where} names no StorageClass and the stack installs no default one (EKS 1.30+ has none): "
                        "set storageClassName to a class the stack creates (ClusterAddons' gp3-encrypted)"
                    ),
                )
                continue
            if not graph.waits(resource, storage_class):
                yield resource.urn, f"{where} does not wait for StorageClass {storage_class.name}; add depends_on"
            provisioner = str(storage_class.inputs.get("provisioner") or "")
            installer = CSI_DRIVERS.get(provisioner)
            drivers = [r for r in resources if installer is not None and installer.matches(r)]
            if not drivers:
                yield (
                    resource.urn,
                    (
                        f"{where}: StorageClass {storage_class.name}'s provisioner {provisioner!r} "
                        f"has no CSI driver in "
                        "the stack; install it (EKS add-on aws-ebs-csi-driver with its Pod Identity role)"
                    ),
                )
            elif not any(graph.waits(resource, d) for d in drivers):
                yield resource.urn, f"{where} does not wait for the CSI driver {drivers[0].name}; add depends_on"


def check_hpa_metrics_have_a_source(resources: list[Resource], context: StackContext) -> Iterator[Finding]:
    """Every HPA's metrics come from something the cluster runs: metrics-server for resource metrics, an adapter
    for custom and external ones. Without it the HPA reports FailedGetResourceMetric and never scales."""
    metrics_server = [r for r in resources if RESOURCE_METRICS.matches(r)]
    adapters = [r for r in resources if CUSTOM_METRICS.matches(r)]
    for resource in resources:
        if not resource.type.startswith(HPA_PREFIX) or not resource.type.endswith(":HorizontalPodAutoscaler"):
            continue
        metrics = _get(resource.inputs, "spec", "metrics") or []
        kinds = {str(m.get("type")) for m in metrics if isinstance(m, dict)} or {"Resource"}  # v1: CPU
        if kinds & {"Resource", "ContainerResource"} and not metrics_server and context.kind != "partner":
            yield (
                resource.urn,
                (
                    f"HPA {resource.name} scales on resource metrics but nothing installs metrics-server; add the EKS "
                    "add-on metrics-server (ClusterAddons)"
                ),
            )
        if kinds & {"Pods", "Object", "External"} and not adapters:
            yield (
                resource.urn,
                (
                    f"HPA {resource.name} scales on {sorted(kinds & {'Pods', 'Object', 'External'})} metrics but no "
                    "metrics adapter (prometheus-adapter, KEDA) is installed"
                ),
            )


def check_no_read_of_own_objects(resources: list[Resource], context: StackContext) -> Iterator[Finding]:
    """No `get` (read) of an object the same stack creates: a preview reads it from the live cluster or account,
    where on a first deploy it does not exist yet, and the preview fails (pulumi/pulumi#16395)."""
    created = {(r.type, _namespace(r), _name(r)) for r in resources if not r.read_id}
    # Objects the stack makes through a controller: a cert-manager Certificate's Secret appears once it is issued.
    created |= {
        (SECRET, _namespace(r), str(_get(r.inputs, "spec", "secretName")))
        for r in resources
        if r.type == CERTIFICATE and _get(r.inputs, "spec", "secretName")
    }
    for resource in resources:
        if not resource.read_id:
            continue
        namespace, _, name = resource.read_id.rpartition("/")
        if (resource.type, namespace or "default", name) in created:
            yield (
                resource.urn,
                (
                    f"{resource.name} reads {resource.read_id} ({resource.type.rsplit(':', 1)[-1]}), which this stack "
                    "creates: a preview of the first deploy fails; use the creating resource's "
                    "outputs, or let something "
                    "in the cluster consume it (the certificate sync for TLS Secrets)"
                ),
            )


DEPLOY_ORDER_CHECKS = (
    check_crds_installed_first,
    check_workloads_wait_for_nodes,
    check_identity_before_pods,
    check_claims_have_storage,
    check_hpa_metrics_have_a_source,
    check_no_read_of_own_objects,
)


def check_deploy_order(resources: list[Resource], context: StackContext) -> Iterable[Finding]:
    """Every check above: what a first `pulumi up` needs to succeed in one go."""
    for check in DEPLOY_ORDER_CHECKS:
        yield from check(resources, context)
