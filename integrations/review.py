"""The automated review of an integration spec, and the review record kept beside it.

`review(...)` judges what a machine can: each refusal is a Problem naming the field; what it cannot judge (a
human security review of the code behind the image) is recorded as pending. The record
(`integrations/<id>.review.yaml`) binds every verdict to the spec's digest: an approval is for one exact spec.
"""

from __future__ import annotations

import datetime
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, StringConstraints, ValidationError

from foundation.errors import InputError, Problem
from foundation.yamlio import dump_yaml, load_yaml_bytes, validation_problems
from gateway.model import ApiCatalog
from integrations.rules import ReviewRules, quantity
from integrations.spec import IntegrationSpec
from regions.catalog import Catalog

IMAGE_BY_DIGEST = re.compile(
    r"^[a-z0-9]([a-z0-9.-]*[a-z0-9])?(:[0-9]{1,5})?(/[a-z0-9]+([._-][a-z0-9]+)*)+@sha256:[0-9a-f]{64}$"
)
_HOST_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")
_HEALTH_PATH = re.compile(r"^/[A-Za-z0-9._~/-]{0,200}$")
HUMAN_REVIEW = "human security review of the image's code and data handling"
Digest = Annotated[str, StringConstraints(pattern=r"^sha256:[0-9a-f]{64}$")]
State = Literal["submitted", "published", "suspended", "retired"]


@dataclass
class ReviewResult:
    problems: list[Problem] = field(default_factory=list)
    """Refusals: any one stops the submission."""
    passed: list[str] = field(default_factory=list)
    """Checks the spec passed."""
    pending: list[str] = field(default_factory=lambda: [HUMAN_REVIEW])
    """What a person still has to judge."""


def region_countries(catalog: Catalog, region: str, launched: Iterable[str]) -> list[str]:
    """The countries whose profiles decide what a region may process: those it serves and those launched in it."""
    return list(dict.fromkeys([*catalog.region(region).serves, *launched]))


def review(
    spec: IntegrationSpec,
    source: str,
    rules: ReviewRules,
    apis: ApiCatalog,
    catalog: Catalog,
    launched: Callable[[str], list[str]],
    partner_ids: Iterable[str],
    others: Iterable[IntegrationSpec] = (),
) -> ReviewResult:
    """Judge `spec`; `launched(region)` gives a region's launched countries, `partner_ids` the fleet's ids, `others`
    the repository's other integration specs."""
    result = ReviewResult()

    def refuse(field_path: str, message: str) -> None:
        result.problems.append(Problem(source, field_path, message))

    if spec.id in set(partner_ids):
        refuse("id", f"{spec.id!r} is a partner's id; an integration id never equals a partner's")
    # Image: by digest, always (a tag can be moved to other code after the review).
    if not IMAGE_BY_DIGEST.fullmatch(spec.image):
        refuse("image", "must be pinned by digest (registry/name@sha256:<64 hex>), not a tag")
    else:
        result.passed.append("image pinned by digest")
    _check_resources(spec, rules, refuse, result)
    # Scopes: known, and no broader than the category needs.
    allowed = set(rules.category_scopes.get(spec.category, ()))
    for index, scope in enumerate(spec.scopes):
        if scope not in apis.scopes:
            refuse(f"scopes.{index}", f"unknown scope {scope!r}; known: {', '.join(apis.scopes)}")
        elif scope not in allowed:
            refuse(
                f"scopes.{index}",
                f"{scope!r} is broader than a {spec.category} integration needs "
                f"(its category allows: {', '.join(sorted(allowed))})",
            )
    # Regions and the data classes their countries' profiles let a third party process.
    for index, region in enumerate(spec.regions):
        if region not in catalog.regions:
            refuse(f"regions.{index}", f"unknown region {region!r}")
            continue
        for cc in region_countries(catalog, region, launched(region)):
            regime = catalog.countries[cc].compliance.regime if cc in catalog.countries else "default"
            for data_class in spec.data_classes:
                if data_class in rules.restricted(regime):
                    refuse(
                        f"data_classes.{spec.data_classes.index(data_class)}",
                        f"{data_class!r} data may not be processed by an integration in {region}: {cc}'s "
                        f"compliance profile ({regime}) forbids it to third parties",
                    )
    # Egress: exact hostnames over https.
    for index, host in enumerate(spec.egress):
        message = _egress_problem(host)
        if message:
            refuse(f"egress.{index}", message)
    if spec.health_path is None:
        refuse("health_path", "is missing: the probes and the conformance job need a health endpoint")
    elif not _HEALTH_PATH.fullmatch(spec.health_path):
        refuse("health_path", "must be an absolute path (/healthz): no scheme, host, query or spaces")
    if spec.pricing is not None:
        from foundation.currencies import minor_exponent

        for currency in spec.pricing.monthly:
            try:
                minor_exponent(currency)
            except InputError:
                refuse(f"pricing.monthly.{currency}", f"unknown currency {currency!r}")
    # The developer is paid from the region serving its country, in that country's currency (integrations/payouts.py).
    serving = catalog.regions_serving(spec.developer.country)
    if not serving or spec.developer.country not in catalog.countries:
        refuse(
            "developer.country",
            f"{spec.developer.country}: no region serves it, so no region's payouts job can pay the developer",
        )
    else:
        # One country per developer: it decides the home region whose warehouse holds its DEVELOPERS row and pays it
        # (one statement per period, key payout:developer:<id>:<period>), its payout currency and its one account.
        differing = sorted(
            f"{o.id} ({o.developer.country})"
            for o in others
            if o.id != spec.id and o.developer.id == spec.developer.id and o.developer.country != spec.developer.country
        )
        if differing:
            refuse(
                "developer.country",
                f"{spec.developer.country}: {spec.developer.id}'s other integrations name another country "
                f"({', '.join(differing)}); a developer is paid from one home region in one currency to one Stripe "
                "account, so its specs must agree (a developer that moves country is paid as a new developer id)",
            )
    if serving and spec.developer.country in catalog.countries and spec.pricing is not None:
        payout_currency = catalog.country(spec.developer.country).currency
        if payout_currency not in spec.pricing.monthly:
            refuse(
                "pricing.monthly",
                f"lists no price in {payout_currency}, the developer's payout currency ({spec.developer.country}): "
                "the developer's share of each install is taken of the price in that currency",
            )
    if spec.revenue_share not in rules.revenue_share:
        refuse("revenue_share", f"unknown row {spec.revenue_share!r}; rows: {', '.join(rules.revenue_share)}")
    if not result.problems:
        result.passed += [
            "resources within the caps",
            "scopes known and within the category",
            "data classes",
            "egress https hosts",
            "health path",
        ]
    return result


