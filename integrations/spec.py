"""The integration spec: one YAML file per marketplace integration (`integrations/<id>.yaml`), a public contract.

The model checks shape only. What an integration may ask for (image pinned by digest, limits within the caps,
scopes its category needs, data classes its regions may process, https-only exact egress hosts, a health path)
is the automated review's to judge (`integrations.review`), so that a refusal names each reason in words.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints, ValidationError, field_validator

from foundation.errors import InputError
from foundation.naming import COUNTRY_CODE_PATTERN, PARTNER_ID_PATTERN, REGION_CODE_PATTERN, RESERVED_PARTNER_IDS
from foundation.yamlio import load_yaml_bytes, read_bounded, validation_problems
from partners.spec import PlainText, _https_url

Category = Literal[
    "crm",
    "calendar",
    "email",
    "analytics",
    "productivity",
    "healthcare",
    "legal",
    "real-estate",
    "automotive",
    "custom",
]
CATEGORIES: tuple[str, ...] = Category.__args__  # type: ignore[attr-defined]
DataClass = Literal["contact", "call-recording", "transcript", "health", "payment"]
Quantity = Annotated[str, StringConstraints(pattern=r"^[0-9]+(\.[0-9]+)?(m|Ki|Mi|Gi|Ti|k|M|G|T)?$", max_length=16)]
LooseText = Annotated[str, StringConstraints(min_length=1, max_length=300)]
"""A value the review judges (image, scope, egress host, health path): shape checks would hide the reason."""


def _not_reserved(value: str) -> str:
    if value in RESERVED_PARTNER_IDS:
        raise ValueError(f"{value!r} is reserved (a data file or folder beside the specs); choose another id")
    return value


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", str_max_length=2048)


class Developer(_Frozen):
    id: Annotated[str, StringConstraints(pattern=PARTNER_ID_PATTERN)]
    """The developer's account id (a DNS label; it names its payout account and statements)."""
    legal_name: Annotated[PlainText, StringConstraints(min_length=1, max_length=200)]
    """Legal name of the developer."""
    website: Annotated[str, AfterValidator(_https_url)]
    """The developer's website (https only)."""
    email: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9._%+-]{1,64}@[A-Za-z0-9.-]{1,253}\.[A-Za-z]{2,63}$")]
    """Contact address for reviews, incidents and payouts."""
    country: Annotated[str, StringConstraints(pattern=COUNTRY_CODE_PATTERN)]
    """ISO 3166-1 alpha-2 country of the developer's legal seat."""


class ResourceSet(_Frozen):
    cpu: Quantity | None = None
    """CPU (Kubernetes quantity, e.g. 100m)."""
    memory: Quantity | None = None
    """Memory (Kubernetes quantity, e.g. 128Mi)."""


class Resources(_Frozen):
    requests: ResourceSet = ResourceSet()
    """What the container is scheduled with."""
    limits: ResourceSet | None = None
    """The most it may use (required by the review; at most the caps)."""
    storage: Quantity | None = None
    """Persistent storage the sandbox may claim (at most the cap)."""


class Pricing(_Frozen):
    monthly: dict[Annotated[str, StringConstraints(pattern=r"^[A-Z]{3}$")], int] = Field(min_length=1)
    """Price per installation per month, in minor units of each currency offered."""

    @field_validator("monthly")
    @classmethod
    def _positive(cls, value: dict[str, int]) -> dict[str, int]:
        for currency, amount in value.items():
            if isinstance(amount, bool) or amount <= 0:
                raise ValueError(f"{currency}: a price is a positive whole number of minor units (omit pricing: free)")
        return value


class IntegrationSpec(_Frozen):
    id: Annotated[str, StringConstraints(pattern=PARTNER_ID_PATTERN), AfterValidator(_not_reserved)]
    """DNS label naming the integration everywhere (same rules as partner ids; never a partner's id)."""
    name: Annotated[PlainText, StringConstraints(min_length=1, max_length=80)]
    """Display name."""
    category: Category
    """Marketplace category (decides which scopes it may ask for)."""
    developer: Developer
    """Who builds it and is paid for it."""
    description: Annotated[PlainText, StringConstraints(min_length=1, max_length=1000)]
    """What it does, for the listing (shown escaped)."""
    image: LooseText
    """Container image, pinned by digest (registry/name@sha256:<64 hex>)."""
    port: int = Field(ge=1024, le=65535)
    """Port the container listens on (unprivileged)."""
    health_path: LooseText | None = None
    """HTTP path answering 200 when healthy (probes and the conformance job use it)."""
    resources: Resources
    """Requests, limits and storage of the container."""
    scopes: tuple[LooseText, ...] = ()
    """Platform API scopes it asks for on each installing partner's tenant (gateway/apis.yaml `scopes`)."""
    events: tuple[Annotated[str, StringConstraints(pattern=r"^[a-z]+(\.[a-z_]+)+$")], ...] = ()
    """Webhook event types it subscribes to."""
    data_classes: tuple[DataClass, ...] = ()
    """Kinds of personal data it processes."""
    egress: tuple[LooseText, ...] = ()
    """Exact hostnames it may reach, over https only."""
    regions: tuple[Annotated[str, StringConstraints(pattern=REGION_CODE_PATTERN)], ...] = Field(min_length=1)
    """Regions it is offered (and runs) in."""
    pricing: Pricing | None = None
    """Monthly price per installation; omitted for a free integration."""
    revenue_share: Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9-]{0,30}$")] = "standard"
    """Row of the developer share table (integrations/rules.yaml `revenue_share`)."""

    @field_validator("scopes", "events", "data_classes", "egress", "regions")
    @classmethod
    def _unique(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if len(set(value)) != len(value):
            raise ValueError("each entry may be listed once")
        return value

    def digest(self) -> str:
        """sha256 of the spec's meaning (canonical JSON of the model): comments and layout do not change it,
        any field does. Reviews and approvals are bound to it."""
        canonical = json.dumps(self.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
        return "sha256:" + hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def parse_integration(doc: Any, source: str) -> IntegrationSpec:
    if not isinstance(doc, dict):
        raise InputError.single(source, "", "an integration spec must be a mapping")
    try:
        return IntegrationSpec.model_validate(doc)
    except ValidationError as exc:
        raise InputError(validation_problems(source, exc)) from None


def parse_integration_bytes(raw: bytes, source: str) -> IntegrationSpec:
    return parse_integration(load_yaml_bytes(raw, source), source)


def load_integration(path: Path, display: str | None = None) -> IntegrationSpec:
    source = display or str(path)
    return parse_integration_bytes(read_bounded(path, source), source)
