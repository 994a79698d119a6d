"""The partner spec: one YAML file per partner, a public contract (field names are fixed)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    field_validator,
)

from foundation.errors import InputError, Problem
from foundation.naming import (
    COUNTRY_CODE_PATTERN,
    PARTNER_ID_PATTERN,
    REGION_CODE_PATTERN,
    RESERVED_PARTNER_IDS,
    TierName,
)
from foundation.yamlio import load_yaml_bytes, read_bounded, validation_problems
from partners.telephony import Telephony
from regions.catalog import Catalog, ResidencyVerdict

_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f\u202a-\u202e\u2066-\u2069]")
_CONTROL_OR_NEWLINE = re.compile(r"[\x00-\x1f\x7f\u202a-\u202e\u2066-\u2069]")
_HOST_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")
_EMAIL = re.compile(r"^[A-Za-z0-9._%+-]{1,64}@[A-Za-z0-9.-]{1,253}\.[A-Za-z]{2,63}$")
_HEX_COLOR = r"^#(?:[0-9A-Fa-f]{3}|[0-9A-Fa-f]{6})$"
_FONT = r"^[A-Za-z0-9 ,'-]{1,64}$"
# Anything in custom CSS that loads a remote resource, runs an expression or closes the style element.
_CSS_FORBIDDEN = (
    (re.compile(r"@import", re.I), "@import is not allowed (no remote loads)"),
    (re.compile(r"url\s*\(", re.I), "url() is not allowed (no remote loads)"),
    (re.compile(r"image-set\s*\(", re.I), "image-set() is not allowed (no remote loads)"),
    (re.compile(r"expression\s*\(", re.I), "expression() is not allowed (no expressions)"),
    (re.compile(r"javascript\s*:", re.I), "javascript: is not allowed"),
    (re.compile(r"behavior\s*:|-moz-binding", re.I), "behaviors and bindings are not allowed"),
    (re.compile(r"[<>]"), "markup characters '<' and '>' are not allowed (use descendant selectors)"),
    (re.compile(r"\\"), "backslash escapes are not allowed (they can hide any of the above)"),
)
MAX_CUSTOM_CSS = 16 * 1024


def _plain_text(value: str) -> str:
    if _CONTROL_OR_NEWLINE.search(value):
        raise ValueError("control or bidirectional-override characters are not allowed")
    if value != value.strip():
        raise ValueError("leading or trailing whitespace is not allowed")
    return value


PlainText = Annotated[str, AfterValidator(_plain_text)]


def _not_reserved(value: str) -> str:
    if value in RESERVED_PARTNER_IDS:
        raise ValueError(f"{value!r} is reserved (a data file or folder beside the specs); choose another id")
    return value


def _hostname(value: str) -> str:
    host = value.lower().removesuffix(".")  # a fully qualified name may end in the root's dot
    if len(host) > 253 or "." not in host:
        raise ValueError("must be a fully qualified hostname such as voice.example.com")
    labels = host.split(".")
    if not all(_HOST_LABEL.fullmatch(label) for label in labels):
        raise ValueError(
            "must be a hostname only: letters, digits and '-' in dot-separated labels "
            "(no scheme, port, path or wildcard)"
        )
    if not labels[-1].isalpha():
        raise ValueError("must end in an alphabetic top-level domain")
    return host


def _https_url(value: str) -> str:
    if _CONTROL.search(value) or any(ch.isspace() for ch in value):
        raise ValueError("must not contain whitespace or control characters")
    match = re.fullmatch(r"https://([^/?#@]+)(/[^\s]*)?", value)
    if not match:
        raise ValueError("must be an https:// URL with no credentials")
    _hostname(match.group(1))
    return value


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", str_max_length=2048)


class Contact(_Frozen):
    name: Annotated[PlainText, StringConstraints(min_length=1, max_length=120)]
    """Operations contact's full name."""
    email: Annotated[str, StringConstraints(pattern=_EMAIL.pattern, max_length=254)]
    """Operations contact's email address."""


class Branding(_Frozen):
    primary_color: Annotated[str, StringConstraints(pattern=_HEX_COLOR)]
    """Main brand colour (#RGB or #RRGGBB)."""
    secondary_color: Annotated[str, StringConstraints(pattern=_HEX_COLOR)] = "#6C757D"
    """Secondary colour."""
    accent_color: Annotated[str, StringConstraints(pattern=_HEX_COLOR)] = "#28A745"
    """Accent colour."""
    background_color: Annotated[str, StringConstraints(pattern=_HEX_COLOR)] = "#FFFFFF"
    """Page background colour."""
    text_color: Annotated[str, StringConstraints(pattern=_HEX_COLOR)] = "#212529"
    """Body text colour."""
    font_family: Annotated[str, StringConstraints(pattern=_FONT)] = "Inter"
    """Body font family."""
    heading_font: Annotated[str, StringConstraints(pattern=_FONT)] | None = None
    """Heading font family; the body font when unset."""
    base_size: Annotated[str, StringConstraints(pattern=r"^(1[0-9]|2[0-4])px$")] = "16px"
    """Base font size, 10px to 24px."""
    logo_url: Annotated[str, AfterValidator(_https_url)]
    """Logo (https only)."""
    favicon_url: Annotated[str, AfterValidator(_https_url)] | None = None
    """Favicon (https only)."""
    email_logo_url: Annotated[str, AfterValidator(_https_url)] | None = None
    """Logo in email headers (https only)."""
    voice_greeting: Annotated[PlainText, StringConstraints(min_length=1, max_length=500)]
    """What the voice agent says when it answers."""
    voice_personality: Literal["professional", "friendly", "warm", "energetic", "calm"] = "professional"
    """Tone of the voice agent."""
    custom_css: Annotated[str, StringConstraints(max_length=MAX_CUSTOM_CSS)] = ""
    """Extra CSS for the partner's pages: no remote loads, imports, expressions or markup."""
    custom_js: Any = Field(default=None, exclude=True)
    """Never accepted; declared only so the error can say why."""

    @field_validator("custom_css")
    @classmethod
    def _safe_css(cls, value: str) -> str:
        if _CONTROL.search(value):
            raise ValueError("control characters are not allowed")
        for pattern, reason in _CSS_FORBIDDEN:
            if pattern.search(value):
                raise ValueError(reason)
        return value

    @field_validator("custom_js", mode="before")
    @classmethod
    def _no_js(cls, value: Any) -> Any:
        raise ValueError(
            "custom JavaScript is not accepted: a partner's script would run on other people's pages; "
            "use custom_css for styling"
        )


