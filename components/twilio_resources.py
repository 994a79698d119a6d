"""Twilio subaccounts and phone numbers as Pulumi dynamic resources, through the `twilio` package's REST client.

Credentials are read from the environment (TWILIO_ACCOUNT_SID, TWILIO_AUTH_TOKEN) inside every provider method, at
run time: the providers hold no attributes, so the pickled provider that Pulumi stores in each resource's
`__provider` input carries no secret, and nothing secret is an input or output. PLATFORMCTL_TWILIO_API_URL sends the
client's requests to a stand-in of Twilio's REST API instead of https://api.twilio.com (local tests and demos; https,
or plain http on the loopback interface only).
"""

from __future__ import annotations

import os
import urllib.parse
from typing import Any

import pulumi
from pulumi.dynamic import CreateResult, DiffResult, ReadResult, Resource, ResourceProvider, UpdateResult

from foundation.errors import PlatformError

API_URL_ENV = "PLATFORMCTL_TWILIO_API_URL"
TWILIO_API = "https://api.twilio.com"
_LOOPBACK = {"127.0.0.1", "localhost", "::1"}
SEARCH_LIMIT = 5
"""Candidates asked for per search: a number can be taken between the search and the purchase."""
_NOT_AVAILABLE = {21422}
"""Twilio error code of a purchase refused because the number was taken meanwhile (the next candidate may do)."""
_NUMBER_PATH = {"local": "local", "mobile": "mobile", "toll_free": "toll_free"}

SUBACCOUNT_REPLACE_KEYS = ("partner_id",)
NUMBER_REPLACE_KEYS = ("partner_id", "country", "number_type", "index", "friendly_name", "subaccount_sid")
NUMBER_UPDATE_KEYS = ("voice_url", "status_callback", "address_sid", "bundle_sid")
# area_code and locality only filter the search at purchase: changing them keeps the number the slot holds, because
# numbers are hard to get again.


class TwilioError(PlatformError):
    """Twilio refused or could not do what the provider asked; the message names what and why, never a credential."""


def _client(as_account: tuple[str, str] | None = None) -> Any:
    """The master account's client, or (`as_account`: SID and token read at run time) a subaccount's own."""
    from twilio.http.http_client import TwilioHttpClient
    from twilio.rest import Client

    sid = os.environ.get("TWILIO_ACCOUNT_SID", "")
    token = os.environ.get("TWILIO_AUTH_TOKEN", "")
    if as_account is not None and sid and token:
        sid, token = as_account
    if not sid or not token:
        raise TwilioError(
            "Twilio credentials are missing: set TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN in the environment of the "
            "Pulumi run (they are read at run time and never stored in state)"
        )
    base = os.environ.get(API_URL_ENV, "")
    if not base:
        return Client(sid, token)
    parsed = urllib.parse.urlsplit(base)
    if not (parsed.scheme == "https" or (parsed.scheme == "http" and parsed.hostname in _LOOPBACK)) or parsed.path:
        raise TwilioError(f"{API_URL_ENV} must be an https:// origin, or http:// on the loopback interface (no path)")
    origin = base.rstrip("/")

    class _RedirectedHttpClient(TwilioHttpClient):
        """The client's documented seam (a custom http_client): same requests, another origin."""

        def request(self, method: str, url: str, *args: Any, **kwargs: Any) -> Any:
            parts = urllib.parse.urlsplit(url)
            if parts.scheme == "https" and (parts.hostname or "").endswith(".twilio.com"):  # api., numbers., ...
                url = origin + urllib.parse.urlunsplit(("", "", parts.path, parts.query, ""))
            return super().request(method, url, *args, **kwargs)

    return Client(sid, token, http_client=_RedirectedHttpClient(timeout=30))


