"""The deploy-readiness policies: Snowflake preview features on the resource's provider, Kubernetes schema."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from fleet.repo import Repo
from foundation.stacks import parse_stack_name
from foundation.warehouse_schema import TABLES
from platformctl.planning import check_policies
from policies.context import context_for
from policies.deploy_checks import check_kubernetes_schema, check_snowflake_preview_features, manifest_of
from policies.rules import Resource, StackContext
from tests.conftest import ROOT, Plan

REGION = "region-eu-central"
PARTNER = "partner-acme-voice"


def _resources(fleet: Plan, stack: str) -> list[Resource]:
    return [
        Resource(r.urn, r.type, r.name, copy.deepcopy(r.inputs), r.parent, r.retain_on_delete, r.provider)
        for r in fleet.resources(stack)
    ]


def _context(fleet: Plan, stack: str) -> StackContext:
    return context_for(Repo(ROOT), parse_stack_name(stack), fleet.plans[stack].config)


@pytest.mark.parametrize("stack", ["global", REGION, PARTNER, "region-ap-tokyo", "partner-sakura-calls"])
def test_the_example_fleet_passes_every_policy(fleet: Plan, stack: str) -> None:
    assert [v for v in check_policies(Repo(ROOT), fleet.plans[stack]) if v.level == "mandatory"] == []


def test_a_table_without_its_preview_feature_fails(fleet: Plan) -> None:
    """Today's fix undone: the region's Snowflake provider enables nothing, as before."""
    resources = _resources(fleet, REGION)
    assert list(check_snowflake_preview_features(resources, _context(fleet, REGION))) == []
    for r in resources:
        if r.type == "pulumi:providers:snowflake":
            r.inputs.pop("previewFeaturesEnabled")
    findings = list(check_snowflake_preview_features(resources, _context(fleet, REGION)))
    assert len(findings) == len(TABLES)  # every table of foundation/warehouse_schema.py
    assert all("snowflake_table_resource" in message for _, message in findings)


def test_a_table_on_the_default_provider_fails(fleet: Plan) -> None:
    resources = [r for r in _resources(fleet, REGION) if r.type == "snowflake:index/table:Table"]
    bare = [Resource(r.urn, r.type, r.name, r.inputs) for r in resources]
    findings = list(check_snowflake_preview_features(bare, _context(fleet, REGION)))
    assert findings and "default provider" in findings[0][1]


def test_a_provider_enabling_another_feature_fails(fleet: Plan) -> None:
    resources = _resources(fleet, REGION)
    for r in resources:
        if r.type == "pulumi:providers:snowflake":
            r.inputs["previewFeaturesEnabled"] = json.dumps(["snowflake_stage_resource"])
    assert len(list(check_snowflake_preview_features(resources, _context(fleet, REGION)))) == len(TABLES)


def test_kubernetes_objects_validate_against_the_cluster_version(fleet: Plan) -> None:
    context = _context(fleet, PARTNER)
    assert context.kubernetes_version == "1.35"
    resources = _resources(fleet, PARTNER)
    manifests = [manifest_of(r) for r in resources]
    kinds = {m["kind"] for m in manifests if m}
    assert {"Namespace", "NetworkPolicy", "ResourceQuota", "LimitRange", "ConfigMap", "ServiceAccount"} <= kinds
    assert list(check_kubernetes_schema(resources, context)) == []


@pytest.mark.parametrize(
    ("name", "break_it", "message"),
    [
        ("tenant-allow-dns", lambda i: i["spec"].update(egres=i["spec"].pop("egress")), "egres"),
        ("tenant-quota", lambda i: i["spec"].update(hard="lots"), "spec.hard"),
        ("tenant-allow-aws-apis", lambda i: i["spec"]["egress"][0]["ports"][0].update(port=[443]), "port"),
        ("tenant-limits", lambda i: i["metadata"].update(labelz={}), "labelz"),
    ],
)
def test_a_broken_manifest_is_caught(fleet: Plan, name: str, break_it, message: str) -> None:
    resources = _resources(fleet, PARTNER)
    target = next(r for r in resources if r.name == name)
    break_it(target.inputs)
    findings = list(check_kubernetes_schema(resources, _context(fleet, PARTNER)))
    assert [urn for urn, _ in findings] == [target.urn]
    assert message in findings[0][1] and "Kubernetes 1.35" in findings[0][1]


def test_an_api_the_version_does_not_serve_is_caught(fleet: Plan) -> None:
    resources = _resources(fleet, PARTNER)
    policy = next(r for r in resources if r.type == "kubernetes:networking.k8s.io/v1:NetworkPolicy")
    gone = Resource(policy.urn, "kubernetes:extensions/v1beta1:NetworkPolicy", policy.name, policy.inputs)
    findings = list(check_kubernetes_schema([gone], _context(fleet, PARTNER)))
    assert findings and "not served by Kubernetes 1.35" in findings[0][1]


def test_unknown_and_secret_values_are_not_schema_errors(fleet: Plan) -> None:
    secret = next(r for r in _resources(fleet, REGION) if r.type == "kubernetes:core/v1:Secret")
    assert secret.inputs["stringData"] == "[secret]"
    assert list(check_kubernetes_schema([secret], _context(fleet, REGION))) == []


def test_partner_context_reads_the_home_region_version(tmp_path: Path) -> None:
    from scripts.fleet import copy_repo

    repo = copy_repo(ROOT, tmp_path / "repo")
    stack_file = repo / "stacks" / "Pulumi.region-eu-central.yaml"
    stack_file.write_text(stack_file.read_text() + '  platform:kubernetesVersion: "1.34"\n')
    context = context_for(Repo(repo), parse_stack_name(PARTNER), {})
    assert context.kubernetes_version == "1.34"


def test_custom_resources_are_left_to_their_crds() -> None:
    from policies.deploy_checks import manifest_of

    certificate = Resource("urn:c", "kubernetes:cert-manager.io/v1:Certificate", "c", {"spec": {}})
    deployment = Resource("urn:d", "kubernetes:apps/v1:Deployment", "d", {"spec": {}})
    policy = Resource("urn:p", "kubernetes:networking.k8s.io/v1:NetworkPolicy", "p", {"spec": {}})
    assert manifest_of(certificate) is None
    assert manifest_of(deployment) is not None and manifest_of(policy) is not None


def test_the_cached_validator_agrees_with_kubernetes_validate(fleet: Plan) -> None:
    """The validators built once per kind give the library's own verdict on every object of a partner and a region,
    broken ones included."""
    import jsonschema
    import kubernetes_validate

    from policies.deploy_checks import _schema_validator

    manifests = [m for stack in (PARTNER, REGION) for m in map(manifest_of, _resources(fleet, stack)) if m]
    broken = [{**m, "spec": "not an object"} for m in manifests if "spec" in m]
    assert manifests and broken
    for manifest in manifests + broken:
        try:
            kubernetes_validate.validate(manifest, "1.35", strict=True)
            library = None
        except kubernetes_validate.ValidationError as exc:
            library = exc.message
        try:
            _schema_validator("1.35", manifest["apiVersion"], manifest["kind"]).validate(manifest)
            ours = None
        except jsonschema.ValidationError as exc:
            ours = exc.message
        assert ours == library, manifest["kind"]
