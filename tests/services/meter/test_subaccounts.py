"""Which token verifies a partner's callbacks: its Twilio subaccount's, looked up with the master credentials by the
real `twilio` client from a loopback fake of the Accounts API; cached, refetched on a mismatch at most once per
REFETCH_INTERVAL, 'unavailable' (not 'forged') when Twilio cannot be asked."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator
from typing import ClassVar

import pytest

from foundation.errors import InputError
from foundation.naming import twilio_subaccount_name
from services.meter import subaccounts as sub
from services.meter.subaccounts import SubaccountTokens, TwilioUnavailableError, master_credentials
from tests.components.twilio_fake import FakeTwilio, serve
from tests.services.meter_harness import free_port

MASTER = "AC" + "a" * 32
MASTER_TOKEN = "m" * 32


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def twilio() -> Iterator[tuple[FakeTwilio, str]]:
    fake = FakeTwilio(MASTER, MASTER_TOKEN)
    server = serve(fake)
    yield fake, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def _env(origin: str, token: str = MASTER_TOKEN) -> dict[str, str]:
    return {"TWILIO_ACCOUNT_SID": MASTER, "TWILIO_AUTH_TOKEN": token, "PLATFORMCTL_TWILIO_API_URL": origin}


def _verify(tokens: SubaccountTokens, partner: str, account: str, token_used: str) -> bool:
    """What the meter asks for one callback signed with `token_used` (the predicate stands for the HMAC check)."""
    return asyncio.run(tokens.verify(partner, account, lambda token: token == token_used))


def test_only_the_partners_own_subaccount_and_token_verify(twilio: tuple[FakeTwilio, str]) -> None:
    fake, origin = twilio
    acme, acme_token = fake.add_subaccount(twilio_subaccount_name("acme-voice"))
    sakura, sakura_token = fake.add_subaccount(twilio_subaccount_name("sakura-calls"))
    old, old_token = fake.add_subaccount(twilio_subaccount_name("acme-voice"), status="closed")
    tokens = SubaccountTokens.from_env(_env(origin), clock=Clock())
    assert _verify(tokens, "acme-voice", acme, acme_token)
    assert not _verify(tokens, "acme-voice", acme, MASTER_TOKEN)  # signed with the master token
    assert not _verify(tokens, "acme-voice", MASTER, MASTER_TOKEN)  # as the master account
    assert not _verify(tokens, "acme-voice", sakura, sakura_token)  # another partner's subaccount
    assert not _verify(tokens, "acme-voice", acme, sakura_token)  # another partner's token
    assert not _verify(tokens, "acme-voice", old, old_token)  # a closed subaccount
    assert _verify(tokens, "sakura-calls", sakura, sakura_token)
    # The lookup is the documented one: exact FriendlyName, active only, with the master's Basic credentials.
    lookups = fake.account_lookups()
    assert lookups[0][2]["FriendlyName"] == ["pctl:acme-voice"] and lookups[0][2]["Status"] == ["active"]


def test_a_rotated_token_is_fetched_again_once_and_forgeries_do_not_amplify(twilio: tuple[FakeTwilio, str]) -> None:
    fake, origin = twilio
    acme, acme_token = fake.add_subaccount(twilio_subaccount_name("acme-voice"))
    clock = Clock()
    tokens = SubaccountTokens.from_env(_env(origin), clock=clock)
    assert _verify(tokens, "acme-voice", acme, acme_token)
    assert len(fake.account_lookups()) == 1
    assert _verify(tokens, "acme-voice", acme, acme_token)  # cached
    assert len(fake.account_lookups()) == 1

    for _ in range(200):  # a flood of forged callbacks naming a real partner
        assert not _verify(tokens, "acme-voice", acme, "forged")
    assert len(fake.account_lookups()) == 1  # within REFETCH_INTERVAL of the last lookup: no Twilio call at all
    clock.now += sub.REFETCH_INTERVAL
    for _ in range(200):
        assert not _verify(tokens, "acme-voice", acme, "forged")
    assert len(fake.account_lookups()) == 2  # one per interval, whatever the flood

    clock.now += sub.REFETCH_INTERVAL
    rotated = fake.rotate(acme)
    assert _verify(tokens, "acme-voice", acme, rotated)  # the mismatch fetched the new token
    assert not _verify(tokens, "acme-voice", acme, acme_token)  # the old one no longer verifies
    assert len(fake.account_lookups()) == 3


def test_the_token_is_kept_for_a_bounded_time(twilio: tuple[FakeTwilio, str]) -> None:
    fake, origin = twilio
    acme, acme_token = fake.add_subaccount(twilio_subaccount_name("acme-voice"))
    clock = Clock()
    tokens = SubaccountTokens.from_env(_env(origin), clock=clock)
    assert _verify(tokens, "acme-voice", acme, acme_token)
    clock.now += sub.TOKEN_TTL + 1
    assert _verify(tokens, "acme-voice", acme, acme_token)
    assert len(fake.account_lookups()) == 2


def test_twilio_unreachable_is_unavailable_not_forbidden(twilio: tuple[FakeTwilio, str]) -> None:
    fake, origin = twilio
    acme, acme_token = fake.add_subaccount(twilio_subaccount_name("acme-voice"))
    clock = Clock()
    closed = SubaccountTokens.from_env(_env(f"http://127.0.0.1:{free_port()}"), clock=clock)  # nothing listens
    with pytest.raises(TwilioUnavailableError):
        _verify(closed, "acme-voice", acme, acme_token)

    tokens = SubaccountTokens.from_env(_env(origin), clock=clock)
    fake.outage = 503
    with pytest.raises(TwilioUnavailableError):
        _verify(tokens, "acme-voice", acme, acme_token)
    calls = len(fake.requests)
    with pytest.raises(TwilioUnavailableError):  # within RETRY_AFTER_FAILURE: not asked again
        _verify(tokens, "acme-voice", acme, acme_token)
    assert len(fake.requests) == calls
    fake.outage = None
    clock.now += sub.RETRY_AFTER_FAILURE
    assert _verify(tokens, "acme-voice", acme, acme_token)

    # A token past its TTL still verifies while Twilio is down (bounded by STALE_GRACE)...
    fake.outage = 503
    clock.now += sub.TOKEN_TTL + 1
    assert _verify(tokens, "acme-voice", acme, acme_token)
    # ...but a mismatch cannot be settled without Twilio: 503, so Twilio's retry gets another chance.
    clock.now += sub.REFETCH_INTERVAL
    with pytest.raises(TwilioUnavailableError):
        _verify(tokens, "acme-voice", acme, "rotated-meanwhile")
    clock.now += sub.STALE_GRACE
    with pytest.raises(TwilioUnavailableError):
        _verify(tokens, "acme-voice", acme, acme_token)


def test_wrong_master_credentials_are_unavailable_and_no_token_is_logged(
    twilio: tuple[FakeTwilio, str], caplog: pytest.LogCaptureFixture
) -> None:
    fake, origin = twilio
    acme, acme_token = fake.add_subaccount(twilio_subaccount_name("acme-voice"))
    caplog.set_level(logging.DEBUG)
    wrong = SubaccountTokens.from_env(_env(origin, token="w" * 32), clock=Clock())
    with pytest.raises(TwilioUnavailableError):
        _verify(wrong, "acme-voice", acme, acme_token)
    assert fake.requests and "Twilio subaccount lookup for acme-voice failed" in caplog.text
    good = SubaccountTokens.from_env(_env(origin), clock=Clock())
    assert _verify(good, "acme-voice", acme, acme_token)
    assert acme_token not in caplog.text and MASTER_TOKEN not in caplog.text and "w" * 32 not in caplog.text
    assert acme_token not in repr(good.__dict__)  # the cache's repr hides tokens


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({"TWILIO_AUTH_TOKEN": "t"}, "TWILIO_ACCOUNT_SID"),
        ({"TWILIO_ACCOUNT_SID": MASTER}, "TWILIO_AUTH_TOKEN"),
        (
            {
                "TWILIO_ACCOUNT_SID": MASTER,
                "TWILIO_AUTH_TOKEN": "t",
                "PLATFORMCTL_TWILIO_API_URL": "http://evil.example",
            },
            "PLATFORMCTL_TWILIO_API_URL",
        ),
    ],
)
def test_master_credentials_are_checked(env: dict[str, str], named: str) -> None:
    with pytest.raises(InputError) as raised:
        master_credentials(env)
    assert named in str(raised.value)


def test_a_signature_over_the_callback_url_with_its_connection_overrides_verifies() -> None:
    """The numbers' status callback URL ends in Twilio's connection overrides (a fragment, so that Twilio retries a
    503); the fragment is never sent, and either way Twilio signs, the partner's signature verifies, and nothing else
    does (another token, another path)."""
    from twilio.request_validator import RequestValidator

    from foundation.naming import TWILIO_CALLBACK_OVERRIDES
    from services.meter.app import MeterState

    class Public:
        public_url = "https://meter.eu-central.voice-platform.example"
        _signed_urls: ClassVar[dict[str, tuple[str, ...]]] = {}
        _urls = MeterState._urls

    state = Public()
    form = {"CallSid": "CA" + "1" * 32, "CallStatus": "completed", "AccountSid": "AC" + "2" * 32}
    base = f"{Public.public_url}/twilio/acme-voice/status"
    token = "t" * 32
    for signed_url in (base, base + TWILIO_CALLBACK_OVERRIDES):
        signature = RequestValidator(token).compute_signature(signed_url, form)
        assert MeterState.signature_ok(state, "acme-voice", form, signature, token)  # type: ignore[arg-type]
        assert not MeterState.signature_ok(state, "acme-voice", form, signature, "x" * 32)  # type: ignore[arg-type]
        assert not MeterState.signature_ok(state, "sakura-calls", form, signature, token)  # type: ignore[arg-type]
    assert TWILIO_CALLBACK_OVERRIDES.startswith("#rc=") and "rp=all" in TWILIO_CALLBACK_OVERRIDES
