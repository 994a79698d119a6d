"""The `telephony` section of a partner spec: which Twilio numbers the partner gets, and its number slots."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    Strict,
    StringConstraints,
    field_validator,
    model_validator,
)

from foundation.errors import Problem
from foundation.naming import TWILIO_NAME_PREFIX, twilio_subaccount_name
from regions.telephony import Proof

if TYPE_CHECKING:
    from partners.spec import PartnerSpec
    from regions.telephony import PurchaseRequirements, TelephonyCatalog

MAX_PER_REQUEST = 20
"""Numbers one entry may ask for."""
MAX_NUMBERS = 100
"""Numbers one partner may hold through its spec: a typo must not buy a thousand numbers."""
FRIENDLY_NAME_PREFIX = TWILIO_NAME_PREFIX

# Letters of any script, spaces and a few separators: a town name, nothing that reads as markup or a path.
_LOCALITY = re.compile(r"^[^\W\d_](?:[^\W\d_]|[ .'-]){0,63}$")


def _locality(value: str) -> str:
    if not _LOCALITY.fullmatch(value) or value != value.strip() or "  " in value:
        raise ValueError("must be a place name: letters, single spaces, '.', \"'\" and '-' (at most 64 characters)")
    return value


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", str_max_length=256)


_TEXT = Annotated[str, StringConstraints(min_length=1, max_length=100, pattern=r"^[^\x00-\x1f\x7f]+$")]


class EndUserAddress(_Frozen):
    """The number holder's address, created in the partner's Twilio subaccount by the partner stack's first `up`
    (Twilio Address resource, API 2010-04-01 `Accounts/{sid}/Addresses`); its country is the number's."""

    customer_name: _TEXT
    """Name of the person or business the address belongs to (the number's holder)."""
    street: _TEXT
    """Number and street."""
    city: _TEXT
    """City."""
    region: _TEXT
    """State or region."""
    postal_code: Annotated[str, StringConstraints(min_length=1, max_length=16, pattern=r"^[A-Za-z0-9 -]+$")]
    """Postal code."""


# Plain text for Twilio's regulatory records: no control characters and nothing that reads as markup or a template.
_PLAIN = Annotated[
    str, Strict(), StringConstraints(min_length=1, max_length=100, pattern=r"^[^\x00-\x1f\x7f<>{}\[\]`$\\]+$")
]
_ATTRIBUTE = Annotated[str, Strict(), StringConstraints(pattern=r"^[a-z][a-z0-9_]{0,63}$")]


class BundleDocument(_Frozen):
    """A supporting document of the bundle: created from its type and attributes, or one already uploaded (with its
    file) in the partner's subaccount, named by SID."""

    proves: Proof
    """What it proves: identity, address (its `address_sids` attribute is set to the slot's address) or
    business_registration."""
    type: Annotated[str, Strict(), StringConstraints(pattern=r"^[a-z][a-z0-9_]{1,63}$")] | None = None
    """Twilio Supporting Document Type (machine name, e.g. from the Regulations API), when created from the spec."""
    attributes: dict[_ATTRIBUTE, _PLAIN] = Field(default_factory=dict, max_length=16)
    """The document type's fields (document_number, business_name, ...), when created from the spec."""
    sid: Annotated[str, Strict(), StringConstraints(pattern=r"^RD[0-9a-f]{32}$")] | None = None
    """A Supporting Document already uploaded in the partner's subaccount (documents that need a scanned file)."""

    @model_validator(mode="after")
    def _one_source(self) -> BundleDocument:
        if (self.sid is None) == (self.type is None):
            raise ValueError("give type (and attributes: created from the spec) or sid (already uploaded), not both")
        if self.sid is not None and self.attributes:
            raise ValueError("attributes belong to a document created from the spec (type), not to one named by sid")
        return self


