"""`platformctl billing connect-developer`: a marketplace developer's Stripe Connect account, recorded in each of its
integrations' stack files (`platform:stripeAccount`), from where the integration stack's `up` writes it to the
developer's DEVELOPERS row (components/integration_terms.py) for the payouts job.

Like `billing connect`: an Express account requesting only `transfers`, under the recipient service agreement when
the developer's country is not the platform's ("Cross-border payouts only work with accounts under the recipient
service agreement", https://docs.stripe.com/connect/service-agreement-types), refused for a country Stripe does not
let this platform pay (https://docs.stripe.com/connect/cross-border-payouts; platformctl/stripe_connect.yaml). Found
again by its metadata (`developer: <id>`) and created with the idempotency key `account:developer:<id>`, so a rerun
or a lost answer never opens a second account.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

from fleet.repo import Repo
from foundation.errors import InputError
from foundation.naming import is_partner_id
from foundation.stacks import integration_stack
from integrations.spec import IntegrationSpec
from platformctl.billing import (
    STRIPE_ACCOUNT_KEY,
    find_or_create_account,
    load_connect_facts,
    onboarding_state,
    record_stripe_account,
    service_agreement,
    stripe_account_of,
)
from services.payouts.stripe_gateway import Payee, StripeGateway


@dataclass
class DeveloperConnection:
    developer: str
    """The developer's id."""
    account: str
    """Its Stripe account (acct_...)."""
    created: bool
    """Opened by this run."""
    recorded: list[str]
    """Stack files that now record the account (those that did already are not listed)."""
    country: str
    """The developer's country (its spec's `developer.country`)."""
    currency: str
    """Its payout currency (the country's)."""
    service_agreement: str
    """full or recipient."""
    transfers: str
    """The account's `transfers` capability (active once onboarding is finished)."""
    link: str | None
    """A fresh onboarding URL (single use, expires within minutes), or None."""

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def developer_integrations(repo: Repo, developer_id: str) -> list[IntegrationSpec]:
    """The developer's integrations that have a stack (published at least once), by id."""
    if not is_partner_id(developer_id):
        raise InputError.single("arguments", "DEVELOPER", f"{developer_id!r} is not a developer id")
    specs = [repo.integration(i) for i in repo.integration_ids()]
    mine = [s for s in specs if s.developer.id == developer_id]
    if not mine:
        raise InputError.single("arguments", "DEVELOPER", f"no integration in integrations/ is by {developer_id!r}")
    stacked = [s for s in mine if repo.has_stack(integration_stack(s.id))]
    if not stacked:
        raise InputError.single(
            "arguments",
            "DEVELOPER",
            f"none of {developer_id}'s integrations ({', '.join(s.id for s in mine)}) is published: its account is "
            "recorded in their stack files (platformctl integration publish ID first)",
        )
    countries = {s.developer.country for s in stacked}
    if len(countries) > 1:
        raise InputError.single(
            f"integrations/{stacked[0].id}.yaml",
            "developer.country",
            f"{developer_id}'s integrations name different countries ({', '.join(sorted(countries))}): one account "
            "is opened in one country; make the specs agree",
        )
    return stacked


def account_request(repo: Repo, developer_id: str) -> dict[str, Any]:
    """What the developer's account is opened with, and the account its stack files record already."""
    specs = developer_integrations(repo, developer_id)
    first = specs[0]
    country = first.developer.country
    catalog = repo.catalog()
    if country not in catalog.countries:
        raise InputError.single(
            f"integrations/{first.id}.yaml", "developer.country", f"{country} is not in the catalog"
        )
    recorded = {a for a in (stripe_account_of(repo, s.id, "integration") for s in specs) if a}
    if len(recorded) > 1:
        raise InputError.single(
            repo.display(repo.stack_file(integration_stack(first.id))),
            f"config.{STRIPE_ACCOUNT_KEY}",
            f"{developer_id}'s stacks record different accounts ({', '.join(sorted(recorded))}); keep one",
        )
    facts = load_connect_facts()
    agreement = service_agreement(
        facts,
        developer_id,
        country,
        (f"integrations/{first.id}.yaml", "developer.country"),
        "the developer cannot be paid through Stripe Connect by this platform",
    )
    return {
        "developer": developer_id,
        "integrations": [s.id for s in specs],
        "country": country,
        "currency": catalog.country(country).currency,
        "email": first.developer.email,
        "existing": next(iter(recorded), None),
        "service_agreement": agreement,
        "onboarding": facts.onboarding,
    }


def connect_developer(
    repo: Repo,
    developer_id: str,
    gateway: StripeGateway,
    link: bool = False,
    warn: Callable[[str], None] = lambda _: None,
) -> DeveloperConnection:
    """Find or create the developer's Express account, record it in each of its integration stacks, and make an
    onboarding link when the account is new, cannot receive transfers yet, or `link` asks."""
    request = account_request(repo, developer_id)
    stack_files = {iid: repo.display(repo.stack_file(integration_stack(iid))) for iid in request["integrations"]}
    account, created = find_or_create_account(
        gateway, Payee("developer", developer_id), request, stack_files[request["integrations"][0]]
    )
    recorded = [
        stack_files[iid]
        for iid in request["integrations"]
        if record_stripe_account(repo.root, iid, account["id"], warn, kind="integration")
    ]
    transfers, url, agreement = onboarding_state(gateway, account, request, fresh_link=link or created)
    return DeveloperConnection(
        developer_id,
        account["id"],
        created,
        recorded,
        request["country"],
        request["currency"],
        agreement,
        transfers,
        url,
    )
