"""Twilio subaccounts and phone numbers as Pulumi dynamic resources, through the `twilio` package's REST client.

Credentials are read from the environment (TWILIO_ACCOUNT_SID, TWILIO_AUTH_TOKEN) inside every provider method, at
run time: the providers hold no attributes, so the pickled provider that Pulumi stores in each resource's
`__provider` input carries no secret, and nothing secret is an input or output. PLATFORMCTL_TWILIO_API_URL sends the
client's requests to a stand-in of Twilio's REST API instead of https://api.twilio.com (local tests and demos; https,
or plain http on the loopback interface only).
"""

from __future__ import annotations

from typing import Any

import pulumi
from pulumi.dynamic import CreateResult, DiffResult, ReadResult, Resource, ResourceProvider, UpdateResult

from components.twilio_api import (
    TwilioError,
    as_subaccount,
    bundle_status,
    explain,
    failure_of,
    is_missing,
    twilio_client,
)

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


# ---------------------------------------------------------------- subaccounts


class TwilioSubaccountProvider(ResourceProvider):
    """A Twilio subaccount per partner: its numbers and usage kept apart from every other partner's."""

    def create(self, props: dict[str, Any]) -> CreateResult:
        client = twilio_client()
        name = props["friendly_name"]
        try:
            # Adopt: a crash after Twilio created the account but before the state was written must not make two.
            existing = [a for a in client.api.v2010.accounts.list(friendly_name=name, limit=20) if a.status != "closed"]
            account = existing[0] if existing else client.api.v2010.accounts.create(friendly_name=name)
        except Exception as exc:
            raise explain(exc, f"creating Twilio subaccount {name!r}") from None
        return CreateResult(account.sid, self._outs(props, account))

    def read(self, id_: str, props: dict[str, Any]) -> ReadResult:
        client = twilio_client()
        try:
            account = client.api.v2010.accounts(id_).fetch()
        except Exception as exc:
            if is_missing(exc):
                return ReadResult(None, {})
            raise explain(exc, f"reading Twilio subaccount {id_}") from None
        if account.status == "closed":
            return ReadResult(None, {})
        return ReadResult(id_, self._outs(props, account))

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        replaces = [k for k in SUBACCOUNT_REPLACE_KEYS if olds.get(k) != news.get(k)]
        changed = replaces or olds.get("friendly_name") != news.get("friendly_name")
        return DiffResult(changes=bool(changed), replaces=replaces, delete_before_replace=True)

    def update(self, id_: str, _olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        client = twilio_client()
        try:
            account = client.api.v2010.accounts(id_).update(friendly_name=news["friendly_name"])
        except Exception as exc:
            raise explain(exc, f"renaming Twilio subaccount {id_}") from None
        return UpdateResult(self._outs(news, account))

    def delete(self, id_: str, _props: dict[str, Any]) -> None:
        """Close the subaccount (Twilio releases what it still holds). Runs only on purge: see PartnerTelephony."""
        client = twilio_client()
        try:
            client.api.v2010.accounts(id_).update(status="closed")
        except Exception as exc:
            if is_missing(exc):
                return
            raise explain(exc, f"closing Twilio subaccount {id_}") from None

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
        account = twilio_client().api.v2010.accounts(props["subaccount_sid"])
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
            raise explain(exc, f"creating the address for {name!r} in {props['iso_country']}") from None
        return CreateResult(address.sid, self._outs(props, address))

    def read(self, id_: str, props: dict[str, Any]) -> ReadResult:
        account = twilio_client().api.v2010.accounts(props["subaccount_sid"])
        try:
            address = account.addresses(id_).fetch()
        except Exception as exc:
            if is_missing(exc):
                return ReadResult(None, {})
            raise explain(exc, f"reading address {id_}") from None
        return ReadResult(id_, self._outs(props, address))

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        replaces = [k for k in ADDRESS_REPLACE_KEYS if olds.get(k) != news.get(k)]
        updates = [k for k in ADDRESS_FIELDS if olds.get(k) != news.get(k)]
        return DiffResult(changes=bool(replaces or updates), replaces=replaces, delete_before_replace=True)

    def update(self, id_: str, _olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        account = twilio_client().api.v2010.accounts(news["subaccount_sid"])
        try:
            address = account.addresses(id_).update(**{key: news[key] for key in ADDRESS_FIELDS})
        except Exception as exc:
            raise explain(exc, f"updating address {id_}") from None
        return UpdateResult(self._outs(news, address))

    def delete(self, id_: str, props: dict[str, Any]) -> None:
        """Remove the address (Twilio refuses while a number still depends on it: the number goes first)."""
        try:
            twilio_client().api.v2010.accounts(props["subaccount_sid"]).addresses(id_).delete()
        except Exception as exc:
            if is_missing(exc):
                return
            raise explain(exc, f"removing address {id_}") from None

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


# ---------------------------------------------------------------- regulatory bundles

BUNDLE_NUMBER_TYPE = {"local": "local", "mobile": "mobile", "toll_free": "toll-free"}
"""Our number type as a Bundle's NumberType (Bundles doc: `local`, `mobile`, `national` or `toll-free`)."""
BUNDLE_REPLACE_KEYS = ("partner_id", "subaccount_sid", "iso_country", "number_type", "end_user_type", "friendly_name")
BUNDLE_DATA_KEYS = ("email", "end_user", "documents", "address_sid")
BUNDLE_REVISABLE = ("draft", "twilio-rejected")
"""Statuses in which Twilio lets the items change and the bundle be submitted (again); a bundle under review or
accepted is never touched, so an accepted bundle is never resubmitted."""


class TwilioBundleProvider(ResourceProvider):
    """A regulatory bundle filed in the partner's subaccount from the spec's end-user data, through Twilio's Regulatory
    Compliance v2 API (https://www.twilio.com/docs/phone-numbers/regulatory/api): an End-User (type and attributes),
    Supporting Documents (type and attributes), an empty Bundle for the country, number type and end-user type, Item
    Assignments of the end user, the documents and the holder's address, then `Status=pending-review` submits it.
    Every step first looks for what an earlier, crashed run made (by friendly name; items by object SID), so a rerun
    completes the filing instead of duplicating it. All calls authenticate as the subaccount (`_as_subaccount`).

    Documents are created from type and attributes, the create call's documented parameters; a document that needs a
    scanned file is named by the SID of a Supporting Document already uploaded in the subaccount (`sid`): the twilio
    client has no file upload, and this provider calls no endpoint the client does not document."""

    def create(self, props: dict[str, Any]) -> CreateResult:
        compliance = as_subaccount(props["subaccount_sid"]).numbers.v2.regulatory_compliance
        name = props["friendly_name"]
        try:
            found = [b for b in compliance.bundles.list(friendly_name=name, limit=5) if b.friendly_name == name]
            bundle = found[0] if found else None
            if bundle is None or bundle.status in BUNDLE_REVISABLE:
                bundle = self._file(compliance, props, bundle)
        except Exception as exc:
            raise explain(exc, f"filing regulatory bundle {name!r}") from None
        return CreateResult(str(bundle.sid), self._outs(props, bundle))

    def _file(self, compliance: Any, props: dict[str, Any], bundle: Any) -> Any:
        """Create (or complete) the items and the bundle, assign, submit; `bundle` is a draft or rejected one found."""
        end_user = self._end_user(compliance, props)
        documents = [self._document(compliance, props, index, doc) for index, doc in enumerate(props["documents"])]
        if bundle is None:
            bundle = compliance.bundles.create(
                friendly_name=props["friendly_name"],
                email=props["email"],
                iso_country=props["iso_country"],
                number_type=BUNDLE_NUMBER_TYPE[props["number_type"]],
                end_user_type=props["end_user_type"],
            )
        items = compliance.bundles(bundle.sid).item_assignments
        assigned = {item.object_sid for item in items.list(limit=50)}
        for object_sid in [end_user, *documents, props.get("address_sid")]:
            if object_sid and object_sid not in assigned:
                items.create(object_sid=object_sid)
        return compliance.bundles(bundle.sid).update(status="pending-review")

    @staticmethod
    def _end_user(compliance: Any, props: dict[str, Any]) -> str:
        name = f"{props['friendly_name']}:end-user"
        # The EndUsers list takes no FriendlyName filter (only paging): look through the subaccount's own few.
        for existing in compliance.end_users.list(limit=200):
            if existing.friendly_name == name:
                if existing.attributes != props["end_user"]:
                    compliance.end_users(existing.sid).update(attributes=props["end_user"])
                return str(existing.sid)
        created = compliance.end_users.create(
            friendly_name=name, type=props["end_user_type"], attributes=props["end_user"]
        )
        return str(created.sid)

    @staticmethod
    def _document(compliance: Any, props: dict[str, Any], index: int, doc: dict[str, Any]) -> str:
        if doc.get("sid"):
            return str(doc["sid"])
        name = f"{props['friendly_name']}:document:{index}"
        attributes = dict(doc["attributes"])
        if doc.get("proves") == "address" and props.get("address_sid"):
            # A proof of address names the Address it proves (Supporting Document Types' `address_sids` field).
            attributes["address_sids"] = [props["address_sid"]]
        for existing in compliance.supporting_documents.list(limit=200):
            if existing.friendly_name == name:
                if existing.attributes != attributes:
                    compliance.supporting_documents(existing.sid).update(attributes=attributes)
                return str(existing.sid)
        created = compliance.supporting_documents.create(friendly_name=name, type=doc["type"], attributes=attributes)
        return str(created.sid)

    def read(self, id_: str, props: dict[str, Any]) -> ReadResult:
        compliance = as_subaccount(props["subaccount_sid"]).numbers.v2.regulatory_compliance
        try:
            bundle = compliance.bundles(id_).fetch()
        except Exception as exc:
            if is_missing(exc):
                return ReadResult(None, {})
            raise explain(exc, f"reading regulatory bundle {id_}") from None
        return ReadResult(id_, self._outs(props, bundle))

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        replaces = [k for k in BUNDLE_REPLACE_KEYS if olds.get(k) != news.get(k)]
        changed = [k for k in BUNDLE_DATA_KEYS if olds.get(k) != news.get(k)]
        return DiffResult(changes=bool(replaces or changed), replaces=replaces, delete_before_replace=True)

    def update(self, id_: str, _olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        """Changed end-user data reaches a draft or rejected bundle (submitted again); one under review or accepted
        stays as Twilio has it."""
        compliance = as_subaccount(news["subaccount_sid"]).numbers.v2.regulatory_compliance
        try:
            bundle = compliance.bundles(id_).fetch()
            if bundle.status in BUNDLE_REVISABLE:
                bundle = self._file(compliance, news, bundle)
        except Exception as exc:
            raise explain(exc, f"refiling regulatory bundle {id_}") from None
        return UpdateResult(self._outs(news, bundle))

    def delete(self, id_: str, props: dict[str, Any]) -> None:
        """Remove the bundle (runs only on purge: the partner stack keeps it otherwise, like the numbers)."""
        try:
            as_subaccount(props["subaccount_sid"]).numbers.v2.regulatory_compliance.bundles(id_).delete()
        except Exception as exc:
            if is_missing(exc):
                return
            raise explain(exc, f"removing regulatory bundle {id_}") from None

    @staticmethod
    def _outs(props: dict[str, Any], bundle: Any) -> dict[str, Any]:
        return {**props, "sid": str(bundle.sid), "status": str(bundle.status)}


class TwilioBundle(Resource, module="twilio", name="Bundle"):
    sid: pulumi.Output[str]
    status: pulumi.Output[str]

    def __init__(self, name: str, props: dict[str, Any], opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__(TwilioBundleProvider(), name, {**props, "sid": None, "status": None}, opts)


class TwilioNumberProvider(ResourceProvider):
    """One number slot of a partner: bought once, found again by its friendly name, released only on delete. A slot
    whose regulatory bundle is not accepted yet holds no number: it is created `waiting` (the update succeeds, the
    reason is an output) and every later update tries again, buying once Twilio has accepted the bundle."""

    def create(self, props: dict[str, Any]) -> CreateResult:
        if props.get("bundle_required") and not props.get("bundle_sid"):
            # The subaccount is new: no bundle can be filed in it before this update created it.
            reason = (
                f"{props['country']} {props['number_type']} numbers need a regulatory bundle: give the holder's data "
                f"in the spec (bundle, filed by the next `up`) or file one in subaccount {props['subaccount_sid']} and "
                "name it (bundle_sid)"
            )
            return CreateResult(
                f"{WAITING_PREFIX}{props['friendly_name']}",
                {**props, "sid": "", "phone_number": "", "status": "waiting", "waiting_for": reason},
            )
        if props.get("bundle_sid"):
            status = bundle_status(props["subaccount_sid"], props["bundle_sid"])
            if status not in BUNDLE_ACCEPTED:
                reason = f"regulatory bundle {props['bundle_sid']} is {status}"
                if status.startswith("twilio-rejected"):
                    reason += "; fix the bundle data in the spec (the next `up` files it again) or in the subaccount"
                return CreateResult(
                    f"{WAITING_PREFIX}{props['friendly_name']}",
                    {**props, "sid": "", "phone_number": "", "status": "waiting", "waiting_for": reason},
                )
        client = twilio_client()
        account = client.api.v2010.accounts(props["subaccount_sid"])
        name = props["friendly_name"]
        try:
            owned = account.incoming_phone_numbers.list(friendly_name=name, limit=5)
        except Exception as exc:
            raise explain(exc, f"looking for number slot {name!r}") from None
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
                failure = failure_of(exc)
                if failure is not None and failure[1] in _NOT_AVAILABLE:
                    failures.append(f"{candidate.phone_number}: {failure[2]}")
                    continue
                raise explain(
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
            if is_missing(exc):
                found = []
            else:
                raise explain(exc, f"searching {country} {number_type} numbers") from None
        if not found:
            shown = ", ".join(f"{k}={v}" for k, v in filters.items() if k != "limit")
            raise TwilioError(f"no {number_type} numbers available in {country} with {shown}; relax the filters")
        return list(found)

    def read(self, id_: str, props: dict[str, Any]) -> ReadResult:
        if id_.startswith(WAITING_PREFIX):
            return ReadResult(id_, props)
        client = twilio_client()
        account = client.api.v2010.accounts(props["subaccount_sid"])
        try:
            number = account.incoming_phone_numbers(id_).fetch()
        except Exception as exc:
            if not is_missing(exc):
                raise explain(exc, f"reading number {id_}") from None
            try:
                owned = account.incoming_phone_numbers.list(friendly_name=props["friendly_name"], limit=5)
            except Exception as exc2:
                raise explain(exc2, f"looking for number slot {props['friendly_name']!r}") from None
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
        client = twilio_client()
        account = client.api.v2010.accounts(news["subaccount_sid"])
        number = self._configure(account, id_, news, f"updating number {id_}")
        return UpdateResult(self._outs(news, number))

    def delete(self, id_: str, props: dict[str, Any]) -> None:
        """Release the number; one already released is gone either way (a waiting slot holds none)."""
        if id_.startswith(WAITING_PREFIX):
            return
        client = twilio_client()
        try:
            client.api.v2010.accounts(props["subaccount_sid"]).incoming_phone_numbers(id_).delete()
        except Exception as exc:
            if is_missing(exc):
                return
            raise explain(exc, f"releasing number {id_}") from None

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
            raise explain(exc, doing) from None

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