def _failure(exc: Exception) -> tuple[int, int | None, str] | None:
    """(HTTP status, Twilio code, message) of a refused request: the client raises TwilioRestException for single
    resources and TwilioException('Unable to fetch page', response) for lists."""
    import json

    from twilio.base.exceptions import TwilioException, TwilioRestException

    if isinstance(exc, TwilioRestException):
        return exc.status, exc.code, str(exc.msg)
    if isinstance(exc, TwilioException) and len(exc.args) > 1 and hasattr(exc.args[1], "status_code"):
        response = exc.args[1]
        try:
            body = json.loads(response.text)
        except (TypeError, ValueError):
            body = {}
        body = body if isinstance(body, dict) else {}
        return response.status_code, body.get("code"), str(body.get("message", "no message"))
    return None


def _explain(exc: Exception, doing: str) -> TwilioError:
    failure = _failure(exc)
    if failure is None:
        return TwilioError(f"{doing}: {type(exc).__name__}: {exc}")
    status, code, message = failure
    if status == 401 or code == 20003:
        return TwilioError(
            f"{doing}: Twilio refused the credentials (HTTP {status}); check TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN"
        )
    return TwilioError(f"{doing}: Twilio answered HTTP {status}, error {code}: {message}")


def _is_missing(exc: Exception) -> bool:
    failure = _failure(exc)
    return failure is not None and failure[0] == 404


# ---------------------------------------------------------------- subaccounts


