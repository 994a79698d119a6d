"""Each rule: a violating stack and a conforming one."""

from __future__ import annotations

import json
from typing import Any

import pytest

from partners.tiers import load_tiers
from policies.hosts import hosts_claimed_twice
from policies.rules import POLICIES, Resource, StackContext, evaluate
from regions.catalog import load_catalog

CATALOG = load_catalog()
TIERS = load_tiers()
STACK = Resource("urn:stack", "pulumi:pulumi:Stack", "platform-partner-acme", {})


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
    )
    values.update(overrides)
    return StackContext(**values)


def res(type_: str, logical: str, parent: str = "urn:parent", retain: bool = False, **inputs: Any) -> Resource:
    return Resource(f"urn:{logical}", type_, logical, inputs, parent, retain)


def rule(name: str):
    return next(p for p in POLICIES if p.name == name)


def findings(name: str, resources: list[Resource], context: StackContext) -> list[str]:
    return [v.message for v in evaluate([STACK, *resources], context, [rule(name)])]


def meta(namespace: str | None = None, name: str = "x", **labels: str) -> dict[str, Any]:
    return {"name": name, "namespace": namespace, "labels": labels}


def test_every_rule_is_tested() -> None:
    tested = {
        "partner-isolation",
        "tenant-baseline",
        "tier-consistency",
        "data-residency",
        "residency-preference",
        "customer-managed-key",
        "retention",
        "no-public-buckets",
        "data-retained-on-delete",
        "domain-ownership",
        "snowflake-preview-features",  # tests/policies/test_deploy_checks.py
        "kubernetes-schema",  # tests/policies/test_deploy_checks.py
        "kong-plugin-schema",
        "route-certificates",
        "host-ownership",
        "named-without-dependency",  # tests/policies/test_references.py
        "integration-confinement",  # tests/policies/test_integrations.py
        "integration-sandbox",  # tests/policies/test_integrations.py
        "integration-caps",  # tests/policies/test_integrations.py
        "deploy-order",  # tests/policies/test_deploy_order.py
    }
    assert {p.name for p in POLICIES} == tested


def test_isolation() -> None:
    good = [
        res("kubernetes:core/v1:ConfigMap", "cm", metadata=meta("partner-acme")),
        res("kong:index/consumer:Consumer", "c", username="partner-acme"),
        res("kong:index/consumerAcl:ConsumerAcl", "a", group="tier-starter"),
        res(
            "snowflake:index/grantPrivilegesToAccountRole:GrantPrivilegesToAccountRole",
            "g",
            accountRoleName="PARTNER_ACME_READER",
            onSchema={"schemaName": "PLATFORM_EU_CENTRAL.PARTNER_ACME"},
        ),
        res("aws:iam/rolePolicy:RolePolicy", "p", policy='{"Resource": "arn:aws:s3:::b/partners/acme/*"}'),
        # Its own PARTNERS row: the column PARTNER_ID is no partner's Snowflake object.
        res(
            "snowflake:index/execute:Execute",
            "e",
            execute="""MERGE INTO D.RAW.PARTNERS t USING (SELECT f.value:PARTNER_ID::VARCHAR(40) AS PARTNER_ID FROM """
            """LATERAL FLATTEN(INPUT => PARSE_JSON('[{"PARTNER_ID":"acme"}]')) f) s ON t.PARTNER_ID = s.PARTNER_ID""",
            revert="UPDATE D.RAW.PARTNERS SET OFFBOARDED_ON = CURRENT_DATE() WHERE PARTNER_ID = 'acme'",
        ),
    ]
    assert findings("partner-isolation", good, partner()) == []
    bad = [
        res("kubernetes:core/v1:ConfigMap", "cm", metadata=meta("partner-other")),
        res("kong:index/consumer:Consumer", "c", username="partner-other"),
        res("kong:index/consumerAcl:ConsumerAcl", "a", group="tier-enterprise"),
        res(
            "snowflake:index/grantPrivilegesToAccountRole:GrantPrivilegesToAccountRole",
            "g",
            accountRoleName="PARTNER_OTHER_READER",
        ),
        res("aws:iam/rolePolicy:RolePolicy", "p", policy='{"Resource": "arn:aws:s3:::b/partners/other/*"}'),
        res("snowflake:index/execute:Execute", "e1", execute='SELECT PARSE_JSON(\'[{"PARTNER_ID":"other"}]\')'),
        res(
            "snowflake:index/execute:Execute", "e2", revert="UPDATE D.RAW.PARTNERS SET X = 1 WHERE PARTNER_ID = 'other'"
        ),
    ]
    messages = findings("partner-isolation", bad, partner())
    assert any("""another partner's PARTNERS row ('"PARTNER_ID":"other"')""" in m for m in messages)
    assert any("""another partner's PARTNERS row ("PARTNER_ID = 'other'")""" in m for m in messages)
    assert any("namespace 'partner-other'" in m for m in messages)
    assert any("Kong consumer 'partner-other'" in m for m in messages)
    assert any("ACL group 'tier-enterprise'" in m for m in messages)
    assert any("PARTNER_OTHER_READER" in m for m in messages)
    assert any("partners/other" in m for m in messages)
    assert findings("partner-isolation", bad, partner(kind="region", partner_id=None)) == []


