"""`platformctl billing connect` and `platformctl payouts run`: the glue between the repository and the payouts job.

Files are read through fleet.Repo only; the Stripe account id is written through the one change path
(platformctl.changes.write_change: locks, journal, recovery)."""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError

from fleet.repo import Repo
from foundation.errors import InputError
from foundation.stacks import parse_stack_name, partner_stack
from foundation.yamlio import load_yaml_file, validation_problems
from partners.spec import PartnerSpec
from services.payouts import runner
from services.payouts.report import Report
from services.payouts.stripe_gateway import Payee, StripeGateway, transfers_capability

STRIPE_ACCOUNT_KEY = "platform:stripeAccount"
_ACCOUNT_ID = re.compile(r"^acct_[A-Za-z0-9]{1,64}$")


def record_stripe_account(
    root: Path, stack_id: str, account_id: str, warn: Callable[[str], None] = lambda _: None, kind: str = "partner"
) -> bool:
    """Set `platform:stripeAccount` in a partner's (or an integration's) stack file, through the one change path
    (the stack's lock, the journal, recovery of an interrupted change). Returns whether the file changed."""
    from platformctl.changes import config_change, write_change

    if not _ACCOUNT_ID.fullmatch(account_id):
        raise InputError.single("stripe", "account", f"{account_id!r} is not a Stripe account id")
    stack = parse_stack_name(f"{kind}-{stack_id}")
    result = write_change(
        root, [str(stack)], lambda repo: config_change(repo, stack, {STRIPE_ACCOUNT_KEY: account_id}), warn
    )
    return bool(result.change.files)


def stripe_account_of(repo: Repo, partner_id: str, kind: str = "partner") -> str | None:
    """`platform:stripeAccount` of a partner's (or integration's) stack file, or None (no file, or not set)."""
    stack = parse_stack_name(f"{kind}-{partner_id}")
    if not repo.has_stack(stack):
        return None
    value = repo.stack_config(stack).file_values.get(STRIPE_ACCOUNT_KEY)
    if value is None or value == "":
        return None
    if not isinstance(value, str) or not _ACCOUNT_ID.fullmatch(value):
        raise InputError.single(repo.display(repo.stack_file(stack)), f"config.{STRIPE_ACCOUNT_KEY}", "not acct_...")
    return value


def _spec(repo: Repo, partner_id: str) -> PartnerSpec:
    try:
        partner_stack(partner_id)  # validates the id before it reaches the filesystem
    except InputError:
        raise InputError.single("arguments", "PARTNER", f"{partner_id!r} is not a partner id") from None
    if not repo.partner_file(partner_id).is_file():
        raise InputError.single("arguments", "PARTNER", f"no partner {partner_id!r} (no partners/{partner_id}.yaml)")
    return repo.spec(partner_id)


def billing_country(repo: Repo, spec: PartnerSpec) -> str:
    """The first of the partner's countries that uses its billing currency (else its first country)."""
    catalog = repo.catalog()
    for code in spec.countries:
        country = catalog.countries.get(code)
        if country is not None and country.currency == spec.billing.currency:
            return code
    return spec.countries[0]


CONNECT_FILE = "platformctl/stripe_connect.yaml"
CONNECT_PATH = Path(__file__).resolve().parent / "stripe_connect.yaml"
"""Shipped with the tool, like the tier table: Stripe's rules, not the fleet's data (so not read through Repo)."""
CROSS_BORDER_DOC = "https://docs.stripe.com/connect/cross-border-payouts"

Country = Annotated[str, StringConstraints(pattern=r"^[A-Z]{2}$")]
HttpsUrl = Annotated[str, StringConstraints(pattern=r"^https://[^\s]+$")]


