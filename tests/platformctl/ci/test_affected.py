"""Which stacks a change affects: data files by their loaders, Python files by the program's imports."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from fleet.program import kind_modules
from foundation.stacks import StackKind
from platformctl.ci import FileChange, affected_stacks
from tests.conftest import ROOT

REGIONS = {f"region-{p.name[14:-5]}" for p in (ROOT / "stacks").glob("Pulumi.region-*.yaml")}
PARTNERS = {"partner-acme-voice", "partner-sakura-calls", "partner-sunrise-telecom"}


def affected(*paths: str) -> set[str]:
    return set(affected_stacks(ROOT, ROOT, [FileChange("M", p) for p in paths]))


def test_the_program_imports_per_kind() -> None:
    modules = kind_modules(ROOT)
    assert "components.partner_tenant" in modules[StackKind.PARTNER]
    assert "components.partner_tenant" not in modules[StackKind.REGION]
    assert "gateway.rate_limits" in modules[StackKind.PARTNER]  # the tenant's rate limit and ACL group
    assert "components.secure_bucket" in modules[StackKind.REGION] | modules[StackKind.PARTNER]
    assert "gateway.model" in modules[StackKind.GLOBAL] and "gateway.model" not in modules[StackKind.REGION]


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("components/regional_deployment/__init__.py", REGIONS),
        ("components/regional_deployment/network.py", REGIONS),
        ("components/kong_gateway.py", {"global"}),
        ("gateway/rate_limits.py", {"global"} | PARTNERS),
        ("gateway/redis.py", {"global"} | REGIONS | PARTNERS),  # regions create the Redis the rate limits name
        ("components/secure_bucket.py", REGIONS | PARTNERS),
        # The tenant and the region's meter user import its key helper.
        ("components/snowflake_organization.py", {"global"} | REGIONS | PARTNERS),
        ("gateway/apis.yaml", {"global"} | PARTNERS),  # partners copy every platform route
        ("partners/tiers.yaml", {"global"} | PARTNERS),
        ("partners/prices.yaml", PARTNERS),  # each partner stack upserts its terms row (base fee, rate)
        ("regions/countries.yaml", {"global"} | REGIONS | PARTNERS),
        ("Pulumi.yaml", {"global"} | REGIONS | PARTNERS),
        ("policies/rules.py", {"global"} | REGIONS | PARTNERS),
        ("stacks/Pulumi.region-ap-tokyo.yaml", {"region-ap-tokyo", "partner-sakura-calls"}),
        ("stacks/Pulumi.partner-acme-voice.yaml", {"partner-acme-voice"}),
        ("partners/sunrise-telecom.yaml", {"partner-sunrise-telecom"}),
        ("partners/examples/pampas-voz.yaml", set()),
        ("cli/app.py", set()),
        ("tests/conftest.py", set()),
        ("README.md", set()),
    ],
)
def test_affected_stacks(path: str, expected: set[str]) -> None:
    assert affected(path) == expected


def test_a_regions_catalog_entry_affects_that_region_and_its_partners(tmp_path: Path) -> None:
    head = tmp_path / "head"
    head.mkdir()
    for item in ("__main__.py", "stacks", "partners", "regions"):
        (shutil.copytree if (ROOT / item).is_dir() else shutil.copy2)(ROOT / item, head / item)
    catalog = head / "regions" / "regions.yaml"
    catalog.write_text(catalog.read_text().replace("cidr: 10.30.0.0/16", "cidr: 10.40.0.0/16"))
    assert set(affected_stacks(ROOT, head, [FileChange("M", "regions/regions.yaml")])) == {
        "region-ap-tokyo",
        "partner-sakura-calls",
    }
