"""The Stripe gateway (the real `stripe` client) against the loopback fake: idempotent replay, its errors, faults."""

from __future__ import annotations

import pytest

from foundation.errors import InputError
from services.payouts.stripe_gateway import StripeError, StripeGateway, transfers_capability
from tests.services.payouts_harness import gateway
from tests.services.stripe_fake import TEST_KEY, FakeStripe


def test_same_key_other_parameters_is_an_idempotency_error(fake: FakeStripe) -> None:
    gw = gateway(fake)
    account = gw.create_account("acme-voice", "US", "USD", "ops@acme.example")["id"]
    fake.complete_onboarding(account)
    first = gw.create_transfer("acme-voice", "2026-10", account, 451, "EUR")
    assert gw.create_transfer("acme-voice", "2026-10", account, 451, "EUR")["id"] == first["id"]  # replayed
    with pytest.raises(StripeError, match="same parameters"):
        gw.create_transfer("acme-voice", "2026-10", account, 452, "EUR")
    assert len(fake.transfers) == 1


@pytest.mark.parametrize("fault", ["drop_after_commit", "500_after_commit", "429", "500"])
def test_account_creation_survives_faults_with_one_account(fake: FakeStripe, fault: str) -> None:
    fake.inject("accounts", fault)
    account = gateway(fake).create_account("acme-voice", "US", "USD", "ops@acme.example")
    assert list(fake.accounts) == [account["id"]]
    assert gateway(fake).find_account("acme-voice") == account
    assert gateway(fake).find_account("sakura-calls") is None


def test_persistent_rate_limit_gives_up_with_a_clear_error(fake: FakeStripe) -> None:
    fake.inject("transfers", *["429"] * 10)
    gw = gateway(fake)
    account = gw.create_account("acme-voice", "US", "USD", "ops@acme.example")["id"]
    fake.complete_onboarding(account)
    with pytest.raises(StripeError, match="429"):
        gw.create_transfer("acme-voice", "2026-10", account, 451, "EUR")
    assert not fake.transfers


def test_a_refused_key_is_reported_without_the_key(fake: FakeStripe) -> None:
    other = "sk_test_" + "Z" * 24
    gw = StripeGateway.from_env({"STRIPE_API_KEY": other, "STRIPE_API_BASE": fake.base})
    with pytest.raises(StripeError) as caught:
        gw.create_account("acme-voice", "US", "USD", "ops@acme.example")
    assert "refused the API key" in str(caught.value) and other not in str(caught.value)


@pytest.mark.parametrize(
    ("env", "live"),
    [
        ({"STRIPE_API_KEY": "sk_live_" + "x" * 24}, False),
        ({"STRIPE_API_KEY": "sk_test_has space"}, False),
        ({"STRIPE_API_KEY": TEST_KEY, "STRIPE_API_BASE": "https://user:pw@api.example"}, False),
        ({"STRIPE_API_KEY": TEST_KEY, "STRIPE_API_BASE": "https://api.example/v1"}, False),
        ({"STRIPE_API_KEY": TEST_KEY, "STRIPE_API_BASE": "http://10.0.0.1"}, False),
        ({"STRIPE_API_KEY": TEST_KEY, "STRIPE_API_BASE": "http://[::1"}, False),
        ({"STRIPE_API_KEY": TEST_KEY, "STRIPE_API_BASE": "http://127.0.0.1:99999"}, False),
    ],
)
def test_bad_environment_is_input_error(env: dict[str, str], live: bool) -> None:
    with pytest.raises(InputError) as caught:
        StripeGateway.from_env(env, live=live)
    assert "x" * 24 not in str(caught.value.problems)


def test_cross_border_accounts_need_the_recipient_service_agreement(fake: FakeStripe) -> None:
    gw = gateway(fake)
    with pytest.raises(StripeError, match="recipient service agreement"):
        gw.create_account("acme-voice", "DE", "EUR", "ops@acme.example")  # full agreement across a border
    # (the refusal is saved under the key account:acme-voice for 24 h, as Stripe does: `billing connect` decides the
    # agreement from its country table before it asks, so a refusal is never what it meets)
    account = gw.create_account("berlin-voice", "DE", "EUR", "ops@berlin.example", service_agreement="recipient")
    assert account["tos_acceptance"] == {"service_agreement": "recipient"}
    assert ("POST", "/v1/accounts", "account:berlin-voice") in fake.requests
    with pytest.raises(StripeError, match="cannot be created"):
        gw.create_account("sakura-calls", "JP", "JPY", "ops@sakura.example", service_agreement="recipient")


def test_transfers_wait_for_onboarding_through_an_account_link(fake: FakeStripe) -> None:
    import httpx

    gw = gateway(fake)
    account = gw.create_account("acme-voice", "US", "USD", "ops@acme.example")
    assert transfers_capability(account) == "inactive"
    with pytest.raises(StripeError, match="capabilities enabled: transfers"):
        gw.create_transfer("acme-voice", "2026-10", account["id"], 451, "USD")
    link = gw.create_account_link(account["id"], "https://x.example/refresh", "https://x.example/done")
    assert link["object"] == "account_link" and link["expires_at"] > link["created"]
    first = httpx.get(link["url"])  # the partner completes Stripe's hosted onboarding
    assert first.status_code == 302 and first.headers["location"] == "https://x.example/done"
    assert httpx.get(link["url"]).headers["location"] == "https://x.example/refresh"  # single use
    assert transfers_capability(gw.retrieve_account(account["id"]) or {}) == "active"
    assert gw.create_transfer("acme-voice", "2026-11", account["id"], 451, "USD")["amount"] == 451
