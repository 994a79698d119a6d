"""Stripe Connect through the official `stripe` client: Express accounts and transfers, every write idempotent.

STRIPE_API_KEY comes from the environment (a live key only with `live=True`); STRIPE_API_BASE points the client at
another endpoint (a loopback fake in tests). The key is never put in a message, a log line or a file.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import stripe

from foundation.errors import InputError, PlatformError

KEY_ENV = "STRIPE_API_KEY"
BASE_ENV = "STRIPE_API_BASE"
NETWORK_RETRIES = 2
"""Retries the stripe client makes itself (connection errors, 409, 5xx), with the request's Idempotency-Key."""
RATE_LIMIT_RETRIES = 4
"""Our own retries of a 429 (the client does not retry one unless Stripe says so), same key, backing off."""
PARTNER_METADATA = "partner"
"""Metadata key naming the partner on accounts and transfers: how a lost id is found again."""
DEVELOPER_METADATA = "developer"
"""Metadata key naming a marketplace developer on its account and transfers."""


@dataclass(frozen=True)
class Payee:
    """Who a transfer or an account is for: a partner (its revenue share) or a marketplace developer (its share of
    installs). Partner and developer ids share one pattern, so every key and metadata entry says which it is."""

    kind: str
    """partner | developer"""
    id: str
    """The partner's or developer's id."""

    @property
    def metadata_key(self) -> str:
        return PARTNER_METADATA if self.kind == "partner" else DEVELOPER_METADATA

    @property
    def label(self) -> str:
        return self.id if self.kind == "partner" else f"developer {self.id}"

    @property
    def connect_command(self) -> str:
        """The command that opens (or, with --link, resumes onboarding of) the payee's Stripe account."""
        command = "connect" if self.kind == "partner" else "connect-developer"
        return f"platformctl billing {command} {self.id}"

    def transfer_key(self, period: str) -> str:
        """`payout:<partner>:<period>`, `payout:developer:<id>:<period>`."""
        return f"payout:{self.id}:{period}" if self.kind == "partner" else f"payout:developer:{self.id}:{period}"

    def account_key(self) -> str:
        return f"account:{self.id}" if self.kind == "partner" else f"account:developer:{self.id}"


def payee(who: str | Payee) -> Payee:
    """A partner id stands for itself as a payee (the partner payouts' call sites)."""
    return who if isinstance(who, Payee) else Payee("partner", who)


class StripeError(PlatformError):
    """Stripe refused or could not be reached; nothing more is known (exit 1)."""


def transfer_request(
    partner_id: str | Payee, period: str, destination: str, amount_minor: int, currency: str
) -> dict[str, Any]:
    """The fields of a partner-period's transfer that its answer must repeat (see transfer_mismatches)."""
    return {
        "amount": amount_minor,
        "currency": currency.lower(),
        "destination": destination,
        "transfer_group": period,
        "metadata": {payee(partner_id).metadata_key: payee(partner_id).id, "period": period},
    }


def account_idempotency_key(partner_id: str | Payee) -> str:
    return payee(partner_id).account_key()


def transfer_idempotency_key(partner_id: str | Payee, period: str) -> str:
    return payee(partner_id).transfer_key(period)


def transfers_capability(account: dict[str, Any]) -> str:
    """The account's `transfers` capability status (active, inactive, pending, unrequested)."""
    capabilities = account.get("capabilities") or {}
    status = capabilities.get("transfers") if isinstance(capabilities, dict) else None
    return status if isinstance(status, str) else "unrequested"


def transfer_mismatches(answer: dict[str, Any], request: dict[str, Any]) -> list[str]:
    """Every field of Stripe's transfer answer that disagrees with what was asked (empty: it is the transfer asked
    for). `request`: amount (minor units), currency, destination, transfer_group, metadata (partner, period)."""
    problems = []
    if answer.get("object") != "transfer" or not str(answer.get("id") or "").startswith("tr_"):
        problems.append(f"not a transfer (object {answer.get('object')!r}, id {answer.get('id')!r})")
    amount = answer.get("amount")
    if isinstance(amount, bool) or not isinstance(amount, int) or amount != request["amount"]:
        problems.append(f"amount {amount!r}, asked {request['amount']}")
    if str(answer.get("currency") or "").lower() != request["currency"].lower():
        problems.append(f"currency {answer.get('currency')!r}, asked {request['currency'].lower()!r}")
    destination = answer.get("destination")
    if isinstance(destination, dict):  # expanded
        destination = destination.get("id")
    if destination != request["destination"]:
        problems.append(f"destination {destination!r}, asked {request['destination']!r}")
    if answer.get("transfer_group") != request["transfer_group"]:
        problems.append(f"transfer_group {answer.get('transfer_group')!r}, asked {request['transfer_group']!r}")
    metadata = answer.get("metadata") or {}
    for key, value in request["metadata"].items():
        if metadata.get(key) != value:
            problems.append(f"metadata.{key} {metadata.get(key)!r}, asked {value!r}")
    if answer.get("reversed") or answer.get("amount_reversed"):
        problems.append(f"reversed ({answer.get('amount_reversed')!r} of it)")
    return problems


