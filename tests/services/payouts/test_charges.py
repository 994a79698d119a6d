"""Partners' integration charges on their statements: each install active in the month is a line (minus its price
in the partner's currency), deducted from the payout; more charges than payout is a debt carried like any other."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from foundation.errors import InputError
from foundation.warehouse_schema import INSTALLS, install_merge_statement
from services import warehouse
from services.payouts import job, money
from services.payouts.statements import LocalStatements
from tests.services.payouts_harness import ROOT, gateway, seed, seed_terms, terms_of, usage_row
from tests.services.stripe_fake import FakeStripe

PERIOD = "2026-10"
ACME = ROOT / "partners/acme-voice.yaml"  # EUR, professional: 1003 min x 0.015 -> gross 1504, share 0.30 -> 451


def setup(wh: Path, fake: FakeStripe, price: int) -> None:
    seed(wh, [usage_row("acme-voice", PERIOD, 1003, "0.015", "EUR", "professional")])
    account = gateway(fake).create_account("acme-voice", "US", "USD", "ops@x.example")["id"]
    fake.complete_onboarding(account)
    seed_terms(wh, [terms_of(ACME, account)])
    conn = warehouse.connect(f"local:{wh}")
    try:
        warehouse.ensure_schema(conn)  # the connection's schema, as every writer's has it
        row = {
            "INSTALL_ID": "acme-voice/calsync",
            "PARTNER_ID": "acme-voice",
            "INTEGRATION_ID": "calsync",
            "DEVELOPER_ID": "tempo-labs",
            "CURRENCY": "EUR",
            "MINOR_UNITS": 2,
            "MONTHLY_MINOR": price,
            "DEVELOPER_CURRENCY": "EUR",
            "DEVELOPER_MONTHLY_MINOR": price,
        }
        conn.cursor().execute(install_merge_statement(conn.database, [row]))
        conn.cursor().execute(f"UPDATE {INSTALLS.fqn(conn.database)} SET INSTALLED_ON = '2026-10-20'")
    finally:
        conn.close()


def run(wh: Path, store: Path, fake: FakeStripe, period: str = PERIOD) -> job.Report:
    conn = warehouse.connect(f"local:{wh}")
    try:
        return job.run_payouts(conn=conn, period=period, store=LocalStatements(store), gateway=gateway(fake))
    finally:
        conn.close()


def stored(store: Path, period: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((store / period / "acme-voice.json").read_text())
    return data


def test_an_install_is_a_line_deducted_from_the_payout(tmp_path: Path, fake: FakeStripe) -> None:
    setup(tmp_path / "wh", fake, 100)
    report = run(tmp_path / "wh", tmp_path / "st", fake)
    assert [(o.partner, o.status, o.due_minor) for o in report.outcomes] == [("acme-voice", job.PAID, 351)]
    statement = stored(tmp_path / "st", PERIOD)
    assert statement["payout_minor"] == 451
    assert statement["adjustments"] == [
        {"kind": "integration", "amount_minor": -100, "reason": "integration calsync: 1.00 EUR a month"}
    ]
    assert [t["amount"] for t in fake.transfers] == [351]


def test_charges_above_the_payout_are_a_debt_carried_into_later_months(tmp_path: Path, fake: FakeStripe) -> None:
    setup(tmp_path / "wh", fake, 900)
    october = run(tmp_path / "wh", tmp_path / "st", fake)
    assert [(o.status, o.due_minor) for o in october.outcomes] == [(job.CARRIED, -449)]
    # November: no usage, the install still active: a statement for the charge, taking October's debt.
    november = run(tmp_path / "wh", tmp_path / "st", fake, period="2026-11")
    assert {o.period: o.status for o in november.outcomes}["2026-11"] == job.CARRIED
    lines = stored(tmp_path / "st", "2026-11")["adjustments"]
    assert [(li["kind"], li["amount_minor"]) for li in lines] == [("carry", -449), ("integration", -900)]
    assert stored(tmp_path / "st", "2026-11")["due_minor"] == -1349 and not fake.transfers


def test_an_operator_cannot_give_integration_lines(tmp_path: Path) -> None:
    path = tmp_path / "adjustments.yaml"
    path.write_text(
        "period: 2026-10\nadjustments: [{partner: acme-voice, currency: EUR, kind: integration, amount_minor: -5, "
        "reason: x}]\n"
    )
    with pytest.raises(InputError) as refused:
        money.load_adjustments(path, PERIOD)
    assert "not from a file" in str(refused.value.problems)


def test_a_partner_with_installs_and_no_calls_is_charged(tmp_path: Path, fake: FakeStripe) -> None:
    """A partner with an install active in the month and no usage (and no statement yet) was never looked at: its
    developer was paid its share and the partner charged nothing. Its month is stated with the charge as a debt."""
    from tests.services.payouts_harness import seed_terms

    setup(tmp_path / "wh", fake, 100)
    seed_terms(tmp_path / "wh", [terms_of(ROOT / "partners/sunrise-telecom.yaml", None)])
    conn = warehouse.connect(f"local:{tmp_path / 'wh'}")
    try:
        warehouse.ensure_schema(conn)
        row = {
            "INSTALL_ID": "sunrise-telecom/calsync",
            "PARTNER_ID": "sunrise-telecom",
            "INTEGRATION_ID": "calsync",
            "DEVELOPER_ID": "tempo-labs",
            "CURRENCY": "USD",
            "MINOR_UNITS": 2,
            "MONTHLY_MINOR": 1000,
            "DEVELOPER_CURRENCY": "EUR",
            "DEVELOPER_MONTHLY_MINOR": 900,
        }
        conn.cursor().execute(install_merge_statement(conn.database, [row]))
        conn.cursor().execute(f"UPDATE {INSTALLS.fqn(conn.database)} SET INSTALLED_ON = '2026-10-02'")
    finally:
        conn.close()
    report = run(tmp_path / "wh", tmp_path / "st", fake)
    assert [(o.partner, o.status) for o in report.outcomes] == [
        ("acme-voice", job.PAID),
        ("sunrise-telecom", job.CARRIED),
    ]
    statement = json.loads((tmp_path / "st" / PERIOD / "sunrise-telecom.json").read_text())
    assert (statement["currency"], statement["gross_minor"], statement["due_minor"]) == ("USD", 0, -1000)
    assert [a["kind"] for a in statement["adjustments"]] == ["integration"]
    assert [t["amount"] for t in fake.transfers] == [351]


def test_a_charge_priced_in_another_currency_is_never_deducted_as_the_statement_s(
    tmp_path: Path, fake: FakeStripe
) -> None:
    """A partner's `up` after a billing.currency change reprices its INSTALLS rows at once (EUR 1.00 -> JPY 160),
    while its PARTNERS row keeps EUR until next month: the EUR statement deducted 160 as EUR cents and paid 2.91.
    Now the month is not paid (failed, said, retried by later runs), nothing sent."""
    setup(tmp_path / "wh", fake, 100)
    conn = warehouse.connect(f"local:{tmp_path / 'wh'}")
    try:
        warehouse.ensure_schema(conn)
        repriced = "CURRENCY = 'JPY', MINOR_UNITS = 0, MONTHLY_MINOR = 160"
        conn.cursor().execute(f"UPDATE {INSTALLS.fqn(conn.database)} SET {repriced}")
    finally:
        conn.close()
    report = run(tmp_path / "wh", tmp_path / "st", fake)
    ((outcome),) = report.outcomes
    assert (outcome.partner, outcome.status) == ("acme-voice", job.FAILED)
    assert "priced in JPY on a EUR statement" in outcome.reason and report.not_paid
    assert not fake.transfers
