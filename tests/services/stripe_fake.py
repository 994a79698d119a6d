"""A loopback fake of the Stripe endpoints the payouts job uses, for the real `stripe` client.

POST/GET /v1/accounts, GET /v1/accounts/{id}, POST /v1/account_links, POST/GET /v1/transfers (GET filters by
transfer_group and destination). Idempotency-Key replay like Stripe's (https://docs.stripe.com/api/idempotent_requests):
the same key with the same parameters answers the saved response; the same key with other parameters is a 400
`idempotency_error`. Faults are queued per endpoint and consumed in order:

- "500": a 500 before anything is created (nothing saved under the key);
- "500_after_commit": the object is created and saved under the key, the client gets a 500;
- "drop_after_commit": the object is created and saved, the connection is closed without an answer;
- "429": a rate-limit error before anything is created;
- "other_currency", "other_amount", "no_destination" (transfers): the transfer Stripe makes and answers differs
  from the request in that field (a defect on the other side; the job must not take it for the one it asked for).

Onboarding, as Stripe documents it for Express accounts: an account is created with the `transfers` capability
requested and "inactive" (https://docs.stripe.com/api/capabilities/object: status active|inactive|pending|
unrequested); it becomes "active" only when the account holder completes the hosted flow of an Account Link
(https://docs.stripe.com/api/account_links/create; the link is single use and expires after minutes, a used or expired
link redirects to refresh_url). Visiting the link's URL on this fake stands for completing the flow. A transfer to an
account whose `transfers` capability is not active is refused (400), as Stripe does ("Your destination account needs
to have at least one of the following capabilities enabled: transfers, crypto_transfers, legacy_payments").
Cross-border (https://docs.stripe.com/connect/cross-border-payouts, https://docs.stripe.com/connect/service-agreement-types):
an account in another country than the platform's must be created under the recipient service agreement, and only
in the supported regions (US, UK, EEA, Canada, Switzerland); otherwise the create is refused (400).
"""

from __future__ import annotations

import itertools
import json
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

TEST_KEY = "sk_test_" + "51Fake" + "0" * 20
PLATFORM_COUNTRY = "US"
CROSS_BORDER = frozenset(
    {"US", "GB", "CA", "CH", "IS", "LI", "NO", "AT", "BE", "BG", "HR", "CY", "CZ", "DK", "EE", "FI", "FR"}
    | {"DE", "GR", "HU", "IE", "IT", "LV", "LT", "LU", "MT", "NL", "PL", "PT", "RO", "SK", "SI", "ES", "SE"}
)
"""Where a platform in one of them may pay connected accounts across borders, self-serve (cross-border page)."""
LINK_SECONDS = 300


def _nest(pairs: list[tuple[str, str]]) -> dict[str, Any]:
    """Stripe's form encoding (`metadata[partner]=x`, `capabilities[transfers][requested]=true`) as a dict."""
    result: dict[str, Any] = {}
    for key, value in pairs:
        parts = key.replace("]", "").split("[")
        node = result
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = value
    return result


