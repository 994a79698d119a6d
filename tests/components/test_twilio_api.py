"""Twilio's REST API as the providers use it (components/twilio_api.py): whose credentials a client carries, where its
requests may go, and what a refusal says. No request is sent here; the providers' traffic is tested against the
loopback fake in test_twilio_resources.py."""

from __future__ import annotations

import pytest
from twilio.base.exceptions import TwilioRestException

from components.twilio_api import API_URL_ENV, TwilioError, explain, failure_of, is_missing, twilio_client

MASTER = "AC" + "a" * 32
TOKEN = "master-token-0123456789abcdef"
SUBACCOUNT = "AC" + "b" * 32


@pytest.fixture
def master(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TWILIO_ACCOUNT_SID", MASTER)
    monkeypatch.setenv("TWILIO_AUTH_TOKEN", TOKEN)
    monkeypatch.delenv(API_URL_ENV, raising=False)


def test_the_client_is_the_master_accounts_unless_a_subaccount_is_asked_for(master: None) -> None:
    assert (twilio_client().username, twilio_client().password) == (MASTER, TOKEN)
    sub = twilio_client((SUBACCOUNT, "sub-token"))
    assert (sub.username, sub.password) == (SUBACCOUNT, "sub-token")


def test_without_master_credentials_no_subaccount_client_is_made(monkeypatch: pytest.MonkeyPatch) -> None:
    """A subaccount's token is fetched with the master credentials: without them nothing runs, whatever is passed."""
    monkeypatch.delenv("TWILIO_ACCOUNT_SID", raising=False)
    monkeypatch.delenv("TWILIO_AUTH_TOKEN", raising=False)
    with pytest.raises(TwilioError, match="set TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN"):
        twilio_client((SUBACCOUNT, "sub-token"))


@pytest.mark.parametrize("url", ["https://twilio-standin.example", "http://127.0.0.1:8443", "http://[::1]:8443"])
def test_the_api_url_may_be_https_or_plain_http_on_loopback(
    master: None, monkeypatch: pytest.MonkeyPatch, url: str
) -> None:
    monkeypatch.setenv(API_URL_ENV, url)
    assert twilio_client().username == MASTER


@pytest.mark.parametrize("url", ["http://10.0.0.5:8080", "https://twilio-standin.example/api"])
def test_any_other_api_url_is_refused(master: None, monkeypatch: pytest.MonkeyPatch, url: str) -> None:
    monkeypatch.setenv(API_URL_ENV, url)
    with pytest.raises(TwilioError, match=API_URL_ENV):
        twilio_client()


def test_a_refusal_names_what_failed_and_never_the_credentials() -> None:
    refused = TwilioRestException(401, "https://api.twilio.com/2010-04-01/Accounts.json", "Authenticate", 20003)
    assert failure_of(refused) == (401, 20003, "Authenticate")
    message = str(explain(refused, "creating subaccount pctl:pampas-voz"))
    assert message.startswith("creating subaccount pctl:pampas-voz: Twilio refused the credentials (HTTP 401)")
    assert TOKEN not in message
    other = TwilioRestException(400, "https://api.twilio.com/x", "Invalid AreaCode", 21452)
    assert str(explain(other, "buying a number")) == (
        "buying a number: Twilio answered HTTP 400, error 21452: Invalid AreaCode"
    )


def test_only_a_404_is_missing() -> None:
    assert is_missing(TwilioRestException(404, "https://api.twilio.com/x", "not found", 20404))
    assert not is_missing(TwilioRestException(403, "https://api.twilio.com/x", "forbidden", 20403))
    assert not is_missing(ValueError("not a Twilio answer"))
    assert failure_of(ValueError("not a Twilio answer")) is None
