"""The payouts job against the embedded warehouse (terms in PARTNERS, usage in USAGE_EVENTS), the real stripe client
and the loopback Stripe fake: known answers, exactly once, held and failed months retried, carries, Stripe's answers
checked."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from foundation.errors import InputError
from services import warehouse
from services.payouts import job
from services.payouts.statements import LocalStatements
from tests.services.payouts_harness import ROOT, copy_warehouse, gateway, seed, seed_terms, terms_of, usage_row
from tests.services.stripe_fake import FakeStripe

PERIOD = "2026-10"
SPECS = {
    "acme-voice": ROOT / "partners/acme-voice.yaml",  # EUR, professional: 0.015/min, share 0.30
    "sakura-calls": ROOT / "partners/sakura-calls.yaml",  # JPY, enterprise: 1.5/min, share 0.40
    "pampas-voz": ROOT / "partners/examples/pampas-voz.yaml",  # BRL, starter: 0.11/min, share 0.20
}
KNOWN = {
    # partner: (minutes, gross_minor, payout_minor)
    "acme-voice": (1003, 1504, 451),  # 15.045 EUR: half a cent, to even; 1504 x 0.30 = 451.2
    "sakura-calls": (335, 502, 200),  # 502.5 JPY: half a yen, to even; 502 x 0.40 = 200.8
    "pampas-voz": (1234, 13574, 2714),  # 135.74 BRL; 13574 x 0.20 = 2714.8
}


SPREAD_OVER_WORKERS = True
"""The module fixture below is a cheap seed (a fraction of a second): each pytest-xdist worker makes its own."""


@pytest.fixture(scope="module")
def october(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The warehouse every `wh` starts from, seeded once per module. Never opened after this: each test changes its
    own copy (`wh`), so no test sees another's rows, terms or schema."""
    directory = tmp_path_factory.mktemp("october") / "wh"
    rows = [usage_row("acme-voice", PERIOD, 1000, "0.015", "EUR", "professional")]
    rows += [usage_row("acme-voice", PERIOD, 1, "0.015", "EUR", "professional") for _ in range(3)]
    rows += [usage_row("sakura-calls", PERIOD, 300, "1.5", "JPY", "enterprise")]
    rows += [usage_row("sakura-calls", PERIOD, 35, "1.5", "JPY", "enterprise")]
    rows += [usage_row("pampas-voz", PERIOD, 1234, "0.11", "BRL", "starter")]
    rows += [usage_row("acme-voice", "2026-12", 77, "0.015", "EUR", "professional")]  # a later period
    seed(directory, rows)
    seed_terms(directory, [terms_of(path) for path in SPECS.values()])
    return directory


@pytest.fixture
def wh(october: Path, tmp_path: Path) -> Path:
    """This test's own warehouse: October's usage of the three partners (and 77 minutes of a later period), their
    terms without accounts."""
    return copy_warehouse(october, tmp_path / "wh")


def connect(wh: Path, fake: FakeStripe, *partners: str, onboarded: bool = True) -> dict[str, str]:
    """Open each partner's account (as `billing connect` does), finish its onboarding, record it in PARTNERS."""
    gw = gateway(fake)
    accounts = {}
    for partner in partners:
        account = gw.create_account(partner, "US", "USD", "ops@x.example")["id"]
        if onboarded:
            fake.complete_onboarding(account)
        accounts[partner] = account
    seed_terms(wh, [terms_of(SPECS[p], accounts[p]) for p in partners])
    return accounts


def run(wh: Path, store: Path, fake: FakeStripe | None, dry: bool = False, **kw: Any) -> job.Report:
    conn = warehouse.connect(f"local:{wh}")
    try:
        return job.run_payouts(
            conn=conn,
            period=kw.pop("period", PERIOD),
            store=LocalStatements(store),
            gateway=gateway(fake) if fake else None,
            dry_run=dry,
            **kw,
        )
    finally:
        conn.close()


def statuses(report: job.Report) -> dict[tuple[str, str], str]:
    return {(o.partner, o.period): o.status for o in report.outcomes}


