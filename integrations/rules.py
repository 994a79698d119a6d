"""Model and loader of `integrations/rules.yaml`: caps, category scopes, restricted data classes, revenue shares."""

from __future__ import annotations

import re
from decimal import Decimal
from functools import cache
from pathlib import Path
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError

from foundation.errors import InputError
from foundation.yamlio import load_yaml_file, validation_problems
from integrations.spec import CATEGORIES

RULES_FILE = Path(__file__).resolve().parent / "rules.yaml"
_QUANTITY = re.compile(r"^([0-9]+(?:\.[0-9]+)?)(m|Ki|Mi|Gi|Ti|k|M|G|T)?$")
_FACTORS = {
    None: Decimal(1),
    "m": Decimal("0.001"),
    "k": Decimal(10**3),
    "M": Decimal(10**6),
    "G": Decimal(10**9),
    "T": Decimal(10**12),
    "Ki": Decimal(2**10),
    "Mi": Decimal(2**20),
    "Gi": Decimal(2**30),
    "Ti": Decimal(2**40),
}


def quantity(text: str) -> Decimal:
    """A Kubernetes quantity (the suffixes the specs use) as a number: cores for CPU, bytes for memory/storage."""
    match = _QUANTITY.fullmatch(text)
    if not match:
        raise ValueError(f"{text!r} is not a Kubernetes quantity")
    return Decimal(match.group(1)) * _FACTORS[match.group(2)]


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


Quantity = Annotated[str, StringConstraints(pattern=_QUANTITY.pattern)]


class Caps(_Frozen):
    cpu: Quantity
    """Most CPU an integration may use per region."""
    memory: Quantity
    """Most memory."""
    storage: Quantity
    """Most persistent storage."""


class Share(_Frozen):
    developer: Decimal = Field(gt=0, lt=1)
    """The developer's share of the installation price."""


class EgressProxy(_Frozen):
    image: Annotated[str, StringConstraints(pattern=r"^[a-z0-9./_-]+(:[0-9]+)?/[a-z0-9./_-]+@sha256:[0-9a-f]{64}$")]
    """Proxy image, pinned by digest."""
    port: int = Field(ge=1024, le=65535)
    """Port the proxy listens on."""
    resources: dict[str, Quantity]
    """Requests and limits of the proxy container (cpu, memory)."""


class Conformance(_Frozen):
    p95_seconds: float = Field(gt=0)
    """Slowest 95th percentile latency accepted."""
    min_rps: float = Field(gt=0)
    """Fewest requests per second accepted."""
    max_error_rate: float = Field(ge=0, le=1)
    """Largest share of failed requests accepted."""
    duration_seconds: int = Field(ge=1, le=600)
    """How long the load runs."""


class ReviewRules(_Frozen):
    caps: Caps
    """Per-region caps of one integration."""
    category_scopes: dict[str, tuple[str, ...]]
    """Scopes each category may ask for."""
    restricted_data_classes: dict[str, tuple[str, ...]]
    """Data classes a regime forbids to third parties (`default` for unlisted regimes)."""
    revenue_share: dict[str, Share] = Field(min_length=1)
    """Developer share rows."""
    egress_proxy: EgressProxy
    """The egress proxy beside each sandbox."""
    conformance: Conformance
    """The bars of the conformance job."""

    def restricted(self, regime: str) -> tuple[str, ...]:
        return self.restricted_data_classes.get(regime, self.restricted_data_classes.get("default", ()))


def rules_file(root: Path) -> Path:
    return root / "integrations" / RULES_FILE.name


def load_rules(path: Path = RULES_FILE) -> ReviewRules:
    return _load_cached(path.resolve())


@cache
def _load_cached(path: Path) -> ReviewRules:
    display = "integrations/rules.yaml"
    try:
        rules = ReviewRules.model_validate(load_yaml_file(path, display))
    except ValidationError as exc:
        raise InputError(validation_problems(display, exc)) from None
    missing = [c for c in CATEGORIES if c not in rules.category_scopes]
    if missing:
        raise InputError.single(display, "category_scopes", f"no row for categories: {', '.join(missing)}")
    return rules