def baseline(deny: dict[str, Any] | None = None) -> list[Resource]:
    return [
        res(
            "kubernetes:core/v1:Namespace",
            "ns",
            metadata=meta(name="partner-acme", partner_id="acme", isolation="strict"),
        ),
        res(
            "kubernetes:networking.k8s.io/v1:NetworkPolicy",
            "deny",
            metadata=meta("partner-acme"),
            spec=deny or {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]},
        ),
        res(
            "kubernetes:core/v1:ResourceQuota",
            "q",
            metadata=meta("partner-acme"),
            spec={"hard": TIERS["starter"].quota.hard()},
        ),
        res(
            "kubernetes:core/v1:LimitRange",
            "l",
            metadata=meta("partner-acme"),
            spec={
                "limits": [
                    {
                        "max": {
                            "cpu": TIERS["starter"].container_limits.max_cpu,
                            "memory": TIERS["starter"].container_limits.max_memory,
                        }
                    }
                ]
            },
        ),
    ]


def test_tenant_baseline() -> None:
    assert findings("tenant-baseline", baseline(), partner()) == []
    leaky = baseline({"podSelector": {}, "policyTypes": ["Ingress"]})
    assert any("default-deny" in m for m in findings("tenant-baseline", leaky, partner()))
    assert len(findings("tenant-baseline", [], partner())) == 4
    assert findings("tenant-baseline", [], partner(active=False)) == []


def test_tier_consistency() -> None:
    rate = json.dumps({**TIERS["starter"].rate_limit.model_dump(), "policy": "local"})
    good = [
        *baseline(),
        res("kong:index/plugin:Plugin", "rl", name="rate-limiting", configJson=rate),
        res("kong:index/consumerAcl:ConsumerAcl", "a", group="tier-starter"),
    ]
    assert findings("tier-consistency", good, partner()) == []
    assert len(findings("tier-consistency", good, partner(tier_name="enterprise", tier=TIERS["enterprise"]))) == 4


def test_data_residency() -> None:
    good = [
        res("pulumi:providers:aws", "aws", region="eu-central-1"),
        res("snowflake:index/schema:Schema", "s", database="PLATFORM_EU_CENTRAL"),
    ]
    assert findings("data-residency", good, partner()) == []
    bad = [
        res("pulumi:providers:aws", "aws", region="us-east-1"),
        res("snowflake:index/schema:Schema", "s", database="PLATFORM_US_EAST"),
    ]
    assert len(findings("data-residency", bad, partner())) == 2
    assert findings("data-residency", [], partner(region="us-east")) == [
        "DE requires data residency and cannot be served from us-east"
    ]