class Billing(_Frozen):
    currency: Annotated[str, StringConstraints(pattern=r"^[A-Z]{3}$")]
    """ISO 4217 currency the partner is billed and paid in."""
    payout_method: Literal["stripe_connect", "bank_transfer"]
    """How the revenue share is paid out."""


class PartnerSpec(_Frozen):
    id: Annotated[str, StringConstraints(pattern=PARTNER_ID_PATTERN), AfterValidator(_not_reserved)]
    """DNS label naming the tenant everywhere: 3-40 of a-z, 0-9, '-', starting with a letter."""
    company_name: Annotated[PlainText, StringConstraints(min_length=1, max_length=200)]
    """Legal name of the partner."""
    tier: TierName
    """Commercial tier (partners/tiers.yaml)."""
    domain: Annotated[str, AfterValidator(_hostname)]
    """The partner's custom domain: a hostname, nothing else."""
    home_region: Annotated[str, StringConstraints(pattern=REGION_CODE_PATTERN)]
    """Region code that hosts the tenant and its data."""
    countries: tuple[Annotated[str, StringConstraints(pattern=COUNTRY_CODE_PATTERN)], ...] = Field(
        min_length=1, max_length=64
    )
    """ISO 3166-1 alpha-2 codes the partner sells in."""
    contact: Contact
    """Operations contact."""
    branding: Branding
    """White-label branding."""
    billing: Billing
    """Billing and payout settings."""
    telephony: Telephony | None = None
    """Twilio numbers the partner holds (in its own subaccount), per country and type."""
    integrations: tuple[Annotated[str, StringConstraints(pattern=PARTNER_ID_PATTERN)], ...] = Field(
        default=(), max_length=64
    )
    """Marketplace integrations the partner installs (published, offered in its home region)."""

    @field_validator("integrations")
    @classmethod
    def _installed_once(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if len(set(value)) != len(value):
            raise ValueError("each integration may be listed once")
        return value

    @field_validator("countries", mode="before")
    @classmethod
    def _norway(cls, value: Any) -> Any:
        if isinstance(value, list | tuple) and any(isinstance(cc, bool) for cc in value):
            raise ValueError("a country code was read as a boolean: quote it (YAML reads NO, YES, ON, OFF as booleans)")
        return value

    @field_validator("countries")
    @classmethod
    def _unique(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if len(set(value)) != len(value):
            raise ValueError("each country may be listed once")
        return value


def parse_spec(doc: Any, source: str) -> PartnerSpec:
    if not isinstance(doc, dict):
        raise InputError.single(source, "", "a partner spec must be a mapping")
    try:
        return PartnerSpec.model_validate(doc)
    except ValidationError as exc:
        raise InputError(validation_problems(source, exc)) from None


def parse_spec_bytes(raw: bytes, source: str) -> PartnerSpec:
    return parse_spec(load_yaml_bytes(raw, source), source)


def load_spec_text(text: str, source: str) -> PartnerSpec:
    return parse_spec_bytes(text.encode("utf-8"), source)


def load_spec(path: Path, display: str | None = None) -> PartnerSpec:
    """Read and validate one spec file (shape only; see `check_against_catalog`)."""
    source = display or str(path)
    return parse_spec_bytes(read_bounded(path, source), source)


def check_against_catalog(spec: PartnerSpec, catalog: Catalog, source: str) -> list[str]:
    """Raise InputError for a home region or country the catalog forbids; return residency warnings."""
    problems: list[Problem] = []
    warnings: list[str] = []
    if spec.home_region not in catalog.regions:
        problems.append(
            Problem(source, "home_region", f"unknown region {spec.home_region!r}; known: {', '.join(catalog.regions)}")
        )
        raise InputError(problems)
    for index, cc in enumerate(spec.countries):
        field = f"countries.{index}"
        if cc not in catalog.countries:
            problems.append(Problem(source, field, f"unknown country {cc!r}"))
            continue
        verdict = catalog.residency_verdict(cc, spec.home_region)
        if verdict is ResidencyVerdict.FORBIDDEN:
            serving = ", ".join(catalog.regions_serving(cc))
            problems.append(
                Problem(
                    source,
                    field,
                    f"{cc} requires data residency and cannot be served from {spec.home_region}; "
                    f"use a home region among: {serving}",
                )
            )
        elif verdict is ResidencyVerdict.WARN:
            warnings.append(
                f"{source}: {field}: {cc} prefers data residency in {', '.join(catalog.regions_serving(cc))}; "
                f"serving it from {spec.home_region} needs a documented transfer basis"
            )
    if problems:
        raise InputError(problems)
    return warnings