class TwilioSubaccountProvider(ResourceProvider):
    """A Twilio subaccount per partner: its numbers and usage kept apart from every other partner's."""

    def create(self, props: dict[str, Any]) -> CreateResult:
        client = _client()
        name = props["friendly_name"]
        try:
            # Adopt: a crash after Twilio created the account but before the state was written must not make two.
            existing = [a for a in client.api.v2010.accounts.list(friendly_name=name, limit=20) if a.status != "closed"]
            account = existing[0] if existing else client.api.v2010.accounts.create(friendly_name=name)
        except Exception as exc:
            raise _explain(exc, f"creating Twilio subaccount {name!r}") from None
        return CreateResult(account.sid, self._outs(props, account))

    def read(self, id_: str, props: dict[str, Any]) -> ReadResult:
        client = _client()
        try:
            account = client.api.v2010.accounts(id_).fetch()
        except Exception as exc:
            if _is_missing(exc):
                return ReadResult(None, {})
            raise _explain(exc, f"reading Twilio subaccount {id_}") from None
        if account.status == "closed":
            return ReadResult(None, {})
        return ReadResult(id_, self._outs(props, account))

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        replaces = [k for k in SUBACCOUNT_REPLACE_KEYS if olds.get(k) != news.get(k)]
        changed = replaces or olds.get("friendly_name") != news.get("friendly_name")
        return DiffResult(changes=bool(changed), replaces=replaces, delete_before_replace=True)

    def update(self, id_: str, _olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        client = _client()
        try:
            account = client.api.v2010.accounts(id_).update(friendly_name=news["friendly_name"])
        except Exception as exc:
            raise _explain(exc, f"renaming Twilio subaccount {id_}") from None
        return UpdateResult(self._outs(news, account))

    def delete(self, id_: str, _props: dict[str, Any]) -> None:
        """Close the subaccount (Twilio releases what it still holds). Runs only on purge: see PartnerTelephony."""
        client = _client()
        try:
            client.api.v2010.accounts(id_).update(status="closed")
        except Exception as exc:
            if _is_missing(exc):
                return
            raise _explain(exc, f"closing Twilio subaccount {id_}") from None

    @staticmethod
    def _outs(props: dict[str, Any], account: Any) -> dict[str, Any]:
        # Not the subaccount's auth token: the master credentials act on it, nothing else needs one.
        return {
            "partner_id": props["partner_id"],
            "friendly_name": account.friendly_name,
            "sid": account.sid,
            "status": account.status,
        }


class TwilioSubaccount(Resource, module="twilio", name="Subaccount"):
    sid: pulumi.Output[str]
    status: pulumi.Output[str]

    def __init__(self, name: str, partner_id: str, friendly_name: str, opts: pulumi.ResourceOptions | None = None):
        super().__init__(
            TwilioSubaccountProvider(),
            name,
            {"partner_id": partner_id, "friendly_name": friendly_name, "sid": None, "status": None},
            opts,
        )


# ---------------------------------------------------------------- addresses

ADDRESS_FIELDS = ("customer_name", "street", "city", "region", "postal_code")
ADDRESS_REPLACE_KEYS = ("partner_id", "subaccount_sid", "iso_country", "friendly_name")


class TwilioAddressProvider(ResourceProvider):
    """The holder's address of a number slot, in the partner's subaccount (API 2010-04-01 Addresses): created by the
    same `up` that creates the subaccount, so a number that needs an address can be bought on the first deploy."""

    def create(self, props: dict[str, Any]) -> CreateResult:
        account = _client().api.v2010.accounts(props["subaccount_sid"])
        name = props["friendly_name"]
        try:
            # Adopt: a crash after Twilio stored the address but before the state was written must not make two.
            existing = account.addresses.list(friendly_name=name, limit=5)
            address = (
                existing[0]
                if existing
                else account.addresses.create(
                    **{key: props[key] for key in ADDRESS_FIELDS},
                    iso_country=props["iso_country"],
                    friendly_name=name,
                    auto_correct_address=False,  # the holder's address as the spec states it, which Twilio then checks
                )
            )
        except Exception as exc:
            raise _explain(exc, f"creating the address for {name!r} in {props['iso_country']}") from None
        return CreateResult(address.sid, self._outs(props, address))

    def read(self, id_: str, props: dict[str, Any]) -> ReadResult:
        account = _client().api.v2010.accounts(props["subaccount_sid"])
        try:
            address = account.addresses(id_).fetch()
        except Exception as exc:
            if _is_missing(exc):
                return ReadResult(None, {})
            raise _explain(exc, f"reading address {id_}") from None
        return ReadResult(id_, self._outs(props, address))

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        replaces = [k for k in ADDRESS_REPLACE_KEYS if olds.get(k) != news.get(k)]
        updates = [k for k in ADDRESS_FIELDS if olds.get(k) != news.get(k)]
        return DiffResult(changes=bool(replaces or updates), replaces=replaces, delete_before_replace=True)

    def update(self, id_: str, _olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        account = _client().api.v2010.accounts(news["subaccount_sid"])
        try:
            address = account.addresses(id_).update(**{key: news[key] for key in ADDRESS_FIELDS})
        except Exception as exc:
            raise _explain(exc, f"updating address {id_}") from None
        return UpdateResult(self._outs(news, address))

    def delete(self, id_: str, props: dict[str, Any]) -> None:
        """Remove the address (Twilio refuses while a number still depends on it: the number goes first)."""
        try:
            _client().api.v2010.accounts(props["subaccount_sid"]).addresses(id_).delete()
        except Exception as exc:
            if _is_missing(exc):
                return
            raise _explain(exc, f"removing address {id_}") from None

    @staticmethod
    def _outs(props: dict[str, Any], address: Any) -> dict[str, Any]:
        return {**props, "sid": address.sid, "validated": bool(getattr(address, "validated", False))}


class TwilioAddress(Resource, module="twilio", name="Address"):
    sid: pulumi.Output[str]

    def __init__(self, name: str, props: dict[str, Any], opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__(TwilioAddressProvider(), name, {**props, "sid": None, "validated": None}, opts)


# ---------------------------------------------------------------- numbers


BUNDLE_ACCEPTED = ("twilio-approved", "provisionally-approved")
"""Regulatory bundle statuses a purchase may use (Numbers v2 Bundle `status`); draft, pending-review, in-review and
twilio-rejected are not (yet) accepted."""
WAITING_PREFIX = "waiting:"
"""Id of a slot that holds no number yet (its bundle is not accepted): nothing at Twilio to read or release."""


def _bundle_status(subaccount_sid: str, bundle_sid: str) -> str:
    """The bundle's review status. Bundles live in the subaccount and Numbers v2 acts on the account it is
    authenticated as (main credentials reach only v2010 resources of subaccounts: Twilio docs, "REST API:
    Subaccounts", Authentication), so the call uses the subaccount's own token, fetched now and never stored."""
    master = _client()
    try:
        token = master.api.v2010.accounts(subaccount_sid).fetch().auth_token
        bundle = _client((subaccount_sid, token)).numbers.v2.regulatory_compliance.bundles(bundle_sid).fetch()
    except Exception as exc:
        if _is_missing(exc):
            return "missing"
        raise _explain(exc, f"reading regulatory bundle {bundle_sid}") from None
    return str(bundle.status)


class TwilioNumberProvider(ResourceProvider):
    """One number slot of a partner: bought once, found again by its friendly name, released only on delete. A slot
    whose regulatory bundle is not accepted yet holds no number: it is created `waiting` (the update succeeds, the
    reason is an output) and every later update tries again, buying once Twilio has accepted the bundle."""

    def create(self, props: dict[str, Any]) -> CreateResult:
        if props.get("bundle_required") and not props.get("bundle_sid"):
            # The subaccount is new: no bundle can be filed in it before this update created it.
            reason = (
                f"{props['country']} {props['number_type']} numbers need a regulatory bundle: file it in subaccount "
                f"{props['subaccount_sid']} and name it in the spec (bundle_sid)"
            )
            return CreateResult(
                f"{WAITING_PREFIX}{props['friendly_name']}",
                {**props, "sid": "", "phone_number": "", "status": "waiting", "waiting_for": reason},
            )
        if props.get("bundle_sid"):
            status = _bundle_status(props["subaccount_sid"], props["bundle_sid"])
            if status not in BUNDLE_ACCEPTED:
                reason = f"regulatory bundle {props['bundle_sid']} is {status}"
                if status == "twilio-rejected":
                    reason += " (fix and resubmit it in the subaccount)"
                return CreateResult(
                    f"{WAITING_PREFIX}{props['friendly_name']}",
                    {**props, "sid": "", "phone_number": "", "status": "waiting", "waiting_for": reason},
                )
        client = _client()
        account = client.api.v2010.accounts(props["subaccount_sid"])
        name = props["friendly_name"]
        try:
            owned = account.incoming_phone_numbers.list(friendly_name=name, limit=5)
        except Exception as exc:
            raise _explain(exc, f"looking for number slot {name!r}") from None
        if owned:  # bought by an earlier run that crashed before the state was written: adopt, do not buy again
            number = self._configure(account, owned[0].sid, props, f"adopting number slot {name!r}")
            return CreateResult(number.sid, self._outs(props, number))
        candidates = self._search(account, props)
        failures = []
        for candidate in candidates:
            try:
                number = account.incoming_phone_numbers.create(
                    phone_number=candidate.phone_number,
                    friendly_name=name,
                    voice_url=props["voice_url"],
                    voice_method="POST",
                    status_callback=props["status_callback"],
                    status_callback_method="POST",
                    **self._regulatory(props),
                )
            except Exception as exc:
                failure = _failure(exc)
                if failure is not None and failure[1] in _NOT_AVAILABLE:
                    failures.append(f"{candidate.phone_number}: {failure[2]}")
                    continue
                raise _explain(
                    exc,
                    f"buying {candidate.phone_number} for slot {name!r} ({props['country']} {props['number_type']})",
                ) from None
            return CreateResult(number.sid, self._outs(props, number))
        raise TwilioError(
            f"buying a number for slot {name!r}: every candidate found in {props['country']} was taken before it "
            f"could be bought ({'; '.join(failures)}); run the update again"
        )

    def _search(self, account: Any, props: dict[str, Any]) -> list[Any]:
        country, number_type = props["country"], props["number_type"]
        filters: dict[str, Any] = {"voice_enabled": True, "limit": SEARCH_LIMIT}
        if props.get("area_code"):
            filters["area_code"] = props["area_code"]
        if props.get("locality"):
            filters["in_locality"] = props["locality"]
        listing = getattr(account.available_phone_numbers(country), _NUMBER_PATH[number_type])
        try:
            found = listing.list(**filters)
        except Exception as exc:
            if _is_missing(exc):
                found = []
            else:
                raise _explain(exc, f"searching {country} {number_type} numbers") from None
        if not found:
            shown = ", ".join(f"{k}={v}" for k, v in filters.items() if k != "limit")
            raise TwilioError(f"no {number_type} numbers available in {country} with {shown}; relax the filters")
        return list(found)

    def read(self, id_: str, props: dict[str, Any]) -> ReadResult:
        if id_.startswith(WAITING_PREFIX):
            return ReadResult(id_, props)
        client = _client()
        account = client.api.v2010.accounts(props["subaccount_sid"])
        try:
            number = account.incoming_phone_numbers(id_).fetch()
        except Exception as exc:
            if not _is_missing(exc):
                raise _explain(exc, f"reading number {id_}") from None
            try:
                owned = account.incoming_phone_numbers.list(friendly_name=props["friendly_name"], limit=5)
            except Exception as exc2:
                raise _explain(exc2, f"looking for number slot {props['friendly_name']!r}") from None
            if not owned:
                return ReadResult(None, {})
            number = owned[0]
        return ReadResult(number.sid, self._outs(props, number))

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        replaces = [k for k in NUMBER_REPLACE_KEYS if olds.get(k) != news.get(k)]
        updates = [k for k in NUMBER_UPDATE_KEYS if olds.get(k) != news.get(k)]
        if olds.get("status") == "waiting":
            replaces.append("status")  # no number yet: every update tries the purchase again (a new id once bought)
        # The replacement carries the same friendly name, so the old number must go first or the new one adopts it.
        return DiffResult(changes=bool(replaces or updates), replaces=replaces, delete_before_replace=True)

    def update(self, id_: str, _olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        client = _client()
        account = client.api.v2010.accounts(news["subaccount_sid"])
        number = self._configure(account, id_, news, f"updating number {id_}")
        return UpdateResult(self._outs(news, number))

    def delete(self, id_: str, props: dict[str, Any]) -> None:
        """Release the number; one already released is gone either way (a waiting slot holds none)."""
        if id_.startswith(WAITING_PREFIX):
            return
        client = _client()
        try:
            client.api.v2010.accounts(props["subaccount_sid"]).incoming_phone_numbers(id_).delete()
        except Exception as exc:
            if _is_missing(exc):
                return
            raise _explain(exc, f"releasing number {id_}") from None

    def _configure(self, account: Any, sid: str, props: dict[str, Any], doing: str) -> Any:
        try:
            return account.incoming_phone_numbers(sid).update(
                voice_url=props["voice_url"],
                voice_method="POST",
                status_callback=props["status_callback"],
                status_callback_method="POST",
                **self._regulatory(props),
            )
        except Exception as exc:
            raise _explain(exc, doing) from None

    @staticmethod
    def _regulatory(props: dict[str, Any]) -> dict[str, str]:
        return {key: props[key] for key in ("address_sid", "bundle_sid") if props.get(key)}

    @staticmethod
    def _outs(props: dict[str, Any], number: Any) -> dict[str, Any]:
        return {**props, "sid": number.sid, "phone_number": number.phone_number, "status": "active", "waiting_for": ""}


class TwilioNumber(Resource, module="twilio", name="Number"):
    sid: pulumi.Output[str]
    phone_number: pulumi.Output[str]
    status: pulumi.Output[str]
    waiting_for: pulumi.Output[str]

    def __init__(self, name: str, props: dict[str, Any], opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__(
            TwilioNumberProvider(),
            name,
            {**props, "sid": None, "phone_number": None, "status": None, "waiting_for": None},
            opts,
        )