def test_residency_preference_is_advisory() -> None:
    violations = evaluate([STACK], partner(region="ap-singapore", countries=("JP",)), [rule("residency-preference")])
    assert [(v.level, v.message) for v in violations] == [
        ("advisory", "JP prefers data residency but is served from ap-singapore")
    ]
    assert evaluate([STACK], partner(region="ap-tokyo", countries=("JP",)), [rule("residency-preference")]) == []


def bucket(
    sse: dict[str, Any] | None = None,
    days: int | None = 90,
    block: bool = True,
    acl: str | None = None,
    retain: bool = True,
) -> list[Resource]:
    resources = [res("aws:s3/bucket:Bucket", "b", parent="urn:sb", retain=retain, **({"acl": acl} if acl else {}))]
    resources.append(
        res(
            "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration",
            "e",
            parent="urn:sb",
            rules=[
                {
                    "applyServerSideEncryptionByDefault": sse
                    or {"sseAlgorithm": "aws:kms", "kmsMasterKeyId": "[unknown]"}
                }
            ],
        )
    )
    if days is not None:
        resources.append(
            res(
                "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration",
                "l",
                parent="urn:sb",
                rules=[{"status": "Enabled", "expiration": {"days": days}}],
            )
        )
    flags = dict.fromkeys(("blockPublicAcls", "blockPublicPolicy", "ignorePublicAcls", "restrictPublicBuckets"), block)
    resources.append(res("aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock", "pab", parent="urn:sb", **flags))
    return resources


def test_customer_managed_key_is_mandatory_where_a_profile_asks() -> None:
    assert findings("customer-managed-key", bucket(), partner()) == []
    aes = bucket(sse={"sseAlgorithm": "AES256"})
    de = evaluate([STACK, *aes], partner(), [rule("customer-managed-key")])
    assert [v.level for v in de] == ["mandatory"]
    us = evaluate([STACK, *aes], partner(region="us-east", countries=("US",)), [rule("customer-managed-key")])
    assert [v.level for v in us] == ["advisory"]


@pytest.mark.parametrize(("days", "count"), [(90, 0), (30, 0), (91, 1), (None, 1)])
def test_retention(days: int | None, count: int) -> None:
    assert len(findings("retention", bucket(days=days), partner(countries=("DE", "AT")))) == count


def test_no_public_buckets() -> None:
    assert findings("no-public-buckets", bucket(), partner()) == []
    assert len(findings("no-public-buckets", bucket(block=False, acl="public-read"), partner())) == 2
    open_policy = res(
        "aws:s3/bucketPolicy:BucketPolicy",
        "p",
        policy=json.dumps({"Statement": [{"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject"}]}),
    )
    assert findings("no-public-buckets", [*bucket(), open_policy], partner()) == ["bucket policy allows everyone"]


def test_data_retained_on_delete() -> None:
    assert findings("data-retained-on-delete", bucket(), partner()) == []
    assert len(findings("data-retained-on-delete", bucket(retain=False), partner())) == 1
    assert findings("data-retained-on-delete", bucket(retain=False), partner(purge=True)) == []


def test_the_example_fleet_is_clean(fleet) -> None:
    from fleet.repo import Repo
    from platformctl.planning import check_policies
    from tests.conftest import ROOT

    repo = Repo(ROOT)
    for name, plan in fleet.plans.items():
        assert check_policies(repo, plan) == [], name


