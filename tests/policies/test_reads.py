"""Policies declare the context they read (`reads=`): a rule sees nothing else, and the policy-context fingerprint is
derived from the declarations."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from typing import Any

import pytest

from fleet.repo import Repo
from foundation.stacks import parse_stack_name
from partners.tiers import load_tiers
from platformctl.offline.results import policy_resources
from policies.context import context_for
from policies.integrations import IntegrationFacts
from policies.model import CONTEXT_FIELDS, Finding, Policy, Resource, StackContext
from policies.reads import IN_EVERY_KEY, UndeclaredContextReadError
from policies.rules import POLICIES, context_fingerprint, evaluate
from regions.catalog import load_catalog
from tests.conftest import ROOT, Plan

CATALOG = load_catalog()
TIERS = load_tiers()
ROUTE = Resource(
    "urn:route", "kong:index/route:Route", "route", {"hosts": ["api.acme.example"], "snis": ["api.acme.example"]}
)


def partner(**overrides: Any) -> StackContext:
    values: dict[str, Any] = dict(
        stack="partner-acme",
        kind="partner",
        catalog=CATALOG,
        region="eu-central",
        countries=("DE",),
        partner_id="acme",
        tier_name="starter",
        tier=TIERS["starter"],
        fleet_partner_ids=("acme", "acme-voice", "bolt"),
        fleet_domains=(("acme", "acme.example"), ("bolt", "bolt.example"), ("carta", "eu.acme.example")),
        platform_zone="voice-platform.example",
        kubernetes_version="1.31",
        partner_domain="acme.example",
    )
    values.update(overrides)
    return StackContext(**values)


def reading(*fields: str) -> Any:
    def check(resources: list[Resource], context: StackContext) -> Iterable[Finding]:
        for name in fields:
            if getattr(context, name):
                yield "urn:x", f"{name} is set"

    return check


def test_a_rule_that_reads_an_undeclared_field_fails() -> None:
    sneaky = Policy("sneaky", "mandatory", "Reads the tier without saying so.", reading("kind", "tier_name"), {"kind"})
    with pytest.raises(UndeclaredContextReadError, match=r"policy sneaky reads context.tier_name"):
        evaluate([ROUTE], partner(), [sneaky])


@pytest.mark.parametrize(
    "use",
    [
        lambda v: v.partner_id == "acme",
        lambda v: v.partner_id or "",
        lambda v: f"{v.partner_id}",
        lambda v: "acme" in v.countries,
        lambda v: v.tier.quota,
        lambda v: {v.region: 1},
        lambda v: v.namespace,  # a property over partner_id
    ],
    ids=["compared", "truth", "formatted", "searched", "attribute", "hashed", "derived"],
)
def test_every_use_of_an_undeclared_field_is_refused(use: Any) -> None:
    def check(resources: list[Resource], context: StackContext) -> Iterable[Finding]:
        use(context)
        return []

    with pytest.raises(UndeclaredContextReadError):
        evaluate([], partner(), [Policy("p", "advisory", "d", check, set())])


def test_a_level_that_reads_an_undeclared_field_fails() -> None:
    policy = Policy(
        "leveled", "advisory", "d", reading(), set(), levels=lambda c: "mandatory" if c.purge else "advisory"
    )
    with pytest.raises(UndeclaredContextReadError, match=r"context\.purge"):
        evaluate([], partner(), [policy])


def test_a_declaration_names_context_fields_only() -> None:
    with pytest.raises(ValueError, match=r"unknown context fields \['tier_nmae'\]"):
        Policy("typo", "mandatory", "d", reading(), {"kind", "tier_nmae"})


def test_every_policy_reads_only_what_it_declares_on_every_planned_stack(fleet: Plan) -> None:
    """The example fleet's stacks (global, regions, partners, integrations) through every policy: no undeclared
    read, and the findings equal those of the rules handed the whole context."""
    repo = Repo(ROOT)
    kinds = set()
    for name, plan in fleet.plans.items():
        context = context_for(repo, parse_stack_name(name), plan.config)
        kinds.add(context.kind)
        resources = policy_resources(plan.recording.resources)
        evaluate(resources, context)  # raises on an undeclared read
        whole = [(p.name, f) for p in POLICIES for f in dict.fromkeys(p.check(resources, context))]
        assert [(v.policy, (v.urn, v.message)) for v in evaluate(resources, context)] == whole
    assert kinds >= {"global", "region", "partner"}


def test_the_fingerprint_covers_every_declared_field() -> None:
    declared = frozenset().union(*(p.reads for p in POLICIES))
    assert declared == CONTEXT_FIELDS  # every field of the context is read by some rule
    base = partner()
    changed: dict[str, Any] = {
        "stack": "partner-acme-2",
        "kind": "region",
        "region": "eu-west",
        "countries": ("DE", "AT"),
        "partner_id": "acme-2",
        "tier_name": "professional",
        "tier": TIERS["professional"],
        "purge": True,
        "active": False,
        "fleet_partner_ids": (*base.fleet_partner_ids, "acme-bis"),
        "fleet_domains": (*base.fleet_domains, ("dora", "x.api.acme.example")),
        "platform_zone": "other.example",
        "kubernetes_version": "1.32",
        "partner_domain": "acme.example.org",
        "integration": IntegrationFacts("calsync", ("eu-central",), (), (), ("1", "1Gi", "1Gi"), ()),
    }
    assert set(changed) == CONTEXT_FIELDS - IN_EVERY_KEY
    fingerprint = context_fingerprint(base, ["api.acme.example"])
    for name, value in changed.items():
        assert context_fingerprint(dataclasses.replace(base, **{name: value}), ["api.acme.example"]) != fingerprint, (
            name
        )


def test_a_field_no_policy_reads_is_not_in_the_fingerprint() -> None:
    policies = [Policy("p", "mandatory", "d", reading("kind"), {"kind"})]
    base = context_fingerprint(partner(), [], policies)
    assert context_fingerprint(partner(tier_name="enterprise", purge=True), [], policies) == base
    assert context_fingerprint(partner(kind="region"), [], policies) != base


def test_the_catalog_is_left_to_the_stack_key() -> None:
    assert context_fingerprint(partner(catalog=None), []) == context_fingerprint(partner(), [])


@pytest.mark.parametrize(
    ("change", "same"),
    [
        ({"fleet_partner_ids": ("acme", "acme-voice", "bolt", "zeta")}, True),  # not an extension of acme
        ({"fleet_partner_ids": ("acme", "acme-voice", "acme-x", "bolt")}, False),
        ({"fleet_partner_ids": ("acme", "bolt")}, False),
        ({"fleet_domains": (("acme", "acme.example"), ("bolt", "bolt.example"))}, False),  # eu.acme.example went
        (
            {"fleet_domains": (("acme", "acme.example"), ("bolt", "bolt.example.org"), ("carta", "eu.acme.example"))},
            True,
        ),
        ({"fleet_domains": (("acme", "acme.example"), ("bolt", "example"), ("carta", "eu.acme.example"))}, False),
    ],
)
def test_the_fleet_tables_count_only_where_they_can_change_a_finding(change: dict[str, Any], same: bool) -> None:
    claims = ["api.acme.example"]
    assert (context_fingerprint(partner(**change), claims) == context_fingerprint(partner(), claims)) is same


def test_a_claimed_host_brings_the_domains_it_overlaps_in() -> None:
    context = partner(fleet_domains=(("acme", "acme.example"), ("dora", "dora.example")))
    alone = context_fingerprint(context, ["api.acme.example"])
    assert context_fingerprint(context, ["api.acme.example", "api.dora.example"]) != alone
    moved = partner(fleet_domains=(("acme", "acme.example"), ("dora", "dora.example.org")))
    assert context_fingerprint(moved, ["api.acme.example"]) == alone