class BundleRequest(_Frozen):
    """The number holder's end-user data, filed as a regulatory bundle in the partner's new subaccount by the first
    `up` (Twilio Regulatory Compliance v2: End-User, Supporting Documents, Bundle, Item Assignments, submission)."""

    end_user_type: Literal["individual", "business"]
    """Who holds the numbers."""
    email: Annotated[
        str,
        Strict(),
        StringConstraints(max_length=254, pattern=r"^[A-Za-z0-9._%+-]{1,64}@[A-Za-z0-9.-]+\.[A-Za-z]{2,}$"),
    ]
    """Where Twilio sends the bundle's review outcome."""
    end_user: dict[_ATTRIBUTE, _PLAIN] = Field(min_length=1, max_length=16)
    """The End-User's attributes (Twilio End-User Type fields: first_name, last_name, business_name, ...)."""
    documents: tuple[BundleDocument, ...] = Field(default=(), max_length=8)
    """Supporting documents (what the country's regulation asks them to prove: regions/telephony.yaml)."""


class NumberRequest(_Frozen):
    country: Annotated[str, StringConstraints(pattern=r"^[A-Z]{2}$")]
    """ISO 3166-1 alpha-2 code of the number's country (one the partner serves)."""
    type: Literal["local", "mobile", "toll_free"]
    """Number type; the country must offer it (regions/telephony.yaml)."""
    count: int = Field(default=1, ge=1, le=MAX_PER_REQUEST, strict=True)
    """How many numbers of this country and type (a YAML integer: not `true`, `"2"` or `2.0`)."""
    area_code: Annotated[str, StringConstraints(pattern=r"^[0-9]{1,6}$")] | None = None
    """Area code (digits) the numbers should start with after the country code."""
    locality: Annotated[str, AfterValidator(_locality)] | None = None
    """Town or city the numbers should belong to."""
    address_sid: Annotated[str, StringConstraints(pattern=r"^AD[0-9a-f]{32}$")] | None = None
    """Twilio Address (in the partner's subaccount) that satisfies the country's address requirement."""
    bundle_sid: Annotated[str, StringConstraints(pattern=r"^BU[0-9a-f]{32}$")] | None = None
    """Approved Twilio regulatory bundle for the country and type, where one is required."""
    address: EndUserAddress | None = None
    """The holder's address, to be created in the partner's new subaccount (instead of an existing address_sid)."""
    bundle: BundleRequest | None = None
    """The holder's end-user data, filed and submitted as a regulatory bundle in the new subaccount (instead of an
    existing bundle_sid); the numbers are bought once Twilio accepts it."""

    @model_validator(mode="after")
    def _one_address(self) -> NumberRequest:
        if self.address is not None and self.address_sid is not None:
            raise ValueError("give address (created in the subaccount) or address_sid (an existing one), not both")
        if self.bundle is not None and self.bundle_sid is not None:
            raise ValueError("give bundle (filed in the subaccount) or bundle_sid (an existing one), not both")
        return self

    @field_validator("country", mode="before")
    @classmethod
    def _norway(cls, value: Any) -> Any:
        if isinstance(value, bool):
            raise ValueError("a country code was read as a boolean: quote it (YAML reads NO, YES, ON, OFF as booleans)")
        return value


class Telephony(_Frozen):
    numbers: tuple[NumberRequest, ...] = Field(min_length=1, max_length=32)
    """Numbers to hold, per country and type."""

    @model_validator(mode="after")
    def _bounded(self) -> Telephony:
        total = sum(n.count for n in self.numbers)
        if total > MAX_NUMBERS:
            raise ValueError(f"asks for {total} numbers; at most {MAX_NUMBERS} per partner")
        return self


@dataclass(frozen=True)
class NumberSlot:
    """One number the partner holds: its place in the spec decides its name, so a rerun finds the same number."""

    partner_id: str
    """The partner."""
    country: str
    """ISO country code."""
    type: str
    """local, mobile or toll_free."""
    index: int
    """Position among the partner's numbers of this country and type."""
    request: NumberRequest
    """The spec entry the slot comes from (filters, address, bundle)."""

    @property
    def key(self) -> str:
        return f"{self.country.lower()}-{self.type.replace('_', '-')}-{self.index}"

    @property
    def friendly_name(self) -> str:
        """At most 61 characters (Twilio allows 64): 'pctl:' 5 + id 40 + ':CC:toll_free:NN' 16."""
        return f"{FRIENDLY_NAME_PREFIX}:{self.partner_id}:{self.country}:{self.type}:{self.index}"


subaccount_friendly_name = twilio_subaccount_name
"""The partner's subaccount (the name lives in foundation.naming: the meter needs it too)."""