@dataclass
class FakeStripe:
    base: str = ""
    accounts: dict[str, dict[str, Any]] = field(default_factory=dict)
    transfers: list[dict[str, Any]] = field(default_factory=list)
    idempotent: dict[str, tuple[str, str, tuple[tuple[str, str], ...], int, bytes]] = field(default_factory=dict)
    faults: dict[str, list[str]] = field(default_factory=dict)
    requests: list[tuple[str, str, str | None]] = field(default_factory=list)
    """(method, path, Idempotency-Key) of every request, in order."""
    links: dict[str, dict[str, Any]] = field(default_factory=dict)
    """Account Link token -> {account, refresh_url, return_url, expires_at, used}."""
    lock: threading.Lock = field(default_factory=threading.Lock)
    _ids: Iterator[int] = field(default_factory=lambda: itertools.count(1))

    def complete_onboarding(self, account_id: str) -> None:
        """What the account holder finishing Stripe's hosted onboarding does to the account."""
        account = self.accounts[account_id]
        account["capabilities"]["transfers"] = "active"
        account["details_submitted"] = True
        account["payouts_enabled"] = True

    def inject(self, endpoint: str, *kinds: str) -> None:
        """Queue faults for `accounts` or `transfers` POSTs."""
        self.faults.setdefault(endpoint, []).extend(kinds)

    def next_id(self, prefix: str) -> str:
        return f"{prefix}_{next(self._ids):016d}"


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _send(self, status: int, body: dict[str, Any] | bytes) -> None:
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Request-Id", f"req_{time.monotonic_ns()}")
        self.end_headers()
        self.wfile.write(data)

    def _error(self, status: int, type_: str, message: str, code: str | None = None) -> None:
        error: dict[str, Any] = {"type": type_, "message": message}
        if code:
            error["code"] = code
        self._send(status, {"error": error})

    def _authorized(self) -> bool:
        auth = self.headers.get("Authorization", "")
        if auth != f"Bearer {self.server.expected_key}":
            self._error(401, "invalid_request_error", "Invalid API Key provided")
            return False
        return True

    def do_GET(self) -> None:
        fake = self.server.fake
        url = urlsplit(self.path)
        query = dict(parse_qsl(url.query))
        with fake.lock:
            fake.requests.append(("GET", url.path, None))
        if url.path.startswith("/setup/"):  # the partner's browser on an onboarding link: no API key
            self._visit_link(url.path.removeprefix("/setup/"))
            return
        if not self._authorized():
            return
        if url.path.startswith("/v1/accounts/"):
            account = fake.accounts.get(url.path.rsplit("/", 1)[-1])
            if account is None:
                self._error(404, "invalid_request_error", "No such account", "resource_missing")
                return
            self._send(200, account)
        elif url.path == "/v1/accounts":
            self._send(200, self._page(list(fake.accounts.values()), query, "/v1/accounts"))
        elif url.path == "/v1/transfers":
            items = [
                t
                for t in reversed(fake.transfers)
                if query.get("transfer_group", t["transfer_group"]) == t["transfer_group"]
                and query.get("destination", t["destination"]) == t["destination"]
            ]
            self._send(200, self._page(items, query, "/v1/transfers"))
        else:
            self._error(404, "invalid_request_error", f"Unrecognized request URL (GET: {url.path})")

    def _visit_link(self, token: str) -> None:
        fake = self.server.fake
        with fake.lock:
            link = fake.links.get(token)
            usable = link is not None and not link["used"] and time.time() < link["expires_at"]
            if link is not None and usable:
                link["used"] = True
                fake.complete_onboarding(link["account"])
        if link is None:
            self._send(404, b"{}")
            return
        self.send_response(302)
        self.send_header("Location", link["return_url"] if usable else link["refresh_url"])
        self.send_header("Content-Length", "0")
        self.end_headers()

    @staticmethod
    def _page(items: list[dict[str, Any]], query: dict[str, str], url: str) -> dict[str, Any]:
        limit = max(1, min(100, int(query.get("limit", "10"))))
        after = query.get("starting_after")
        if after:
            ids = [i["id"] for i in items]
            items = items[ids.index(after) + 1 :] if after in ids else []
        return {"object": "list", "data": items[:limit], "has_more": len(items) > limit, "url": url}

    def do_POST(self) -> None:
        fake = self.server.fake
        url = urlsplit(self.path)
        length = int(self.headers.get("Content-Length", "0"))
        pairs = tuple(sorted(parse_qsl(self.rfile.read(length).decode(), keep_blank_values=True)))
        key = self.headers.get("Idempotency-Key")
        with fake.lock:
            fake.requests.append(("POST", url.path, key))
        if not self._authorized():
            return
        endpoint = url.path.removeprefix("/v1/")
        if endpoint == "account_links":
            self._create_link(_nest(list(pairs)))
            return
        if endpoint not in ("accounts", "transfers"):
            self._error(404, "invalid_request_error", f"Unrecognized request URL (POST: {url.path})")
            return
        with fake.lock:
            # An outage or a rate limit answers before the idempotency layer: nothing is replayed or saved.
            queue = fake.faults.get(endpoint) or []
            fault = queue.pop(0) if queue else None
            if fault == "500":
                self._error(500, "api_error", "An unknown error occurred")
                return
            if fault == "429":
                self._error(429, "invalid_request_error", "Too many requests", "rate_limit")
                return
            if key is not None and key in fake.idempotent:
                method, path, saved_params, status, body = fake.idempotent[key]
                if (method, path, saved_params) != ("POST", url.path, pairs):
                    self._error(
                        400,
                        "idempotency_error",
                        "Keys for idempotent requests can only be used with the same parameters they were first "
                        "used with. Try using a key other than '" + key + "' if you meant to execute a different "
                        "request.",
                    )
                    return
                self._send(status, body)
                return
            params = _nest(list(pairs))
            if endpoint == "accounts":
                status, obj = self._create_account(params)
            else:
                status, obj = self._create_transfer(params, fault)
            body = json.dumps(obj).encode()
            if key is not None:
                fake.idempotent[key] = ("POST", url.path, pairs, status, body)
        if fault == "500_after_commit":
            self._error(500, "api_error", "An unknown error occurred")
        elif fault == "drop_after_commit":
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)
        else:
            self._send(status, body)

    def _create_link(self, params: dict[str, Any]) -> None:
        fake = self.server.fake
        if params.get("type") not in ("account_onboarding", "account_update"):
            self._error(400, "invalid_request_error", "Invalid type: must be account_onboarding or account_update")
            return
        for name in ("account", "refresh_url", "return_url"):
            if not params.get(name):
                self._error(400, "invalid_request_error", f"Missing required param: {name}.", "parameter_missing")
                return
        if params["account"] not in fake.accounts:
            self._error(400, "invalid_request_error", f"No such account: '{params['account']}'", "resource_missing")
            return
        now = int(time.time())
        token = f"{next(fake._ids):08d}{time.monotonic_ns() % 10**8:08d}"
        with fake.lock:
            fake.links[token] = {**params, "expires_at": now + LINK_SECONDS, "used": False}
        self._send(
            200,
            {
                "object": "account_link",
                "created": now,
                "expires_at": now + LINK_SECONDS,
                "url": f"{fake.base}/setup/{token}",
            },
        )

    def _create_account(self, params: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        fake = self.server.fake
        if params.get("type") != "express" or not params.get("country"):
            return 400, {"error": {"type": "invalid_request_error", "message": "type express and country required"}}
        agreement = (params.get("tos_acceptance") or {}).get("service_agreement", "full")
        if params["country"] != PLATFORM_COUNTRY:
            if params["country"] not in CROSS_BORDER or PLATFORM_COUNTRY not in CROSS_BORDER:
                message = (
                    f"Connected accounts in {params['country']} cannot be created by platforms in {PLATFORM_COUNTRY}"
                )
                return 400, {"error": {"type": "invalid_request_error", "message": message}}
            if agreement != "recipient":
                message = "Cross-border accounts must be created under the recipient service agreement"
                return 400, {"error": {"type": "invalid_request_error", "message": message}}
        account = {
            "id": fake.next_id("acct"),
            "object": "account",
            "type": "express",
            "country": params["country"],
            "default_currency": params.get("default_currency"),
            "capabilities": {name: "inactive" for name in (params.get("capabilities") or {})},
            "metadata": params.get("metadata") or {},
            "email": params.get("email"),
            "tos_acceptance": {"service_agreement": agreement},
            "details_submitted": False,
            "charges_enabled": False,
            "payouts_enabled": False,
            "created": int(time.time()),
        }
        fake.accounts[account["id"]] = account
        return 200, account

    def _create_transfer(self, params: dict[str, Any], fault: str | None = None) -> tuple[int, dict[str, Any]]:
        fake = self.server.fake
        amount = params.get("amount", "")
        if not amount.isdigit() or int(amount) <= 0:
            return 400, {"error": {"type": "invalid_request_error", "message": "amount must be a positive integer"}}
        if params.get("destination") not in fake.accounts:
            return 400, {"error": {"type": "invalid_request_error", "message": "No such destination"}}
        if fake.accounts[params["destination"]]["capabilities"].get("transfers") != "active":
            message = (
                "Your destination account needs to have at least one of the following capabilities enabled: "
                "transfers, crypto_transfers, legacy_payments"
            )
            return 400, {"error": {"type": "invalid_request_error", "message": message}}
        transfer = {
            "id": fake.next_id("tr"),
            "object": "transfer",
            "amount": int(amount),
            "amount_reversed": 0,
            "currency": params.get("currency"),
            "destination": params["destination"],
            "transfer_group": params.get("transfer_group"),
            "metadata": params.get("metadata") or {},
            "description": params.get("description"),
            "created": int(time.time()),
            "livemode": False,
            "reversed": False,
        }
        if fault == "other_currency":
            transfer["currency"] = "usd" if transfer["currency"] != "usd" else "eur"
        elif fault == "other_amount":
            transfer["amount"] = int(amount) + 1
        elif fault == "no_destination":
            transfer["destination"] = None
        fake.transfers.append(transfer)
        return 200, transfer


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    fake: FakeStripe
    expected_key: str


class StripeServer:
    """Context manager: a FakeStripe on 127.0.0.1 on a free port; stops on exit."""

    _running = 0
    """Fakes of this process that are up (in whatever order they stop)."""
    _client_delay = 0.5
    """The client's retry delay before the first of them started."""

    def __init__(self, key: str = TEST_KEY) -> None:
        self.fake = FakeStripe()
        self._server = _Server(("127.0.0.1", 0), _Handler)
        self._server.fake = self.fake
        self._server.expected_key = key
        self.fake.base = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    def __enter__(self) -> FakeStripe:
        # The real client sleeps 0.5-5 s before each of its retries (stripe._http_client.HTTPClient.INITIAL_DELAY,
        # with jitter and doubling); against this loopback fake the wait proves nothing and only idles the test.
        # The retries themselves (how many, with the same Idempotency-Key) are the client's own, unchanged.
        from stripe._http_client import HTTPClient

        if not StripeServer._running:
            StripeServer._client_delay = HTTPClient.INITIAL_DELAY
            HTTPClient.INITIAL_DELAY = 0.0
        StripeServer._running += 1
        self._thread.start()
        return self.fake

    def __exit__(self, *exc: object) -> None:
        from stripe._http_client import HTTPClient

        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)
        StripeServer._running -= 1
        if not StripeServer._running:  # the last fake of the process is down: the client's own delay again
            HTTPClient.INITIAL_DELAY = StripeServer._client_delay
