"""The payouts job produces payout.held / payout.paid / payout.failed once per situation, through `payouts run`'s one
entry (services.payouts.runner.run) against the Stripe fake and a loopback stand-in for the webhooks service; an
outage is reported, never fatal, and what it kept back is sent by a later run."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from services.payouts import job, runner
from services.payouts.notices import payout_event
from tests.services.events_receiver import EventsReceiver, events_receiver, producer_env
from tests.services.payouts_harness import (
    ROOT,
    copy_warehouse,
    gateway,
    seed,
    seed_terms,
    stripe_env,
    terms_of,
    usage_row,
)
from tests.services.stripe_fake import FakeStripe

PERIOD = "2026-10"
NOW = dt.datetime(2026, 11, 6, tzinfo=dt.UTC)
SPECS = {
    "acme-voice": ROOT / "partners/acme-voice.yaml",
    "sakura-calls": ROOT / "partners/sakura-calls.yaml",
}


@pytest.fixture
def receiver() -> Iterator[EventsReceiver]:
    with events_receiver() as running:
        yield running


SPREAD_OVER_WORKERS = True
"""The module fixture below is a cheap seed (a fraction of a second): each pytest-xdist worker makes its own."""


@pytest.fixture(scope="module")
def october(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The warehouse every `wh` starts from, seeded once per module. Never opened after this: each test changes its
    own copy (`wh`), so no test sees another's rows or terms."""
    directory = tmp_path_factory.mktemp("october") / "wh"
    seed(
        directory,
        [
            usage_row("acme-voice", PERIOD, 1000, "0.015", "EUR", "professional"),
            usage_row("sakura-calls", PERIOD, 335, "1.5", "JPY", "enterprise"),
        ],
    )
    seed_terms(directory, [terms_of(path) for path in SPECS.values()])
    return directory


@pytest.fixture
def wh(october: Path, tmp_path: Path) -> Path:
    """This test's own warehouse (a copy of `october`): both partners' October usage and terms, no accounts."""
    return copy_warehouse(october, tmp_path / "wh")


def _run(wh: Path, store: Path, fake: FakeStripe, env: dict[str, str]) -> job.Report:
    return runner.run(
        PERIOD,
        region=None,
        warehouse_url=f"local:{wh}",
        statements=str(store),
        adjustments_file=None,
        dry_run=False,
        live=False,
        env={**stripe_env(fake), **env},
        now=NOW,
    )


def _ids(receiver: EventsReceiver) -> list[str]:
    return sorted(receiver.events)


def test_payout_events_once_across_reruns_and_an_outage(
    wh: Path, tmp_path: Path, fake: FakeStripe, receiver: EventsReceiver
) -> None:
    account = gateway(fake).create_account("sakura-calls", "US", "USD", "ops@x.example")["id"]
    seed_terms(wh, [terms_of(SPECS["sakura-calls"], account)])  # onboarding not finished: held
    env = producer_env(receiver)
    store = tmp_path / "st"

    first = _run(wh, store, fake, env)
    assert {o.partner: o.status for o in first.outcomes} == {"acme-voice": job.HELD, "sakura-calls": job.HELD}
    assert first.webhooks == []
    held = {e["partner"]: e for e in receiver.of_type("payout.held")}
    assert set(held) == set(SPECS) and receiver.events.keys() == {e["id"] for e in held.values()}
    assert held["sakura-calls"]["data"] | {"reason": ""} == {
        "period": PERIOD,
        "currency": "JPY",
        "amount_minor": 200,
        "statement": f"{PERIOD}/sakura-calls.json",
        "reason": "",
    }
    assert "onboarding" in held["sakura-calls"]["data"]["reason"]

    again = _run(wh, store, fake, env)  # nothing changed: the same events, nothing new for the service
    assert again.webhooks == [] and _ids(receiver) == sorted(e["id"] for e in held.values())

    fake.complete_onboarding(account)
    receiver.down()
    paid = _run(wh, store, fake, env)  # the money moves whatever the webhooks service does
    assert {o.partner: o.status for o in paid.outcomes}["sakura-calls"] == job.PAID
    assert len(fake.transfers) == 1
    (note,) = paid.webhooks
    assert f"payout.paid:sakura-calls:{PERIOD}" in note and "running this period again" in note
    assert receiver.of_type("payout.paid") == []

    receiver.up()
    rerun = _run(wh, store, fake, env)
    assert {o.partner: o.status for o in rerun.outcomes}["sakura-calls"] == job.ALREADY_PAID
    assert rerun.webhooks == [] and len(fake.transfers) == 1
    (event,) = receiver.of_type("payout.paid")
    (transfer,) = fake.transfers
    assert event["id"] == f"payout.paid:sakura-calls:{PERIOD}"
    assert event["data"] == {
        "period": PERIOD,
        "currency": "JPY",
        "amount_minor": 200,
        "statement": f"{PERIOD}/sakura-calls.json",
        "transfer": transfer["id"],
    }
    _run(wh, store, fake, env)
    assert len(receiver.of_type("payout.paid")) == 1 and receiver.refused == []
    assert len(receiver.of_type("payout.held")) == 2  # acme-voice's held month stayed one event