def number_slots(spec: PartnerSpec) -> list[NumberSlot]:
    if spec.telephony is None:
        return []
    counters: dict[tuple[str, str], int] = {}
    slots = []
    for request in spec.telephony.numbers:
        for _ in range(request.count):
            index = counters.get((request.country, request.type), 0)
            counters[(request.country, request.type)] = index + 1
            slots.append(NumberSlot(spec.id, request.country, request.type, index, request))
    return slots


def check_telephony(
    spec: PartnerSpec, telephony: TelephonyCatalog, launched: Sequence[str], source: str
) -> tuple[list[Problem], list[str]]:
    """Problems (the partner must serve the country, its home region must have launched it, the country must offer the
    type) and warnings (a requirement the spec does not show how it meets)."""
    problems: list[Problem] = []
    warnings: list[str] = []
    if spec.telephony is None:
        return problems, warnings
    for index, request in enumerate(spec.telephony.numbers):
        field = f"telephony.numbers.{index}"
        cc = request.country
        if cc not in spec.countries:
            problems.append(
                Problem(
                    source,
                    f"{field}.country",
                    f"{cc} is not a country the partner serves ({', '.join(spec.countries)})",
                )
            )
            continue
        if cc not in launched:
            problems.append(
                Problem(
                    source,
                    f"{field}.country",
                    f"{cc} is not launched in {spec.home_region} (launched: {', '.join(launched) or 'none'}); "
                    f"run `platformctl launch-country {cc} --region {spec.home_region}` first",
                )
            )
            continue
        offered = telephony.offered(cc)
        if not offered:
            problems.append(
                Problem(
                    source,
                    f"{field}.country",
                    f"no Twilio numbers are offered in {cc}: regions/telephony.yaml lists no number type there "
                    "(only facts from Twilio's guidelines are listed)",
                )
            )
            continue
        if request.type not in offered:
            problems.append(
                Problem(
                    source,
                    f"{field}.type",
                    f"{cc} does not offer {request.type} numbers; offered: {', '.join(offered)}",
                )
            )
            continue
        needs = telephony.requirements(cc, request.type)
        if needs is None:
            continue
        if needs.address in ("any", "country", "locality") and request.address_sid is None and request.address is None:
            warnings.append(
                f"{source}: {field}.address: {cc} {request.type} numbers need an address ({needs.address}); "
                "the purchase fails until the spec gives one (address, created in the subaccount, or address_sid)"
            )
        if needs.bundle == "required" and request.bundle_sid is None and request.bundle is None:
            warnings.append(
                f"{source}: {field}.bundle: {cc} {request.type} numbers need an approved regulatory bundle; "
                "the slots wait until the spec gives one (bundle, filed in the subaccount, or bundle_sid)"
            )
        if request.bundle is not None:
            problems.extend(_bundle_problems(request, needs, f"{field}.bundle", source))
        if (request.area_code or request.locality) and request.type == "toll_free":
            warnings.append(f"{source}: {field}: toll-free numbers are national; area_code and locality may find none")
    return problems, warnings


def _bundle_problems(request: NumberRequest, needs: PurchaseRequirements, field: str, source: str) -> list[Problem]:
    """The spec's bundle against what the country's regulation asks (regions/telephony.yaml `bundle_contents`)."""
    bundle = request.bundle
    assert bundle is not None
    problems = []
    if needs.end_user_types and bundle.end_user_type not in needs.end_user_types:
        problems.append(
            Problem(
                source,
                f"{field}.end_user_type",
                f"{request.country} {request.type} numbers may be held by {', '.join(needs.end_user_types)} only",
            )
        )
        return problems
    contents = needs.bundle_contents.get(bundle.end_user_type)
    if contents is None:
        return problems
    for attribute in contents.end_user:
        if attribute not in bundle.end_user:
            problems.append(
                Problem(source, f"{field}.end_user.{attribute}", f"required by the {request.country} regulation")
            )
    given = {document.proves for document in bundle.documents}
    for proof in contents.proofs:
        if proof not in given:
            problems.append(
                Problem(
                    source,
                    f"{field}.documents",
                    f"the {request.country} {request.type} regulation needs a document that proves {proof}",
                )
            )
    if "address" in contents.proofs and request.address is None and request.address_sid is None:
        problems.append(
            Problem(source, f"{field}", "the regulation needs proof of address: give the holder's address (address)")
        )
    return problems
