"""The region and country catalog and its residency rule."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from foundation.errors import InputError
from regions.catalog import CATALOG_DIR, Residency, ResidencyVerdict, load_catalog

CATALOG = load_catalog()
EXPECTED = {
    "us-east": ("us-east-1", {"US", "MX"}),
    "us-west": ("us-west-2", {"US", "MX"}),
    "ca-central": ("ca-central-1", {"CA"}),
    "sa-east": ("sa-east-1", {"BR", "AR", "CL", "CO"}),
    "eu-west": ("eu-west-1", {"IE", "NL", "BE"}),
    "eu-london": ("eu-west-2", {"GB"}),
    "eu-central": ("eu-central-1", {"DE", "AT", "CH"}),
    "eu-paris": ("eu-west-3", {"FR"}),
    "eu-milan": ("eu-south-1", {"IT"}),
    "eu-spain": ("eu-south-2", {"ES", "PT"}),
    "eu-north": ("eu-north-1", {"SE", "NO", "DK", "FI"}),
    "ap-tokyo": ("ap-northeast-1", {"JP"}),
    "ap-singapore": ("ap-southeast-1", {"SG"}),
    "ap-sydney": ("ap-southeast-2", {"AU", "NZ"}),
    "ap-mumbai": ("ap-south-1", {"IN"}),
}


def test_exactly_the_fifteen_regions() -> None:
    assert {code: (r.aws_region, set(r.serves)) for code, r in CATALOG.regions.items()} == EXPECTED


def test_fifteen_or_more_languages() -> None:
    assert len(CATALOG.languages()) >= 15


@pytest.mark.parametrize(
    ("country", "residency", "retention", "extra"),
    [
        ("DE", Residency.REQUIRED, 90, {"encryption": "AES-256-GCM", "consent": "explicit_opt_in"}),
        ("JP", Residency.PREFERRED, 180, {"cross_border_transfer": "restricted"}),
        ("BR", Residency.REQUIRED, 120, {"dpo_required": True, "impact_assessment_required": True}),
        ("CA", Residency.PREFERRED, 365, {"breach_notification_hours": 72}),
        ("US", Residency.OPTIONAL, 180, {}),
        ("SG", Residency.OPTIONAL, 180, {}),
    ],
)
def test_product_plan_compliance_figures(country: str, residency: Residency, retention: int, extra: dict) -> None:
    profile = CATALOG.country(country).compliance
    assert profile.residency is residency
    assert profile.retention_days == retention
    for field, value in extra.items():
        assert getattr(profile, field) == value


@pytest.mark.parametrize("country", sorted(CATALOG.countries))
@pytest.mark.parametrize("region", sorted(CATALOG.regions))
def test_residency_rule_for_every_country_and_region(country: str, region: str) -> None:
    verdict = CATALOG.residency_verdict(country, region)
    residency = CATALOG.country(country).compliance.residency
    if country in CATALOG.region(region).serves or residency is Residency.OPTIONAL:
        assert verdict is ResidencyVerdict.ALLOWED
    elif residency is Residency.REQUIRED:
        assert verdict is ResidencyVerdict.FORBIDDEN
    else:
        assert verdict is ResidencyVerdict.WARN


def test_every_required_country_has_a_serving_region() -> None:
    for code, country in CATALOG.countries.items():
        if country.compliance.residency is Residency.REQUIRED:
            assert CATALOG.regions_serving(code)


def test_strictest_retention() -> None:
    assert CATALOG.strictest_retention_days(["DE", "AT"]) == 90
    assert CATALOG.strictest_retention_days(["CA"]) == 365
    assert CATALOG.strictest_retention_days([]) == 180


@pytest.fixture
def catalog_copy(tmp_path: Path) -> Path:
    for name in ("regions.yaml", "countries.yaml", "cloud.yaml"):
        shutil.copy2(CATALOG_DIR / name, tmp_path / name)
    return tmp_path


@pytest.mark.parametrize(
    ("file", "old", "new", "field", "message"),
    [
        (
            "regions.yaml",
            "aws_region: us-east-1,",
            "aws_region: us-east-1, extra: 1,",
            "regions.us-east.extra",
            "unknown field",
        ),
        ("regions.yaml", "cidr: 10.11.0.0/16", "cidr: 10.10.0.0/16", "", "overlaps"),
        ("regions.yaml", "serves: [CA]", "serves: [CA, XX]", "", "unknown countries"),
        (
            "countries.yaml",
            "retention_days: 90",
            "retention_days: ninety",
            "countries.DE.compliance.retention_days",
            "integer",
        ),
        (
            "countries.yaml",
            "residency: required, retention_days: 120",
            "residency: always, retention_days: 120",
            "countries.BR.compliance.residency",
            "Input should be",
        ),
    ],
)
def test_bad_catalog_names_file_and_field(
    catalog_copy: Path, file: str, old: str, new: str, field: str, message: str
) -> None:
    path = catalog_copy / file
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new, 1))
    with pytest.raises(InputError) as caught:
        load_catalog(catalog_copy)
    problem = caught.value.problems[0]
    assert problem.field == field
    assert message in problem.message
    if field:
        assert problem.source.endswith(file)
