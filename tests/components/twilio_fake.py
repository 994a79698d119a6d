"""A loopback stand-in for the parts of Twilio's 2010-04-01 REST API the providers and the meter call, answering in
Twilio's shapes (JSON resources, paged lists, error bodies with `code`/`message`/`status`, HTTP Basic auth).

Accounts as https://www.twilio.com/docs/iam/api/account documents them: `GET /Accounts.json` lists the account that
authenticates and the subaccounts it owns, filtered by exact `FriendlyName` and by `Status` (active, suspended,
closed); every Account resource carries its own `auth_token` (a subaccount's differs from its owner's); requests
authenticate with HTTP Basic `AccountSid:AuthToken` of the main account (https://www.twilio.com/docs/iam/api/subaccounts:
the main credentials reach every subaccount's resources), and anything else answers 401 with error 20003.
"""

from __future__ import annotations

import base64
import itertools
import json
import re
import secrets
import threading
import urllib.parse
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

API = "/2010-04-01"
_TYPES = {"Local": "local", "Mobile": "mobile", "TollFree": "toll_free"}


@dataclass
class FakeTwilio:
    account_sid: str
    """The master account the credentials belong to."""
    auth_token: str
    """Its token: requests with anything else get Twilio's 401."""
    accounts: dict[str, dict[str, Any]] = field(default_factory=dict)
    """Accounts by SID (the master and its subaccounts)."""
    numbers: dict[str, dict[str, Any]] = field(default_factory=dict)
    """Incoming phone numbers by SID (each names its account)."""
    available: dict[tuple[str, str], list[dict[str, Any]]] = field(default_factory=dict)
    """Numbers for sale by (country, type)."""
    purchase_error: tuple[int, int, str] | None = None
    """(HTTP status, Twilio code, message) every purchase answers with, when set."""
    addresses: dict[str, dict[str, Any]] = field(default_factory=dict)
    """Addresses by SID (each names its account)."""
    bundles: dict[str, dict[str, Any]] = field(default_factory=dict)
    """Regulatory bundles by SID (Numbers v2), each in one account, with its review status."""
    end_users: dict[str, dict[str, Any]] = field(default_factory=dict)
    """Regulatory End-Users by SID (Numbers v2), each in one account."""
    documents: dict[str, dict[str, Any]] = field(default_factory=dict)
    """Regulatory Supporting Documents by SID (Numbers v2), each in one account."""
    assignments: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    """Item assignments by bundle SID."""
    evaluations: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    """Evaluations by bundle SID, newest first."""
    submissions: list[str] = field(default_factory=list)
    """Bundle SIDs, once per `Status=pending-review` accepted (a resubmission shows twice)."""
    address_required: set[tuple[str, str]] = field(default_factory=set)
    """(country, type) whose purchase needs an AddressSid of the buying account in that country (error 21631)."""
    taken: set[str] = field(default_factory=set)
    """Numbers that were sold to someone else between search and purchase (error 21422)."""
    requests: list[tuple[str, str, dict[str, list[str]]]] = field(default_factory=list)
    """(method, path, parameters) of every request, in order."""
    outage: int | None = None
    """HTTP status (5xx) every request answers with while set: Twilio's API having a bad day."""
    _ids: Any = field(default_factory=lambda: itertools.count(1))

    def __post_init__(self) -> None:
        self.accounts[self.account_sid] = self._account(self.account_sid, "Platform master", None)

    def sid(self, prefix: str) -> str:
        return f"{prefix}{next(self._ids):032x}"

    def offer(self, country: str, number_type: str, *phone_numbers: str, locality: str = "") -> None:
        self.available.setdefault((country, number_type), []).extend(
            {
                "phone_number": n,
                "friendly_name": n,
                "iso_country": country,
                "locality": locality or None,
                "capabilities": {"voice": True, "SMS": False, "MMS": False},
            }
            for n in phone_numbers
        )

    def add_subaccount(self, friendly_name: str, status: str = "active") -> tuple[str, str]:
        """A subaccount of the master, as POST /Accounts.json makes it: (its SID, its own auth token)."""
        sid = self.sid("AC")
        self.accounts[sid] = self._account(sid, friendly_name, self.account_sid)
        self.accounts[sid]["status"] = status
        return sid, str(self.accounts[sid]["auth_token"])

    def rotate(self, sid: str) -> str:
        """A new auth token for the account (the Console's secondary token, promoted): the old one stops working."""
        token = secrets.token_hex(16)
        self.accounts[sid]["auth_token"] = token
        return token

    def account_lookups(self) -> list[tuple[str, str, dict[str, list[str]]]]:
        return [r for r in self.requests if r[0] == "GET" and r[1] == f"{API}/Accounts.json"]

    def purchases(self) -> list[tuple[str, str, dict[str, list[str]]]]:
        return [r for r in self.requests if r[0] == "POST" and r[1].endswith("/IncomingPhoneNumbers.json")]

    def _account(self, sid: str, name: str, owner: str | None) -> dict[str, Any]:
        return {
            "sid": sid,
            "friendly_name": name,
            "status": "active",
            "type": "Full",
            "owner_account_sid": owner or sid,
            # 32 hex characters, like Twilio's; each account its own.
            "auth_token": self.auth_token if sid == self.account_sid else secrets.token_hex(16),
            "date_created": "Sun, 29 Nov 2026 10:00:00 +0000",
            "date_updated": "Sun, 29 Nov 2026 10:00:00 +0000",
            "uri": f"{API}/Accounts/{sid}.json",
            "subresource_uris": {},
            "status_callback": None,
        }

    # ------------------------------------------------------------ request handling

    def handle(self, method: str, path: str, params: dict[str, list[str]], auth: str) -> tuple[int, Any]:
        self.requests.append((method, path, params))
        if self.outage is not None:
            return self.outage, _error(20500, "Internal Server Error", self.outage)
        if path.startswith("/v2/RegulatoryCompliance/"):
            return self._regulatory(method, path.removeprefix("/v2/RegulatoryCompliance/"), params, auth)
        expected = "Basic " + base64.b64encode(f"{self.account_sid}:{self.auth_token}".encode()).decode()
        if auth != expected:
            return 401, _error(20003, "Authenticate", 401)
        one = {k: v[0] for k, v in params.items()}
        if path == f"{API}/Accounts.json":
            if method == "GET":
                name, wanted = one.get("FriendlyName"), one.get("Status")
                found = [
                    a
                    for a in self.accounts.values()
                    if (name is None or a["friendly_name"] == name) and (wanted is None or a["status"] == wanted)
                ]
                return 200, _page("accounts", found, path)
            sid = self.sid("AC")
            self.accounts[sid] = self._account(sid, one.get("FriendlyName", ""), self.account_sid)
            return 201, self.accounts[sid]
        if match := re.fullmatch(rf"{API}/Accounts/(AC\w+)\.json", path):
            account = self.accounts.get(match.group(1))
            if account is None:
                return 404, _error(20404, f"The requested resource {path} was not found", 404)
            if method == "POST":
                if "Status" in one:
                    account["status"] = one["Status"]
                if "FriendlyName" in one:
                    account["friendly_name"] = one["FriendlyName"]
            return 200, account
        match = re.fullmatch(rf"{API}/Accounts/(AC\w+)/(.+)", path)
        if match is None or match.group(1) not in self.accounts:
            return 404, _error(20404, f"The requested resource {path} was not found", 404)
        owner, rest = match.groups()
        if m := re.fullmatch(r"AvailablePhoneNumbers/([A-Z]{2})/(Local|Mobile|TollFree)\.json", rest):
            offered = self.available.get((m.group(1), _TYPES[m.group(2)]))
            if offered is None:
                return 404, _error(20404, f"The requested resource {path} was not found", 404)
            hits = [n for n in offered if not one.get("InLocality") or n["locality"] == one["InLocality"]]
            hits = [n for n in hits if n["phone_number"] not in self._owned_numbers()]
            return 200, _page("available_phone_numbers", hits[: int(one.get("PageSize", 50))], path)
        if rest == "Addresses.json":
            if method == "GET":
                name = one.get("FriendlyName")
                found = [
                    a
                    for a in self.addresses.values()
                    if a["account_sid"] == owner and (name is None or a["friendly_name"] == name)
                ]
                return 200, _page("addresses", found, path)
            required = ("CustomerName", "Street", "City", "Region", "PostalCode", "IsoCountry")
            missing = [key for key in required if not one.get(key)]
            if missing:
                return 400, _error(21603, f"{missing[0]} is required", 400)  # Twilio: "... is required"
            sid = self.sid("AD")
            self.addresses[sid] = {
                "sid": sid,
                "account_sid": owner,
                "customer_name": one["CustomerName"],
                "street": one["Street"],
                "city": one["City"],
                "region": one["Region"],
                "postal_code": one["PostalCode"],
                "iso_country": one["IsoCountry"],
                "friendly_name": one.get("FriendlyName", ""),
                "validated": True,
                "verified": False,
                "uri": f"{API}/Accounts/{owner}/Addresses/{sid}.json",
            }
            return 201, self.addresses[sid]
        if m := re.fullmatch(r"Addresses/(AD\w+)\.json", rest):
            address = self.addresses.get(m.group(1))
            if address is None or address["account_sid"] != owner:
                return 404, _error(20404, f"The requested resource {path} was not found", 404)
            if method == "DELETE":
                del self.addresses[m.group(1)]
                return 204, None
            if method == "POST":
                for key, value in one.items():
                    address[re.sub(r"(?<!^)(?=[A-Z])", "_", key).lower()] = value
            return 200, address
        if rest == "IncomingPhoneNumbers.json":
            if method == "GET":
                name = one.get("FriendlyName")
                found = [
                    n
                    for n in self.numbers.values()
                    if n["account_sid"] == owner and (name is None or n["friendly_name"] == name)
                ]
                return 200, _page("incoming_phone_numbers", found, path)
            phone = one["PhoneNumber"]
            if self.purchase_error is not None:
                status, code, message = self.purchase_error
                return status, _error(code, message, status)
            if phone in self.taken or phone in self._owned_numbers():
                return 400, _error(21422, f"PhoneNumber {phone} is not available", 400)
            country, number_type = self._offer_of(phone)
            if (country, number_type) in self.address_required:
                address = self.addresses.get(one.get("AddressSid", ""))
                if address is None or address["account_sid"] != owner or address["iso_country"] != country:
                    # https://www.twilio.com/docs/errors/21631: "Phone Number Requires an Address"
                    return 400, _error(21631, "Phone Number Requires an Address", 400)
            sid = self.sid("PN")
            self.numbers[sid] = {
                "sid": sid,
                "account_sid": owner,
                "phone_number": phone,
                "friendly_name": one.get("FriendlyName", phone),
                "voice_url": one.get("VoiceUrl"),
                "voice_method": one.get("VoiceMethod", "POST"),
                "status_callback": one.get("StatusCallback"),
                "status_callback_method": one.get("StatusCallbackMethod", "POST"),
                "address_sid": one.get("AddressSid"),
                "bundle_sid": one.get("BundleSid"),
                "capabilities": {"voice": True},
                "uri": f"{API}/Accounts/{owner}/IncomingPhoneNumbers/{sid}.json",
            }
            return 201, self.numbers[sid]
        if m := re.fullmatch(r"IncomingPhoneNumbers/(PN\w+)\.json", rest):
            number = self.numbers.get(m.group(1))
            if number is None or number["account_sid"] != owner:
                return 404, _error(20404, f"The requested resource {path} was not found", 404)
            if method == "DELETE":
                del self.numbers[m.group(1)]
                return 204, None
            if method == "POST":
                for key, value in one.items():
                    number[re.sub(r"(?<!^)(?=[A-Z])", "_", key).lower()] = value
            return 200, number
        return 404, _error(20404, f"The requested resource {path} was not found", 404)

    def add_bundle(self, account_sid: str, status: str) -> str:
        sid = self.sid("BU")
        self.bundles[sid] = {"sid": sid, "account_sid": account_sid, "status": status, "friendly_name": sid}
        return sid

    def review(self, sid: str, accept: bool, failures: tuple[str, ...] = ()) -> None:
        """Test hook: Twilio's review of a submitted bundle ends, twilio-approved or twilio-rejected; a rejection
        leaves an Evaluation whose results name what failed (Bundles doc, "Bundle Statuses"; Evaluations resource)."""
        bundle = self.bundles[sid]
        assert bundle["status"] in ("pending-review", "in-review"), bundle["status"]
        bundle["status"] = "twilio-approved" if accept else "twilio-rejected"
        evaluation = self.sid("EL")
        self.evaluations.setdefault(sid, []).insert(
            0,
            {
                "sid": evaluation,
                "account_sid": bundle["account_sid"],
                "regulation_sid": bundle.get("regulation_sid"),
                "bundle_sid": sid,
                "status": "compliant" if accept else "noncompliant",
                "results": [
                    {
                        "friendly_name": "Supporting Document",
                        "object_type": "supporting_document",
                        "passed": accept,
                        "failure_reason": reason,
                        "error_code": 22216,
                        "valid": [],
                        "invalid": [],
                    }
                    for reason in failures
                ],
                "date_created": "2026-11-29T10:00:00Z",
                "url": f"https://numbers.twilio.com/v2/RegulatoryCompliance/Bundles/{sid}/Evaluations/{evaluation}",
            },
        )

    def _acting(self, auth: str) -> str | None:
        """Numbers v2 acts on the account it is authenticated as (an account's own SID and token): objects of another
        account are not found, the main account's credentials included (Twilio docs, "REST API: Subaccounts": main
        credentials reach v2010 resources of subaccounts only)."""
        return next(
            (
                a["sid"]
                for a in self.accounts.values()
                if auth == "Basic " + base64.b64encode(f"{a['sid']}:{self._token_of(a)}".encode()).decode()
            ),
            None,
        )

    def _regulatory(self, method: str, rest: str, params: dict[str, list[str]], auth: str) -> tuple[int, Any]:
        """Numbers v2 Regulatory Compliance, as https://www.twilio.com/docs/phone-numbers/regulatory/api documents it:
        EndUsers (IT…: FriendlyName, Type individual|business, Attributes JSON), SupportingDocuments (RD…:
        FriendlyName, Type, Attributes JSON), Bundles (BU…: FriendlyName + Email required, RegulationSid or
        IsoCountry/NumberType/EndUserType; created `draft`; list filtered by FriendlyName; `Status=pending-review`
        submits a draft or rejected bundle), Bundles/{sid}/ItemAssignments (BV…: ObjectSid) and
        Bundles/{sid}/Evaluations. Lists page as {"results": [...], "meta": {...}} (v2 paging). Refusals the docs
        describe without an error code (items of another account, submitting a bundle under review or accepted)
        answer 400 with code 20001 as a stand-in."""
        acting = self._acting(auth)
        if acting is None:
            return 401, _error(20003, "Authenticate", 401)
        one = {k: v[0] for k, v in params.items()}
        path = f"/v2/RegulatoryCompliance/{rest}"
        missing = 404, _error(20404, f"The requested resource {path} was not found", 404)
        for collection, prefix, store in (
            ("EndUsers", "IT", self.end_users),
            ("SupportingDocuments", "RD", self.documents),
        ):
            if rest == collection:
                if method == "GET":
                    return 200, _v2_page([o for o in store.values() if o["account_sid"] == acting], path)
                if not one.get("FriendlyName") or not one.get("Type"):
                    return 400, _error(20001, "Missing required parameter FriendlyName or Type", 400)
                if collection == "EndUsers" and one["Type"] not in ("individual", "business"):
                    return 400, _error(20001, "Type must be individual or business", 400)
                sid = self.sid(prefix)
                store[sid] = {
                    "sid": sid,
                    "account_sid": acting,
                    "friendly_name": one["FriendlyName"],
                    "type": one["Type"],
                    "attributes": json.loads(one.get("Attributes") or "{}"),
                    "url": f"https://numbers.twilio.com{path}/{sid}",
                    **({"status": "draft", "mime_type": None, "failure_reason": None} if prefix == "RD" else {}),
                }
                return 201, store[sid]
            if m := re.fullmatch(rf"{collection}/({prefix}\w+)", rest):
                found = store.get(m.group(1))
                if found is None or found["account_sid"] != acting:
                    return missing
                if method == "DELETE":
                    del store[m.group(1)]
                    return 204, None
                if method == "POST":
                    if "FriendlyName" in one:
                        found["friendly_name"] = one["FriendlyName"]
                    if "Attributes" in one:
                        found["attributes"] = json.loads(one["Attributes"])
                return 200, found
        if rest == "Bundles":
            if method == "GET":
                name = one.get("FriendlyName")
                found_bundles = [
                    b
                    for b in self.bundles.values()
                    if b["account_sid"] == acting and (name is None or b["friendly_name"] == name)
                ]
                return 200, _v2_page(found_bundles, path)
            if not one.get("FriendlyName") or not one.get("Email"):
                return 400, _error(20001, "Missing required parameter FriendlyName or Email", 400)
            sid = self.sid("BU")
            self.bundles[sid] = {
                "sid": sid,
                "account_sid": acting,
                "regulation_sid": one.get("RegulationSid") or self.sid("RN"),
                "friendly_name": one["FriendlyName"],
                "status": "draft",
                "email": one["Email"],
                "status_callback": one.get("StatusCallback"),
                "iso_country": one.get("IsoCountry"),
                "number_type": one.get("NumberType"),
                "end_user_type": one.get("EndUserType"),
                "valid_until": None,
                "url": f"https://numbers.twilio.com{path}/{sid}",
                "links": {},
            }
            return 201, self.bundles[sid]
        m = re.fullmatch(r"Bundles/(BU\w+)(?:/(ItemAssignments|Evaluations))?", rest)
        if m is None:
            return missing
        bundle = self.bundles.get(m.group(1))
        if bundle is None or bundle["account_sid"] != acting:
            return missing
        if m.group(2) == "ItemAssignments":
            items = self.assignments.setdefault(bundle["sid"], [])
            if method == "GET":
                return 200, _v2_page(items, path)
            if bundle["status"] not in ("draft", "twilio-rejected"):
                return 400, _error(20001, f"Bundle {bundle['sid']} is {bundle['status']}: items cannot change", 400)
            object_sid = one.get("ObjectSid", "")
            owned = {**self.end_users, **self.documents, **self.addresses}.get(object_sid)
            if owned is None or owned["account_sid"] != acting:
                return 400, _error(20001, f"ObjectSid {object_sid} is not an object of this account", 400)
            item = {
                "sid": self.sid("BV"),
                "bundle_sid": bundle["sid"],
                "account_sid": acting,
                "object_sid": object_sid,
                "url": f"https://numbers.twilio.com{path}",
            }
            items.append(item)
            return 201, item
        if m.group(2) == "Evaluations":
            return 200, _v2_page(self.evaluations.get(bundle["sid"], []), path)
        if method == "POST" and "Status" in one:
            if one["Status"] != "pending-review" or bundle["status"] not in ("draft", "twilio-rejected"):
                return 400, _error(
                    20001, f"Bundle {bundle['sid']} is {bundle['status']}: cannot move to {one['Status']}", 400
                )
            self.submissions.append(bundle["sid"])
            bundle["status"] = "pending-review"
        return 200, bundle

    def _token_of(self, account: dict[str, Any]) -> str:
        return self.auth_token if account["sid"] == self.account_sid else str(account["auth_token"])

    def _offer_of(self, phone: str) -> tuple[str, str]:
        for (country, number_type), offered in self.available.items():
            if any(n["phone_number"] == phone for n in offered):
                return country, number_type
        return "", ""

    def _owned_numbers(self) -> set[str]:
        return {n["phone_number"] for n in self.numbers.values()}


