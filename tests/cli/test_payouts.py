"""`platformctl billing connect` and `platformctl payouts run` through the CLI: bad input, keys, dry runs, edits,
onboarding links, terms from the warehouse's PARTNERS table (not from partners/*.yaml)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import tree_snapshot
from tests.services.payouts_harness import ROOT, copy_warehouse, gateway, seed, seed_terms, terms_of, usage_row
from tests.services.stripe_fake import TEST_KEY, FakeStripe, StripeServer

ACME = ROOT / "partners/acme-voice.yaml"


SPREAD_OVER_WORKERS = True
"""The module fixture below is a cheap seed (a fraction of a second): each pytest-xdist worker makes its own."""


@pytest.fixture(scope="module")
def october(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The warehouse every `wh` starts from, seeded once per module. Never opened after this: each test gets its own
    copy (`wh`), so no test sees another's rows, terms or schema."""
    directory = tmp_path_factory.mktemp("october") / "wh"
    seed(directory, [usage_row("acme-voice", "2026-10", 1003, "0.015", "EUR", "professional")])
    seed_terms(directory, [terms_of(ACME)])  # what acme-voice's stack `up` upserts
    return directory


@pytest.fixture
def wh(october: Path, tmp_path: Path) -> str:
    """This test's own warehouse (a copy of `october`): acme-voice's October usage and terms, no account."""
    return f"local:{copy_warehouse(october, tmp_path / 'wh')}"


def onboard(fake: FakeStripe) -> None:
    """Every account's holder completes Stripe's onboarding through its link."""
    import httpx

    for token in list(fake.links):
        httpx.get(f"{fake.base}/setup/{token}")


def test_connect_creates_once_with_the_recipient_agreement_and_prints_an_onboarding_link(
    repo_copy: Path, cli: Callable[..., Any], fake: FakeStripe
) -> None:
    stack_file = repo_copy / "stacks/Pulumi.partner-acme-voice.yaml"
    before = stack_file.read_text()
    out = cli("billing", "connect", "acme-voice", "--yes", root=repo_copy).out
    assert "created Stripe account acct_" in out and "recipient service agreement" in out
    (token,) = fake.links
    assert f"{fake.base}/setup/{token}" in out and "payouts to acme-voice are held" in out
    after = stack_file.read_text()
    (account,) = fake.accounts.values()
    assert after == before + f"  platform:stripeAccount: {account['id']}\n"
    # DE from a US platform: cross-border, so the recipient service agreement (platformctl/stripe_connect.yaml).
    assert account["country"] == "DE" and account["default_currency"] == "eur" and account["type"] == "express"
    assert account["tos_acceptance"] == {"service_agreement": "recipient"}
    assert account["capabilities"] == {"transfers": "inactive"} and account["metadata"] == {"partner": "acme-voice"}
    link = fake.links[token]
    assert (link["type"], link["return_url"]) == (
        "account_onboarding",
        "https://partners.voice-platform.example/billing/stripe/done",
    )
    # Again: found by the recorded id; not onboarded yet, so a fresh link; the stack file unchanged.
    again = cli("billing", "connect", "acme-voice", root=repo_copy).out
    assert "found Stripe account" in again and len(fake.links) == 2
    assert stack_file.read_text() == after and len(fake.accounts) == 1
    onboard(fake)
    done = cli("billing", "connect", "acme-voice", root=repo_copy).out
    assert "transfers: active" in done and "onboarding link" not in done and len(fake.links) == 2
    assert "onboarding link" in cli("billing", "connect", "acme-voice", "--link", root=repo_copy).out
    # The id lost from the stack file: found again by its metadata, not created twice.
    stack_file.write_text(before)
    assert "found Stripe account" in cli("billing", "connect", "acme-voice", "--yes", root=repo_copy).out
    assert len(fake.accounts) == 1 and stack_file.read_text() == after
    cli("validate", root=repo_copy)


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (("billing", "connect", "../etc"), "PARTNER"),
        (("billing", "connect", "nobody-here", "--yes"), "nobody-here"),
        (("billing", "connect", "sunrise-telecom", "--yes"), "payout_method"),
        (("billing", "connect", "acme-voice"), "--yes"),  # no terminal to confirm on
        # JP from a US platform: Stripe has no self-serve cross-border payouts there.
        (("billing", "connect", "sakura-calls", "--yes"), "https://docs.stripe.com/connect/cross-border-payouts"),
    ],
)
def test_connect_bad_input(
    repo_copy: Path, cli: Callable[..., Any], fake: FakeStripe, args: tuple[str, ...], needle: str
) -> None:
    before = tree_snapshot(repo_copy)
    result = cli(*args, code=2, root=repo_copy)
    assert needle in result.err
    assert tree_snapshot(repo_copy) == before and not fake.accounts and not fake.requests