def _check_resources(spec: IntegrationSpec, rules: ReviewRules, refuse: Callable[[str, str], None], _: Any) -> None:
    limits = spec.resources.limits
    caps = rules.caps
    for key in ("cpu", "memory"):
        cap = getattr(caps, key)
        value = getattr(limits, key) if limits is not None else None
        if value is None:
            refuse(f"resources.limits.{key}", f"is missing: every integration declares its limits (cap {cap})")
            continue
        if quantity(value) > quantity(cap):
            refuse(f"resources.limits.{key}", f"{value} is above the cap of {cap}")
        request = getattr(spec.resources.requests, key)
        if request is not None and quantity(request) > quantity(value):
            refuse(f"resources.requests.{key}", f"{request} is above its limit {value}")
    if spec.resources.storage is not None and quantity(spec.resources.storage) > quantity(caps.storage):
        refuse("resources.storage", f"{spec.resources.storage} is above the cap of {caps.storage}")


def _egress_problem(host: str) -> str:
    lowered = host.lower()
    if lowered.startswith("http://"):
        return f"{host!r}: plain http is refused; egress goes over https only (give the hostname)"
    if "*" in host:
        return f"{host!r}: wildcards are refused; list each exact hostname"
    if "://" in host or "/" in host or ":" in host or "@" in host:
        return f"{host!r}: give the exact hostname only (no scheme, port, path or credentials)"
    name = lowered.removesuffix(".")
    labels = name.split(".")
    if len(labels) < 2 or not all(_HOST_LABEL.fullmatch(label) for label in labels) or not labels[-1].isalpha():
        return f"{host!r} is not a fully qualified hostname"
    if re.fullmatch(r"[0-9.]+", name):
        return f"{host!r}: an IP address is refused; give the hostname"
    return ""


# ---------------------------------------------------------------- the review record


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Automated(_Frozen):
    digest: Digest
    """The spec digest the automated review judged."""
    passed: tuple[str, ...]
    """Checks passed."""
    pending: tuple[str, ...]
    """What a person still has to judge."""
    on: datetime.date
    """Day of the review."""


class Approval(_Frozen):
    digest: Digest
    """The exact spec digest the reviewer approved."""
    reviewer: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9 ._@-]{1,80}$")]
    """Who approved it."""
    on: datetime.date
    """Day of the approval."""


class ReviewRecord(_Frozen):
    id: str
    """The integration's id."""
    state: State
    """Life cycle: submitted -> published -> suspended <-> published -> retired."""
    automated: Automated
    """The last automated review."""
    approval: Approval | None = None
    """The human review, if any (valid only while its digest is the spec's)."""
    published_digest: Digest | None = None
    """The digest that was published (a later spec needs a new approval and publish)."""

    def approved(self, digest: str) -> bool:
        return self.approval is not None and self.approval.digest == digest

    def dump(self) -> bytes:
        header = (
            f"# Review record of integrations/{self.id}.yaml, written by platformctl integration "
            "submit/approve/publish/suspend/retire.\n# Every verdict names the spec digest it is for.\n"
        )
        return (header + dump_yaml(self.model_dump(mode="json"))).encode("utf-8")


def parse_record(raw: bytes, source: str) -> ReviewRecord:
    doc = load_yaml_bytes(raw, source)
    if not isinstance(doc, dict):
        raise InputError.single(source, "", "a review record must be a mapping")
    try:
        return ReviewRecord.model_validate(doc)
    except ValidationError as exc:
        raise InputError(validation_problems(source, exc)) from None


def published_spec(repo: Any, integration_id: str) -> tuple[IntegrationSpec, ReviewRecord]:
    """The spec the integration stack deploys: published (or suspended) and unchanged since its approved digest."""
    spec = repo.integration(integration_id)
    record = repo.review_record(integration_id)
    source = f"integrations/{integration_id}.review.yaml"
    if record is None or record.state not in ("published", "suspended"):
        state = record.state if record is not None else "never submitted"
        raise InputError.single(source, "state", f"{integration_id} is not published ({state})")
    digest = spec.digest()
    if record.published_digest != digest or not record.approved(digest):
        raise InputError.single(
            f"integrations/{integration_id}.yaml",
            "",
            f"changed since it was approved and published (now {digest[:19]}..., published "
            f"{(record.published_digest or 'none')[:19]}...): approve and publish it again",
        )
    return spec, record
