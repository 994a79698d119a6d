"""`platformctl billing connect` and `platformctl payouts run`: the glue between the repository and the payouts job."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fleet.repo import Repo
from fleet.stackconfig import load_stack_config
from foundation.errors import InputError
from foundation.stacks import partner_stack
from foundation.yamlio import write_atomic
from partners.spec import PartnerSpec, load_spec
from partners.tiers import load_tiers
from platformctl.locking import exclusive
from services.payouts import money
from services.payouts.job import Report, run_payouts
from services.payouts.statements import open_store
from services.payouts.stripe_gateway import PARTNER_METADATA, StripeGateway

STRIPE_ACCOUNT_KEY = "platform:stripeAccount"
_ACCOUNT_ID = re.compile(r"^acct_[A-Za-z0-9]{1,64}$")


def record_stripe_account(root: Path, partner_id: str, account_id: str) -> bool:
    """Set `platform:stripeAccount` in the partner's stack file, edited in place (every other key, comment and
    encrypted value kept), under the partner's lock. Returns whether the file changed."""
    from fleet.repo import Repo
    from platformctl.changes import edit_stack_file

    if not _ACCOUNT_ID.fullmatch(account_id):
        raise InputError.single("stripe", "account", f"{account_id!r} is not a Stripe account id")
    stack = partner_stack(partner_id)
    with exclusive(Repo(root).state_dir, str(stack)):
        repo = Repo(root)  # read under the lock
        if not repo.has_stack(stack):
            raise InputError.single(f"stacks/Pulumi.{stack}.yaml", "", f"partner {partner_id!r} has no stack file")
        if repo.stack_config(stack).file_values.get(STRIPE_ACCOUNT_KEY) == account_id:
            return False
        write_atomic(repo.stack_file(stack), edit_stack_file(repo, stack, {STRIPE_ACCOUNT_KEY: account_id}))
    return True


def stripe_account_of(repo: Repo, partner_id: str) -> str | None:
    if not partner_stack(partner_id).config_file(repo.root).is_file():
        return None
    value = load_stack_config(repo.root, partner_stack(partner_id)).file_values.get(STRIPE_ACCOUNT_KEY)
    if value is None or value == "":
        return None
    if not isinstance(value, str) or not _ACCOUNT_ID.fullmatch(value):
        raise InputError.single(
            f"stacks/Pulumi.partner-{partner_id}.yaml", f"config.{STRIPE_ACCOUNT_KEY}", "not acct_..."
        )
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


@dataclass
class Connection:
    partner: str
    account: str
    created: bool
    recorded: bool
    country: str
    currency: str


def connect_plan(repo: Repo, partner_id: str) -> dict[str, Any]:
    spec = _spec(repo, partner_id)
    if spec.billing.payout_method != "stripe_connect":
        raise InputError.single(
            f"partners/{partner_id}.yaml", "billing.payout_method", "is not stripe_connect; no Stripe account is needed"
        )
    return {
        "partner": spec.id,
        "country": billing_country(repo, spec),
        "currency": spec.billing.currency,
        "email": spec.contact.email,
        "existing": stripe_account_of(repo, spec.id),
    }


def connect(repo: Repo, partner_id: str, gateway: StripeGateway) -> Connection:
    """Find or create the partner's Express account (idempotent by partner id) and record it in its stack file."""
    plan = connect_plan(repo, partner_id)
    account = None
    if plan["existing"]:
        account = gateway.retrieve_account(plan["existing"])
        _check_owner(partner_id, plan["existing"], account)
    if account is None:
        account = gateway.find_account(partner_id)
    created = account is None
    if account is None:
        account = gateway.create_account(partner_id, plan["country"], plan["currency"], plan["email"])
    recorded = record_stripe_account(repo.root, partner_id, account["id"])
    return Connection(partner_id, account["id"], created, recorded, plan["country"], plan["currency"])


def region_partners(repo: Repo, region: str | None) -> list[PartnerSpec]:
    if region is not None:
        catalog = repo.catalog()
        if region not in catalog.regions:
            raise InputError.single("--region", "", f"unknown region {region!r}")
    specs = [load_spec(path, repo.display(path)) for path in repo.partner_spec_files()]
    return [s for s in specs if region is None or s.home_region == region]


def _check_owner(partner_id: str, account_id: str, account: dict[str, Any] | None) -> None:
    """A recorded id must be this partner's account: a stack file pointing elsewhere would pay someone else."""
    owner = ((account or {}).get("metadata") or {}).get(PARTNER_METADATA)
    if account is None or owner != partner_id:
        said = "no such account" if account is None else f"its metadata partner is {owner!r}"
        raise InputError.single(
            f"stacks/Pulumi.partner-{partner_id}.yaml",
            f"config.{STRIPE_ACCOUNT_KEY}",
            f"{account_id} is not {partner_id}'s Stripe account (Stripe: {said})",
        )


def resolve_accounts(repo: Repo, partners: list[PartnerSpec], gateway: StripeGateway | None) -> dict[str, str | None]:
    """Each stripe_connect partner's account, checked against Stripe before anything is paid (dry run: as recorded).

    The deployed job has no stack files: there the account is found by the metadata `billing connect` sets, from
    one listing per run.
    """
    listed: dict[str, dict[str, Any]] | None = None
    accounts: dict[str, str | None] = {}
    for spec in partners:
        if spec.billing.payout_method != "stripe_connect":
            continue
        recorded = stripe_account_of(repo, spec.id)
        if gateway is None:
            accounts[spec.id] = recorded
        elif recorded:
            _check_owner(spec.id, recorded, gateway.retrieve_account(recorded))
            accounts[spec.id] = recorded
        else:
            if listed is None:
                listed = gateway.accounts_by_partner()
            found = listed.get(spec.id)
            accounts[spec.id] = found["id"] if found else None
    return accounts


def run(
    repo: Repo,
    period: str,
    *,
    region: str | None = None,
    warehouse_url: str = "local:.platformctl/warehouse",
    statements: str = "",
    adjustments_file: Path | None = None,
    dry_run: bool = False,
    live: bool = False,
) -> Report:
    """Validate every argument, then run the job (see services.payouts.job)."""
    import datetime as dt

    from services import warehouse

    if period == "previous":  # the CronJob's argument: the month before the current UTC month
        period = money.previous_period(dt.datetime.now(dt.UTC).strftime("%Y-%m"))
    money.check_period(period)
    partners = region_partners(repo, region)
    adjustments = money.load_adjustments(adjustments_file, period) if adjustments_file else []
    store = open_store(statements, repo.state_dir / "statements")
    gateway = None if dry_run else StripeGateway.from_env(os.environ, live=live)
    warehouse_url = warehouse.anchored(warehouse_url, repo.root)
    conn = warehouse.connect(warehouse_url)
    try:
        if warehouse_url.startswith("local:"):
            warehouse.ensure_schema(conn)

        return run_payouts(
            conn=conn,
            period=period,
            partners=partners,
            tiers=load_tiers(repo.partners_dir / "tiers.yaml"),
            accounts=lambda: resolve_accounts(repo, partners, gateway),
            store=store,
            gateway=gateway,
            adjustments=adjustments,
            region=region,
            dry_run=dry_run,
        )
    finally:
        conn.close()


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
        result = connect(repo, partner_id, gateway)
        notes.append(f"{partner_id}: {'created' if result.created else 'found'} Stripe account {result.account}")
    return notes