@pytest.mark.parametrize(
    ("env", "args", "needle"),
    [
        ({}, ("--period", "2026-13"), "--period"),
        ({}, ("--period", "2026-12"), "not closed"),  # today (2026-12-06 in this sandbox, or later): still open
        ({}, ("--period", "2099-01"), "not closed"),
        ({}, ("--period", "2026-10", "--region", "mars-1"), "--region"),
        ({}, ("--period", "2026-10", "--statements", "ftp://x/y"), "--statements"),
        ({}, ("--period", "2026-10", "--statements", "s3://Bad_Bucket/x"), "--statements"),
        ({}, ("--period", "2026-10", "--statements", "s3://bucket/../x"), "--statements"),
        ({}, ("--period", "2026-10", "--adjustments", "/nonexistent.yaml"), "--adjustments"),
        ({}, ("--period", "2026-10", "--warehouse", "postgres://x"), "--warehouse"),
        ({"STRIPE_API_KEY": "sk_live_" + "x" * 24}, ("--period", "2026-10"), "--live"),
        ({"STRIPE_API_KEY": ""}, ("--period", "2026-10"), "STRIPE_API_KEY"),
        ({"STRIPE_API_KEY": "pk_test_abc"}, ("--period", "2026-10"), "STRIPE_API_KEY"),
        ({"STRIPE_API_BASE": "http://stripe.example.com"}, ("--period", "2026-10"), "STRIPE_API_BASE"),
    ],
)
def test_run_bad_input_exits_2_naming_the_argument(
    tmp_path: Path,
    repo_copy: Path,
    cli: Callable[..., Any],
    fake: FakeStripe,
    wh: str,
    monkeypatch: pytest.MonkeyPatch,
    env: dict[str, str],
    args: tuple[str, ...],
    needle: str,
) -> None:
    if "2026-12" in args:
        import datetime as dt

        assert dt.datetime.now(dt.UTC) < dt.datetime(2027, 1, 2, tzinfo=dt.UTC) or pytest.fail("move the period")
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    argv = ["payouts", "run", *args]
    if "--warehouse" not in args:
        argv += ["--warehouse", wh]
    if "--statements" not in args:
        argv += ["--statements", str(tmp_path / "st")]
    result = cli(*argv, code=2, root=repo_copy)
    assert needle in result.err
    assert "sk_live_xxx" not in result.out + result.err
    assert not (tmp_path / "st").exists() and not fake.transfers


def test_help_states_the_close_window(repo_copy: Path, cli: Callable[..., Any]) -> None:
    text = " ".join(cli("payouts", "run", "--help", root=repo_copy).out.split())
    assert "1-day close window" in text


