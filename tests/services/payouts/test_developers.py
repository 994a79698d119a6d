"""Developers' payouts through the payouts entry (services.payouts.runner.run), against the embedded warehouse
(DEVELOPERS, INTEGRATIONS, INSTALLS written by THE merges), the real stripe client and the loopback Stripe fake:
known answers, one transfer per developer and period (key payout:developer:<id>:<period>), a dropped answer paid
once, a developer without an active `transfers` capability held and paid by a later run."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from foundation.errors import InputError
from foundation.warehouse_schema import (
    INSTALLS,
    developer_merge_statement,
    install_merge_statement,
    integration_merge_statement,
)
from services.payouts import job, money, runner
from services.payouts.stripe_gateway import Payee
from tests.services.payouts_harness import connect_with_schema, copy_warehouse, gateway, stripe_env
from tests.services.stripe_fake import FakeStripe

PERIOD = "2026-10"


LISTED_EUR = {"calsync": 900, "notes": 333}
"""The integrations' listed monthly prices in the developer's payout currency (EUR) when seed() installs them."""


def _install(
    partner: str, integration: str, currency: str, price: int, developer_price: int | None = None
) -> dict[str, Any]:
    return {
        "INSTALL_ID": f"{partner}/{integration}",
        "PARTNER_ID": partner,
        "INTEGRATION_ID": integration,
        "DEVELOPER_ID": "tempo-labs",
        "CURRENCY": currency,
        "MINOR_UNITS": 2,
        "MONTHLY_MINOR": price,
        "DEVELOPER_CURRENCY": "EUR",
        "DEVELOPER_MONTHLY_MINOR": LISTED_EUR[integration] if developer_price is None else developer_price,
    }


SPREAD_OVER_WORKERS = True
"""The module fixture below is a cheap seed (a fraction of a second): each pytest-xdist worker makes its own."""


@pytest.fixture(scope="module")
def marketplace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The integrations and installs every test's warehouse starts from, written once per module. Never opened after
    this: `seed` copies it for each test, so no test sees another's rows."""
    directory = tmp_path_factory.mktemp("marketplace") / "wh"
    conn = connect_with_schema(directory)
    try:
        db, cur = conn.database, conn.cursor()
        terms = {"DEVELOPER_ID": "tempo-labs", "CURRENCY": "EUR", "MINOR_UNITS": 2, "HOME_REGION": "eu-central"}
        cur.execute(
            integration_merge_statement(
                db,
                [
                    {"INTEGRATION_ID": "calsync", "DEVELOPER_SHARE": "0.70", "MONTHLY_MINOR": 900} | terms,
                    {"INTEGRATION_ID": "notes", "DEVELOPER_SHARE": "0.80", "MONTHLY_MINOR": 333} | terms,
                ],
            )
        )
        rows = [
            _install("acme-voice", "calsync", "EUR", 900),
            _install("sunrise-telecom", "calsync", "USD", 1000),
            _install("acme-voice", "notes", "EUR", 333),
            _install("gone-voice", "calsync", "EUR", 900),
        ]
        cur.execute(install_merge_statement(db, rows))
        cur.execute(f"UPDATE {INSTALLS.fqn(db)} SET INSTALLED_ON = '2026-09-20'")
        cur.execute(f"UPDATE {INSTALLS.fqn(db)} SET REMOVED_ON = '2026-09-30' WHERE PARTNER_ID = 'gone-voice'")
    finally:
        conn.close()
    return directory


@pytest.fixture
def seed(marketplace: Path) -> Callable[[Path, str | None], None]:
    """`seed(wh, account)`: tempo-labs (DE, EUR, paid to `account`): calsync (standard, 0.70, EUR 900) installed by
    acme-voice (EUR) and sunrise-telecom (USD: it pays USD 1000, the developer earns 0.70 x EUR 900 for it all the
    same); notes (verified, 0.80, EUR 333) installed by acme-voice; an install removed before October earns nothing.
    The integrations and installs are a copy of `marketplace`; the developer row is written by THE merge here."""

    def write(wh: Path, account: str | None) -> None:
        copy_warehouse(marketplace, wh)
        conn = connect_with_schema(wh)
        try:
            developer = {
                "DEVELOPER_ID": "tempo-labs",
                "LEGAL_NAME": "Tempo Labs GmbH",
                "COUNTRY": "DE",
                "CURRENCY": "EUR",
                "MINOR_UNITS": 2,
                "STRIPE_ACCOUNT": account,
                "HOME_REGION": "eu-central",
            }
            conn.cursor().execute(developer_merge_statement(conn.database, [developer]))
        finally:
            conn.close()

    return write


def account_for(fake: FakeStripe, onboarded: bool = True) -> str:
    account: str = gateway(fake).create_account(
        Payee("developer", "tempo-labs"), "DE", "EUR", "d@x.example", "recipient"
    )["id"]
    if onboarded:
        fake.complete_onboarding(account)
    return account