def _page(key: str, items: list[dict[str, Any]], path: str) -> dict[str, Any]:
    return {
        key: items,
        "page": 0,
        "page_size": 50,
        "uri": path,
        "first_page_uri": path,
        "next_page_uri": None,
        "previous_page_uri": None,
        "start": 0,
        "end": max(len(items) - 1, 0),
    }


def _v2_page(items: list[dict[str, Any]], path: str) -> dict[str, Any]:
    """Numbers v2 list shape: the items under `results`, paging under `meta` (the client reads `meta.key`)."""
    url = f"https://numbers.twilio.com{path}?PageSize=50&Page=0"
    return {
        "results": items,
        "meta": {
            "page": 0,
            "page_size": 50,
            "first_page_url": url,
            "previous_page_url": None,
            "url": url,
            "next_page_url": None,
            "key": "results",
        },
    }


def _error(code: int, message: str, status: int) -> dict[str, Any]:
    return {
        "code": code,
        "message": message,
        "more_info": f"https://www.twilio.com/docs/errors/{code}",
        "status": status,
    }


def serve(fake: FakeTwilio, port: int = 0) -> ThreadingHTTPServer:
    """Start the fake on 127.0.0.1 (an ephemeral port unless given) in a daemon thread; the caller shuts it down."""

    class Handler(BaseHTTPRequestHandler):
        def _answer(self) -> None:
            url = urllib.parse.urlsplit(self.path)
            params = urllib.parse.parse_qs(url.query)
            length = int(self.headers.get("Content-Length") or 0)
            if length:
                params.update(urllib.parse.parse_qs(self.rfile.read(length).decode()))
            status, body = fake.handle(self.command, url.path, params, self.headers.get("Authorization", ""))
            payload = b"" if body is None else json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        do_GET = do_POST = do_DELETE = _answer  # noqa: N815 - http.server's method names

        def log_message(self, *args: Any) -> None:
            return None

    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    return server
