"""The deploy-order policy: clean on the example region and partner, and it fires on one seeded mistake of each kind
(a custom resource before its CRD, a release before its nodes, pods before their identity, a claim without class or
driver, an HPA without metrics, a read of an object the stack creates)."""

from __future__ import annotations

import copy
import dataclasses

import pytest

from fleet.repo import Repo
from foundation.stacks import parse_stack_name
from platformctl.offline.planner import StackPlan, plan_stacks
from platformctl.offline.results import policy_resources
from policies.context import context_for
from policies.deploy_order import check_deploy_order
from policies.rules import POLICIES, Resource, StackContext
from tests.conftest import ROOT

REGION = "region-eu-central"
PARTNER = "partner-acme-voice"


@pytest.fixture(scope="module")
def plans() -> dict[str, StackPlan]:
    """Only the stacks these tests assert on (and the global stack they read)."""
    return plan_stacks(Repo(ROOT), [parse_stack_name(REGION), parse_stack_name(PARTNER)])


def _resources(plans: dict[str, StackPlan], stack: str) -> list[Resource]:
    return [copy.deepcopy(r) for r in policy_resources(plans[stack].recording.resources)]


def _context(plans: dict[str, StackPlan], stack: str) -> StackContext:
    return context_for(Repo(ROOT), parse_stack_name(stack), plans[stack].config)


def _one(resources: list[Resource], name: str) -> Resource:
    (found,) = [r for r in resources if r.name == name]
    return found


def _without_dependency(resources: list[Resource], name: str, *on: str) -> list[Resource]:
    """`resources` with `name`'s dependencies on the resources named `on` removed (the seeded mistake)."""
    urns = {r.urn for r in resources if r.name in on}
    assert len(urns) == len(on), on
    return [
        dataclasses.replace(
            r,
            dependencies=tuple(d for d in r.dependencies if d not in urns),
            property_dependencies={k: tuple(u for u in v if u not in urns) for k, v in r.property_dependencies.items()},
        )
        if r.name == name
        else r
        for r in resources
    ]


def _findings(resources: list[Resource], context: StackContext) -> list[tuple[str, str]]:
    return list(check_deploy_order(resources, context))


@pytest.mark.parametrize("stack", [REGION, PARTNER])
def test_the_example_stacks_deploy_in_order(plans: dict[str, StackPlan], stack: str) -> None:
    assert _findings(_resources(plans, stack), _context(plans, stack)) == []


def test_deploy_order_is_a_mandatory_policy() -> None:
    (policy,) = [p for p in POLICIES if p.name == "deploy-order"]
    assert policy.level == "mandatory"


def test_a_custom_resource_before_its_crd(plans: dict[str, StackPlan]) -> None:
    resources = _without_dependency(_resources(plans, REGION), "region-acme-issuer", "region-cert-manager")
    findings = _findings(resources, _context(plans, REGION))
    # The meter's Certificate waited for the CRD only through the issuer: it is named too.
    assert sorted(urn.rsplit("::", 1)[-1] for urn, _ in findings) == ["region-acme-issuer", "region-cert-meter"]
    assert all("depends_on=[region-cert-manager]" in message for _, message in findings)


def test_a_custom_resource_whose_crd_nothing_installs(plans: dict[str, StackPlan]) -> None:
    resources = [r for r in _resources(plans, REGION) if r.name != "region-cert-manager"]
    findings = _findings(resources, _context(plans, REGION))
    issuer = [m for urn, m in findings if urn.endswith("::region-acme-issuer")]
    assert issuer and "nothing installs its CustomResourceDefinition" in issuer[0]


def test_a_helm_release_before_its_nodes(plans: dict[str, StackPlan]) -> None:
    resources = _without_dependency(_resources(plans, REGION), "region-kong-data-plane", "region-nodes")
    findings = _findings(resources, _context(plans, REGION))
    assert [urn.rsplit("::", 1)[-1] for urn, _ in findings] == ["region-kong-data-plane"]
    assert "node group region-nodes" in findings[0][1] and "depends_on=[region-nodes]" in findings[0][1]


def test_pods_before_their_pod_identity(plans: dict[str, StackPlan]) -> None:
    resources = _without_dependency(_resources(plans, REGION), "region-cert-manager", "region-cert-manager-identity")
    findings = _findings(resources, _context(plans, REGION))
    assert [urn.rsplit("::", 1)[-1] for urn, _ in findings] == ["region-cert-manager"]
    assert "cert-manager/cert-manager" in findings[0][1] and "region-cert-manager-identity" in findings[0][1]


def test_a_cronjob_whose_component_does_not_wait_for_its_identity(plans: dict[str, StackPlan]) -> None:
    """The payouts job's wait comes through its RuntimeJob parent: removing it there is the mistake."""
    resources = _without_dependency(_resources(plans, REGION), "region-payouts", "region-payouts-identity")
    findings = _findings(resources, _context(plans, REGION))
    assert [urn.rsplit("::", 1)[-1] for urn, _ in findings] == ["region-payouts-cronjob"]


def test_a_claim_without_a_storage_class(plans: dict[str, StackPlan]) -> None:
    resources = [r for r in _resources(plans, REGION) if r.type != "kubernetes:storage.k8s.io/v1:StorageClass"]
    meter = _one(resources, "region-meter-workload")
    for template in meter.inputs["spec"]["volumeClaimTemplates"]:
        template["spec"].pop("storageClassName")
    findings = _findings(resources, _context(plans, REGION))
    assert len(findings) == 1 and findings[0][0] == meter.urn
    assert "names no StorageClass" in findings[0][1]


def test_a_claim_whose_csi_driver_is_not_installed(plans: dict[str, StackPlan]) -> None:
    resources = [r for r in _resources(plans, REGION) if r.name != "region-addons-ebs-csi"]
    findings = _findings(resources, _context(plans, REGION))
    assert [urn.rsplit("::", 1)[-1] for urn, _ in findings] == ["region-meter-workload"]
    assert "'ebs.csi.aws.com' has no CSI driver" in findings[0][1]


def test_an_hpa_without_metrics_server(plans: dict[str, StackPlan]) -> None:
    resources = [r for r in _resources(plans, REGION) if r.name != "region-addons-metrics-server"]
    findings = _findings(resources, _context(plans, REGION))
    assert [urn.rsplit("::", 1)[-1] for urn, _ in findings] == ["region-meter-hpa"]
    assert "metrics-server" in findings[0][1]


def test_a_read_of_a_secret_the_stack_has_issued(plans: dict[str, StackPlan]) -> None:
    """The shape of the old bind_certificate: Secret.get of the Certificate's own Secret in the same update."""
    resources = _resources(plans, PARTNER)
    certificate = _one(resources, "tenant-cert-platform-hosts")
    read = Resource(
        certificate.urn.replace("cert-manager.io/v1:Certificate", "core/v1:Secret") + "-secret",
        "kubernetes:core/v1:Secret",
        "tenant-cert-platform-hosts-secret",
        {},
        certificate.parent,
        dependencies=(certificate.urn,),
        read_id="partner-acme-voice/tls-platform-hosts",
    )
    findings = _findings([*resources, read], _context(plans, PARTNER))
    assert [urn for urn, _ in findings] == [read.urn]
    assert "a preview of the first deploy fails" in findings[0][1]


def test_the_partner_plan_reads_nothing(plans: dict[str, StackPlan]) -> None:
    """Failing before: bind_certificate read the issued Secret with Secret.get (now a recorded read step)."""
    preview = plans[PARTNER].preview()
    assert [s["urn"] for s in preview["steps"] if s["op"] == "read"] == []
    assert "read" not in preview["changeSummary"]
