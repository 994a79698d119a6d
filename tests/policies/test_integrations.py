"""Integration policies on a real plan of `integration-calsync`, then on that plan tampered with: each rule catches
the resource that leaves the sandbox, opens more than declared or exceeds the caps."""

from __future__ import annotations

import copy
import dataclasses
import json
from typing import Any

import pytest

from policies.rules import POLICIES, Resource, StackContext, evaluate
from scripts.fleet import copy_repo
from tests.conftest import ROOT
from tests.integrations.conftest import published_calsync

STACK = "integration-calsync"


@pytest.fixture(scope="module")
def planned(tmp_path_factory: pytest.TempPathFactory) -> tuple[list[Resource], StackContext]:
    from fleet.repo import Repo
    from foundation.stacks import parse_stack_name
    from platformctl.offline.planner import plan_stacks
    from platformctl.offline.results import policy_resources
    from policies.context import context_for

    root = copy_repo(ROOT, tmp_path_factory.mktemp("policies") / "repo")
    published_calsync(root)
    repo = Repo(root)
    stack = parse_stack_name(STACK)
    plans = plan_stacks(repo, [stack])
    resources = policy_resources(plans[STACK].recording.resources)
    return resources, context_for(repo, stack, repo.stack_config(stack).values)


def findings(resources: list[Resource], context: StackContext, policy: str) -> list[str]:
    return [v.message for v in evaluate(resources, context) if v.policy == policy and v.level == "mandatory"]


def tampered(resources: list[Resource], type_: str, match: dict[str, Any], edit: Any) -> list[Resource]:
    """The resources with the first of `type_` whose metadata matches `match` changed by `edit(inputs)`."""
    out, done = [], False
    for r in resources:
        meta = r.inputs.get("metadata") or {}
        if not done and r.type == type_ and all(meta.get(k) == v for k, v in match.items()):
            inputs = copy.deepcopy(r.inputs)
            edit(inputs)
            r = dataclasses.replace(r, inputs=inputs)
            done = True
        out.append(r)
    assert done, f"no {type_} {match}"
    return out


def test_the_plan_is_clean_and_the_rules_are_in_the_pack(planned) -> None:
    resources, context = planned
    assert [v for v in evaluate(resources, context) if v.level == "mandatory"] == []
    from policies.pack import pack_policies

    names = {p.name for p in pack_policies()}
    assert {"integration-confinement", "integration-sandbox", "integration-caps"} <= names
    assert {"integration-confinement", "integration-sandbox", "integration-caps"} <= {p.name for p in POLICIES}


def test_an_object_in_a_partner_namespace_or_another_sandbox_is_caught(planned) -> None:
    resources, context = planned

    def move(target: str):
        return lambda inputs: inputs["metadata"].update(namespace=target)

    into_partner = tampered(
        resources, "kubernetes:core/v1:ConfigMap", {"name": "egress-allowlist"}, move("partner-acme-voice")
    )
    assert any(
        "partner namespace 'partner-acme-voice'" in m
        for m in findings(into_partner, context, "integration-confinement")
    )
    other = dataclasses.replace(
        context, integration=dataclasses.replace(context.integration, fleet_integration_ids=("calsync", "crmbridge"))
    )
    into_other = tampered(resources, "kubernetes:core/v1:Service", {"name": "calsync"}, move("integration-crmbridge"))
    assert any("another integration's sandbox" in m for m in findings(into_other, other, "integration-confinement"))


def test_a_network_policy_opening_a_partner_namespace_is_caught(planned) -> None:
    resources, context = planned

    def open_partner(inputs: dict[str, Any]) -> None:
        inputs["spec"]["egress"][0]["to"][0]["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"] = (
            "partner-acme-voice"
        )

    bad = tampered(
        resources,
        "kubernetes:networking.k8s.io/v1:NetworkPolicy",
        {"name": "allow-egress-proxy"},
        open_partner,
    )
    assert any("opens partner namespace" in m for m in findings(bad, context, "integration-confinement"))


