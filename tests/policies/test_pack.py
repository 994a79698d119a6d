"""The pulumi-policy pack runs the same rules on what a real preview hands an analyzer."""

from __future__ import annotations

import json
from pathlib import Path

import yaml
from pulumi_policy import (
    EnforcementLevel,
    PolicyCustomTimeouts,
    PolicyProviderResource,
    PolicyResource,
    PolicyResourceOptions,
    StackValidationArgs,
)

from foundation.warehouse_schema import TABLES
from policies.pack import pack_policies, stack_of
from tests.conftest import ROOT, Plan


def analyzer_view(plan: Plan, stack: str, mutate=None) -> StackValidationArgs:
    """The stack's resources as the policy SDK presents them (parents as PolicyResource objects, providers as
    PolicyProviderResource objects)."""
    by_urn: dict[str, PolicyResource] = {}
    providers = {
        r.urn: PolicyProviderResource(r.type, json.loads(json.dumps(r.inputs)), r.urn, r.name)
        for r in plan.resources(stack)
        if r.type.startswith("pulumi:providers:")
    }
    for recorded in plan.resources(stack):
        props = json.loads(json.dumps(recorded.inputs))
        if mutate:
            mutate(recorded.name, props)
        options = PolicyResourceOptions(False, [], None, [], PolicyCustomTimeouts(0, 0, 0), [], recorded.parent or None)
        dependencies = [by_urn[u] for u in recorded.dependencies if u in by_urn]
        property_dependencies = {
            key: [by_urn[u] for u in urns if u in by_urn] for key, urns in recorded.property_dependencies.items()
        }
        by_urn[recorded.urn] = PolicyResource(
            recorded.type,
            props,
            recorded.urn,
            recorded.name,
            options,
            providers.get(recorded.provider.rsplit("::", 1)[0]) if recorded.provider else None,
            by_urn.get(recorded.parent),
            dependencies,
            property_dependencies,
        )
    return StackValidationArgs(list(by_urn.values()))


def run_pack(args: StackValidationArgs) -> list[tuple[str, str, str | None]]:
    reports: list[tuple[str, str, str | None]] = []
    for policy in pack_policies(ROOT):

        def report(message: str, urn: str | None = None, name: str = policy.name) -> None:
            reports.append((name, message, urn))

        policy.validate(args, report)  # type: ignore[attr-defined]
    return reports


def test_pack_file_and_levels() -> None:
    pack = yaml.safe_load((ROOT / "policies" / "PulumiPolicy.yaml").read_text())
    assert pack["runtime"]["name"] == "python"
    levels = {p.name: p.enforcement_level for p in pack_policies(ROOT)}
    assert levels["partner-isolation"] == EnforcementLevel.MANDATORY
    assert levels["residency-preference"] == EnforcementLevel.ADVISORY
    assert levels["customer-managed-key"] == EnforcementLevel.MANDATORY
    assert levels["customer-managed-key-advisory"] == EnforcementLevel.ADVISORY


def test_stack_name_comes_from_the_urns() -> None:
    assert stack_of(["urn:pulumi:partner-acme-voice::platform::pulumi:pulumi:Stack::x"]) == "partner-acme-voice"
    assert stack_of([]) is None


def test_clean_stacks_pass(fleet: Plan) -> None:
    for stack in ("global", "region-eu-central", "partner-acme-voice", "partner-sakura-calls"):
        reports = run_pack(analyzer_view(fleet, stack))
        assert reports == [], stack


def test_a_violation_is_reported_against_the_resource(fleet: Plan) -> None:
    def unencrypted(name: str, props: dict) -> None:
        if name == "region-recordings-encryption":
            props["rules"][0]["applyServerSideEncryptionByDefault"] = {"sseAlgorithm": "AES256"}

    reports = run_pack(analyzer_view(fleet, "region-eu-central", unencrypted))
    assert [(name, (urn or "").rsplit("::", 1)[1]) for name, _, urn in reports] == [
        ("customer-managed-key", "region-recordings-bucket")
    ]


def test_an_unknown_stack_is_reported_not_crashed(tmp_path: Path, fleet: Plan) -> None:
    args = analyzer_view(fleet, "partner-acme-voice")
    reports: list[str] = []

    def report(message: str, urn: str | None = None) -> None:
        reports.append(message)

    for policy in pack_policies(tmp_path):  # a root without the specs
        policy.validate(args, report)  # type: ignore[attr-defined]
    assert reports and all("cannot evaluate" in m for m in reports)


def test_the_pack_catches_a_missing_snowflake_preview_feature(fleet: Plan) -> None:
    def strip(name: str, props: dict[str, object]) -> None:
        if name == "region-snowflake":
            props.pop("previewFeaturesEnabled")

    # The analyzer sees the provider through each resource; the mutation must reach that view too.
    args = analyzer_view(fleet, "region-eu-central", strip)
    for resource in args.resources:
        if resource.provider is not None and resource.provider.name == "region-snowflake":
            dict.pop(resource.provider.props, "previewFeaturesEnabled", None)  # type: ignore[call-overload]
    reports = [r for r in run_pack(args) if r[0] == "snowflake-preview-features"]
    assert len(reports) == len(TABLES) and all("snowflake_table_resource" in message for _, message, _ in reports)


def test_a_stacks_context_is_read_once_for_every_policy_of_the_pack(repo_copy: Path, fleet: Plan) -> None:
    """A preview runs every policy on one stack: the pack reads the repository for it once (a partner's context
    reads every spec of the fleet), so all policies judge the same context, even if a file changes meanwhile."""
    args = analyzer_view(fleet, "partner-acme-voice")
    expected = run_pack(args)
    reports: list[tuple[str, str, str | None]] = []
    for index, policy in enumerate(pack_policies(repo_copy)):
        if index == 1:
            (repo_copy / "partners" / "acme-voice.yaml").unlink()  # read already: the rest judge the same context

        def report(message: str, urn: str | None = None, name: str = policy.name) -> None:
            reports.append((name, message, urn))

        policy.validate(args, report)  # type: ignore[attr-defined]
    assert reports == expected