def stored(store: Path, period: str, partner: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((store / period / f"{partner}.json").read_text())
    return data


def test_known_answers_and_exactly_once(wh: Path, tmp_path: Path, fake: FakeStripe) -> None:
    connect(wh, fake, *SPECS)
    report = run(wh, tmp_path / "st", fake)
    assert statuses(report) == {(p, PERIOD): job.PAID for p in SPECS}
    assert not report.not_paid
    for partner, (minutes, gross, payout) in KNOWN.items():
        statement = stored(tmp_path / "st", PERIOD, partner)
        assert (statement["minutes"], statement["gross_minor"], statement["payout_minor"]) == (minutes, gross, payout)
        assert statement["status"] == "paid" and statement["transfer"]["amount_minor"] == payout
        assert statement["transfer"]["idempotency_key"] == f"payout:{partner}:{PERIOD}"
    assert {t["metadata"]["partner"]: t["amount"] for t in fake.transfers} == {p: k[2] for p, k in KNOWN.items()}
    assert {t["currency"] for t in fake.transfers} == {"eur", "jpy", "brl"}
    assert stored(tmp_path / "st", PERIOD, "sakura-calls")["rate"] == "1.5"

    again = run(wh, tmp_path / "st", fake)
    assert statuses(again) == {(p, PERIOD): job.ALREADY_PAID for p in SPECS}
    assert len(fake.transfers) == 3


def test_gross_is_the_warehouse_view_not_a_sum_of_event_amounts(wh: Path, tmp_path: Path, fake: FakeStripe) -> None:
    # An event whose AMOUNT column disagrees with MINUTES x RATE: the statement follows GROSS_MINOR (minutes x rate).
    row = usage_row("acme-voice", PERIOD, 100, "0.015", "EUR", "professional")
    row["AMOUNT"] = "999"
    seed(wh, [row])
    report = run(wh, tmp_path / "st", None, dry=True)
    (acme,) = [o for o in report.outcomes if o.partner == "acme-voice"]
    assert acme.statement["gross_minor"] == 1654  # 1103 x 0.015 = 16.545 EUR -> 1654 (half to even)


@pytest.mark.parametrize("fault", ["500_after_commit", "drop_after_commit", "429", "500"])
def test_faults_on_the_transfer_yield_one_transfer(wh: Path, tmp_path: Path, fake: FakeStripe, fault: str) -> None:
    connect(wh, fake, "acme-voice")
    fake.inject("transfers", fault)
    report = run(wh, tmp_path / "st", fake)
    assert statuses(report)[("acme-voice", PERIOD)] == job.PAID
    acme = [t for t in fake.transfers if t["metadata"]["partner"] == "acme-voice"]
    assert len(acme) == 1 and acme[0]["amount"] == 451
    posts = [r for r in fake.requests if r[:2] == ("POST", "/v1/transfers") and r[2] == f"payout:acme-voice:{PERIOD}"]
    assert len(posts) == 2


def test_crash_between_transfer_and_statement_is_repaired(wh: Path, tmp_path: Path, fake: FakeStripe) -> None:
    accounts = connect(wh, fake, "acme-voice")
    gateway(fake).create_transfer("acme-voice", PERIOD, accounts["acme-voice"], 451, "EUR")
    fake.idempotent.clear()  # and its key has expired (24 h later): only the lookup can find it
    report = run(wh, tmp_path / "st", fake)
    assert statuses(report)[("acme-voice", PERIOD)] == job.REPAIRED
    assert len([t for t in fake.transfers if t["metadata"]["partner"] == "acme-voice"]) == 1
    assert stored(tmp_path / "st", PERIOD, "acme-voice")["transfer"]["id"] == fake.transfers[0]["id"]


def test_a_failed_month_is_recorded_and_paid_once_by_the_next_months_run(
    wh: Path, tmp_path: Path, fake: FakeStripe
) -> None:
    connect(wh, fake, "acme-voice")
    # The transfer is committed, then every retry the client makes meets an outage.
    fake.inject("transfers", "drop_after_commit", "500", "500")
    report = run(wh, tmp_path / "st", fake)
    assert statuses(report)[("acme-voice", PERIOD)] == job.FAILED
    assert ("acme-voice", PERIOD) in {(o.partner, o.period) for o in report.not_paid}
    failed = stored(tmp_path / "st", PERIOD, "acme-voice")
    assert failed["status"] == "failed" and failed["transfer"] is None and "Stripe" in failed["reason"]
    fake.faults.clear()
    # November's run (no November usage for acme-voice) settles October: the transfer Stripe made is found.
    november = run(wh, tmp_path / "st", fake, period="2026-11")
    assert statuses(november)[("acme-voice", PERIOD)] == job.REPAIRED
    assert len([t for t in fake.transfers if t["metadata"]["partner"] == "acme-voice"]) == 1
    assert stored(tmp_path / "st", PERIOD, "acme-voice")["status"] == "paid"


def test_held_until_onboarded_then_paid_by_a_later_run_exactly_once(wh: Path, tmp_path: Path, fake: FakeStripe) -> None:
    connect(wh, fake, "sakura-calls", onboarded=False)
    report = run(wh, tmp_path / "st", fake)
    held = {o.partner: o for o in report.outcomes if o.status == job.HELD}
    assert set(held) == set(SPECS)  # the two others: no account at all
    assert "capabilities.transfers: inactive" in held["sakura-calls"].reason
    assert "--link" in held["sakura-calls"].reason
    assert "billing connect pampas-voz" in held["pampas-voz"].reason
    assert {o.partner for o in report.not_paid} == set(SPECS)
    statement = stored(tmp_path / "st", PERIOD, "sakura-calls")
    assert statement["status"] == "held" and "onboarding" in statement["reason"] and statement["transfer"] is None
    assert not fake.transfers

    again = run(wh, tmp_path / "st", fake, period="2026-11")  # still not onboarded: still held, nothing dropped
    assert statuses(again)[("sakura-calls", PERIOD)] == job.HELD

    (account,) = [a for a, v in fake.accounts.items() if v["metadata"]["partner"] == "sakura-calls"]
    fake.complete_onboarding(account)
    later = run(wh, tmp_path / "st", fake, period="2026-11")
    assert statuses(later)[("sakura-calls", PERIOD)] == job.PAID
    (transfer,) = fake.transfers
    assert (transfer["amount"], transfer["transfer_group"]) == (200, PERIOD)
    assert ("POST", "/v1/transfers", f"payout:sakura-calls:{PERIOD}") in fake.requests
    assert stored(tmp_path / "st", PERIOD, "sakura-calls")["status"] == "paid"
    assert statuses(run(wh, tmp_path / "st", fake, period="2026-11")).get(("sakura-calls", PERIOD)) is None
    assert len(fake.transfers) == 1


def test_small_amounts_carry_into_the_first_unstated_period_whatever_order_periods_run(
    wh: Path, tmp_path: Path, fake: FakeStripe
) -> None:
    connect(wh, fake, "acme-voice")
    # May: 100 min = 1.50 EUR -> 45 cents, below Stripe's 50; June: 1003 min -> 451.
    seed(wh, [usage_row("acme-voice", "2026-05", 100, "0.015", "EUR", "professional")])
    seed(wh, [usage_row("acme-voice", "2026-06", 1003, "0.015", "EUR", "professional")])
    june = run(wh, tmp_path / "st", fake, period="2026-06")  # June first: May is settled by the same run
    assert statuses(june) == {("acme-voice", "2026-05"): job.CARRIED, ("acme-voice", "2026-06"): job.PAID}
    assert stored(tmp_path / "st", "2026-06", "acme-voice")["adjustments"] == [
        {"kind": "carry", "amount_minor": 45, "reason": "not paid in 2026-05, carried"}
    ]
    assert stored(tmp_path / "st", "2026-05", "acme-voice")["followups"] == [
        {"into": "2026-06", "amount_minor": 45, "kind": "carry"}
    ]
    may = run(wh, tmp_path / "st", fake, period="2026-05")
    assert statuses(may) == {("acme-voice", "2026-05"): job.CARRIED}
    assert [t["amount"] for t in fake.transfers] == [496]  # 451 + 45, once

    october = run(wh, tmp_path / "st", fake)
    assert statuses(october)[("acme-voice", PERIOD)] == job.PAID
    assert [t["amount"] for t in fake.transfers] == [496, 451]  # nothing of May or June again


def test_a_carry_never_lands_on_a_statement_already_made(wh: Path, tmp_path: Path, fake: FakeStripe) -> None:
    connect(wh, fake, "acme-voice")
    seed(wh, [usage_row("acme-voice", "2026-06", 1003, "0.015", "EUR", "professional")])
    run(wh, tmp_path / "st", fake, period="2026-06")  # June stated and paid before May's usage is known
    seed(wh, [usage_row("acme-voice", "2026-05", 100, "0.015", "EUR", "professional")])
    may = run(wh, tmp_path / "st", fake, period="2026-05")
    (carried,) = [o for o in may.outcomes if o.status == job.CARRIED and o.statement]
    assert carried.period == "2026-05"
    assert stored(tmp_path / "st", "2026-06", "acme-voice")["adjustments"] == []  # June untouched
    october = run(wh, tmp_path / "st", fake)  # the first new statement takes May's 45
    assert stored(tmp_path / "st", PERIOD, "acme-voice")["adjustments"][0]["amount_minor"] == 45
    assert [t["amount"] for t in fake.transfers] == [451, 496]
    assert statuses(october)[("acme-voice", PERIOD)] == job.PAID


def test_late_usage_in_a_paid_month_is_a_line_on_the_next_statement(wh: Path, tmp_path: Path, fake: FakeStripe) -> None:
    connect(wh, fake, "acme-voice")
    run(wh, tmp_path / "st", fake)
    seed(wh, [usage_row("acme-voice", PERIOD, 500, "0.015", "EUR", "professional")])  # late events for October
    rerun = run(wh, tmp_path / "st", fake)
    assert statuses(rerun)[("acme-voice", PERIOD)] == job.ALREADY_PAID
    assert "go onto the next new statement" in rerun.outcomes[0].reason
    seed(wh, [usage_row("acme-voice", "2026-11", 1000, "0.015", "EUR", "professional")])
    november = run(wh, tmp_path / "st", fake, period="2026-11")
    statement = stored(tmp_path / "st", "2026-11", "acme-voice")
    # October now: 1503 min -> 22.545 EUR -> 2254 -> 676; 451 paid: 225 more. November: 1500 -> 450.
    assert statement["adjustments"] == [
        {"kind": "late_usage", "amount_minor": 225, "reason": f"usage metered into {PERIOD} after its statement"}
    ]
    assert statuses(november)[("acme-voice", "2026-11")] == job.PAID
    assert [t["amount"] for t in fake.transfers if t["metadata"]["partner"] == "acme-voice"] == [451, 675]
    run(wh, tmp_path / "st", fake, period="2026-11")
    assert len([t for t in fake.transfers if t["metadata"]["partner"] == "acme-voice"]) == 2


def test_two_currencies_fail_only_that_partner(wh: Path, tmp_path: Path, fake: FakeStripe) -> None:
    connect(wh, fake, *SPECS)
    seed(wh, [usage_row("acme-voice", PERIOD, 5, "0.02", "USD", "professional")])
    report = run(wh, tmp_path / "st", fake)
    assert statuses(report) == {
        ("acme-voice", PERIOD): job.FAILED,
        ("sakura-calls", PERIOD): job.PAID,
        ("pampas-voz", PERIOD): job.PAID,
    }
    (failed,) = report.not_paid
    assert "EUR and USD" in failed.reason
    assert {t["metadata"]["partner"] for t in fake.transfers} == {"sakura-calls", "pampas-voz"}
    assert statuses(run(wh, tmp_path / "st", fake, period="2026-11"))[("acme-voice", PERIOD)] == job.FAILED


def test_usage_is_paid_where_it_was_metered_and_usage_without_terms_is_reported(
    wh: Path, tmp_path: Path, fake: FakeStripe
) -> None:
    # acme-voice has moved its home to another region since; ghost-calls has no PARTNERS row in this warehouse.
    accounts = connect(wh, fake, "acme-voice")
    seed_terms(wh, [terms_of(SPECS["acme-voice"], accounts["acme-voice"], HOME_REGION="us-east")])
    seed(wh, [usage_row("ghost-calls", PERIOD, 60, "0.015", "EUR", "professional")])
    report = run(wh, tmp_path / "st", fake, region="eu-central")
    assert statuses(report)[("acme-voice", PERIOD)] == job.PAID
    assert statuses(report)[("ghost-calls", PERIOD)] == job.FAILED
    ghost = next(o for o in report.outcomes if o.partner == "ghost-calls")
    assert "no PARTNERS row" in ghost.reason and ghost in report.not_paid
    assert report.as_dict()["not_paid"] == ["ghost-calls", "pampas-voz", "sakura-calls"]
    assert statuses(run(wh, tmp_path / "st", fake, region="eu-central"))[("ghost-calls", PERIOD)] == job.FAILED


@pytest.mark.parametrize(
    ("fault", "needle"),
    [("other_currency", "currency 'usd'"), ("other_amount", "amount 452"), ("no_destination", "destination None")],
)
def test_a_transfer_answer_that_is_not_the_request_is_a_failed_payout(
    wh: Path, tmp_path: Path, fake: FakeStripe, fault: str, needle: str
) -> None:
    connect(wh, fake, "acme-voice")
    fake.inject("transfers", fault)
    report = run(wh, tmp_path / "st", fake)
    outcome = next(o for o in report.outcomes if o.partner == "acme-voice")
    assert outcome.status == job.FAILED and needle in outcome.reason and outcome in report.not_paid
    statement = stored(tmp_path / "st", PERIOD, "acme-voice")
    assert statement["status"] == "failed" and statement["transfer"] is None
    assert statement["stripe_answer"]["id"] == fake.transfers[0]["id"]
    again = run(wh, tmp_path / "st", fake)  # the lookup finds the same wrong transfer: still failed, nothing sent
    assert statuses(again)[("acme-voice", PERIOD)] == job.FAILED
    assert len(fake.transfers) == 1


def test_a_transfer_to_an_earlier_account_is_never_paid_again(wh: Path, tmp_path: Path, fake: FakeStripe) -> None:
    first = connect(wh, fake, "acme-voice")
    gateway(fake).create_transfer("acme-voice", PERIOD, first["acme-voice"], 451, "EUR")
    fake.idempotent.clear()
    fake.accounts.clear()
    connect(wh, fake, "acme-voice")  # reconnected to a new account
    report = run(wh, tmp_path / "st", fake)
    outcome = next(o for o in report.outcomes if o.partner == "acme-voice")
    assert outcome.status == job.FAILED and "already paid, nothing sent" in outcome.reason
    assert len(fake.transfers) == 1


def test_a_partners_row_naming_someone_elses_account_pays_nothing_to_it(
    wh: Path, tmp_path: Path, fake: FakeStripe
) -> None:
    accounts = connect(wh, fake, "sakura-calls", "acme-voice")
    seed_terms(wh, [terms_of(SPECS["acme-voice"], accounts["sakura-calls"])])
    report = run(wh, tmp_path / "st", fake)
    acme = next(o for o in report.outcomes if o.partner == "acme-voice")
    assert acme.status == job.FAILED and "'sakura-calls'" in acme.reason
    assert [t["metadata"]["partner"] for t in fake.transfers] == ["sakura-calls"]


def test_bank_transfer_partners_get_a_statement_and_no_transfer(wh: Path, tmp_path: Path, fake: FakeStripe) -> None:
    seed_terms(wh, [terms_of(SPECS["acme-voice"], PAYOUT_METHOD="bank_transfer")])
    report = run(wh, tmp_path / "st", fake)
    assert statuses(report)[("acme-voice", PERIOD)] == job.EXTERNAL
    assert stored(tmp_path / "st", PERIOD, "acme-voice")["transfer"]["method"] == "bank_transfer"
    assert not [t for t in fake.transfers if t["metadata"]["partner"] == "acme-voice"]


def test_dry_run_calls_and_writes_nothing(wh: Path, tmp_path: Path, fake: FakeStripe) -> None:
    connect(wh, fake, *SPECS)
    before = list(fake.requests)
    report = run(wh, tmp_path / "st", None, dry=True)
    assert statuses(report) == {(p, PERIOD): job.WOULD_PAY for p in SPECS}
    assert fake.requests == before and not fake.transfers
    assert not (tmp_path / "st").exists()


@pytest.mark.parametrize(
    ("content", "field"),
    [
        ('{"partner": "acme-voice", "transfer": "tr_1"}', "gross_minor"),
        (
            '{"partner": "acme-voice", "period": "2026-10", "currency": "EUR", "gross_minor": 1, "share": "0.3", '
            '"payout_minor": 0, "transfer": "tr_1", "status": "paid"}',
            "transfer",
        ),
        (
            '{"partner": "acme-voice", "period": "2026-10", "currency": "EUR", "gross_minor": 1, "share": "0.3", '
            '"payout_minor": 0, "adjustments": [{"kind": "credit"}], "status": "held"}',
            "adjustments",
        ),
        ("[1, 2]", "not a JSON statement object"),
        (
            '{"partner": "acme-voice", "period": "2026-10", "currency": "EUR", "gross_minor": 1, "share": "lots", '
            '"payout_minor": 0, "status": "held"}',
            "share",
        ),
        (
            '{"partner": "sakura-calls", "period": "2026-10", "currency": "EUR", "gross_minor": 1, "share": "0.3", '
            '"payout_minor": 0, "status": "paid", "transfer": {"id": "tr_1", "amount_minor": 1}}',
            "not of 'acme-voice'",
        ),
    ],
)
def test_a_statement_of_the_wrong_shape_is_bad_input_naming_the_file(
    wh: Path, tmp_path: Path, fake: FakeStripe, content: str, field: str
) -> None:
    connect(wh, fake, "acme-voice")
    (tmp_path / "st" / PERIOD).mkdir(parents=True)
    (tmp_path / "st" / PERIOD / "acme-voice.json").write_text(content)
    with pytest.raises(InputError) as caught:
        run(wh, tmp_path / "st", fake)
    assert "acme-voice.json" in str(caught.value.problems) and field in str(caught.value.problems)
    assert not fake.transfers


def test_a_debt_is_carried_onto_the_next_new_statement(wh: Path, tmp_path: Path, fake: FakeStripe) -> None:
    from services.payouts.money import AdjustmentLine

    connect(wh, fake, "acme-voice")
    refund = AdjustmentLine(
        partner="acme-voice", currency="EUR", kind="correction", amount_minor=-600, reason="refund R-1"
    )
    october = run(wh, tmp_path / "st", fake, adjustments=[refund])
    assert statuses(october)[("acme-voice", PERIOD)] == job.CARRIED  # 451 - 600 = -149: nothing to transfer
    seed(wh, [usage_row("acme-voice", "2026-11", 2000, "0.015", "EUR", "professional")])  # 30 EUR -> 900
    november = run(wh, tmp_path / "st", fake, period="2026-11")
    assert stored(tmp_path / "st", "2026-11", "acme-voice")["adjustments"] == [
        {"kind": "carry", "amount_minor": -149, "reason": f"not paid in {PERIOD}, carried"}
    ]
    assert statuses(november)[("acme-voice", "2026-11")] == job.PAID
    assert [t["amount"] for t in fake.transfers if t["metadata"]["partner"] == "acme-voice"] == [751]


def test_a_bad_partners_row_fails_only_that_partner(wh: Path, tmp_path: Path, fake: FakeStripe) -> None:
    connect(wh, fake, *SPECS)
    seed_terms(wh, [terms_of(SPECS["pampas-voz"], REVENUE_SHARE="1.5")])
    report = run(wh, tmp_path / "st", fake)
    assert statuses(report)[("pampas-voz", PERIOD)] == job.FAILED
    assert "REVENUE_SHARE" in next(o.reason for o in report.outcomes if o.partner == "pampas-voz")
    assert {t["metadata"]["partner"] for t in fake.transfers} == {"acme-voice", "sakura-calls"}


def test_a_statement_written_before_statuses_existed_is_read_as_it_was_meant(
    wh: Path, tmp_path: Path, fake: FakeStripe
) -> None:
    connect(wh, fake, "acme-voice")
    (tmp_path / "st" / PERIOD).mkdir(parents=True)
    legacy = {
        "partner": "acme-voice",
        "period": PERIOD,
        "currency": "EUR",
        "minutes": 1003,
        "rate": "0.015",
        "gross_minor": 1504,
        "share": "0.30",
        "payout_minor": 451,
        "adjustments": [],
        "transfer": {"id": "tr_old", "amount_minor": 451, "currency": "EUR", "destination": "acct_old"},
    }
    (tmp_path / "st" / PERIOD / "acme-voice.json").write_text(json.dumps(legacy))
    report = run(wh, tmp_path / "st", fake)
    assert statuses(report)[("acme-voice", PERIOD)] == job.ALREADY_PAID
    assert not [t for t in fake.transfers if t["metadata"]["partner"] == "acme-voice"]


def _small_october(tmp_path: Path) -> Path:
    """acme-voice's only usage: October, 100 min = 1.50 EUR -> 45 cents, below Stripe's 50 (carried)."""
    seed(tmp_path / "wh", [usage_row("acme-voice", PERIOD, 100, "0.015", "EUR", "professional")])
    seed_terms(tmp_path / "wh", [terms_of(SPECS["acme-voice"])])
    return tmp_path / "wh"


def test_a_carry_that_no_later_statement_can_take_is_not_paid_exit_1(tmp_path: Path, fake: FakeStripe) -> None:
    wh = _small_october(tmp_path)
    accounts = connect(wh, fake, "acme-voice")
    assert statuses(run(wh, tmp_path / "st", fake)) == {("acme-voice", PERIOD): job.CARRIED}
    quiet = run(wh, tmp_path / "st", fake, period="2026-11")  # an active partner's quiet month: it waits, said
    assert statuses(quiet) == {("acme-voice", PERIOD): job.CARRIED} and not quiet.not_paid
    assert "onto the next new statement" in quiet.outcomes[0].reason
    seed_terms(wh, [terms_of(SPECS["acme-voice"], accounts["acme-voice"], OFFBOARDED_ON="2026-11-20")])
    offboarded = run(wh, tmp_path / "st", fake, period="2026-11")
    (waiting,) = offboarded.not_paid  # no later statement will ever take it: exit 1, said
    assert (waiting.period, waiting.status, waiting.due_minor) == (PERIOD, job.CARRIED, 45)
    assert "NOT paid" in waiting.reason and "offboarded on 2026-11-20" in waiting.reason
    assert not (tmp_path / "st" / "2026-11").exists() and not fake.transfers
    # Finance pays it by bank: the November run states it (a carry-only statement) and it is settled.
    seed_terms(wh, [terms_of(SPECS["acme-voice"], OFFBOARDED_ON="2026-11-20", PAYOUT_METHOD="bank_transfer")])
    settled = run(wh, tmp_path / "st", fake, period="2026-11")
    assert statuses(settled)[("acme-voice", "2026-11")] == job.EXTERNAL and not settled.not_paid
    november = stored(tmp_path / "st", "2026-11", "acme-voice")
    assert (november["minutes"], november["due_minor"], november["currency"]) == (0, 45, "EUR")
    assert november["adjustments"] == [
        {"kind": "carry", "amount_minor": 45, "reason": f"not paid in {PERIOD}, carried"}
    ]
    assert stored(tmp_path / "st", PERIOD, "acme-voice")["followups"] == [
        {"into": "2026-11", "amount_minor": 45, "kind": "carry"}
    ]
    again = run(wh, tmp_path / "st", fake, period="2026-12")
    assert not again.not_paid and not (tmp_path / "st" / "2026-12").exists()


def test_an_open_amount_is_paid_by_the_periods_run_without_usage_in_the_period(
    wh: Path, tmp_path: Path, fake: FakeStripe
) -> None:
    connect(wh, fake, "acme-voice")
    run(wh, tmp_path / "st", fake)
    seed(wh, [usage_row("acme-voice", PERIOD, 500, "0.015", "EUR", "professional")])  # late events for October
    seed_terms(wh, [terms_of(SPECS["acme-voice"], fake.transfers[0]["destination"], OFFBOARDED_ON="2026-11-03")])
    november = run(wh, tmp_path / "st", fake, period="2026-11")  # no November usage: its statement is made for it
    assert statuses(november)[("acme-voice", "2026-11")] == job.PAID
    assert "acme-voice" not in {o.partner for o in november.not_paid}
    statement = stored(tmp_path / "st", "2026-11", "acme-voice")
    assert statement["adjustments"] == [
        {"kind": "late_usage", "amount_minor": 225, "reason": f"usage metered into {PERIOD} after its statement"}
    ]
    assert (statement["gross_minor"], statement["due_minor"], statement["transfer"]["amount_minor"]) == (0, 225, 225)
    acme = [t for t in fake.transfers if t["metadata"]["partner"] == "acme-voice"]
    assert [(t["amount"], t["transfer_group"]) for t in acme] == [(451, PERIOD), (225, "2026-11")]
    assert ("POST", "/v1/transfers", "payout:acme-voice:2026-11") in fake.requests
    for period in ("2026-11", "2026-12"):  # exactly once
        assert "acme-voice" not in {o.partner for o in run(wh, tmp_path / "st", fake, period=period).not_paid}
    assert len([t for t in fake.transfers if t["metadata"]["partner"] == "acme-voice"]) == 2


def _fail_october_after_the_transfer(wh: Path, tmp_path: Path, fake: FakeStripe) -> None:
    """October's transfer (451) is made at Stripe, but every answer is lost: the statement says failed."""
    connect(wh, fake, "acme-voice")
    fake.inject("transfers", "drop_after_commit", "500", "500", "500", "500")
    assert statuses(run(wh, tmp_path / "st", fake))[("acme-voice", PERIOD)] == job.FAILED
    fake.faults.clear()


def test_a_repaired_month_says_what_was_transferred_and_late_usage_goes_on(
    wh: Path, tmp_path: Path, fake: FakeStripe
) -> None:
    _fail_october_after_the_transfer(wh, tmp_path, fake)
    seed(wh, [usage_row("acme-voice", PERIOD, 500, "0.015", "EUR", "professional")])  # late events for October
    repaired = run(wh, tmp_path / "st", fake)
    acme = next(o for o in repaired.outcomes if o.partner == "acme-voice")
    assert acme.status == job.REPAIRED and "225 minor units more (late usage)" in acme.reason
    october = stored(tmp_path / "st", PERIOD, "acme-voice")
    # What was transferred, and the figures that make it: not October's usage as it has grown since.
    assert october["status"] == "paid" and october["transfer"]["amount_minor"] == 451
    assert (october["minutes"], october["gross_minor"], october["payout_minor"], october["due_minor"]) == (
        1003,
        1504,
        451,
        451,
    )
    seed(wh, [usage_row("acme-voice", "2026-11", 1000, "0.015", "EUR", "professional")])
    run(wh, tmp_path / "st", fake, period="2026-11")
    november = stored(tmp_path / "st", "2026-11", "acme-voice")
    assert november["adjustments"] == [
        {"kind": "late_usage", "amount_minor": 225, "reason": f"usage metered into {PERIOD} after its statement"}
    ]
    assert stored(tmp_path / "st", PERIOD, "acme-voice")["followups"] == [
        {"into": "2026-11", "amount_minor": 225, "kind": "late_usage"}
    ]
    assert [t["amount"] for t in fake.transfers if t["metadata"]["partner"] == "acme-voice"] == [451, 675]


def test_a_line_given_after_the_transfer_was_requested_keeps_its_kind_and_reason(
    wh: Path, tmp_path: Path, fake: FakeStripe
) -> None:
    from services.payouts.money import AdjustmentLine

    _fail_october_after_the_transfer(wh, tmp_path, fake)
    credit = AdjustmentLine(partner="acme-voice", currency="EUR", kind="credit", amount_minor=100, reason="goodwill")
    repaired = run(wh, tmp_path / "st", fake, adjustments=[credit])
    assert statuses(repaired)[("acme-voice", PERIOD)] == job.REPAIRED
    october = stored(tmp_path / "st", PERIOD, "acme-voice")
    assert (october["due_minor"], october["transfer"]["amount_minor"], october["adjustments"]) == (451, 451, [])
    assert october["followups"] == [{"into": None, "amount_minor": 100, "kind": "credit", "reason": "goodwill"}]
    again = run(wh, tmp_path / "st", fake, adjustments=[credit])  # the same file again: recorded already, exit 0
    assert statuses(again)[("acme-voice", PERIOD)] == job.ALREADY_PAID
    assert "acme-voice" not in {o.partner for o in again.not_paid}
    seed(wh, [usage_row("acme-voice", "2026-11", 1000, "0.015", "EUR", "professional")])
    run(wh, tmp_path / "st", fake, period="2026-11")
    assert stored(tmp_path / "st", "2026-11", "acme-voice")["adjustments"] == [
        {"kind": "credit", "amount_minor": 100, "reason": "goodwill"}
    ]
    assert stored(tmp_path / "st", PERIOD, "acme-voice")["followups"] == [
        {"into": "2026-11", "amount_minor": 100, "kind": "credit", "reason": "goodwill"}
    ]
    run(wh, tmp_path / "st", fake, period="2026-11")
    assert [t["amount"] for t in fake.transfers if t["metadata"]["partner"] == "acme-voice"] == [451, 550]


def test_a_currency_change_mid_month_meters_the_month_in_the_old_currency_and_pays_both(
    tmp_path: Path, fake: FakeStripe
) -> None:
    import datetime as dt
    import uuid
    from email.utils import format_datetime

    from services.meter.events import call_event
    from services.meter.roster import read_roster

    wh = tmp_path / "wh"
    seed(wh, [])
    seed_terms(wh, [terms_of(SPECS["acme-voice"])])  # EUR
    accounts = connect(wh, fake, "acme-voice")
    # The partner's stack is updated to USD mid-month (today): the MERGE keeps EUR for this month.
    usd = {"CURRENCY": "USD", "MINOR_UNITS": 2, "RATE": "0.016", "BASE_FEE_MINOR": 9900}
    seed_terms(wh, [terms_of(SPECS["acme-voice"], accounts["acme-voice"], **usd)])
    conn = warehouse.connect(f"local:{wh}")
    try:
        partner = read_roster(conn, None)["acme-voice"]
        assert partner.pending is not None
        this_month, following = f"{dt.datetime.now(dt.UTC):%Y-%m}", partner.pending[3]
        rows = []
        for period in (this_month, following):  # 1000 minutes late in this month, 1000 early in the next
            ended = dt.datetime(int(period[:4]), int(period[5:]), 1, tzinfo=dt.UTC) + dt.timedelta(days=1, hours=2)
            if period == this_month:
                ended = dt.datetime(int(period[:4]), int(period[5:]), 28, tzinfo=dt.UTC)
            for _ in range(2):
                form = {
                    "CallSid": "CA" + uuid.uuid4().hex,
                    "CallStatus": "completed",
                    "CallDuration": str(500 * 60),
                    "Timestamp": format_datetime(ended),
                    "To": "+4930123456",
                }
                event = call_event(partner, form, ended + dt.timedelta(minutes=1))
                rows.append({k: v for k, v in event.row.items() if k != "CALLED_NUMBER"})  # type: ignore[union-attr]
    finally:
        conn.close()
    seed(wh, rows)  # what the meter's flusher writes
    assert {(r["PERIOD"], r["CURRENCY"], r["RATE"]) for r in rows} == {
        (this_month, "EUR", "0.015000"),
        (following, "USD", "0.016000"),
    }
    first = run(wh, tmp_path / "st", fake, period=this_month)
    second = run(wh, tmp_path / "st", fake, period=following)
    assert statuses(first) == {("acme-voice", this_month): job.PAID} and not first.not_paid
    assert statuses(second) == {("acme-voice", following): job.PAID} and not second.not_paid
    assert (
        stored(tmp_path / "st", this_month, "acme-voice")["currency"],
        stored(tmp_path / "st", following, "acme-voice")["currency"],
    ) == ("EUR", "USD")
    # 1000 min x 0.015 EUR = 15.00 -> 450; 1000 min x 0.016 USD = 16.00 -> 480 (share 0.30)
    assert [(t["amount"], t["currency"], t["transfer_group"]) for t in fake.transfers] == [
        (450, "eur", this_month),
        (480, "usd", following),
    ]
