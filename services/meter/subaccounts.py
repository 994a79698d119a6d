"""Each partner's Twilio subaccount and its auth token, looked up with the master credentials and kept for a while.

Twilio signs a subaccount's status callbacks with the subaccount's own auth token (twilio/twilio-php#436,
twilio/twilio-node#693), so the meter needs one token per partner. It asks Twilio for them with the master account
(`GET /2010-04-01/Accounts.json?FriendlyName=pctl:<partner>&Status=active`: every Account resource carries its
`auth_token`, https://www.twilio.com/docs/iam/api/account), keeps the answer in memory for TOKEN_TTL, and asks again
when a callback does not verify (the token was rotated, or the subaccount replaced) - at most once per
REFETCH_INTERVAL per partner, so forged callbacks cannot turn into a stream of Twilio API calls. Tokens live in this
object only: never logged, spooled or exported.
"""

from __future__ import annotations

import asyncio
import logging
import time
import urllib.parse
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from foundation.errors import InputError
from foundation.naming import twilio_subaccount_name

log = logging.getLogger("meter.twilio")

ACCOUNT_SID_ENV = "TWILIO_ACCOUNT_SID"
AUTH_TOKEN_ENV = "TWILIO_AUTH_TOKEN"
API_URL_ENV = "PLATFORMCTL_TWILIO_API_URL"
"""Sends the client to a stand-in of Twilio's REST API (https, or http on loopback), as for the dynamic resources."""
TWILIO_API = "https://api.twilio.com"
_LOOPBACK = {"127.0.0.1", "localhost", "::1"}
TOKEN_TTL = 300.0
"""Seconds a fetched token is used before it is fetched again."""
STALE_GRACE = 3600.0
"""While Twilio's API cannot be reached, a token older than TOKEN_TTL still verifies for this long (it was right
when fetched; a rotated one fails and answers 503, so Twilio's retry gets another chance)."""
REFETCH_INTERVAL = 5.0
"""Per partner, the least time between two lookups prompted by callbacks that did not verify. Short enough that after
a token rotation one of Twilio's retries (up to 5 within its 15 s budget, foundation.naming.TWILIO_CALLBACK_OVERRIDES)
verifies; long enough that forged callbacks cost at most one Twilio lookup per partner per 5 s."""
RETRY_AFTER_FAILURE = 2.0
"""Per partner, the least time between two lookups while Twilio's API fails."""
API_TIMEOUT = 5.0
"""Seconds for one API call: Twilio waits 15 s for a callback's answer (its default read timeout)."""
MAX_CONCURRENT_LOOKUPS = 4


class TwilioUnavailableError(Exception):
    """Twilio's API could not be asked (network, timeout, 5xx, refused credentials): the callback cannot be judged."""


@dataclass
class _Known:
    tokens: dict[str, str] = field(repr=False)
    """Active subaccount SID -> its auth token (normally one)."""
    fetched: float
    """time.monotonic() of the lookup."""


def master_credentials(env: Mapping[str, str]) -> tuple[str, str, str | None]:
    """(account SID, auth token, API origin or None) from the environment; InputError names what is wrong."""
    missing = [name for name in (ACCOUNT_SID_ENV, AUTH_TOKEN_ENV) if not env.get(name)]
    if missing:
        raise InputError.single(
            "environment", ", ".join(missing), "not set: the meter looks up each partner's Twilio subaccount with it"
        )
    origin = env.get(API_URL_ENV) or None
    if origin is not None:
        parsed = urllib.parse.urlsplit(origin)
        if not (parsed.scheme == "https" or (parsed.scheme == "http" and parsed.hostname in _LOOPBACK)) or (
            parsed.path not in ("", "/")
        ):
            raise InputError.single(
                "environment", API_URL_ENV, "must be an https:// origin, or http:// on the loopback interface (no path)"
            )
        origin = origin.rstrip("/")
    return env[ACCOUNT_SID_ENV], env[AUTH_TOKEN_ENV], origin


def twilio_client(account_sid: str, auth_token: str, origin: str | None) -> Any:
    """The `twilio` REST client with the master credentials, sent to `origin` instead of api.twilio.com if given."""
    from twilio.http.http_client import TwilioHttpClient
    from twilio.rest import Client

    class _HttpClient(TwilioHttpClient):
        """The client's documented seam (a custom http_client): same requests, maybe another origin."""

        def request(self, method: str, url: str, *args: Any, **kwargs: Any) -> Any:
            if origin is not None and url.startswith(TWILIO_API):
                url = origin + url[len(TWILIO_API) :]
            return super().request(method, url, *args, **kwargs)

    # max_retries=0: a slow Twilio must not hold a callback past its own timeout; the next callback asks again.
    return Client(account_sid, auth_token, http_client=_HttpClient(timeout=API_TIMEOUT, max_retries=0))


