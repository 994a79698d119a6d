"""Models and loader for `regions/regions.yaml`, `regions/countries.yaml` and `regions/cloud.yaml` (cloud facts)."""

from __future__ import annotations

import datetime
import enum
import ipaddress
from functools import cache
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError, model_validator

from foundation.errors import InputError, Problem
from foundation.yamlio import load_yaml_file, validation_problems

CATALOG_DIR = Path(__file__).resolve().parent

CountryCode = Annotated[str, StringConstraints(pattern=r"^[A-Z]{2}$")]
RegionCode = Annotated[str, StringConstraints(pattern=r"^[a-z]{2}-[a-z]+$")]
LanguageTag = Annotated[str, StringConstraints(pattern=r"^[a-z]{2,3}-[A-Z]{2}$")]
ZoneId = Annotated[str, StringConstraints(pattern=r"^[a-z]+[0-9]-az[0-9]+$")]
SnowflakeRegionId = Annotated[str, StringConstraints(pattern=r"^AWS_[A-Z]+_[A-Z]+_[0-9]$")]
KubernetesMinor = Annotated[str, StringConstraints(pattern=r"^1\.[0-9]{1,3}$")]


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Residency(enum.StrEnum):
    REQUIRED = "required"
    PREFERRED = "preferred"
    OPTIONAL = "optional"


class ResidencyVerdict(enum.StrEnum):
    """What the residency rule says about serving a country from a region."""

    ALLOWED = "allowed"
    WARN = "warn"
    FORBIDDEN = "forbidden"


class ComplianceProfile(_Frozen):
    regime: str = Field(min_length=2)
    """The privacy regime the country's data falls under (GDPR, LGPD, APPI, ...)."""
    residency: Residency
    """Whether the country's data must stay in a region that serves it."""
    encryption: Literal["AES-256", "AES-256-GCM"]
    """Cipher required for data at rest."""
    customer_managed_key: bool
    """Data at rest must be encrypted with a key the platform manages in KMS (not an AWS-owned key)."""
    consent: Literal["implied", "opt_out", "express_or_implied", "explicit_opt_in"]
    """Consent model for recording and processing calls."""
    retention_days: int = Field(ge=1, le=3650)
    """Longest time call data may be kept."""
    dpo_required: bool
    """A data protection officer must be named."""
    impact_assessment_required: bool
    """A data protection impact assessment must precede launch."""
    breach_notification_hours: int = Field(ge=1, le=720)
    """Deadline to notify the regulator of a breach."""
    cross_border_transfer: Literal["allowed", "restricted"]
    """Whether transfers out of the country need extra safeguards."""


class VoiceConfig(_Frozen):
    models: tuple[str, ...] = Field(min_length=1)
    """Voice models offered in the country, first is the default."""
    formality: Literal["formal", "casual"]
    """Default register of the AI voice."""
    date_format: str
    """How the voice reads and writes dates."""
    time_format: str
    """How the voice reads and writes times."""


class Country(_Frozen):
    code: CountryCode
    """ISO 3166-1 alpha-2 code (the key in countries.yaml)."""
    name: str
    """English name."""
    currency: Annotated[str, StringConstraints(pattern=r"^[A-Z]{3}$")]
    """ISO 4217 currency."""
    time_zone: str
    """IANA time zone of the country's business hours."""
    telephony_provider: str
    """Carrier that provides local numbers."""
    payment_methods: tuple[str, ...] = Field(min_length=1)
    """Payment methods offered to the country's customers."""
    languages: tuple[LanguageTag, ...] = Field(min_length=1)
    """BCP 47 language tags spoken by the voice agent."""
    voice: VoiceConfig
    """AI voice configuration."""
    compliance: ComplianceProfile
    """The effective compliance profile (defaults merged with the country's overrides)."""


class Region(_Frozen):
    code: RegionCode
    """Platform region code (the key in regions.yaml)."""
    aws_region: str
    """AWS region the deployment runs in."""
    snowflake_region: SnowflakeRegionId
    """Snowflake Region ID of the regional account (one of cloud.yaml's snowflake_regions)."""
    cidr: ipaddress.IPv4Network
    """VPC address range."""
    serves: tuple[CountryCode, ...] = Field(min_length=1)
    """Countries this region may serve under a `required` residency rule."""
    zone_ids: tuple[ZoneId, ...] = Field(min_length=2)
    """Availability Zone IDs the network spans (IDs name the same zone in every account; letters do not)."""


class AwsRegion(_Frozen):
    jurisdiction: str = Field(pattern=r"^[A-Z]{2}$")
    """Legal area the region's data sits in (EU, GB, CH, US, ...)."""
    opt_in: bool
    """The region is disabled until the account opts in."""
    zone_ids: tuple[ZoneId, ...] = Field(min_length=1)
    """Every Availability Zone ID of the region."""
    restricted_zone_ids: tuple[ZoneId, ...] = ()
    """Zones that most accounts cannot place subnets (or EKS clusters) in."""


