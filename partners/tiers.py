"""The tier table (`partners/tiers.yaml`): one place for everything that varies by tier."""

from __future__ import annotations

from decimal import Decimal
from functools import cache
from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, StringConstraints, ValidationError

from foundation.errors import InputError
from foundation.naming import TIER_NAMES, TierName
from foundation.yamlio import load_yaml_file, validation_problems

TIERS_FILE = Path(__file__).resolve().parent / "tiers.yaml"


Quantity = Annotated[str, StringConstraints(pattern=r"^[0-9]+(\.[0-9]+)?(m|Ki|Mi|Gi|Ti)?$")]


def _no_float(value: Any) -> Any:
    if isinstance(value, float):
        raise ValueError("money must be written as a quoted decimal string, not a float")
    return value


Money = Annotated[Decimal, BeforeValidator(_no_float), Field(ge=0, decimal_places=4)]


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class RateLimit(_Frozen):
    second: int = Field(gt=0)
    """Requests per second per consumer."""
    minute: int = Field(gt=0)
    """Requests per minute per consumer."""
    hour: int = Field(gt=0)
    """Requests per hour per consumer."""


class Quota(_Frozen):
    requests_cpu: Quantity
    """Sum of CPU requests in the tenant namespace."""
    requests_memory: Quantity
    """Sum of memory requests."""
    limits_cpu: Quantity
    """Sum of CPU limits."""
    limits_memory: Quantity
    """Sum of memory limits."""
    pods: int = Field(gt=0)
    """Pods at most."""
    persistent_volume_claims: int = Field(ge=0)
    """PVCs at most."""
    requests_storage: Quantity
    """Sum of storage requested by PVCs."""

    def hard(self) -> dict[str, str]:
        """The ResourceQuota `spec.hard` map."""
        return {
            "requests.cpu": self.requests_cpu,
            "requests.memory": self.requests_memory,
            "limits.cpu": self.limits_cpu,
            "limits.memory": self.limits_memory,
            "pods": str(self.pods),
            "persistentvolumeclaims": str(self.persistent_volume_claims),
            "requests.storage": self.requests_storage,
        }


class ContainerLimits(_Frozen):
    default_cpu: Quantity
    """Limit given to a container that sets none."""
    default_memory: Quantity
    """Memory limit given to a container that sets none."""
    default_request_cpu: Quantity
    """CPU request given to a container that sets none."""
    default_request_memory: Quantity
    """Memory request given to a container that sets none."""
    max_cpu: Quantity
    """Largest CPU limit one container may set."""
    max_memory: Quantity
    """Largest memory limit one container may set."""


class Tier(_Frozen):
    name: TierName
    """The tier's name (its key in the table)."""
    base_fee: Money
    """Monthly base fee in the partner's billing currency."""
    per_minute_rate: Money
    """Price of one call minute."""
    monthly_minutes_quota: int = Field(gt=0)
    """Call minutes a month the tier includes: partners hear (usage.threshold) at 80 % and 100 % of it."""
    revenue_share: Annotated[Decimal, BeforeValidator(_no_float), Field(ge=0, le=1)]
    """Fraction of gross revenue paid to the partner."""
    features: tuple[str, ...] = Field(min_length=1)
    """Feature flags the tier includes."""
    dedicated_storage: bool
    """The tenant gets its own bucket and KMS key instead of a prefix of the region's."""
    rate_limit: RateLimit
    """Gateway rate limit per consumer."""
    quota: Quota
    """Kubernetes ResourceQuota of the tenant namespace."""
    container_limits: ContainerLimits
    """Kubernetes LimitRange of the tenant namespace."""

    def has(self, feature: str) -> bool:
        return feature in self.features


class TierTable(_Frozen):
    tiers: dict[TierName, Tier]
    """Every tier by name."""

    def __getitem__(self, name: str) -> Tier:
        return self.tiers[name]  # type: ignore[index]

    def holding(self, feature: str) -> list[str]:
        """Tiers that include `feature`, in table order."""
        return [name for name, tier in self.tiers.items() if tier.has(feature)]


def tiers_file(root: Path) -> Path:
    """The tier table of the repository at `root`."""
    return root / "partners" / TIERS_FILE.name


def load_tiers(path: Path = TIERS_FILE) -> TierTable:
    return _load_tiers_cached(path.resolve())


@cache
def _load_tiers_cached(path: Path) -> TierTable:
    doc = load_yaml_file(path)
    if not isinstance(doc, dict) or not isinstance(doc.get("tiers"), dict):
        raise InputError.single(path, "tiers", "must be a mapping of tier name to tier")
    raw = {name: {**body, "name": name} if isinstance(body, dict) else body for name, body in doc["tiers"].items()}
    try:
        table = TierTable.model_validate({**doc, "tiers": raw})
    except ValidationError as exc:
        raise InputError(validation_problems(str(path), exc)) from None
    missing = [name for name in TIER_NAMES if name not in table.tiers]
    if missing:
        raise InputError.single(path, "tiers", f"missing tiers {missing}")
    return table