def test_domain_ownership() -> None:
    fleet = partner(
        fleet_domains=(("acme", "voice.acme.example"), ("acme-voice", "voice.acmevoice.example")),
        fleet_partner_ids=("acme", "acme-voice"),
        platform_zone="voice-platform.example",
    )
    good = [
        res("kong:index/route:Route", "own", hosts=["voice.acme.example"]),
        res("kong:index/route:Route", "names", hosts=["api.acme.voice-platform.example"]),
    ]
    assert findings("domain-ownership", good, fleet) == []
    bad = [
        res("kong:index/route:Route", "theirs", hosts=["VOICE.acmevoice.example."]),
        res("kong:index/route:Route", "under", hosts=["eu.voice.acmevoice.example"]),
        res("kong:index/route:Route", "zone", hosts=["voice-platform.example"]),
        res("kong:index/route:Route", "other-names", hosts=["api.acme-voice.voice-platform.example"]),
    ]
    messages = findings("domain-ownership", bad, fleet)
    assert len(messages) == 4, messages
    assert sum("domain of partner 'acme-voice'" in m for m in messages) == 2


def test_isolation_attributes_names_to_the_longest_partner_id() -> None:
    # partner-acme-voice-domain is acme-voice's route, not acme's: prefix matching alone would allow it.
    context = partner(fleet_partner_ids=("acme", "acme-voice"))
    theirs = [res("kong:index/route:Route", "r", name="partner-acme-voice-domain")]
    assert findings("partner-isolation", theirs, context)
    ours = [res("kong:index/route:Route", "r", name="partner-acme-domain")]
    assert findings("partner-isolation", ours, context) == []


ROUTE = "kong:index/route:Route"
CERT = "kong:index/certificate:Certificate"
HOST = "api.acme.voice-platform.example"


def test_plugin_configs_must_fit_the_plugin_schema() -> None:
    ok = res("kong:index/plugin:Plugin", "p", name="cors", configJson=json.dumps({"origins": ["*"]}))
    bad = res("kong:index/plugin:Plugin", "q", name="rate-limiting", configJson=json.dumps({"minute": 1, "burst": 2}))
    assert findings("kong-plugin-schema", [ok], partner()) == []
    assert findings("kong-plugin-schema", [bad], partner()) == [
        "rate-limiting: config.burst is not a field of the rate-limiting plugin (Kong 3.9)"
    ]


def _route(hosts: list[str], deps: tuple[str, ...] = ("urn:cert",)) -> Resource:
    return Resource(
        "urn:route", ROUTE, "route", {"hosts": hosts, "snis": hosts, "paths": ["/v2"]}, "", False, dependencies=deps
    )


def test_every_route_host_has_a_certificate_created_before_the_route() -> None:
    cert = Resource("urn:cert", CERT, "cert", {"snis": [HOST]})
    assert findings("route-certificates", [cert, _route([HOST])], partner()) == []
    (missing,) = findings("route-certificates", [_route([HOST])], partner())
    assert missing.startswith(f"route host {HOST!r} has no certificate binding")
    assert findings("route-certificates", [cert, _route([HOST], deps=())], partner()) == [
        f"route on {HOST!r} does not wait for its certificate (depends_on the certificate)"
    ]
    wildcard = Resource("urn:cert", CERT, "cert", {"snis": ["*.acme.voice-platform.example"]})
    assert findings("route-certificates", [wildcard, _route([HOST])], partner()) == []


def test_a_cert_manager_certificate_binds_a_host_only_when_the_sync_may_read_its_secret() -> None:
    issued = Resource(
        "urn:cert",
        "kubernetes:cert-manager.io/v1:Certificate",
        "cert",
        {"metadata": {"name": "platform-hosts", "namespace": "partner-acme"},
         "spec": {"secretName": "tls-platform-hosts", "dnsNames": [HOST]}},
    )  # fmt: skip
    sync_role = Resource(
        "urn:role",
        "kubernetes:rbac.authorization.k8s.io/v1:Role",
        "role",
        {
            "metadata": {"namespace": "partner-acme", "labels": {"platform.io/kong-certificate-sync": "true"}},
            "rules": [{"apiGroups": [""], "resources": ["secrets"], "verbs": ["get"],
                       "resourceNames": ["tls-platform-hosts"]}],
        },
    )  # fmt: skip
    assert findings("route-certificates", [issued, sync_role, _route([HOST])], partner()) == []
    (unsynced,) = findings("route-certificates", [issued, _route([HOST])], partner())
    assert "has no certificate binding" in unsynced  # issued, but nothing puts it into Kong


