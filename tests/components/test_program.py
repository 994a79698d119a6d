"""`__main__.py`: the stack name picks what is built; anything else is a clear error."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from foundation.errors import InputError
from platformctl.offline.recorder import record_stack
from tests.conftest import ROOT, Plan


def test_an_unknown_stack_name_is_a_clear_error() -> None:
    with pytest.raises(InputError, match="unknown stack name 'staging'"):
        record_stack(ROOT, "staging", {"platform:stackOrg": "organization"}, lambda name: None)


def test_a_spec_whose_id_differs_from_its_file_is_refused(repo_copy: Path, plan_in) -> None:
    spec = repo_copy / "partners" / "acme-voice.yaml"
    spec.write_text(spec.read_text().replace("id: acme-voice", "id: acme-voices"))
    with pytest.raises(InputError, match=re.escape("id: is 'acme-voices' but the file is named acme-voice.yaml")):
        plan_in(repo_copy, "partner-acme-voice")


def test_each_kind_exports_what_the_others_read(fleet: Plan) -> None:
    assert {
        "kong_service_ids",
        "kong_cluster_cert",
        "kong_cluster_key",
        "snowflake_accounts",
        "snowflake_admin_keys",
        "dns_zone_name",
    } <= set(fleet.outputs("global"))
    assert {
        "kubeconfig",
        "cluster_name",
        "kms_key_alias",
        "recordings_bucket",
        "transcripts_bucket",
        "snowflake_database",
        "snowflake_partner_warehouse",
        "snowflake_account",
    } <= set(fleet.outputs("region-eu-west"))
    assert {"namespace", "api_key", "snowflake_schema", "snowflake_role"} <= set(fleet.outputs("partner-acme-voice"))


def test_stack_references_name_the_project_stacks(fleet: Plan) -> None:
    refs = {r.name for r in fleet.resources("partner-acme-voice", "pulumi:pulumi:StackReference")}
    refs |= {
        dep.rsplit("::", 1)[1]
        for r in fleet.resources("partner-acme-voice")
        for deps in r.property_dependencies.values()
        for dep in deps
        if "pulumi:pulumi:StackReference" in dep
    }
    assert refs == {"organization/platform/global", "organization/platform/region-eu-central"}