class Onboarding(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    refresh_url: HttpsUrl
    """Where Stripe sends the partner when an onboarding link expired or was used (make a fresh one there)."""
    return_url: HttpsUrl
    """Where Stripe sends the partner when it leaves or completes onboarding."""


class ConnectFacts(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    platform_country: Country
    """Country of the platform's own Stripe account."""
    recipient_countries: Annotated[list[Country], Field(min_length=1)]
    """Countries Stripe lets a platform in one of them pay across borders, self-serve (the cross-border page)."""
    onboarding: Onboarding
    """Account Link return addresses."""


def load_connect_facts(path: Path = CONNECT_PATH) -> ConnectFacts:
    doc = load_yaml_file(path, CONNECT_FILE)
    try:
        return ConnectFacts.model_validate(doc)
    except ValidationError as exc:
        raise InputError(validation_problems(CONNECT_FILE, exc)) from None


def service_agreement(
    facts: ConnectFacts, partner_id: str, country: str, where: tuple[str, str] | None = None, instead: str = ""
) -> Literal["full", "recipient"]:
    """Stripe's service agreement for an account in `country`: full at home, recipient across borders; a country
    Stripe does not let this platform pay across borders is bad input (exit 2) naming `where` (file, field)."""
    if country == facts.platform_country:
        return "full"
    if facts.platform_country in facts.recipient_countries and country in facts.recipient_countries:
        return "recipient"
    source, field = where or (f"partners/{partner_id}.yaml", "countries")
    raise InputError.single(
        source,
        field,
        f"its billing country {country} cannot receive Stripe Connect payouts from a platform in "
        f"{facts.platform_country}: Stripe supports self-serve cross-border payouts only among the US, UK, EEA, "
        f"Canada and Switzerland ({CROSS_BORDER_DOC}; the list is {CONNECT_FILE}); "
        + (instead or "pay it with billing.payout_method bank_transfer"),
    )


@dataclass
class Connection:
    partner: str
    account: str
    created: bool
    recorded: list[str]
    """The stack file that now records the account (empty when it did already)."""
    country: str
    currency: str
    service_agreement: str
    transfers: str
    """The account's `transfers` capability (active once the partner has finished onboarding)."""
    link: str | None
    """A fresh onboarding URL (single use, expires within minutes), or None."""
    warnings: list[str]
    """What the operator should know about the existing account."""


def account_request(repo: Repo, partner_id: str) -> dict[str, Any]:
    """What the partner's Stripe account is opened with (country, currency, email, service agreement) and the id
    its stack file records already."""
    spec = _spec(repo, partner_id)
    if spec.billing.payout_method != "stripe_connect":
        raise InputError.single(
            f"partners/{partner_id}.yaml", "billing.payout_method", "is not stripe_connect; no Stripe account is needed"
        )
    facts = load_connect_facts()
    country = billing_country(repo, spec)
    return {
        "partner": spec.id,
        "country": country,
        "currency": spec.billing.currency,
        "email": spec.contact.email,
        "existing": stripe_account_of(repo, spec.id),
        "service_agreement": service_agreement(facts, spec.id, country),
        "onboarding": facts.onboarding,
    }


def connect(repo: Repo, partner_id: str, gateway: StripeGateway, link: bool = False) -> Connection:
    """Find or create the partner's Express account (idempotent by partner id), record it in its stack file, and
    make an onboarding Account Link when the account is new, cannot receive transfers yet, or `link` asks."""
    plan = account_request(repo, partner_id)
    stack_file = repo.display(repo.stack_file(partner_stack(partner_id)))
    account, created = find_or_create_account(gateway, Payee("partner", partner_id), plan, stack_file)
    recorded = [stack_file] if record_stripe_account(repo.root, partner_id, account["id"]) else []
    transfers, url, agreement = onboarding_state(gateway, account, plan, fresh_link=link or created)
    warnings = []
    if agreement != plan["service_agreement"] or account.get("country", plan["country"]) != plan["country"]:
        # Stripe: "After the connected account's service agreement is accepted, the type of service agreement can't
        # be modified" (https://docs.stripe.com/connect/service-agreement-types).
        warnings.append(
            f"{account['id']} is a {account.get('country')} account under the {agreement} service agreement; "
            f"{partner_id} needs a {plan['country']} account under the {plan['service_agreement']} agreement, "
            "which Stripe cannot change on an existing account: payouts to it may fail; open a new account in the "
            "Stripe dashboard (and remove platform:stripeAccount) if they do"
        )
    return Connection(
        partner_id,
        account["id"],
        created,
        recorded,
        plan["country"],
        plan["currency"],
        agreement,
        transfers,
        url,
        warnings,
    )


def find_or_create_account(
    gateway: StripeGateway, who: Payee, request: Mapping[str, Any], stack_file: str
) -> tuple[dict[str, Any], bool]:
    """`who`'s Express account and whether this call opened it: the id its stack file records (which must be `who`'s
    account: a stack file pointing elsewhere would pay someone else), else the account whose metadata names `who`,
    else a new one (idempotent by payee), opened with `request`'s country, currency, email and service agreement."""
    existing = request["existing"]
    account = None
    if existing:
        account = gateway.retrieve_account(existing)
        owner = ((account or {}).get("metadata") or {}).get(who.metadata_key)
        if account is None or owner != who.id:
            said = "no such account" if account is None else f"its metadata {who.metadata_key} is {owner!r}"
            raise InputError.single(
                stack_file,
                f"config.{STRIPE_ACCOUNT_KEY}",
                f"{existing} is not {who.id}'s Stripe account (Stripe: {said})",
            )
    if account is None:
        account = gateway.find_account(who)
    if account is not None:
        return account, False
    created = gateway.create_account(
        who, request["country"], request["currency"], request["email"], request["service_agreement"]
    )
    return created, True


def onboarding_state(
    gateway: StripeGateway, account: dict[str, Any], request: Mapping[str, Any], fresh_link: bool
) -> tuple[str, str | None, str]:
    """The account's `transfers` capability, an onboarding Account Link (made when `fresh_link` asks or the account
    cannot receive transfers yet, else None), and the service agreement it is under."""
    transfers = transfers_capability(account)
    url = None
    if fresh_link or transfers != "active":
        onboarding: Onboarding = request["onboarding"]
        url = gateway.create_account_link(account["id"], onboarding.refresh_url, onboarding.return_url)["url"]
    agreement = (account.get("tos_acceptance") or {}).get("service_agreement") or request["service_agreement"]
    return transfers, url, agreement


def run_payouts(
    repo: Repo,
    period: str,
    *,
    region: str | None = None,
    warehouse_url: str = "local:.platformctl/warehouse",
    statements: str = "",
    adjustments_file: Path | None = None,
    dry_run: bool = False,
    live: bool = False,
    env: Mapping[str, str] | None = None,
) -> Report:
    """`platformctl payouts run`: the services' runner (the very job the CronJob runs), with the repository's
    defaults (a known region, statements under the state folder, a local warehouse inside the repository).
    Terms come from the warehouse's PARTNERS table, as in the deployed job, never from partners/*.yaml."""
    from services import warehouse

    if region is not None and region not in repo.catalog().regions:
        raise InputError.single("--region", "", f"unknown region {region!r}")
    return runner.run(
        period,
        region=region,
        warehouse_url=warehouse.anchored(warehouse_url, repo.root),
        statements=statements or str(repo.state_dir / "statements"),
        adjustments_file=adjustments_file,
        dry_run=dry_run,
        live=live,
        env=os.environ if env is None else env,
    )


def connect_after_onboarding(repo: Repo, partner_ids: list[str], env: dict[str, str] | None = None) -> list[str]:
    """The apply path of onboarding: connect every new stripe_connect partner, or say how to when no key is set."""
    env = dict(os.environ) if env is None else env
    wanted = [p for p in partner_ids if _spec(repo, p).billing.payout_method == "stripe_connect"]
    if not wanted:
        return []
    if not env.get("STRIPE_API_KEY"):
        return [
            f"{p}: no STRIPE_API_KEY; run `platformctl billing connect {p}` to open its Stripe account" for p in wanted
        ]
    gateway = StripeGateway.from_env(env)
    notes = []
    for partner_id in wanted:
        try:
            result = connect(repo, partner_id, gateway)
        except InputError as exc:  # a country Stripe cannot pay: onboarding itself stands
            notes.append(f"{partner_id}: no Stripe account: {'; '.join(str(p) for p in exc.problems)}")
            continue
        notes.append(f"{partner_id}: {'created' if result.created else 'found'} Stripe account {result.account}")
        if result.link:
            notes.append(f"{partner_id}: onboarding link (single use, expires in minutes): {result.link}")
    return notes