def test_a_partner_stack_claims_only_its_own_hosts() -> None:
    context = partner(partner_domain="voice.acme.example")
    own = [_route([HOST, "voice.acme.example"])]
    assert findings("host-ownership", own, context) == []
    for foreign in ("api.other.voice-platform.example", "voice.other.example", "api.acme-evil.voice-platform.example"):
        assert findings("host-ownership", [_route([foreign])], context) == [
            f"host {foreign!r} belongs neither to partner 'acme''s platform names nor its domain"
        ]


def test_no_host_is_claimed_by_two_partners_in_one_plan() -> None:
    shared = "voice.shared.example"
    stacks = {
        "partner-a": [Resource("urn:a", CERT, "c", {"snis": [shared]})],
        "partner-b": [_route([shared])],
        "partner-c": [_route(["voice.c.example"])],
        "global": [_route([shared])],
    }
    violations = hosts_claimed_twice(stacks)
    assert {(v.stack, v.policy, v.level) for v in violations} == {
        ("partner-a", "unique-hosts", "mandatory"),
        ("partner-b", "unique-hosts", "mandatory"),
    }
    assert hosts_claimed_twice({k: v for k, v in stacks.items() if k != "partner-b"}) == []


def test_a_spec_domain_is_owned_before_it_is_routed() -> None:
    # No route yet (the proof is not checked), but the spec already claims another partner's domain.
    context = partner(
        partner_domain="VOICE.acmevoice.example.",
        fleet_domains=(("acme", "voice.acmevoice.example."), ("acme-voice", "voice.acmevoice.example")),
        fleet_partner_ids=("acme", "acme-voice"),
        platform_zone="voice-platform.example",
    )
    (message,) = findings("domain-ownership", [], context)
    assert "partner 'acme-voice'" in message
    in_zone = partner(partner_domain="x.voice-platform.example", platform_zone="voice-platform.example")
    assert findings("domain-ownership", [], in_zone)


def test_financial_records_are_kept_for_years_not_expired_with_call_data() -> None:
    def statements(days: int) -> list[Resource]:
        resources = bucket(days=days)
        resources[0] = res(
            "aws:s3/bucket:Bucket", "b", parent="urn:sb", retain=True, tags={"platform:data-class": "financial-records"}
        )
        return resources

    context = partner(countries=("DE", "AT"))  # call data here may be kept 90 days at most
    assert findings("retention", statements(3653), context) == []
    (message,) = findings("retention", statements(90), context)
    assert "financial records expire after 90 days" in message


def test_the_statements_bucket_outlives_the_call_data(fleet) -> None:
    rules = fleet.one(
        "region-eu-central",
        "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration",
        "region-statements-retention",
    ).inputs["rules"]
    assert rules[0]["expiration"]["days"] == 3653 and rules[0]["noncurrentVersionExpiration"]["noncurrentDays"] == 3653


@pytest.mark.parametrize(
    ("reference", "own", "expected"),
    [
        ("acme-voice-domain", "acme", "acme-voice"),  # the longest id it extends wins
        ("acme-domain", "acme-voice", "acme"),
        ("acme-voice", "acme", "acme-voice"),
        ("acme", "acme", "acme"),
        ("acme--x", "q", "acme"),
        ("zzz", "acme", None),
        ("-acme", "x", None),
        ("", "", None),
    ],
)
def test_a_reference_belongs_to_the_longest_partner_id_it_names(reference: str, own: str, expected: str | None) -> None:
    from policies.tenancy import _owner_of

    assert _owner_of(reference, own, ("acme", "acme-voice", "b")) == expected
