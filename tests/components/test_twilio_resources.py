"""The Twilio dynamic providers with the real `twilio` client, against a loopback fake of Twilio's REST API."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from typing import Any

import dill
import pytest
from pulumi.dynamic.dynamic import serialize_provider

from components.twilio_api import API_URL_ENV
from components.twilio_resources import (
    TwilioAddressProvider,
    TwilioBundleProvider,
    TwilioError,
    TwilioNumberProvider,
    TwilioSubaccountProvider,
)
from tests.components.twilio_fake import FakeTwilio, serve

MASTER = "AC" + "a" * 32
TOKEN = "master-token-0123456789abcdef"


@pytest.fixture
def twilio(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeTwilio]:
    fake = FakeTwilio(MASTER, TOKEN)
    server = serve(fake)
    monkeypatch.setenv("TWILIO_ACCOUNT_SID", MASTER)
    monkeypatch.setenv("TWILIO_AUTH_TOKEN", TOKEN)
    monkeypatch.setenv(API_URL_ENV, f"http://127.0.0.1:{server.server_address[1]}")
    try:
        yield fake
    finally:
        server.shutdown()
        server.server_close()


def subaccount(fake: FakeTwilio) -> str:
    return TwilioSubaccountProvider().create({"partner_id": "pampas-voz", "friendly_name": "pctl:pampas-voz"}).id


def slot(sub: str, **overrides: Any) -> dict[str, Any]:
    return {
        "partner_id": "pampas-voz",
        "country": "BR",
        "number_type": "toll_free",
        "index": 0,
        "friendly_name": "pctl:pampas-voz:BR:toll_free:0",
        "subaccount_sid": sub,
        "area_code": None,
        "locality": None,
        "address_sid": None,
        "bundle_sid": None,
        "voice_url": "https://voice.sa-east.voice-platform.example/twilio/voice",
        "status_callback": "https://meter.sa-east.voice-platform.example/twilio/pampas-voz/status",
        **overrides,
    }


# ---------------------------------------------------------------- subaccounts


def test_subaccount_is_created_once_and_adopted_after_a_crash(twilio: FakeTwilio) -> None:
    provider = TwilioSubaccountProvider()
    first = provider.create({"partner_id": "pampas-voz", "friendly_name": "pctl:pampas-voz"})
    assert first.id.startswith("AC") and first.id != MASTER
    assert first.outs == {
        "partner_id": "pampas-voz",
        "friendly_name": "pctl:pampas-voz",
        "sid": first.id,
        "status": "active",
    }
    assert "auth_token" not in first.outs
    again = provider.create({"partner_id": "pampas-voz", "friendly_name": "pctl:pampas-voz"})
    assert again.id == first.id
    assert len([r for r in twilio.requests if r[:2] == ("POST", "/2010-04-01/Accounts.json")]) == 1


def test_subaccount_read_update_and_close(twilio: FakeTwilio) -> None:
    provider = TwilioSubaccountProvider()
    sid = subaccount(twilio)
    assert provider.read(sid, {"partner_id": "pampas-voz"}).id == sid
    renamed = provider.update(sid, {}, {"partner_id": "pampas-voz", "friendly_name": "pctl:pampas-voz-2"})
    assert renamed.outs is not None and renamed.outs["friendly_name"] == "pctl:pampas-voz-2"
    assert provider.diff(
        sid, {"partner_id": "a", "friendly_name": "x"}, {"partner_id": "b", "friendly_name": "x"}
    ).replaces == ["partner_id"]
    provider.delete(sid, {})
    assert twilio.accounts[sid]["status"] == "closed"
    assert provider.read(sid, {"partner_id": "pampas-voz"}).id is None
    provider.delete("AC" + "f" * 32, {})  # closing an account Twilio no longer has is done already


# ---------------------------------------------------------------- numbers


def test_number_is_bought_in_the_subaccount_with_the_callbacks(twilio: FakeTwilio) -> None:
    sub = subaccount(twilio)
    twilio.offer("BR", "toll_free", "+558000000001", "+558000000002")
    result = TwilioNumberProvider().create(slot(sub))
    number = twilio.numbers[result.id]
    assert number["account_sid"] == sub and number["phone_number"] == "+558000000001"
    assert number["friendly_name"] == "pctl:pampas-voz:BR:toll_free:0"
    assert number["voice_url"] == "https://voice.sa-east.voice-platform.example/twilio/voice"
    assert number["status_callback"] == "https://meter.sa-east.voice-platform.example/twilio/pampas-voz/status"
    assert result.outs is not None and result.outs["phone_number"] == "+558000000001"
    search = [r for r in twilio.requests if "AvailablePhoneNumbers/BR/TollFree.json" in r[1]]
    assert search and search[0][2]["VoiceEnabled"] == ["true"]


def test_no_number_available_names_the_country_and_filters(twilio: FakeTwilio) -> None:
    sub = subaccount(twilio)
    twilio.offer("AR", "local", "+541100000001", locality="Rosario")
    with pytest.raises(TwilioError) as err:
        TwilioNumberProvider().create(slot(sub, country="AR", number_type="local", area_code="11", locality="Cordoba"))
    message = str(err.value)
    assert "no local numbers available in AR" in message
    assert "area_code=11" in message and "in_locality=Cordoba" in message
    assert not twilio.purchases()


def test_a_country_twilio_has_no_inventory_for_is_no_number_available(twilio: FakeTwilio) -> None:
    with pytest.raises(TwilioError, match="no mobile numbers available in CL"):
        TwilioNumberProvider().create(slot(subaccount(twilio), country="CL", number_type="mobile"))


def test_purchase_failing_after_the_search_is_a_clear_error_and_buys_nothing(twilio: FakeTwilio) -> None:
    sub = subaccount(twilio)
    twilio.offer("BR", "toll_free", "+558000000001")
    twilio.purchase_error = (400, 21631, "Phone Number Requires an Address")
    with pytest.raises(TwilioError) as err:
        TwilioNumberProvider().create(slot(sub))
    assert "buying +558000000001" in str(err.value) and "BR toll_free" in str(err.value)
    assert "error 21631" in str(err.value) and "Phone Number Requires an Address" in str(err.value)
    assert twilio.numbers == {}


def test_a_number_taken_meanwhile_falls_through_to_the_next_candidate(twilio: FakeTwilio) -> None:
    sub = subaccount(twilio)
    twilio.offer("BR", "toll_free", "+558000000001", "+558000000002")
    twilio.taken.add("+558000000001")
    result = TwilioNumberProvider().create(slot(sub))
    assert twilio.numbers[result.id]["phone_number"] == "+558000000002"
    twilio.taken.add("+558000000003")
    twilio.offer("BR", "toll_free", "+558000000003")
    with pytest.raises(TwilioError, match="every candidate found in BR was taken"):
        TwilioNumberProvider().create(slot(sub, index=1, friendly_name="pctl:pampas-voz:BR:toll_free:1"))


def test_retry_after_a_crash_adopts_the_number_and_does_not_buy_twice(twilio: FakeTwilio) -> None:
    sub = subaccount(twilio)
    twilio.offer("BR", "toll_free", "+558000000001", "+558000000002")
    bought = TwilioNumberProvider().create(slot(sub))
    # The engine crashed before writing its state: the next run creates the slot again, with a new voice URL.
    retried = TwilioNumberProvider().create(slot(sub, voice_url="https://voice.sa-east.voice-platform.example/v2"))
    assert retried.id == bought.id
    assert len(twilio.purchases()) == 1 and len(twilio.numbers) == 1
    assert twilio.numbers[bought.id]["voice_url"] == "https://voice.sa-east.voice-platform.example/v2"


def test_read_finds_the_number_by_sid_or_by_slot_name_and_reports_it_gone(twilio: FakeTwilio) -> None:
    sub = subaccount(twilio)
    twilio.offer("BR", "toll_free", "+558000000001")
    provider = TwilioNumberProvider()
    bought = provider.create(slot(sub))
    read = provider.read(bought.id, slot(sub))
    assert read.id == bought.id and read.outs is not None and read.outs["phone_number"] == "+558000000001"
    assert provider.read("PN" + "e" * 32, slot(sub)).id == bought.id  # state lost its id: found by friendly name
    del twilio.numbers[bought.id]
    assert provider.read(bought.id, slot(sub)).id is None


def test_update_changes_the_callbacks_in_place(twilio: FakeTwilio) -> None:
    sub = subaccount(twilio)
    twilio.offer("BR", "toll_free", "+558000000001")
    provider = TwilioNumberProvider()
    bought = provider.create(slot(sub))
    news = slot(sub, status_callback="https://meter.sa-east.voice-platform.example/twilio/pampas-voz/status?v=2")
    diff = provider.diff(bought.id, slot(sub), news)
    assert diff.changes and not diff.replaces
    provider.update(bought.id, slot(sub), news)
    assert twilio.numbers[bought.id]["status_callback"].endswith("/status?v=2")
    assert len(twilio.purchases()) == 1


def test_diff_replaces_on_identity_and_ignores_search_filters() -> None:
    provider = TwilioNumberProvider()
    olds = slot("AC" + "1" * 32)
    assert provider.diff("PN1", olds, slot("AC" + "1" * 32, country="AR")).replaces == ["country"]
    assert provider.diff("PN1", olds, slot("AC" + "1" * 32, country="AR")).delete_before_replace
    assert not provider.diff("PN1", olds, slot("AC" + "1" * 32, area_code="11", locality="Rosario")).changes
    assert not provider.diff("PN1", olds, dict(olds)).changes


def test_release_and_release_again(twilio: FakeTwilio) -> None:
    sub = subaccount(twilio)
    twilio.offer("BR", "toll_free", "+558000000001")
    provider = TwilioNumberProvider()
    bought = provider.create(slot(sub))
    provider.delete(bought.id, slot(sub))
    assert twilio.numbers == {}
    provider.delete(bought.id, slot(sub))  # already released: nothing left to do, no error
    assert [r[0] for r in twilio.requests if bought.id in r[1]] == ["DELETE", "DELETE"]


def test_bad_credentials_are_a_clear_error_without_the_token(
    twilio: FakeTwilio, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TWILIO_AUTH_TOKEN", "wrong-token-fedcba9876543210")
    with pytest.raises(TwilioError) as err:
        TwilioSubaccountProvider().create({"partner_id": "pampas-voz", "friendly_name": "pctl:pampas-voz"})
    assert "refused the credentials" in str(err.value) and "TWILIO_AUTH_TOKEN" in str(err.value)
    assert "wrong-token" not in str(err.value) and TOKEN not in str(err.value)


def test_missing_credentials_are_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TWILIO_ACCOUNT_SID", raising=False)
    monkeypatch.delenv("TWILIO_AUTH_TOKEN", raising=False)
    with pytest.raises(TwilioError, match="set TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN"):
        TwilioNumberProvider().delete("PN1", slot("AC" + "1" * 32))


@pytest.mark.parametrize("url", ["http://twilio.example.com", "ftp://127.0.0.1:1", "http://127.0.0.1:1/path"])
def test_the_api_url_override_is_https_or_loopback_only(monkeypatch: pytest.MonkeyPatch, url: str) -> None:
    monkeypatch.setenv("TWILIO_ACCOUNT_SID", MASTER)
    monkeypatch.setenv("TWILIO_AUTH_TOKEN", TOKEN)
    monkeypatch.setenv(API_URL_ENV, url)
    with pytest.raises(TwilioError, match=API_URL_ENV):
        TwilioSubaccountProvider().delete("AC1", {})


def test_the_pickled_providers_carry_no_credentials(twilio: FakeTwilio) -> None:
    for provider in (TwilioSubaccountProvider(), TwilioNumberProvider()):
        provider.create  # noqa: B018 - the providers are used, then pickled as Pulumi does
        blob = base64.b64decode(serialize_provider(provider))
        assert TOKEN.encode() not in blob and MASTER.encode() not in blob
        assert vars(dill.loads(blob)) == {}


def test_the_providers_are_pickled_by_reference_to_this_module() -> None:
    """Every Twilio resource's state holds its provider pickled as a reference to the provider's class (module and
    name, no code): moving a provider class to another module would change the `__provider` input of every number
    and subaccount of every partner. The helpers they call (components/twilio_api.py) are not in the blob."""
    for provider in (
        TwilioSubaccountProvider(),
        TwilioAddressProvider(),
        TwilioBundleProvider(),
        TwilioNumberProvider(),
    ):
        blob = base64.b64decode(serialize_provider(provider))
        assert b"components.twilio_resources" in blob and type(provider).__name__.encode() in blob
        assert b"twilio_api" not in blob and len(blob) < 200