def test_live_key_is_accepted_with_live(
    repo_copy: Path, cli: Callable[..., Any], wh: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    key = "sk_live_" + "y" * 24
    with StripeServer(key=key) as server:
        monkeypatch.setenv("STRIPE_API_KEY", key)
        monkeypatch.setenv("STRIPE_API_BASE", server.base)
        cli("billing", "connect", "acme-voice", "--yes", "--live", root=repo_copy)
        onboard(server)
        args = ["--warehouse", wh, "--statements", str(tmp_path / "st"), "--live"]
        result = cli("payouts", "run", "--period", "2026-10", *args, root=repo_copy)
        assert key not in result.out + result.err
        assert [t["amount"] for t in server.transfers] == [451]


def test_dry_run_prints_and_writes_nothing(
    repo_copy: Path, cli: Callable[..., Any], fake: FakeStripe, wh: str, tmp_path: Path
) -> None:
    args = ["--warehouse", wh, "--statements", str(tmp_path / "st"), "--dry-run", "--json"]
    result = cli("payouts", "run", "--period", "2026-10", *args, code=1, root=repo_copy)  # it would be held: said so
    report = json.loads(result.out)
    (acme,) = report["partners"]
    assert acme["status"] == "held" and acme["statement"]["payout_minor"] == 451
    assert acme["reason"].startswith("no Stripe account")
    assert not fake.requests and not (tmp_path / "st").exists()


def test_held_until_onboarded_exits_1_then_a_later_run_pays_it(
    repo_copy: Path, cli: Callable[..., Any], fake: FakeStripe, wh: str, tmp_path: Path
) -> None:
    args = ["--warehouse", wh, "--statements", str(tmp_path / "st")]
    result = cli("payouts", "run", "--period", "2026-10", *args, code=1, root=repo_copy)
    assert "acme-voice (2026-10: held)" in result.err and "billing connect acme-voice" in result.out
    assert json.loads((tmp_path / "st/2026-10/acme-voice.json").read_text())["status"] == "held"
    cli("billing", "connect", "acme-voice", "--yes", root=repo_copy)
    result = cli("payouts", "run", "--period", "2026-11", *args, code=1, root=repo_copy)  # not onboarded yet
    assert "not paid: acme-voice 2026-10: Stripe account acct_" in result.err
    assert "capabilities.transfers: inactive" in " ".join(result.err.split())
    onboard(fake)
    cli("payouts", "run", "--period", "2026-11", *args, root=repo_copy)
    (account,) = fake.accounts
    assert [(t["destination"], t["amount"], t["transfer_group"]) for t in fake.transfers] == [(account, 451, "2026-10")]
    cli("payouts", "run", "--period", "2026-11", *args, root=repo_copy)
    assert len(fake.transfers) == 1


def test_adjustments_are_lines_on_the_statement(
    repo_copy: Path, cli: Callable[..., Any], fake: FakeStripe, wh: str, tmp_path: Path
) -> None:
    cli("billing", "connect", "acme-voice", "--yes", root=repo_copy)
    onboard(fake)
    adjustments = tmp_path / "adj.yaml"
    adjustments.write_text(
        "period: 2026-10\nadjustments:\n"
        "  - {partner: acme-voice, currency: EUR, kind: credit, amount_minor: 120, reason: credit note CN-7}\n"
        "  - {partner: acme-voice, currency: EUR, kind: correction, amount_minor: -21, reason: ticket T-3}\n"
    )
    args = ["--warehouse", wh, "--statements", str(tmp_path / "st"), "--adjustments", str(adjustments)]
    cli("payouts", "run", "--period", "2026-10", *args, root=repo_copy)
    statement = json.loads((tmp_path / "st/2026-10/acme-voice.json").read_text())
    assert statement["payout_minor"] == 451
    assert [a["amount_minor"] for a in statement["adjustments"]] == [120, -21]
    assert statement["transfer"]["amount_minor"] == 550 and fake.transfers[0]["amount"] == 550
    cli("payouts", "run", "--period", "2026-10", *args, root=repo_copy)  # the same file again: paid already, exit 0
    assert len(fake.transfers) == 1
    adjustments.write_text(
        adjustments.read_text() + "  - {partner: acme-voice, currency: EUR, kind: credit, "
        "amount_minor: 7, reason: CN-8}\n"
    )
    late = cli("payouts", "run", "--period", "2026-10", *args, code=1, root=repo_copy)  # a line the month never had
    assert "were NOT applied" in " ".join(late.err.split()) and len(fake.transfers) == 1


def test_offboarding_and_updating_keep_the_stripe_account(
    repo_copy: Path, cli: Callable[..., Any], fake: FakeStripe
) -> None:
    stack_file = repo_copy / "stacks/Pulumi.partner-acme-voice.yaml"
    cli("billing", "connect", "acme-voice", "--yes", root=repo_copy)
    (account,) = fake.accounts
    cli("onboard-partner", str(repo_copy / "partners/acme-voice.yaml"), "--update", "--no-apply", root=repo_copy)
    assert f"platform:stripeAccount: {account}" in stack_file.read_text()
    cli("offboard-partner", "acme-voice", "--no-apply", root=repo_copy)
    text = stack_file.read_text()
    assert f"platform:stripeAccount: {account}" in text and "platform:offboardedOn" in text


@pytest.mark.parametrize(
    ("line", "field"),
    [
        ("{partner: sakura-calls, currency: JPY, kind: credit, amount_minor: 5, reason: x}", "adjustments[0].partner"),
        ("{partner: acme-voice, currency: USD, kind: credit, amount_minor: 5, reason: x}", "adjustments[0].currency"),
    ],
)
def test_adjustments_for_another_partner_or_currency_exit_2(
    repo_copy: Path, cli: Callable[..., Any], fake: FakeStripe, wh: str, tmp_path: Path, line: str, field: str
) -> None:
    adjustments = tmp_path / "adj.yaml"
    adjustments.write_text(f"period: 2026-10\nadjustments:\n  - {line}\n")
    args = ["payouts", "run", "--period", "2026-10", "--region", "eu-central", "--warehouse", wh]
    result = cli(*args, "--statements", str(tmp_path / "st"), "--adjustments", str(adjustments), code=2, root=repo_copy)
    assert field in result.err
    assert not (tmp_path / "st").exists() and not fake.requests


def test_period_previous_is_the_latest_closed_month(repo_copy: Path, cli: Callable[..., Any], tmp_path: Path) -> None:
    import datetime as dt

    from services.payouts.money import latest_payable

    wh = f"local:{tmp_path / 'empty'}"
    result = cli("payouts", "run", "--period", "previous", "--warehouse", wh, "--dry-run", "--json", root=repo_copy)
    assert json.loads(result.out)["period"] == latest_payable(dt.datetime.now(dt.UTC))


def test_onboarding_apply_connects_stripe_connect_partners(repo_copy: Path, fake: FakeStripe) -> None:
    from fleet.repo import Repo
    from platformctl.billing import connect_after_onboarding

    repo = Repo(repo_copy)
    env = {"STRIPE_API_KEY": TEST_KEY, "STRIPE_API_BASE": fake.base}
    notes = connect_after_onboarding(repo, ["acme-voice", "sunrise-telecom", "sakura-calls"], env)
    assert notes[0].startswith("acme-voice: created Stripe account acct_")
    assert notes[1].startswith("acme-voice: onboarding link") and fake.base in notes[1]
    assert notes[2].startswith("sakura-calls: no Stripe account") and "cross-border" in notes[2]
    assert len(notes) == 3  # sunrise-telecom: bank_transfer
    assert connect_after_onboarding(repo, ["acme-voice"], env)[0].startswith("acme-voice: found")
    assert len(fake.accounts) == 1
    assert "billing connect acme-voice" in connect_after_onboarding(repo, ["acme-voice"], {})[0]


def test_a_stack_file_naming_someone_elses_account_is_refused_by_connect(
    repo_copy: Path, cli: Callable[..., Any], fake: FakeStripe
) -> None:
    other = gateway(fake).create_account("someone-else", "US", "USD", "x@else.example")["id"]
    stack_file = repo_copy / "stacks/Pulumi.partner-acme-voice.yaml"
    stack_file.write_text(stack_file.read_text().replace("config:\n", f"config:\n  platform:stripeAccount: {other}\n"))
    assert "someone-else" in cli("billing", "connect", "acme-voice", "--yes", code=2, root=repo_copy).err
    assert len(fake.accounts) == 1


def test_region_runs_pay_usage_metered_there_and_report_usage_without_terms(
    repo_copy: Path, cli: Callable[..., Any], fake: FakeStripe, tmp_path: Path
) -> None:
    """Issue 18.1: acme-voice has moved its home to us-east, its October usage was metered in eu-central; a
    partner with usage here has no PARTNERS row (its spec removed). The eu-central run pays the first and reports
    the second (exit 1), exactly as a run without --region does."""
    directory = tmp_path / "wh"
    acme = usage_row("acme-voice", "2026-10", 1003, "0.015", "EUR", "professional")
    seed(directory, [acme, usage_row("gone-voice", "2026-10", 60, "0.015", "EUR", "professional")])
    account = connected(repo_copy, fake, directory)
    seed_terms(directory, [terms_of(ACME, account, HOME_REGION="us-east")])
    args = ["--warehouse", f"local:{directory}", "--statements", str(tmp_path / "st"), "--json"]
    for region in (["--region", "eu-central"], []):
        result = cli("payouts", "run", "--period", "2026-10", *region, *args, code=1, root=repo_copy)
        report = json.loads(result.out)
        assert report["not_paid"] == ["gone-voice"]
        assert {(p["partner"], p["status"]) for p in report["partners"]} >= {("gone-voice", "failed")}
        assert "no PARTNERS row" in result.out and "gone-voice (2026-10: failed)" in result.err
    assert [t["amount"] for t in fake.transfers] == [451]


def test_open_period_is_refused_and_a_statement_of_the_wrong_shape_is_named(
    repo_copy: Path, cli: Callable[..., Any], fake: FakeStripe, wh: str, tmp_path: Path
) -> None:
    (tmp_path / "st/2026-10").mkdir(parents=True)
    (tmp_path / "st/2026-10/acme-voice.json").write_text('{"partner": "acme-voice", "transfer": "tr_1"}')
    args = ["--warehouse", wh, "--statements", str(tmp_path / "st")]
    result = cli("payouts", "run", "--period", "2026-10", *args, code=2, root=repo_copy)
    assert "2026-10/acme-voice.json" in result.err and "gross_minor" in result.err
    assert not fake.transfers


def test_a_currency_change_is_said_loudly_at_update(repo_copy: Path, cli: Callable[..., Any], tmp_path: Path) -> None:
    spec = tmp_path / "acme-voice.yaml"
    spec.write_text((repo_copy / "partners/acme-voice.yaml").read_text().replace("currency: EUR", "currency: USD"))
    result = cli("onboard-partner", str(spec), "--update", "--no-apply", root=repo_copy)
    said = " ".join(result.err.split())
    assert "billing.currency changes from EUR to USD" in said
    assert "takes effect from the first day of the month after the `up`" in said and "stay in EUR" in said


def connected(repo_copy: Path, fake: FakeStripe, directory: Path) -> str:
    """acme-voice with an onboarded account, recorded where the stack's `up` puts it (PARTNERS) and in its stack
    file (made without `billing connect`, so that the test states the same world to older code)."""
    account = gateway(fake).create_account("acme-voice", "US", "USD", "ops@acme.example")["id"]
    fake.complete_onboarding(account)
    stack_file = repo_copy / "stacks/Pulumi.partner-acme-voice.yaml"
    stack_file.write_text(
        stack_file.read_text().replace("config:\n", f"config:\n  platform:stripeAccount: {account}\n")
    )
    seed_terms(directory, [terms_of(ACME, account)])
    return account


def test_one_partners_two_currencies_do_not_stop_the_others(
    repo_copy: Path, cli: Callable[..., Any], fake: FakeStripe, wh: str, tmp_path: Path
) -> None:
    """Issue 18.2: sunrise-telecom's October holds usage in USD and EUR; acme-voice is still paid."""
    directory = Path(wh.removeprefix("local:"))
    seed(directory, [usage_row("sunrise-telecom", "2026-10", 100, "0.02", "USD", "starter")])
    seed(directory, [usage_row("sunrise-telecom", "2026-10", 100, "0.02", "EUR", "starter")])
    seed_terms(directory, [terms_of(ROOT / "partners/sunrise-telecom.yaml")])
    connected(repo_copy, fake, directory)
    args = ["--warehouse", wh, "--statements", str(tmp_path / "st")]
    result = cli("payouts", "run", "--period", "2026-10", *args, code=1, root=repo_copy)
    assert "sunrise-telecom (2026-10: failed)" in result.err and "EUR and USD" in result.err
    assert [t["amount"] for t in fake.transfers] == [451]


def test_a_carry_is_not_lost_when_a_later_period_is_stated_first(
    repo_copy: Path, cli: Callable[..., Any], fake: FakeStripe, tmp_path: Path
) -> None:
    """Issue 18.3: 2026-06 is stated before 2026-05, whose 45 cents are below Stripe's minimum."""
    directory = tmp_path / "wh"
    may = usage_row("acme-voice", "2026-05", 100, "0.015", "EUR", "professional")
    seed(directory, [may, usage_row("acme-voice", "2026-06", 1003, "0.015", "EUR", "professional")])
    connected(repo_copy, fake, directory)
    args = ["--warehouse", f"local:{directory}", "--statements", str(tmp_path / "st")]
    cli("payouts", "run", "--period", "2026-06", *args, root=repo_copy)
    cli("payouts", "run", "--period", "2026-05", *args, root=repo_copy)
    assert sum(t["amount"] for t in fake.transfers) == 45 + 451


def test_a_transfer_answered_in_another_currency_is_not_recorded_as_paid(
    repo_copy: Path, cli: Callable[..., Any], fake: FakeStripe, wh: str, tmp_path: Path
) -> None:
    """Issue 18.5: Stripe's answer is checked field by field against the request."""
    connected(repo_copy, fake, Path(wh.removeprefix("local:")))
    fake.inject("transfers", "other_currency")
    args = ["--warehouse", wh, "--statements", str(tmp_path / "st")]
    result = cli("payouts", "run", "--period", "2026-10", *args, code=1, root=repo_copy)
    assert "acme-voice (2026-10: failed)" in result.err and "currency 'usd'" in result.err
    statement = json.loads((tmp_path / "st/2026-10/acme-voice.json").read_text())
    assert statement["status"] == "failed" and statement["transfer"] is None
    assert statement["stripe_answer"]["currency"] == "usd"


def test_an_existing_account_under_the_wrong_agreement_is_warned_about(
    repo_copy: Path, cli: Callable[..., Any], fake: FakeStripe
) -> None:
    # Made before this platformctl knew the rule: a US account (no cross-border agreement) for a DE partner.
    gateway(fake).create_account("acme-voice", "US", "USD", "ops@acme.example")
    result = cli("billing", "connect", "acme-voice", "--yes", root=repo_copy)
    assert "found Stripe account" in result.out
    said = " ".join(result.err.split())
    assert "under the full service agreement" in said and "needs a DE account under the recipient agreement" in said


def test_a_webhooks_outage_is_reported_and_changes_no_exit_code(
    repo_copy: Path, cli: Callable[..., Any], fake: FakeStripe, wh: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import socket

    with socket.socket() as sock:  # a port nothing listens on: the webhooks service is down
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    monkeypatch.setenv("WEBHOOKS_URL", f"http://127.0.0.1:{port}")
    monkeypatch.setenv("WEBHOOKS_EVENT_TOKEN", "producer-token-" + "p" * 20)
    args = ["--warehouse", wh, "--statements", str(tmp_path / "st")]
    result = cli("payouts", "run", "--period", "2026-10", *args, code=1, root=repo_copy)  # held: 1, as without it
    assert "webhooks: webhooks service unavailable" in " ".join(result.err.split())
    assert "payout.held:acme-voice:2026-10:" in result.err
    assert json.loads((tmp_path / "st/2026-10/acme-voice.json").read_text())["status"] == "held"