def run(tmp_path: Path, fake: FakeStripe, period: str = PERIOD) -> job.Report:
    """The region's run for `period`, on the 5th of the month after it."""
    year, month = (int(part) for part in money.next_period(period).split("-"))
    return runner.run(
        period,
        region="eu-central",
        warehouse_url=f"local:{tmp_path / 'wh'}",
        statements=str(tmp_path / "st"),
        adjustments_file=None,
        dry_run=False,
        live=False,
        env=stripe_env(fake),
        now=dt.datetime(year, month, 5, tzinfo=dt.UTC),
    )


def stored(tmp_path: Path, period: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((tmp_path / "st" / "developers" / period / "tempo-labs.json").read_text())
    return data


def test_known_answer_one_transfer_with_the_developers_key(
    tmp_path: Path, fake: FakeStripe, seed: Callable[[Path, str | None], None]
) -> None:
    seed(tmp_path / "wh", account_for(fake))
    report = run(tmp_path, fake)
    ((result),) = report.developers
    assert (result.partner, result.status) == ("developer:tempo-labs", job.PAID)
    statement = stored(tmp_path, PERIOD)
    # 0.70 x 900 + 0.70 x 900 + 0.80 x 333 = 630 + 630 + 266.4 = 1526.4 -> 1526 (half-even, once)
    assert [(li["partner"], li["integration"], li["price_minor"], li["share"]) for li in statement["lines"]] == [
        ("acme-voice", "calsync", 900, "0.7"),
        ("acme-voice", "notes", 333, "0.8"),
        ("sunrise-telecom", "calsync", 900, "0.7"),
    ]
    assert (statement["currency"], statement["payout_minor"], statement["due_minor"]) == ("EUR", 1526, 1526)
    assert statement["transfer"]["idempotency_key"] == f"payout:developer:tempo-labs:{PERIOD}"
    (transfer,) = fake.transfers
    assert (transfer["amount"], transfer["currency"], transfer["metadata"]) == (
        1526,
        "eur",
        {"developer": "tempo-labs", "period": PERIOD},
    )
    assert ("POST", "/v1/transfers", f"payout:developer:tempo-labs:{PERIOD}") in fake.requests
    # The same run again pays nothing.
    again = run(tmp_path, fake)
    assert [r.status for r in again.developers] == [job.ALREADY_PAID]
    assert len(fake.transfers) == 1


def test_a_dropped_answer_is_replayed_by_the_clients_retry_and_paid_once(
    tmp_path: Path, fake: FakeStripe, seed: Callable[[Path, str | None], None]
) -> None:
    seed(tmp_path / "wh", account_for(fake))
    fake.inject("transfers", "drop_after_commit")  # the client retries with the same key: Stripe replays the answer
    assert [r.status for r in run(tmp_path, fake).developers] == [job.PAID]
    key = f"payout:developer:tempo-labs:{PERIOD}"
    assert (
        len(fake.transfers) == 1 and [r for r in fake.requests if r[2] == key] == [("POST", "/v1/transfers", key)] * 2
    )


def test_a_lost_answer_is_found_by_the_next_run_and_paid_once(
    tmp_path: Path, fake: FakeStripe, seed: Callable[[Path, str | None], None]
) -> None:
    seed(tmp_path / "wh", account_for(fake))
    fake.inject("transfers", "drop_after_commit", "500", "500")  # committed, then every retry meets an outage
    first = run(tmp_path, fake)
    assert [r.status for r in first.developers] == [job.FAILED] and first.not_paid
    assert stored(tmp_path, PERIOD)["status"] == "failed" and len(fake.transfers) == 1
    fake.faults.clear()
    later = run(tmp_path, fake, period="2026-11")  # November's run finds October's transfer
    statuses = {r.period: r.status for r in later.developers}
    assert statuses[PERIOD] == job.REPAIRED
    assert [t["metadata"]["period"] for t in fake.transfers] == [PERIOD, "2026-11"]  # October once
    assert stored(tmp_path, PERIOD)["status"] == "paid"


def test_held_without_active_transfers_then_paid_by_a_later_run(
    tmp_path: Path, fake: FakeStripe, seed: Callable[[Path, str | None], None]
) -> None:
    account = account_for(fake, onboarded=False)
    seed(tmp_path / "wh", account)
    held = run(tmp_path, fake)
    ((result),) = held.developers
    assert result.status == job.HELD and "capabilities.transfers: inactive" in result.reason
    assert "connect-developer tempo-labs --link" in result.reason and held.not_paid
    assert not fake.transfers and stored(tmp_path, PERIOD)["status"] == "held"
    fake.complete_onboarding(account)
    later = run(tmp_path, fake, period="2026-11")
    assert {r.period: r.status for r in later.developers} == {PERIOD: job.PAID, "2026-11": job.PAID}
    assert [(t["metadata"]["period"], t["amount"]) for t in fake.transfers] == [(PERIOD, 1526), ("2026-11", 1526)]


def test_no_account_is_held(tmp_path: Path, fake: FakeStripe, seed: Callable[[Path, str | None], None]) -> None:
    seed(tmp_path / "wh", None)
    ((result),) = run(tmp_path, fake).developers
    assert result.status == job.HELD and "billing connect-developer tempo-labs" in result.reason


def test_amounts_below_the_minimum_carry_until_payable_and_move_once(
    tmp_path: Path, fake: FakeStripe, seed: Callable[[Path, str | None], None]
) -> None:
    seed(tmp_path / "wh", account_for(fake))
    conn = connect_with_schema(tmp_path / "wh")  # the schema current, as every writer's connection has it
    terms = {"DEVELOPER_ID": "tempo-labs", "CURRENCY": "EUR", "MINOR_UNITS": 2, "HOME_REGION": "eu-central"}
    cheap = [
        {"INTEGRATION_ID": "calsync", "DEVELOPER_SHARE": "0.70", "MONTHLY_MINOR": 10} | terms,
        {"INTEGRATION_ID": "notes", "DEVELOPER_SHARE": "0.80", "MONTHLY_MINOR": 10} | terms,
    ]
    conn.cursor().execute(integration_merge_statement(conn.database, cheap))
    # The installs priced at 10 as well (the developer earns the price fixed at install, not the one listed now).
    conn.cursor().execute(f"UPDATE {INSTALLS.fqn(conn.database)} SET DEVELOPER_MONTHLY_MINOR = 10")
    conn.close()
    # 7 + 7 + 8 = 22 cents a month, below Stripe's EUR minimum (50): carried, then 44, then 66 is paid.
    assert [r.status for r in run(tmp_path, fake).developers] == [job.CARRIED]
    november = run(tmp_path, fake, period="2026-11").developers
    assert [(r.period, r.status, r.due_minor) for r in november] == [("2026-11", job.CARRIED, 44)]
    december = run(tmp_path, fake, period="2026-12")
    assert [r.status for r in december.developers if r.period == "2026-12"] == [job.PAID]
    assert [t["amount"] for t in fake.transfers] == [66]
    assert stored(tmp_path, "2026-11")["carried_into"] == "2026-12"
    assert stored(tmp_path, "2026-12")["carried_in"] == [{"from": "2026-11", "amount_minor": 44}]


def test_a_statement_copied_from_another_developer_is_refused(
    tmp_path: Path, fake: FakeStripe, seed: Callable[[Path, str | None], None]
) -> None:
    seed(tmp_path / "wh", account_for(fake))
    run(tmp_path, fake)
    path = tmp_path / "st" / "developers" / PERIOD / "tempo-labs.json"
    statement = json.loads(path.read_text())
    path.write_text(json.dumps(statement | {"developer": "other-labs", "status": "held"}))
    with pytest.raises(InputError) as refused:
        run(tmp_path, fake, period="2026-11")
    assert "is not tempo-labs's statement for 2026-10" in str(refused.value.problems)
    assert len(fake.transfers) == 1


def test_a_month_no_run_stated_is_stated_and_paid_by_the_next_run(
    tmp_path: Path, fake: FakeStripe, seed: Callable[[Path, str | None], None]
) -> None:
    """October is paid; November's run never happens (the CronJob failed before stating anything); December's run
    states and pays November too (it was skipped for good: the developer's installs earned nothing that month)."""
    seed(tmp_path / "wh", account_for(fake))
    assert [r.status for r in run(tmp_path, fake).developers] == [job.PAID]
    december = run(tmp_path, fake, period="2026-12")
    assert [(r.period, r.status) for r in december.developers] == [("2026-11", job.PAID), ("2026-12", job.PAID)]
    assert [(t["metadata"]["period"], t["amount"]) for t in fake.transfers] == [
        (PERIOD, 1526),
        ("2026-11", 1526),
        ("2026-12", 1526),
    ]
    assert stored(tmp_path, "2026-11")["transfer"]["idempotency_key"] == "payout:developer:tempo-labs:2026-11"


def _raise_calsync(wh: Path, partners: dict[str, tuple[str, int]]) -> None:
    """calsync's approved spec raises its price to EUR 3000 (USD 3300): its stack rewrites its INTEGRATIONS row and
    the stacks upsert the installs of `partners` (partner -> (currency, price)) with the rows install_row now gives."""
    conn = connect_with_schema(wh)
    try:
        db, cur = conn.database, conn.cursor()
        terms = {"DEVELOPER_ID": "tempo-labs", "CURRENCY": "EUR", "MINOR_UNITS": 2, "HOME_REGION": "eu-central"}
        cur.execute(
            integration_merge_statement(
                db, [{"INTEGRATION_ID": "calsync", "DEVELOPER_SHARE": "0.70", "MONTHLY_MINOR": 3000} | terms]
            )
        )
        rows = [_install(p, "calsync", currency, price, 3000) for p, (currency, price) in partners.items()]
        cur.execute(install_merge_statement(db, rows))
    finally:
        conn.close()


def test_a_price_raised_after_install_does_not_change_what_the_installs_earn(
    tmp_path: Path, fake: FakeStripe, seed: Callable[[Path, str | None], None]
) -> None:
    """The partners of calsync's existing installs still pay 900 (and USD 1000): the developer earns 0.70 x 900 for
    each, not 0.70 x 3000; a partner that installs calsync after the raise pays 3000 and earns the developer 2100."""
    seed(tmp_path / "wh", account_for(fake))
    _raise_calsync(
        tmp_path / "wh",
        {"acme-voice": ("EUR", 3000), "sunrise-telecom": ("USD", 3300), "beta-dental": ("EUR", 3000)},
    )
    conn = connect_with_schema(tmp_path / "wh")
    charged = f"SELECT PARTNER_ID, MONTHLY_MINOR FROM {INSTALLS.fqn(conn.database)} WHERE INTEGRATION_ID = 'calsync'"
    cur = conn.cursor()
    cur.execute(
        f"UPDATE {INSTALLS.fqn(conn.database)} SET INSTALLED_ON = '2026-10-10' WHERE PARTNER_ID = 'beta-dental'"
    )
    cur.execute(charged + " ORDER BY PARTNER_ID")
    # What the partners are charged: the price at install, on their side too.
    assert cur.fetchall() == [
        ("acme-voice", 900),
        ("beta-dental", 3000),
        ("gone-voice", 900),
        ("sunrise-telecom", 1000),
    ]
    conn.close()
    ((result),) = run(tmp_path, fake).developers
    assert result.status == job.PAID
    statement = stored(tmp_path, PERIOD)
    # 0.70 x 900 + 0.80 x 333 + 0.70 x 3000 + 0.70 x 900 = 630 + 266.4 + 2100 + 630 = 3626.4 -> 3626 (half-even, once)
    assert [(li["partner"], li["integration"], li["price_minor"], li["share"]) for li in statement["lines"]] == [
        ("acme-voice", "calsync", 900, "0.7"),
        ("acme-voice", "notes", 333, "0.8"),
        ("beta-dental", "calsync", 3000, "0.7"),
        ("sunrise-telecom", "calsync", 900, "0.7"),
    ]
    assert (statement["payout_minor"], [t["amount"] for t in fake.transfers]) == (3626, [3626])


def test_an_install_row_from_older_code_earns_the_price_listed_now(
    tmp_path: Path, fake: FakeStripe, seed: Callable[[Path, str | None], None]
) -> None:
    """A row written before INSTALLS carried the developer's price (NULL, not upserted since) is not refused: it
    earns share x the INTEGRATIONS price (the one at its install is not known); the others keep theirs."""
    seed(tmp_path / "wh", account_for(fake))
    _raise_calsync(tmp_path / "wh", {})
    conn = connect_with_schema(tmp_path / "wh")
    conn.cursor().execute(
        f"UPDATE {INSTALLS.fqn(conn.database)} SET DEVELOPER_CURRENCY = NULL, DEVELOPER_MONTHLY_MINOR = NULL "
        "WHERE PARTNER_ID = 'sunrise-telecom'"
    )
    conn.close()
    ((result),) = run(tmp_path, fake).developers
    assert result.status == job.PAID
    statement = stored(tmp_path, PERIOD)
    assert [(li["partner"], li["integration"], li["price_minor"]) for li in statement["lines"]] == [
        ("acme-voice", "calsync", 900),
        ("acme-voice", "notes", 333),
        ("sunrise-telecom", "calsync", 3000),
    ]
    # 630 + 266.4 + 2100 = 2996.4 -> 2996
    assert statement["payout_minor"] == 2996


def test_an_install_priced_in_another_currency_than_the_developers_is_not_paid(
    tmp_path: Path, fake: FakeStripe, seed: Callable[[Path, str | None], None]
) -> None:
    seed(tmp_path / "wh", account_for(fake))
    conn = connect_with_schema(tmp_path / "wh")
    conn.cursor().execute(
        f"UPDATE {INSTALLS.fqn(conn.database)} SET DEVELOPER_CURRENCY = 'USD' WHERE PARTNER_ID = 'sunrise-telecom'"
    )
    conn.close()
    ((result),) = run(tmp_path, fake).developers
    assert result.status == job.FAILED
    assert "sunrise-telecom/calsync was priced in USD, the developer is paid in EUR" in result.reason
    assert fake.transfers == []