def test_consumers_acls_and_warehouse_stay_within_the_installations(planned) -> None:
    resources, context = planned
    consumer = next(r for r in resources if r.type == "kong:index/consumer:Consumer")
    stranger = dataclasses.replace(
        consumer, urn=consumer.urn + "-x", inputs={**consumer.inputs, "customId": "sakura-calls/calsync"}
    )
    acl = next(r for r in resources if r.type == "kong:index/consumerAcl:ConsumerAcl")
    tier = dataclasses.replace(acl, urn=acl.urn + "-x", inputs={**acl.inputs, "group": "tier-enterprise"})
    schema = Resource(
        "urn:x::snowflake:index/schema:Schema::s", "snowflake:index/schema:Schema", "s", {"name": "PARTNER_ACME_VOICE"}
    )
    messages = findings([*resources, stranger, tier, schema], context, "integration-confinement")
    assert any("'sakura-calls', which has not installed calsync" in m for m in messages)
    assert any("not 'tier-enterprise'" in m for m in messages)
    assert any("no warehouse or cloud-account resources" in m for m in messages)


def test_egress_that_names_addresses_or_more_hosts_is_caught(planned) -> None:
    resources, context = planned

    def address(inputs: dict[str, Any]) -> None:
        inputs["spec"]["egress"][0]["to"] = [{"ipBlock": {"cidr": "0.0.0.0/0"}}]

    bad = tampered(resources, "kubernetes:networking.k8s.io/v1:NetworkPolicy", {"name": "allow-egress-proxy"}, address)
    assert any("only the egress proxy reaches addresses" in m for m in findings(bad, context, "integration-sandbox"))

    def widen(inputs: dict[str, Any]) -> None:
        inputs["data"]["squid.conf"] = inputs["data"]["squid.conf"].replace(
            "-n calendar.googleapis.example", "-n calendar.googleapis.example .example"
        )

    bad = tampered(resources, "kubernetes:core/v1:ConfigMap", {"name": "egress-allowlist"}, widen)
    assert any("not exactly the declared hosts" in m for m in findings(bad, context, "integration-sandbox"))


def test_token_root_fs_tag_and_missing_default_deny_are_caught(planned) -> None:
    resources, context = planned

    def loosen(inputs: dict[str, Any]) -> None:
        pod = inputs["spec"]["template"]["spec"]
        pod["automountServiceAccountToken"] = True
        pod["containers"][0]["securityContext"]["readOnlyRootFilesystem"] = False
        pod["containers"][0]["image"] = "registry.tempo-labs.example/calsync:latest"

    bad = tampered(resources, "kubernetes:apps/v1:Deployment", {"namespace": "integration-calsync"}, loosen)
    messages = findings(bad, context, "integration-sandbox")
    assert any("no service-account token" in m for m in messages)
    assert any("read-only root filesystem" in m for m in messages)
    assert any("not pinned by digest" in m for m in messages)
    without_deny = [
        r
        for r in resources
        if not ((r.inputs.get("metadata") or {}).get("name") == "default-deny" and "us-east" in r.urn)
    ]
    assert any("default-deny" in m for m in findings(without_deny, context, "integration-sandbox"))


def test_quota_limit_range_and_containers_above_the_caps_are_caught(planned) -> None:
    resources, context = planned
    bad = tampered(
        resources,
        "kubernetes:core/v1:ResourceQuota",
        {"namespace": "integration-calsync"},
        lambda i: i["spec"]["hard"].update({"limits.cpu": "2"}),
    )
    bad = tampered(
        bad,
        "kubernetes:core/v1:LimitRange",
        {"namespace": "integration-calsync"},
        lambda i: i["spec"]["limits"][0]["max"].update({"memory": "4Gi"}),
    )
    bad = tampered(
        bad,
        "kubernetes:apps/v1:Deployment",
        {"namespace": "integration-calsync"},
        lambda i: i["spec"]["template"]["spec"]["containers"][0]["resources"].pop("limits"),
    )
    messages = findings(bad, context, "integration-caps")
    assert any("quota limits.cpu '2'" in m for m in messages)
    assert any("limit range max memory" in m for m in messages)
    assert any("cpu limit missing or above the cap" in m for m in messages)
    assert json.dumps(messages)  # every message is plain text


def test_only_the_developers_own_payout_rows_are_allowed_in_the_warehouse(planned) -> None:
    """The integration stack's IntegrationTerms writes its developer's rows; any other SQL there, or another
    integration's rows, is caught."""
    resources, context = planned
    developer = next(r for r in resources if r.urn.endswith("::terms-developer"))
    listing = next(r for r in resources if r.urn.endswith("::terms-integration"))
    assert findings(resources, context, "integration-confinement") == []
    drop = dataclasses.replace(
        developer,
        urn=developer.urn + "-x",
        inputs={**developer.inputs, "revert": "DROP TABLE PLATFORM_EU.RAW.USAGE_EVENTS"},
    )
    other = dataclasses.replace(
        listing,
        urn=listing.urn + "-y",
        inputs={
            **listing.inputs,
            "execute": listing.inputs["execute"].replace('"INTEGRATION_ID":"calsync"', '"INTEGRATION_ID":"pulse"'),
        },
    )
    partners = dataclasses.replace(
        listing,
        urn=listing.urn + "-z",
        inputs={
            **listing.inputs,
            "execute": listing.inputs["execute"].replace(".RAW.INTEGRATIONS t", ".RAW.PARTNERS t"),
        },
    )
    messages = findings([*resources, drop, other, partners], context, "integration-confinement")
    assert len([m for m in messages if "no warehouse or cloud-account resources" in m]) == 3


