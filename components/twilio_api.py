"""Twilio's REST API as the Twilio providers (components/twilio_resources.py) use it: the client, authenticated as the
master account or as a subaccount, with its requests optionally sent to a stand-in; Twilio's refusals as TwilioError
messages that name what failed and never a credential; a regulatory bundle's review status."""

from __future__ import annotations

import os
import urllib.parse
from typing import Any

from foundation.errors import PlatformError

API_URL_ENV = "PLATFORMCTL_TWILIO_API_URL"
TWILIO_API = "https://api.twilio.com"
_LOOPBACK = {"127.0.0.1", "localhost", "::1"}


class TwilioError(PlatformError):
    """Twilio refused or could not do what the provider asked; the message names what and why, never a credential."""


def twilio_client(as_account: tuple[str, str] | None = None) -> Any:
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


def failure_of(exc: Exception) -> tuple[int, int | None, str] | None:
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


def explain(exc: Exception, doing: str) -> TwilioError:
    failure = failure_of(exc)
    if failure is None:
        return TwilioError(f"{doing}: {type(exc).__name__}: {exc}")
    status, code, message = failure
    if status == 401 or code == 20003:
        return TwilioError(
            f"{doing}: Twilio refused the credentials (HTTP {status}); check TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN"
        )
    return TwilioError(f"{doing}: Twilio answered HTTP {status}, error {code}: {message}")


def is_missing(exc: Exception) -> bool:
    failure = failure_of(exc)
    return failure is not None and failure[0] == 404


def as_subaccount(subaccount_sid: str) -> Any:
    """A client authenticated as the subaccount. Bundles and their items live in the subaccount and Numbers v2 acts on
    the account it is authenticated as (main credentials reach only v2010 resources of subaccounts: Twilio docs, "REST
    API: Subaccounts"), so the subaccount's own token is fetched with the main credentials now and never stored."""
    try:
        token = twilio_client().api.v2010.accounts(subaccount_sid).fetch().auth_token
    except Exception as exc:
        raise explain(exc, f"fetching the credentials of subaccount {subaccount_sid}") from None
    return twilio_client((subaccount_sid, token))


def bundle_status(subaccount_sid: str, bundle_sid: str) -> str:
    """The bundle's review status, read as the subaccount ("missing" when the subaccount has no such bundle); a
    rejected bundle's status carries what Twilio's evaluation found wrong."""
    compliance = as_subaccount(subaccount_sid).numbers.v2.regulatory_compliance
    try:
        bundle = compliance.bundles(bundle_sid).fetch()
    except Exception as exc:
        if is_missing(exc):
            return "missing"
        raise explain(exc, f"reading regulatory bundle {bundle_sid}") from None
    status = str(bundle.status)
    if status == "twilio-rejected":
        reasons = _rejection_reasons(compliance, bundle_sid)
        if reasons:
            status += f" ({reasons})"
    return status


def _rejection_reasons(compliance: Any, bundle_sid: str) -> str:
    """What Twilio's latest evaluation of the bundle found wrong. The Evaluations resource
    (https://www.twilio.com/docs/phone-numbers/regulatory/api/evaluations) documents `results` only as "the valid and
    invalid attributes" with granular failure reasons; the keys read here (`passed`, `failure_reason`, `invalid`) are
    those of Twilio's example response, read defensively: anything else leaves the status alone as the reason."""
    try:
        evaluations = compliance.bundles(bundle_sid).evaluations.list(limit=1)
    except Exception:
        return ""  # the status alone still says rejected
    reasons: list[str] = []
    for result in (evaluations[0].results or []) if evaluations else []:
        if isinstance(result, dict) and not result.get("passed", True):
            reasons.append(str(result.get("failure_reason") or result.get("friendly_name") or "failed"))
            for invalid in result.get("invalid") or []:
                if isinstance(invalid, dict) and invalid.get("failure_reason"):
                    reasons.append(str(invalid["failure_reason"]))
    return "; ".join(dict.fromkeys(r[:200] for r in reasons))[:600]