class KubernetesVersion(_Frozen):
    released: datetime.date
    """Day EKS offered the version."""
    standard_support_ends: datetime.date
    """Last day of EKS standard support; after it the version costs extended support."""
    extended_support_ends: datetime.date
    """Last day of extended support; after it EKS upgrades the cluster itself."""


class CloudFacts(_Frozen):
    aws_regions: dict[str, AwsRegion]
    """AWS regions by name."""
    snowflake_regions: dict[SnowflakeRegionId, str]
    """Snowflake Region ID -> the AWS region it runs in."""
    kubernetes_versions: dict[KubernetesMinor, KubernetesVersion]
    """EKS support calendar by Kubernetes minor version."""

    def standard_support_problem(self, version: str, on: datetime.date) -> str | None:
        """Why a new cluster may not be created on `version` on day `on`; None when it may."""
        offered = ", ".join(v for v, facts in self.kubernetes_versions.items() if facts.standard_support_ends >= on)
        facts = self.kubernetes_versions.get(version)
        if facts is None:
            return (
                f"Kubernetes {version!r} is not in the EKS calendar (regions/cloud.yaml); "
                f"in standard support: {offered}"
            )
        if facts.released > on:
            return f"Kubernetes {version} is not offered by EKS before {facts.released}; in standard support: {offered}"
        if facts.standard_support_ends < on:
            return (
                f"Kubernetes {version} left EKS standard support on {facts.standard_support_ends} (planned on {on}); "
                f"a new cluster needs a version in standard support: {offered}"
            )
        return None


class Catalog(_Frozen):
    regions: dict[str, Region]
    """Regions by code."""
    countries: dict[str, Country]
    """Countries by ISO code."""
    default_compliance: ComplianceProfile
    """Profile of a country that has no overrides."""
    cloud: CloudFacts
    """AWS regions and zones, Snowflake regions, the EKS calendar (cloud.yaml)."""

    @model_validator(mode="after")
    def _cross_references(self) -> Catalog:
        for code, region in self.regions.items():
            unknown = [cc for cc in region.serves if cc not in self.countries]
            if unknown:
                raise ValueError(f"region {code} serves unknown countries {unknown}")
        for cc, country in self.countries.items():
            if country.compliance.residency is Residency.REQUIRED and not self.regions_serving(cc):
                raise ValueError(f"country {cc} requires residency but no region serves it")
        for code, region in self.regions.items():
            self._check_cloud(code, region)
        networks = [r.cidr for r in self.regions.values()]
        for i, net in enumerate(networks):
            if any(net.overlaps(other) for other in networks[i + 1 :]):
                raise ValueError(f"region VPC range {net} overlaps another region's")
        return self

    def _check_cloud(self, code: str, region: Region) -> None:
        aws = self.cloud.aws_regions.get(region.aws_region)
        if aws is None:
            raise ValueError(f"region {code}: AWS region {region.aws_region} is not in cloud.yaml")
        unknown = [z for z in region.zone_ids if z not in aws.zone_ids]
        if unknown:
            raise ValueError(
                f"region {code}: zones {unknown} are not zone IDs of {region.aws_region} {list(aws.zone_ids)}"
            )
        restricted = [z for z in region.zone_ids if z in aws.restricted_zone_ids]
        if restricted:
            raise ValueError(
                f"region {code}: zones {restricted} are closed to most accounts; use others of {region.aws_region}"
            )
        if len(set(region.zone_ids)) != len(region.zone_ids):
            raise ValueError(f"region {code}: zone_ids repeat a zone")
        located = self.cloud.snowflake_regions.get(region.snowflake_region)
        if located is None:
            raise ValueError(f"region {code}: {region.snowflake_region} is not a Snowflake region on AWS (cloud.yaml)")
        where = self.cloud.aws_regions.get(located)
        if where is None or where.jurisdiction != aws.jurisdiction:
            raise ValueError(
                f"region {code}: Snowflake region {region.snowflake_region} ({located}) is outside the region's "
                f"jurisdiction {aws.jurisdiction}"
            )
        for cc in region.serves:
            country = self.countries.get(cc)
            if country is None or country.compliance.residency is not Residency.REQUIRED:
                continue
            allowed = {self.regions[r].aws_region for r in self.regions_serving(cc)}
            if located not in allowed:
                raise ValueError(
                    f"region {code}: {cc} requires residency, but its warehouse data would live in {located} "
                    f"({region.snowflake_region}), which no region serving {cc} runs in"
                )

    def snowflake_aws_region(self, code: str) -> str:
        """The AWS region a platform region's warehouse data lives in."""
        return self.cloud.snowflake_regions[self.regions[code].snowflake_region]

    def region(self, code: str) -> Region:
        return self.regions[code]

    def country(self, code: str) -> Country:
        return self.countries[code]

    def regions_serving(self, country_code: str) -> list[str]:
        return [code for code, region in self.regions.items() if country_code in region.serves]

    def residency_verdict(self, country_code: str, region_code: str) -> ResidencyVerdict:
        """The residency rule: `required` only from a serving region, `preferred` elsewhere with a warning."""
        if country_code in self.regions[region_code].serves:
            return ResidencyVerdict.ALLOWED
        residency = self.countries[country_code].compliance.residency
        if residency is Residency.REQUIRED:
            return ResidencyVerdict.FORBIDDEN
        if residency is Residency.PREFERRED:
            return ResidencyVerdict.WARN
        return ResidencyVerdict.ALLOWED

    def strictest_retention_days(self, country_codes: list[str] | tuple[str, ...]) -> int:
        """Shortest retention among the countries; the default profile's when there are none."""
        if not country_codes:
            return self.default_compliance.retention_days
        return min(self.countries[cc].compliance.retention_days for cc in country_codes)

    def languages(self) -> set[str]:
        return {tag.split("-")[0] for c in self.countries.values() for tag in c.languages}