def test_failed_months_are_events_and_without_settings_production_is_off(
    wh: Path, tmp_path: Path, fake: FakeStripe, receiver: EventsReceiver
) -> None:
    off = _run(wh, tmp_path / "st", fake, {})  # held (no accounts): said once, in the report
    assert off.webhooks == [
        "webhooks production is off (WEBHOOKS_URL, WEBHOOKS_EVENT_TOKEN not set): 2 payout event(s) not sent"
    ]
    account = gateway(fake).create_account("acme-voice", "US", "USD", "ops@x.example")["id"]
    fake.complete_onboarding(account)
    seed_terms(wh, [terms_of(SPECS["acme-voice"], account)])
    fake.inject("transfers", "500", "500", "500", "500")  # Stripe is down for every retry the client makes
    report = _run(wh, tmp_path / "st", fake, producer_env(receiver))
    assert {o.partner: o.status for o in report.outcomes}["acme-voice"] == job.FAILED
    (failed,) = receiver.of_type("payout.failed")
    assert failed["partner"] == "acme-voice" and failed["data"]["amount_minor"] == 450
    assert failed["data"]["currency"] == "EUR" and "retried by the next run" in failed["data"]["reason"]
    fake.faults.clear()
    _run(wh, tmp_path / "st", fake, producer_env(receiver))
    assert [e["partner"] for e in receiver.of_type("payout.paid")] == ["acme-voice"]


def test_outcomes_that_are_no_event(tmp_path: Path) -> None:
    carried: Any = job.PayoutResult("acme-voice", job.CARRIED, {"currency": "EUR", "due_minor": 10}, period=PERIOD)
    external: Any = job.PayoutResult(
        "acme-voice", job.EXTERNAL, {"currency": "EUR", "status": "external"}, period=PERIOD
    )
    no_terms: Any = job.PayoutResult("acme-voice", job.FAILED, {}, period=PERIOD, reason="no PARTNERS row")
    assert [payout_event(o) for o in (carried, external, no_terms)] == [None, None, None]


def test_bad_webhooks_settings_are_refused_before_anything_is_paid(wh: Path, tmp_path: Path, fake: FakeStripe) -> None:
    from foundation.errors import InputError

    account = gateway(fake).create_account("acme-voice", "US", "USD", "ops@x.example")["id"]
    fake.complete_onboarding(account)
    seed_terms(wh, [terms_of(SPECS["acme-voice"], account)])
    with pytest.raises(InputError, match="WEBHOOKS_URL"):
        _run(wh, tmp_path / "st", fake, {"WEBHOOKS_URL": "webhooks:8788", "WEBHOOKS_EVENT_TOKEN": "t" * 20})
    assert fake.transfers == [] and not (tmp_path / "st").exists()
