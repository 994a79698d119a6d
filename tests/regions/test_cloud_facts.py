"""Cloud facts in the catalog: Snowflake regions, zone IDs, opt-in regions, the EKS calendar."""

from __future__ import annotations

import datetime
import shutil
from pathlib import Path

import pytest

from foundation.errors import InputError
from regions.catalog import CATALOG_DIR, Residency, load_catalog
from regions.network import address_layout

CATALOG = load_catalog()
MILAN = "snowflake_region: AWS_EU_CENTRAL_1,   cidr: 10.24"
TOKYO = "[apne1-az1, apne1-az2, apne1-az4]}"


@pytest.fixture
def catalog_copy(tmp_path: Path) -> Path:
    for name in ("regions.yaml", "countries.yaml", "cloud.yaml"):
        shutil.copy2(CATALOG_DIR / name, tmp_path / name)
    return tmp_path


def _edit(directory: Path, file: str, old: str, new: str) -> None:
    path = directory / file
    text = path.read_text()
    assert old in text, old
    path.write_text(text.replace(old, new, 1))


def _problem(directory: Path) -> str:
    with pytest.raises(InputError) as caught:
        load_catalog(directory)
    return " ".join(p.message for p in caught.value.problems)


def test_every_region_has_a_real_snowflake_region_in_its_jurisdiction() -> None:
    for code, region in CATALOG.regions.items():
        located = CATALOG.cloud.snowflake_regions[region.snowflake_region]
        assert (
            CATALOG.cloud.aws_regions[located].jurisdiction == CATALOG.cloud.aws_regions[region.aws_region].jurisdiction
        ), code


def test_milan_and_spain_use_eu_snowflake_regions() -> None:
    assert "AWS_EU_SOUTH_1" not in CATALOG.cloud.snowflake_regions
    assert "AWS_EU_SOUTH_2" not in CATALOG.cloud.snowflake_regions
    assert CATALOG.region("eu-milan").snowflake_region == "AWS_EU_CENTRAL_1"
    assert CATALOG.region("eu-spain").snowflake_region == "AWS_EU_WEST_3"
    for code in ("eu-milan", "eu-spain"):
        assert CATALOG.cloud.aws_regions[CATALOG.snowflake_aws_region(code)].jurisdiction == "EU"


def test_required_residency_holds_for_warehouse_data() -> None:
    """Every country that requires residency has its warehouse data in an AWS region the residency rule allows."""
    required = [cc for cc, c in CATALOG.countries.items() if c.compliance.residency is Residency.REQUIRED]
    assert required
    for cc in required:
        allowed = {CATALOG.region(code).aws_region for code in CATALOG.regions_serving(cc)}
        for code in CATALOG.regions_serving(cc):
            assert CATALOG.snowflake_aws_region(code) in allowed, (cc, code)


def test_a_snowflake_region_that_does_not_exist_is_refused(catalog_copy: Path) -> None:
    _edit(
        catalog_copy,
        "regions.yaml",
        "snowflake_region: AWS_EU_CENTRAL_1,   cidr: 10.24",
        "snowflake_region: AWS_EU_SOUTH_1,   cidr: 10.24",
    )
    assert "AWS_EU_SOUTH_1 is not a Snowflake region" in _problem(catalog_copy)


def test_a_snowflake_region_outside_the_jurisdiction_is_refused(catalog_copy: Path) -> None:
    # Zurich is nearer to Milan than Frankfurt, but not in the EU.
    _edit(
        catalog_copy,
        "regions.yaml",
        "snowflake_region: AWS_EU_CENTRAL_1,   cidr: 10.24",
        "snowflake_region: AWS_EU_CENTRAL_2,   cidr: 10.24",
    )
    assert "outside the region's jurisdiction EU" in _problem(catalog_copy)


def test_a_required_country_cannot_have_its_warehouse_data_elsewhere(catalog_copy: Path) -> None:
    # Were Italy to require residency, Milan's Frankfurt warehouse would take its data out of the regions serving it.
    _edit(
        catalog_copy,
        "countries.yaml",
        "compliance: {regime: GDPR, consent: explicit_opt_in, breach_notification_hours: 72}\n  ES:",
        "compliance: {regime: GDPR, residency: required, consent: explicit_opt_in}\n  ES:",
    )
    message = _problem(catalog_copy)
    assert "IT requires residency" in message and "eu-central-1" in message


def test_tokyo_avoids_the_zone_new_accounts_cannot_use() -> None:
    tokyo = CATALOG.region("ap-tokyo")
    assert "apne1-az3" not in tokyo.zone_ids
    assert "apne1-az3" in CATALOG.cloud.aws_regions["ap-northeast-1"].restricted_zone_ids
    for region in CATALOG.regions.values():
        aws = CATALOG.cloud.aws_regions[region.aws_region]
        assert set(region.zone_ids) <= set(aws.zone_ids) - set(aws.restricted_zone_ids)


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        (TOKYO, "[apne1-az1, apne1-az2, apne1-az3]}", "closed to most accounts"),
        (
            "[apne1-az1, apne1-az2, apne1-az4]}",
            "[apne1-az1, euw1-az2, apne1-az4]}",
            "are not zone IDs of ap-northeast-1",
        ),
        (TOKYO, "[apne1-az1, apne1-az1]}", "repeat"),
        (TOKYO, "[a, b, c]}", "String should match pattern"),
    ],
)
def test_bad_zones_are_refused(catalog_copy: Path, old: str, new: str, message: str) -> None:
    _edit(catalog_copy, "regions.yaml", old, new)
    assert message in _problem(catalog_copy)


def test_opt_in_regions_are_marked() -> None:
    opt_in = {name for name, facts in CATALOG.cloud.aws_regions.items() if facts.opt_in}
    assert {"eu-south-1", "eu-south-2"} <= opt_in
    assert "eu-central-1" not in opt_in


def test_endpoint_subnets_hold_no_pods() -> None:
    for region in CATALOG.regions.values():
        layout = address_layout(region)
        assert len(layout.endpoints) == len(region.zone_ids)
        every = layout.private + layout.public + layout.endpoints
        for i, net in enumerate(every):
            assert net.subnet_of(region.cidr)
            assert not any(net.overlaps(other) for other in every[i + 1 :])


@pytest.mark.parametrize(
    ("version", "day", "problem"),
    [
        ("1.33", datetime.date(2026, 7, 29), None),
        ("1.33", datetime.date(2026, 7, 30), "left EKS standard support on 2026-07-29"),
        ("1.35", datetime.date(2026, 11, 29), None),
        ("1.35", datetime.date(2026, 1, 1), "not offered by EKS before 2026-01-28"),
        ("1.99", datetime.date(2026, 11, 29), "not in the EKS calendar"),
        ("1.29", datetime.date(2026, 11, 29), "left EKS standard support on 2025-03-23"),
    ],
)
def test_eks_standard_support(version: str, day: datetime.date, problem: str | None) -> None:
    found = CATALOG.cloud.standard_support_problem(version, day)
    if problem is None:
        assert found is None
    else:
        assert found is not None and problem in found
        assert "in standard support:" in found
