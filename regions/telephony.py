"""Model and loader for `regions/telephony.yaml`: the Twilio number types each country offers and what buying needs."""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from foundation.errors import InputError, Problem
from foundation.yamlio import load_yaml_file, validation_problems
from regions.catalog import CATALOG_DIR, Catalog, CountryCode

NumberType = Literal["local", "mobile", "toll_free"]
NUMBER_TYPES: tuple[str, ...] = ("local", "mobile", "toll_free")

TWILIO_RESOURCE = {"local": "Local", "mobile": "Mobile", "toll_free": "TollFree"}
"""The AvailablePhoneNumbers sub-resource of each type (/AvailablePhoneNumbers/{CC}/{Resource}.json)."""


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


Proof = Literal["identity", "address", "business_registration"]
"""What a supporting document proves about the end user (the guideline pages' wording: proof of identity, proof of
address, business registration)."""


class BundleContents(_Frozen):
    end_user: tuple[str, ...] = ()
    """End-User attributes the regulation asks for (Twilio End-User Type machine names: first_name, business_name)."""
    proofs: tuple[Proof, ...] = ()
    """What the bundle's supporting documents must prove."""


class PurchaseRequirements(_Frozen):
    address: Literal["none", "any", "country", "locality", "unstated"]
    """Where the holder's address must be: nowhere, anywhere, in the country, in the prefix's area; or unstated."""
    bundle: Literal["required", "not_required", "unstated"]
    """Whether identity and address documents (a Twilio regulatory bundle) must back the purchase."""
    end_user_types: tuple[Literal["individual", "business"], ...] = Field(default=(), max_length=2)
    """Who may hold the number; empty when the source does not say."""
    bundle_contents: dict[Literal["individual", "business"], BundleContents] = Field(default_factory=dict)
    """What a bundle filed from the spec must hold, per end-user type (only what the source states)."""


class CountryNumbers(_Frozen):
    local: PurchaseRequirements | None = None
    """Local (geographic) numbers, when offered."""
    mobile: PurchaseRequirements | None = None
    """Mobile numbers, when offered."""
    toll_free: PurchaseRequirements | None = None
    """Toll-free numbers, when offered."""

    def offered(self) -> tuple[str, ...]:
        return tuple(t for t in NUMBER_TYPES if getattr(self, t) is not None)

    def requirements(self, number_type: str) -> PurchaseRequirements | None:
        return getattr(self, number_type, None) if number_type in NUMBER_TYPES else None


class TelephonyCatalog(_Frozen):
    countries: dict[CountryCode, CountryNumbers]
    """Countries that offer Twilio numbers, by ISO code."""

    def offered(self, country: str) -> tuple[str, ...]:
        entry = self.countries.get(country)
        return entry.offered() if entry else ()

    def requirements(self, country: str, number_type: str) -> PurchaseRequirements | None:
        entry = self.countries.get(country)
        return entry.requirements(number_type) if entry else None


def load_telephony(catalog: Catalog, directory: Path = CATALOG_DIR) -> TelephonyCatalog:
    """Read telephony.yaml from `directory`; every country must be one of the catalog's."""
    telephony = _load_cached(directory.resolve())
    source = str(directory / "telephony.yaml")
    unknown = [
        Problem(source, f"countries.{cc}", "not a country of countries.yaml")
        for cc in telephony.countries
        if cc not in catalog.countries
    ]
    if unknown:
        raise InputError(unknown)
    return telephony


@cache
def _load_cached(directory: Path) -> TelephonyCatalog:
    path = directory / "telephony.yaml"
    source = str(path)
    doc = load_yaml_file(path, source)
    if not isinstance(doc, dict):
        raise InputError.single(source, "", "must be a mapping with a `countries` key")
    try:
        return TelephonyCatalog.model_validate(doc)
    except ValidationError as exc:
        raise InputError(validation_problems(source, exc)) from None
