"""The payouts job against the real stripe client and a loopback Stripe fake: known answers, exactly once, faults."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from partners.spec import load_spec
from partners.tiers import load_tiers
from services import warehouse
from services.payouts import job
from services.payouts.statements import LocalStatements
from tests.services.payouts_harness import ROOT, gateway, seed, usage_row
from tests.services.stripe_fake import FakeStripe, StripeServer

PERIOD = "2026-10"
SPECS = {
    "acme-voice": load_spec(ROOT / "partners/acme-voice.yaml"),  # EUR, professional: 0.015/min, share 0.30
    "sakura-calls": load_spec(ROOT / "partners/sakura-calls.yaml"),  # JPY, enterprise: 1.5/min, share 0.40
    "pampas-voz": load_spec(ROOT / "partners/examples/pampas-voz.yaml"),  # BRL, starter: 0.11/min, share 0.20
}
KNOWN = {
    # partner: (minutes, gross_minor, payout_minor)
    "acme-voice": (1003, 1504, 451),  # 15.045 EUR: half a cent, to even; 1504 x 0.30 = 451.2
    "sakura-calls": (335, 502, 200),  # 502.5 JPY: half a yen, to even; 502 x 0.40 = 200.8
    "pampas-voz": (1234, 13574, 2714),  # 135.74 BRL; 13574 x 0.20 = 2714.8
}


@pytest.fixture
def fake() -> Iterator[FakeStripe]:
    with StripeServer() as server:
        yield server


@pytest.fixture
def wh(tmp_path: Path) -> Path:
    rows = [usage_row("acme-voice", PERIOD, 1000, "0.015", "EUR", "professional")]
    rows += [usage_row("acme-voice", PERIOD, 1, "0.015", "EUR", "professional") for _ in range(3)]
    rows += [usage_row("sakura-calls", PERIOD, 300, "1.5", "JPY", "enterprise")]
    rows += [usage_row("sakura-calls", PERIOD, 35, "1.5", "JPY", "enterprise")]
    rows += [usage_row("pampas-voz", PERIOD, 1234, "0.11", "BRL", "starter")]
    rows += [usage_row("acme-voice", "2026-09", 77, "0.015", "EUR", "professional")]  # another period
    seed(tmp_path / "wh", rows)
    return tmp_path / "wh"


def accounts(fake: FakeStripe, *partners: str) -> dict[str, str]:
    gw = gateway(fake)
    return {p: gw.create_account(p, "DE", SPECS[p].billing.currency, "ops@x.example")["id"] for p in partners}


def run(
    wh: Path, store: Path, fake: FakeStripe | None, acct: dict[str, str], dry: bool = False, **kw: Any
) -> job.Report:
    partners = kw.pop("partners", list(SPECS.values()))
    # A subset stands for one region's run: other partners' usage is not this run's business.
    kw.setdefault("region", None if len(partners) == len(SPECS) else "subset")
    conn = warehouse.connect(f"local:{wh}")
    try:
        return job.run_payouts(
            conn=conn,
            period=kw.pop("period", PERIOD),
            partners=partners,
            tiers=load_tiers(),
            accounts=lambda: acct,
            store=LocalStatements(store),
            gateway=gateway(fake) if fake else None,
            dry_run=dry,
            **kw,
        )
    finally:
        conn.close()


def statuses(report: job.Report) -> dict[str, str]:
    return {o.partner: o.status for o in report.outcomes}


def test_known_answers_and_exactly_once(wh: Path, tmp_path: Path, fake: FakeStripe) -> None:
    acct = accounts(fake, *SPECS)
    report = run(wh, tmp_path / "st", fake, acct)
    assert statuses(report) == dict.fromkeys(SPECS, job.PAID)
    assert not report.not_paid
    for partner, (minutes, gross, payout) in KNOWN.items():
        statement = json.loads((tmp_path / "st" / PERIOD / f"{partner}.json").read_text())
        assert list(statement) == [
            "partner",
            "period",
            "currency",
            "minutes",
            "rate",
            "gross_minor",
            "share",
            "payout_minor",
            "adjustments",
            "transfer",
        ]
        assert (statement["minutes"], statement["gross_minor"], statement["payout_minor"]) == (minutes, gross, payout)
        assert statement["transfer"]["amount_minor"] == payout
        assert statement["transfer"]["idempotency_key"] == f"payout:{partner}:{PERIOD}"
    assert {t["metadata"]["partner"]: t["amount"] for t in fake.transfers} == {p: k[2] for p, k in KNOWN.items()}
    assert {t["currency"] for t in fake.transfers} == {"eur", "jpy", "brl"}
    assert all(t["transfer_group"] == PERIOD for t in fake.transfers)
    assert json.loads((tmp_path / "st" / PERIOD / "sakura-calls.json").read_text())["rate"] == "1.5"

    again = run(wh, tmp_path / "st", fake, acct)
    assert statuses(again) == dict.fromkeys(SPECS, job.ALREADY_PAID)
    assert len(fake.transfers) == 3
    assert not [r for r in fake.requests if r[0] == "POST" and r[1] == "/v1/transfers" and r is not None][3:]


@pytest.mark.parametrize("fault", ["500_after_commit", "drop_after_commit", "429", "500"])
def test_faults_on_the_transfer_yield_one_transfer(wh: Path, tmp_path: Path, fake: FakeStripe, fault: str) -> None:
    acct = accounts(fake, "acme-voice")
    fake.inject("transfers", fault)
    report = run(wh, tmp_path / "st", fake, acct, partners=[SPECS["acme-voice"]])
    assert statuses(report) == {"acme-voice": job.PAID}
    assert len(fake.transfers) == 1 and fake.transfers[0]["amount"] == 451
    posts = [r for r in fake.requests if r[:2] == ("POST", "/v1/transfers")]
    assert len(posts) == 2 and {r[2] for r in posts} == {f"payout:acme-voice:{PERIOD}"}


def test_crash_between_transfer_and_statement_is_repaired(wh: Path, tmp_path: Path, fake: FakeStripe) -> None:
    acct = accounts(fake, "acme-voice")
    # The transfer is made (as by a run that died before writing its statement), no statement exists.
    gateway(fake).create_transfer("acme-voice", PERIOD, acct["acme-voice"], 451, "EUR")
    fake.idempotent.clear()  # and its key has expired (24 h later): only the lookup can find it
    report = run(wh, tmp_path / "st", fake, acct, partners=[SPECS["acme-voice"]])
    assert statuses(report) == {"acme-voice": job.REPAIRED}
    assert len(fake.transfers) == 1
    statement = json.loads((tmp_path / "st" / PERIOD / "acme-voice.json").read_text())
    assert statement["transfer"]["id"] == fake.transfers[0]["id"]


def test_stripe_down_writes_nothing_and_the_rerun_pays_once(wh: Path, tmp_path: Path, fake: FakeStripe) -> None:
    acct = accounts(fake, "acme-voice")
    # The transfer is committed, then every retry the client makes meets an outage.
    fake.inject("transfers", "drop_after_commit", "500", "500")
    report = run(wh, tmp_path / "st", fake, acct, partners=[SPECS["acme-voice"]])
    assert statuses(report) == {"acme-voice": job.FAILED}
    assert not (tmp_path / "st" / PERIOD / "acme-voice.json").exists()
    fake.faults.clear()
    report = run(wh, tmp_path / "st", fake, acct, partners=[SPECS["acme-voice"]])
    assert statuses(report) == {"acme-voice": job.REPAIRED}
    assert len(fake.transfers) == 1


def test_no_account_and_below_minimum_are_carried(wh: Path, tmp_path: Path, fake: FakeStripe) -> None:
    acct = accounts(fake, "acme-voice")
    seed(wh, [usage_row("sakura-calls", "2026-11", 10, "1.5", "JPY", "enterprise")])  # 15 yen -> 6 < 50
    report = run(wh, tmp_path / "st", fake, acct)
    assert statuses(report) == {"acme-voice": job.PAID, "pampas-voz": job.CARRIED, "sakura-calls": job.CARRIED}
    assert {o.partner for o in report.not_paid} == {"pampas-voz", "sakura-calls"}
    assert "billing connect sakura-calls" in next(o.reason for o in report.outcomes if o.partner == "sakura-calls")
    assert len(fake.transfers) == 1
    carried = json.loads((tmp_path / "st" / PERIOD / "sakura-calls.json").read_text())
    assert carried["transfer"] is None and carried["payout_minor"] == 200

    acct.update(accounts(fake, "sakura-calls"))
    november = run(wh, tmp_path / "st", fake, acct, period="2026-11", partners=[SPECS["sakura-calls"]])
    statement = november.outcomes[0].statement
    assert statement["payout_minor"] == 6  # floor(15 x 0.40)
    assert statement["adjustments"] == [
        {"kind": "carry", "amount_minor": 200, "reason": f"not paid in {PERIOD}, carried"}
    ]
    assert november.outcomes[0].status == job.PAID and fake.transfers[-1]["amount"] == 206
    # October is settled through November: paying it again is refused.
    october = run(wh, tmp_path / "st", fake, acct, partners=[SPECS["sakura-calls"]])
    assert statuses(october) == {"sakura-calls": job.CARRIED}
    assert len(fake.transfers) == 2


def test_dry_run_calls_and_writes_nothing(wh: Path, tmp_path: Path, fake: FakeStripe) -> None:
    acct = accounts(fake, *SPECS)
    before = list(fake.requests)
    report = run(wh, tmp_path / "st", None, acct, dry=True)
    assert statuses(report) == dict.fromkeys(SPECS, job.WOULD_PAY)
    assert fake.requests == before and not fake.transfers
    assert not (tmp_path / "st").exists()
    assert report.outcomes[0].statement["gross_minor"] == 1504


def test_late_usage_after_payment_is_a_warning_not_a_second_transfer(
    wh: Path, tmp_path: Path, fake: FakeStripe
) -> None:
    acct = accounts(fake, "acme-voice")
    run(wh, tmp_path / "st", fake, acct, partners=[SPECS["acme-voice"]])
    seed(wh, [usage_row("acme-voice", PERIOD, 500, "0.015", "EUR", "professional")])
    report = run(wh, tmp_path / "st", fake, acct, partners=[SPECS["acme-voice"]])
    (outcome,) = report.outcomes
    assert outcome.status == job.ALREADY_PAID and "correction" in outcome.warnings[0]
    assert len(fake.transfers) == 1


def test_two_currencies_in_one_period_are_refused(wh: Path, tmp_path: Path, fake: FakeStripe) -> None:
    from foundation.errors import PlatformError

    seed(wh, [usage_row("acme-voice", PERIOD, 5, "0.02", "USD", "professional")])
    with pytest.raises(PlatformError, match="EUR, USD"):
        run(wh, tmp_path / "st", fake, {}, partners=[SPECS["acme-voice"]])
    assert not fake.requests


def test_a_transfer_to_an_earlier_account_is_never_paid_again(wh: Path, tmp_path: Path, fake: FakeStripe) -> None:
    first = accounts(fake, "acme-voice")
    # Paid to the first account by a run that died before its statement; then the partner was reconnected.
    gateway(fake).create_transfer("acme-voice", PERIOD, first["acme-voice"], 451, "EUR")
    fake.idempotent.clear()  # 24 h later: the key has expired
    fake.accounts.clear()
    second = accounts(fake, "acme-voice")
    assert second["acme-voice"] != first["acme-voice"]
    report = run(wh, tmp_path / "st", fake, second, partners=[SPECS["acme-voice"]])
    assert statuses(report) == {"acme-voice": job.FAILED}
    assert "already paid, nothing sent" in report.outcomes[0].reason
    assert len(fake.transfers) == 1 and not (tmp_path / "st" / PERIOD / "acme-voice.json").exists()