def _check_key(key: str, live: bool) -> str:
    if not key:
        raise InputError.single(
            KEY_ENV, "", "not set: the Stripe secret key (sk_test_... or, with --live, sk_live_...)"
        )
    if key.startswith(("sk_live_", "rk_live_")):
        if not live:
            raise InputError.single(KEY_ENV, "", "is a live key; pass --live to move real money")
        return key
    if not key.startswith(("sk_test_", "rk_test_")) or not key.isascii() or any(c.isspace() for c in key):
        raise InputError.single(KEY_ENV, "", "is not a Stripe secret key (sk_test_... or sk_live_...)")
    return key


def _check_base(base: str) -> str:
    try:
        parts = urlsplit(base)
        _ = parts.port  # raises ValueError for a port out of range
    except ValueError:
        raise InputError.single(BASE_ENV, "", "is not a URL (bad host or port)") from None
    if parts.scheme not in ("https", "http") or not parts.hostname or parts.username or parts.path not in ("", "/"):
        raise InputError.single(
            BASE_ENV, "", "must be a base URL such as https://api.stripe.com (no path or credentials)"
        )
    if parts.scheme == "http" and parts.hostname not in ("127.0.0.1", "localhost", "::1"):
        raise InputError.single(BASE_ENV, "", "plain http is allowed only on loopback (a local fake)")
    return base.rstrip("/")