class SubaccountTokens:
    """Decides whether a callback for a partner came from that partner's subaccount."""

    def __init__(
        self,
        master_sid: str,
        lookup: Callable[[str], dict[str, str]],
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._master_sid = master_sid
        self._lookup = lookup
        self._clock = clock
        self._known: dict[str, _Known] = {}
        self._last_attempt: dict[str, float] = {}
        self._last_failure: dict[str, float] = {}
        self._locks: dict[str, asyncio.Lock] = {}
        self._gate: asyncio.Semaphore | None = None
        self.lookups = 0
        """Lookups made (for /metrics)."""
        self.lookup_failures = 0
        """Lookups that failed (for /metrics)."""

    @classmethod
    def from_env(cls, env: Mapping[str, str], clock: Callable[[], float] = time.monotonic) -> SubaccountTokens:
        sid, token, origin = master_credentials(env)
        client = twilio_client(sid, token, origin)

        def lookup(partner_id: str) -> dict[str, str]:
            accounts = client.api.v2010.accounts.list(
                friendly_name=twilio_subaccount_name(partner_id), status="active", limit=20
            )
            # Only a subaccount of this master: the master itself never signs a partner's callbacks.
            return {a.sid: a.auth_token for a in accounts if a.owner_account_sid == sid and a.sid != sid}

        return cls(sid, lookup, clock=clock)

    async def verify(self, partner_id: str, account_sid: str, signed_with: Callable[[str], bool]) -> bool:
        """True when `account_sid` is the partner's active subaccount and `signed_with(its token)` holds.
        Raises TwilioUnavailableError when that cannot be decided for want of Twilio's API."""
        if account_sid == self._master_sid:
            return False
        known = self._known.get(partner_id)
        now = self._clock()
        if known is None or now - known.fetched > TOKEN_TTL:
            known = await self._refresh(partner_id, stale=known)
        if self._accepts(known, account_sid, signed_with):
            return True
        if self._clock() - known.fetched > TOKEN_TTL:
            # Only the stale token while Twilio is down: a mismatch may be a rotation it cannot see.
            raise TwilioUnavailableError(partner_id)
        if now - self._last_attempt.get(partner_id, -REFETCH_INTERVAL) < REFETCH_INTERVAL:
            return False  # asked Twilio recently: a forgery, or a rotation this close to the last lookup
        known = await self._refresh(partner_id, stale=None)
        return self._accepts(known, account_sid, signed_with)

    @staticmethod
    def _accepts(known: _Known, account_sid: str, signed_with: Callable[[str], bool]) -> bool:
        token = known.tokens.get(account_sid)
        return token is not None and signed_with(token)

    async def _refresh(self, partner_id: str, stale: _Known | None) -> _Known:
        lock = self._locks.setdefault(partner_id, asyncio.Lock())
        asked = self._clock()
        async with lock:
            known = self._known.get(partner_id)
            if known is not None and known.fetched >= asked:
                return known  # another request looked it up while this one waited
            if asked - self._last_failure.get(partner_id, -RETRY_AFTER_FAILURE) < RETRY_AFTER_FAILURE:
                return self._fallback(partner_id, stale)
            self._last_attempt[partner_id] = asked
            if self._gate is None:
                self._gate = asyncio.Semaphore(MAX_CONCURRENT_LOOKUPS)
            self.lookups += 1
            try:
                async with self._gate:
                    tokens = await asyncio.to_thread(self._lookup, partner_id)
            except Exception as exc:
                self.lookup_failures += 1
                self._last_failure[partner_id] = self._clock()
                # The exception's type and status only: its text may quote a request, never worth the risk.
                log.warning(
                    "Twilio subaccount lookup for %s failed: %s %s",
                    partner_id,
                    type(exc).__name__,
                    getattr(exc, "status", "") or "",
                )
                return self._fallback(partner_id, stale)
            known = _Known(tokens, self._clock())
            self._known[partner_id] = known
            if not tokens:
                log.warning("Twilio has no active subaccount %r", twilio_subaccount_name(partner_id))
            return known

    def _fallback(self, partner_id: str, stale: _Known | None) -> _Known:
        if stale is not None and self._clock() - stale.fetched <= STALE_GRACE:
            return stale
        raise TwilioUnavailableError(partner_id)
