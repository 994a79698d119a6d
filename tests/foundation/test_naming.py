"""The one naming module: what a partner id and a region code become everywhere."""

from __future__ import annotations

import re

import pytest

from foundation import naming


def test_partner_names() -> None:
    assert naming.partner_namespace("acme-voice") == "partner-acme-voice"
    assert naming.partner_schema("acme-voice") == "PARTNER_ACME_VOICE"
    assert naming.partner_reader_role("acme-voice") == "PARTNER_ACME_VOICE_READER"
    assert naming.partner_service_user("acme-voice") == "PARTNER_ACME_VOICE_SVC"
    assert naming.tier_acl_group("enterprise") == "tier-enterprise"


def test_region_names() -> None:
    assert naming.region_database("eu-central") == "PLATFORM_EU_CENTRAL"
    assert naming.region_account("eu-central") == "PLATFORM_EU_CENTRAL"
    assert naming.region_object("eu-central", "PARTNERS_WH") == "PLATFORM_EU_CENTRAL_PARTNERS_WH"


def test_the_role_pattern_inverts_the_role_name() -> None:
    role = naming.partner_reader_role("a-b-c")
    match = re.match(naming.PARTNER_ROLE_PATTERN, role)
    assert match and match.group(1) == naming.snowflake_ident("a-b-c")


@pytest.mark.parametrize("value", ["ab", "a" * 41, "-abc", "abc-", "Abc", "a_bc", "abc\n", "../x", "a/b"])
def test_partner_ids_refuse_anything_but_a_dns_label(value: str) -> None:
    assert not naming.is_partner_id(value)


def test_distinct_ids_give_distinct_snowflake_names() -> None:
    # '-' becomes '_' and ids never hold '_': the mapping cannot merge two partners.
    ids = ["ab-c", "abc", "a-bc", "a-b-c"]
    assert len({naming.partner_schema(i) for i in ids}) == len(ids)