@dataclass
class StripeGateway:
    client: stripe.StripeClient
    sleep: Callable[[float], None] = time.sleep
    rate_limit_delay: float = 0.5

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, live: bool = False) -> StripeGateway:
        env = os.environ if env is None else env
        key = _check_key(env.get(KEY_ENV, ""), live)
        base = env.get(BASE_ENV)
        client = stripe.StripeClient(
            key,
            base_addresses={"api": _check_base(base)} if base else None,
            max_network_retries=NETWORK_RETRIES,
        )
        return cls(client)

    def _call(self, what: str, fn: Callable[[], Any]) -> Any:
        for attempt in range(RATE_LIMIT_RETRIES + 1):
            try:
                return fn()
            except stripe.RateLimitError:
                if attempt == RATE_LIMIT_RETRIES:
                    raise StripeError(f"{what}: Stripe kept answering 429 (rate limited); try again later") from None
                self.sleep(self.rate_limit_delay * 2**attempt)
            except stripe.AuthenticationError:
                raise StripeError(f"{what}: Stripe refused the API key ({KEY_ENV})") from None
            except stripe.IdempotencyError as exc:
                raise StripeError(
                    f"{what}: {exc.user_message or 'idempotency key reused with other parameters'}"
                ) from None
            except stripe.APIConnectionError:
                raise StripeError(
                    f"{what}: cannot reach Stripe (the request may have been made; rerun to settle)"
                ) from None
            except stripe.StripeError as exc:
                status = exc.http_status or "no status"
                raise StripeError(f"{what}: Stripe answered {status}: {exc.user_message or 'error'}") from None
        raise AssertionError("unreachable")

    # ------------------------------------------------------------ accounts

    def retrieve_account(self, account_id: str) -> dict[str, Any] | None:
        try:
            account = self.client.v1.accounts.retrieve(account_id)
        except stripe.InvalidRequestError as exc:
            if exc.http_status == 404:
                return None
            raise StripeError(f"account {account_id}: Stripe answered {exc.http_status}") from None
        except stripe.StripeError as exc:
            raise StripeError(f"account {account_id}: Stripe answered {exc.http_status or 'no status'}") from None
        return account.to_dict()

    def find_account(self, partner_id: str | Payee) -> dict[str, Any] | None:
        """The connected account whose metadata names the partner (or developer)."""
        who = payee(partner_id)
        return self.accounts_by_partner(f"{who.label}: looking up its Stripe account", who.metadata_key).get(who.id)

    def accounts_by_partner(
        self, what: str = "listing the Stripe accounts", metadata_key: str = PARTNER_METADATA
    ) -> dict[str, dict[str, Any]]:
        """Every connected account that names a partner, by partner (one bounded walk over the platform's accounts)."""

        def walk() -> dict[str, dict[str, Any]]:
            found: dict[str, dict[str, Any]] = {}
            page = self.client.v1.accounts.list(params={"limit": 100})
            for seen, account in enumerate(page.auto_paging_iter()):
                if seen >= 100_000:
                    break
                plain = account.to_dict()
                partner = (plain.get("metadata") or {}).get(metadata_key)
                if partner:
                    found.setdefault(partner, plain)
            return found

        result: dict[str, dict[str, Any]] = self._call(what, walk)
        return result

    def create_account(
        self, partner_id: str | Payee, country: str, currency: str, email: str, service_agreement: str = "full"
    ) -> dict[str, Any]:
        """An Express account that requests only the `transfers` capability. `service_agreement` "recipient" for a
        partner outside the platform's country: "Cross-border payouts only work with accounts under the recipient
        service agreement. You must explicitly pass in the country code if it differs from the platform country."
        (https://docs.stripe.com/connect/service-agreement-types, read 2026-12-06). "full" is Stripe's default and
        is not sent."""
        params: dict[str, Any] = {
            "type": "express",
            "country": country,
            "default_currency": currency.lower(),
            "email": email,
            "capabilities": {"transfers": {"requested": True}},
            "metadata": {payee(partner_id).metadata_key: payee(partner_id).id},
        }
        if service_agreement != "full":
            params["tos_acceptance"] = {"service_agreement": service_agreement}
        account = self._call(
            f"{payee(partner_id).label}: creating its Stripe account",
            lambda: self.client.v1.accounts.create(
                params=params,  # type: ignore[arg-type]
                options={"idempotency_key": account_idempotency_key(partner_id)},
            ),
        )
        return account.to_dict()

    def create_account_link(self, account_id: str, refresh_url: str, return_url: str) -> dict[str, Any]:
        """A single-use onboarding URL (https://docs.stripe.com/api/account_links/create: account, type
        account_onboarding, refresh_url, return_url; it expires within minutes, so a fresh one is made on demand and
        never stored). No idempotency key: each call is meant to make a new link."""
        params = {
            "account": account_id,
            "type": "account_onboarding",
            "refresh_url": refresh_url,
            "return_url": return_url,
        }
        link = self._call(
            f"{account_id}: creating an onboarding link",
            lambda: self.client.v1.account_links.create(params=params),  # type: ignore[arg-type]
        )
        return link.to_dict()

    # ------------------------------------------------------------ transfers

    def find_transfer(self, partner_id: str | Payee, period: str, destination: str) -> dict[str, Any] | None:
        """The transfer of this partner and period, if one was made (however long ago: keys expire, this does not),
        to whichever account it went: a partner reconnected to another account since must not be paid twice."""

        who = payee(partner_id)

        def walk() -> dict[str, Any] | None:
            page = self.client.v1.transfers.list(params={"transfer_group": period, "limit": 100})
            for seen, transfer in enumerate(page.auto_paging_iter()):
                if seen >= 100_000:
                    break
                metadata = transfer.to_dict().get("metadata") or {}
                if metadata.get(who.metadata_key) == who.id and metadata.get("period") == period:
                    return transfer.to_dict()
            return None

        found: dict[str, Any] | None = self._call(f"{who.label}: looking up its {period} transfer", walk)
        return found

    def create_transfer(
        self, partner_id: str | Payee, period: str, destination: str, amount_minor: int, currency: str
    ) -> dict[str, Any]:
        who = payee(partner_id)
        params: dict[str, Any] = {
            **transfer_request(who, period, destination, amount_minor, currency),
            "description": f"{'Revenue share' if who.kind == 'partner' else 'Marketplace installs'} {period}",
        }
        transfer = self._call(
            f"{who.label}: transferring its {period} payout",
            lambda: self.client.v1.transfers.create(
                params=params,  # type: ignore[arg-type]
                options={"idempotency_key": transfer_idempotency_key(partner_id, period)},
            ),
        )
        return transfer.to_dict()