def load_catalog(directory: Path = CATALOG_DIR) -> Catalog:
    """Read regions.yaml, countries.yaml and cloud.yaml from `directory`; every problem is reported with its file."""
    return _load_catalog_cached(directory.resolve())


@cache
def _load_catalog_cached(directory: Path) -> Catalog:
    regions_file = directory / "regions.yaml"
    countries_file = directory / "countries.yaml"
    regions_doc = _mapping(load_yaml_file(regions_file), str(regions_file), ("regions",))
    countries_doc = _mapping(load_yaml_file(countries_file), str(countries_file), ("compliance_defaults", "countries"))
    cloud_file = directory / "cloud.yaml"
    cloud_doc = _mapping(
        load_yaml_file(cloud_file), str(cloud_file), ("aws_regions", "snowflake_regions", "kubernetes_versions")
    )
    try:
        cloud = CloudFacts.model_validate(cloud_doc)
    except ValidationError as exc:
        raise InputError(validation_problems(str(cloud_file), exc, "")) from None
    problems: list[Problem] = []

    defaults = countries_doc["compliance_defaults"]
    try:
        default_profile = ComplianceProfile.model_validate(defaults)
    except ValidationError as exc:
        raise InputError(validation_problems(str(countries_file), exc, "compliance_defaults")) from None

    countries: dict[str, Any] = {}
    for cc, raw in _mapping_items(countries_doc["countries"], str(countries_file), "countries", problems):
        if not isinstance(raw, dict):
            problems.append(Problem(str(countries_file), f"countries.{cc}", "must be a mapping"))
            continue
        overrides = raw.get("compliance", {})
        if not isinstance(overrides, dict):
            problems.append(Problem(str(countries_file), f"countries.{cc}.compliance", "must be a mapping"))
            continue
        merged = {**raw, "code": cc, "compliance": {**defaults, **overrides}}
        try:
            countries[cc] = Country.model_validate(merged)
        except ValidationError as exc:
            problems.extend(validation_problems(str(countries_file), exc, f"countries.{cc}"))

    regions: dict[str, Any] = {}
    for code, raw in _mapping_items(regions_doc["regions"], str(regions_file), "regions", problems):
        try:
            regions[code] = Region.model_validate({**(raw if isinstance(raw, dict) else {}), "code": code})
        except ValidationError as exc:
            problems.extend(validation_problems(str(regions_file), exc, f"regions.{code}"))
    if problems:
        raise InputError(problems)
    try:
        return Catalog(regions=regions, countries=countries, default_compliance=default_profile, cloud=cloud)
    except ValidationError as exc:
        raise InputError(
            [Problem(str(directory), "", err["msg"].removeprefix("Value error, ")) for err in exc.errors()]
        ) from None


def _mapping(doc: Any, source: str, required: tuple[str, ...]) -> dict[str, Any]:
    if not isinstance(doc, dict):
        raise InputError.single(source, "", "must be a mapping at the top level")
    problems = [Problem(source, key, "missing") for key in required if key not in doc]
    problems += [Problem(source, str(key), "unknown field") for key in doc if key not in required]
    if problems:
        raise InputError(problems)
    return doc


def _mapping_items(value: Any, source: str, field: str, problems: list[Problem]) -> list[tuple[str, Any]]:
    if not isinstance(value, dict):
        problems.append(Problem(source, field, "must be a mapping"))
        return []
    return [(str(k), v) for k, v in value.items()]
