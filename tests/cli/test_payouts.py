"""`platformctl billing connect` and `platformctl payouts run` through the CLI: bad input, keys, dry runs, edits."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import tree_snapshot
from tests.services.payouts_harness import seed, usage_row
from tests.services.stripe_fake import TEST_KEY, FakeStripe, StripeServer


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeStripe]:
    with StripeServer() as server:
        monkeypatch.setenv("STRIPE_API_KEY", TEST_KEY)
        monkeypatch.setenv("STRIPE_API_BASE", server.base)
        yield server


@pytest.fixture
def wh(tmp_path: Path) -> str:
    seed(tmp_path / "wh", [usage_row("acme-voice", "2026-10", 1003, "0.015", "EUR", "professional")])
    return f"local:{tmp_path / 'wh'}"


def test_connect_creates_once_and_edits_the_stack_file_in_place(
    repo_copy: Path, cli: Callable[..., Any], fake: FakeStripe
) -> None:
    stack_file = repo_copy / "stacks/Pulumi.partner-acme-voice.yaml"
    before = stack_file.read_text()
    out = cli("billing", "connect", "acme-voice", "--yes", root=repo_copy).out
    assert "created Stripe account acct_" in out
    after = stack_file.read_text()
    (account,) = fake.accounts.values()
    # Edited in place: every line that was there is still there, and the account is added under config.
    assert after == before + f"  platform:stripeAccount: {account['id']}\n"
    assert account["country"] == "DE" and account["default_currency"] == "eur" and account["type"] == "express"
    assert account["capabilities"] == {"transfers": "inactive"} and account["metadata"] == {"partner": "acme-voice"}
    assert ("POST", "/v1/accounts", "account:acme-voice") in fake.requests
    # Again: found by the recorded id; the stack file unchanged.
    assert "found Stripe account" in cli("billing", "connect", "acme-voice", root=repo_copy).out
    assert stack_file.read_text() == after and len(fake.accounts) == 1
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
    ],
)
def test_connect_bad_input(
    repo_copy: Path, cli: Callable[..., Any], fake: FakeStripe, args: tuple[str, ...], needle: str
) -> None:
    before = tree_snapshot(repo_copy)
    result = cli(*args, code=2, root=repo_copy)
    assert needle in result.err
    assert tree_snapshot(repo_copy) == before and not fake.accounts


@pytest.mark.parametrize(
    ("env", "args", "needle"),
    [
        ({}, ("--period", "2026-13"), "--period"),
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


def test_live_key_is_accepted_with_live(
    repo_copy: Path, cli: Callable[..., Any], wh: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    key = "sk_live_" + "y" * 24
    with StripeServer(key=key) as server:
        monkeypatch.setenv("STRIPE_API_KEY", key)
        monkeypatch.setenv("STRIPE_API_BASE", server.base)
        cli("billing", "connect", "acme-voice", "--yes", "--live", root=repo_copy)
        result = cli(
            "payouts",
            "run",
            "--period",
            "2026-10",
            "--warehouse",
            wh,
            "--statements",
            str(tmp_path / "st"),
            "--live",
            root=repo_copy,
        )
        assert key not in result.out + result.err
        assert [t["amount"] for t in server.transfers] == [451]


def test_dry_run_prints_and_writes_nothing(
    repo_copy: Path, cli: Callable[..., Any], fake: FakeStripe, wh: str, tmp_path: Path
) -> None:
    result = cli(
        "payouts",
        "run",
        "--period",
        "2026-10",
        "--warehouse",
        wh,
        "--statements",
        str(tmp_path / "st"),
        "--dry-run",
        "--json",
        code=1,  # it would not be paid: said so, as a real run would
        root=repo_copy,
    )
    report = json.loads(result.out)
    (acme,) = report["partners"]
    assert acme["status"] == "carried" and acme["statement"]["payout_minor"] == 451
    assert acme["reason"].startswith("no Stripe account")
    assert not fake.requests and not (tmp_path / "st").exists()


def test_unpaid_partner_exits_1_and_is_listed(
    repo_copy: Path, cli: Callable[..., Any], fake: FakeStripe, wh: str, tmp_path: Path
) -> None:
    result = cli(
        "payouts",
        "run",
        "--period",
        "2026-10",
        "--warehouse",
        wh,
        "--statements",
        str(tmp_path / "st"),
        code=1,
        root=repo_copy,
    )
    assert "acme-voice" in result.err and "not paid" in result.err
    assert "billing connect acme-voice" in result.out
    assert json.loads((tmp_path / "st/2026-10/acme-voice.json").read_text())["transfer"] is None
    assert not fake.transfers


def test_adjustments_are_lines_on_the_statement(
    repo_copy: Path, cli: Callable[..., Any], fake: FakeStripe, wh: str, tmp_path: Path
) -> None:
    cli("billing", "connect", "acme-voice", "--yes", root=repo_copy)
    adjustments = tmp_path / "adj.yaml"
    adjustments.write_text(
        "period: 2026-10\nadjustments:\n"
        "  - {partner: acme-voice, currency: EUR, kind: credit, amount_minor: 120, reason: credit note CN-7}\n"
        "  - {partner: acme-voice, currency: EUR, kind: correction, amount_minor: -21, reason: ticket T-3}\n"
    )
    cli(
        "payouts",
        "run",
        "--period",
        "2026-10",
        "--warehouse",
        wh,
        "--statements",
        str(tmp_path / "st"),
        "--adjustments",
        str(adjustments),
        root=repo_copy,
    )
    statement = json.loads((tmp_path / "st/2026-10/acme-voice.json").read_text())
    assert statement["payout_minor"] == 451
    assert [a["amount_minor"] for a in statement["adjustments"]] == [120, -21]
    assert statement["transfer"]["amount_minor"] == 550 and fake.transfers[0]["amount"] == 550


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


def test_period_previous_is_the_month_before_this_one(repo_copy: Path, cli: Callable[..., Any], tmp_path: Path) -> None:
    wh = f"local:{tmp_path / 'empty'}"
    import datetime as dt

    from services.payouts.money import previous_period

    result = cli("payouts", "run", "--period", "previous", "--warehouse", wh, "--dry-run", "--json", root=repo_copy)
    assert json.loads(result.out)["period"] == previous_period(dt.datetime.now(dt.UTC).strftime("%Y-%m"))


def test_onboarding_apply_connects_stripe_connect_partners(repo_copy: Path, fake: FakeStripe) -> None:
    from fleet.repo import Repo
    from platformctl.billing import connect_after_onboarding

    repo = Repo(repo_copy)
    env = {"STRIPE_API_KEY": TEST_KEY, "STRIPE_API_BASE": fake.base}
    notes = connect_after_onboarding(repo, ["acme-voice", "sunrise-telecom"], env)  # sunrise: bank_transfer
    assert len(notes) == 1 and notes[0].startswith("acme-voice: created Stripe account acct_")
    assert connect_after_onboarding(repo, ["acme-voice"], env)[0].startswith("acme-voice: found")
    assert len(fake.accounts) == 1
    assert "billing connect acme-voice" in connect_after_onboarding(repo, ["acme-voice"], {})[0]


def test_without_stack_files_the_account_is_found_by_its_metadata(
    repo_copy: Path, cli: Callable[..., Any], fake: FakeStripe, wh: str, tmp_path: Path
) -> None:
    stack_file = repo_copy / "stacks/Pulumi.partner-acme-voice.yaml"
    before = stack_file.read_text()
    cli("billing", "connect", "acme-voice", "--yes", root=repo_copy)
    stack_file.write_text(before)  # as in the deployed image, which carries no stack files' edits
    cli(
        "payouts", "run", "--period", "2026-10", "--warehouse", wh, "--statements", str(tmp_path / "st"), root=repo_copy
    )
    (account,) = fake.accounts
    assert [(t["destination"], t["amount"]) for t in fake.transfers] == [(account, 451)]


def test_a_stack_file_naming_someone_elses_account_pays_nothing(
    repo_copy: Path, cli: Callable[..., Any], fake: FakeStripe, wh: str, tmp_path: Path
) -> None:
    cli("billing", "connect", "sakura-calls", "--yes", root=repo_copy)
    (sakura,) = fake.accounts
    stack_file = repo_copy / "stacks/Pulumi.partner-acme-voice.yaml"
    stack_file.write_text(stack_file.read_text().replace("config:\n", f"config:\n  platform:stripeAccount: {sakura}\n"))
    args = ["--warehouse", wh, "--statements", str(tmp_path / "st")]
    result = cli("payouts", "run", "--period", "2026-10", *args, code=2, root=repo_copy)
    assert "platform:stripeAccount" in result.err and "sakura-calls" in result.err
    assert not fake.transfers and not (tmp_path / "st").exists()
    assert "sakura-calls" in cli("billing", "connect", "acme-voice", "--yes", code=2, root=repo_copy).err
    assert len(fake.accounts) == 1