def test_the_conformance_recording_holds_its_results_table_and_nothing_more(planned) -> None:
    resources, context = planned
    grant = "snowflake:index/grantPrivilegesToAccountRole:GrantPrivilegesToAccountRole"
    results = [r for r in resources if r.type == grant and "onSchemaObject" in r.inputs]
    assert len(results) == len(context.integration.regions)  # the plan has them, and the clean-plan test passes

    def edited(match: Resource, inputs: dict[str, Any]) -> list[Resource]:
        return [dataclasses.replace(r, inputs=inputs) if r is match else r for r in resources]

    def flagged(bad: list[Resource]) -> bool:
        return any(
            "no warehouse or cloud-account resources" in m for m in findings(bad, context, "integration-confinement")
        )

    on = results[0].inputs["onSchemaObject"]
    usage_events = {**results[0].inputs, "onSchemaObject": {**on, "objectName": on["objectName"].replace(
        "CONFORMANCE_RESULTS", "USAGE_EVENTS")}}  # fmt: skip
    assert flagged(edited(results[0], usage_events))
    assert flagged(edited(results[0], {**results[0].inputs, "privileges": ["INSERT", "SELECT", "DELETE"]}))
    assert flagged(edited(results[0], {**results[0].inputs, "withGrantOption": True}))
    assert flagged(edited(results[0], {**results[0].inputs, "allPrivileges": True}))
    assert flagged(edited(results[0], {**results[0].inputs, "onAccount": True}))
    # What a real preview's provider check adds as defaults is no widening.
    defaults = {"withGrantOption": False, "alwaysApply": False, "alwaysApplyTrigger": "", "__defaults": []}
    assert not flagged(edited(results[0], {**results[0].inputs, **defaults}))
    db_usage = next(r for r in resources if r.type == grant and r.inputs.get("onAccountObject", {}).get("objectType")
                    == "DATABASE")  # fmt: skip
    assert flagged(edited(db_usage, {**db_usage.inputs, "privileges": ["USAGE", "MONITOR"]}))
    role = next(r for r in resources if r.type == "snowflake:index/accountRole:AccountRole")
    assert flagged(edited(role, {**role.inputs, "name": "PLATFORM_EU_CENTRAL_LOADER"}))
    user_role = next(r for r in resources if r.type == "snowflake:index/grantAccountRole:GrantAccountRole")
    assert flagged(edited(user_role, {**user_role.inputs, "roleName": "ACCOUNTADMIN"}))
    assert flagged(edited(user_role, {**user_role.inputs, "userName": None, "parentRoleName": "SYSADMIN"}))


def test_only_the_proxy_and_the_conformance_job_reach_addresses(planned) -> None:
    resources, context = planned
    policy = "kubernetes:networking.k8s.io/v1:NetworkPolicy"
    assert not findings(resources, context, "integration-sandbox")

    def every_pod(inputs: dict[str, Any]) -> None:
        inputs["spec"]["podSelector"] = {}

    bad = tampered(resources, policy, {"name": "allow-conformance-warehouse"}, every_pod)
    assert any("only the egress proxy reaches addresses" in m for m in findings(bad, context, "integration-sandbox"))

    def port_80(inputs: dict[str, Any]) -> None:
        inputs["spec"]["egress"][0]["ports"] = [{"protocol": "TCP", "port": 80}]

    bad = tampered(resources, policy, {"name": "allow-conformance-warehouse"}, port_80)
    assert any("only the egress proxy reaches addresses" in m for m in findings(bad, context, "integration-sandbox"))

    def into_the_vpc(inputs: dict[str, Any]) -> None:
        inputs["spec"]["egress"][0]["to"][0]["ipBlock"]["except"] = ["169.254.0.0/16"]

    bad = tampered(resources, policy, {"name": "allow-conformance-warehouse"}, into_the_vpc)
    assert any("exclude the VPC" in m for m in findings(bad, context, "integration-sandbox"))
