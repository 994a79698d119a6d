"""Every naming convention of the platform, in one place: components, policies and the tool import these.

A partner id becomes a Kubernetes namespace, a Kong consumer and ACL group, Snowflake identifiers; a region
code becomes a Snowflake database. Retyping any of these elsewhere is how isolation checks drift from what
the components create.
"""

from __future__ import annotations

import re
from typing import Literal

PARTNER_ID = r"[a-z][a-z0-9-]{1,38}[a-z0-9]"
"""A partner (or integration) id, unanchored, to build larger patterns from (file names, route paths)."""
PARTNER_ID_PATTERN = rf"^{PARTNER_ID}$"
"""A DNS label of 3-40 characters that starts with a letter and does not end with '-'."""
RESERVED_PARTNER_IDS = frozenset({"tiers", "prices", "examples", "global", "platform", "rules"})
"""Ids no partner may take: names of data files and folders beside the specs, and of platform stacks."""
REGION_CODE_PATTERN = r"^[a-z]{2}-[a-z]{2,24}$"
"""A platform region code such as eu-central."""
COUNTRY_CODE_PATTERN = r"^[A-Z]{2}$"
"""ISO 3166-1 alpha-2."""
STRIPE_ACCOUNT_PATTERN = r"^acct_[A-Za-z0-9]{1,64}$"
"""A Stripe Connect account id (`platform:stripeAccount`): letters and digits only, so it cannot carry a quote."""

TierName = Literal["starter", "professional", "enterprise"]
TIER_NAMES: tuple[TierName, ...] = ("starter", "professional", "enterprise")
"""The commercial tiers, cheapest first (the tier table must define each)."""


def is_partner_id(value: str) -> bool:
    return bool(re.fullmatch(PARTNER_ID_PATTERN, value))


def partner_namespace(partner_id: str) -> str:
    """The tenant's Kubernetes namespace; also its Kong consumer username and private ACL group."""
    return f"partner-{partner_id}"


def tier_acl_group(tier: str) -> str:
    """Kong ACL group a partner consumer of `tier` belongs to."""
    return f"tier-{tier}"


def snowflake_ident(text: str) -> str:
    """A partner id or region code as a Snowflake identifier fragment (upper case, '_' for '-')."""
    return text.upper().replace("-", "_")


def region_database(region_code: str) -> str:
    """The region's Snowflake database (also the account name of the region in the organization)."""
    return f"PLATFORM_{snowflake_ident(region_code)}"


def region_account(region_code: str) -> str:
    """The region's Snowflake account in the organization."""
    return f"PLATFORM_{snowflake_ident(region_code)}"


def region_object(region_code: str, suffix: str) -> str:
    """A region-level Snowflake object (warehouse, role, monitor) named after the region."""
    return f"{region_database(region_code)}_{suffix}"


def partner_schema(partner_id: str) -> str:
    """The partner's schema in its home region's database."""
    return f"PARTNER_{snowflake_ident(partner_id)}"


def partner_reader_role(partner_id: str) -> str:
    """The partner's reader role; the row access policy maps it back to the partner id (PARTNER_ROLE_PATTERN)."""
    return f"PARTNER_{snowflake_ident(partner_id)}_READER"


PARTNER_ROLE_PATTERN = "^PARTNER_(.+)_READER$"
"""Inverse of `partner_reader_role`, as a Snowflake regular expression."""


def partner_service_user(partner_id: str) -> str:
    """The partner's key-pair service user."""
    return f"PARTNER_{snowflake_ident(partner_id)}_SVC"


def meter_host(region_code: str, zone: str) -> str:
    """The region's usage meter in the platform zone (Twilio status callbacks and Kong logs reach it here)."""
    return f"meter.{region_code}.{zone}"


TWILIO_NAME_PREFIX = "pctl"
"""Marks Twilio objects platformctl owns; short, because a friendly name holds at most 64 characters."""


def twilio_subaccount_name(partner_id: str) -> str:
    """FriendlyName of the partner's Twilio subaccount: the providers create it, the meter looks it up."""
    return f"{TWILIO_NAME_PREFIX}:{partner_id}"


def voice_host(region_code: str, zone: str) -> str:
    """The region's voice endpoint in the platform zone (Twilio numbers' voice URL)."""
    return f"voice.{region_code}.{zone}"


CALL_DATA = "call-data"
"""Bucket tag `platform:data-class` of data that falls under the countries' retention (recordings, transcripts)."""
FINANCIAL_RECORDS = "financial-records"
"""Bucket tag `platform:data-class` of accounting records (payout statements): kept for STATEMENT_RETENTION_DAYS."""
STATEMENT_RETENTION_DAYS = 3653
"""Ten years: the longest statutory retention of accounting records among the launched regimes (e.g. Germany's
HGB §257(4): ten years for accounting vouchers; 2026-11-29)."""


def integration_namespace(integration_id: str) -> str:
    """An integration's sandbox namespace in each region it is offered in (its workload runs here)."""
    return f"integration-{integration_id}"


def integration_system_namespace(integration_id: str) -> str:
    """The integration's companion namespace: its egress proxy and conformance job, outside the sandbox's quota."""
    return f"integration-{integration_id}-system"


def integration_gateway_name(integration_id: str) -> str:
    """Name of an integration's Kong service and of its route under `/integrations/<id>/`."""
    return f"integration-{integration_id}"


def integration_acl_group(integration_id: str) -> str:
    """Kong ACL group of an integration's installation consumers (its scope routes allow only this group)."""
    return f"integration-{integration_id}"


def installation_consumer(integration_id: str, partner_id: str) -> str:
    """The Kong consumer of one installation (partner x integration); its custom_id is the partner's id."""
    return f"integration-{integration_id}.{partner_id}"


REGION_STORAGE_CLASS = "gp3-encrypted"
"""The StorageClass every region stack installs (components/cluster_addons.py: EBS CSI, gp3, the region's key) and
marks the cluster default; partner and integration stacks, applied after their regions, claim volumes of it."""


TWILIO_CALLBACK_OVERRIDES = "#rc=5&rp=all"
"""Twilio's webhook connection overrides on the numbers' status callback URL: retry up to 5 times, on any failure
(https://www.twilio.com/docs/usage/webhooks/webhooks-connection-overrides: a fragment of the webhook URL; by default
Twilio retries once, on a connection failure only, so a meter's 503 - draining, spool full, Twilio's API down -
would lose the call). The fragment is never sent to the server; the meter accepts a signature computed over the
URL with or without it (Twilio's docs do not say which one it signs)."""


TWILIO_STATUS_CALLBACK_TEMPLATE = "/twilio/{partner_id}/status"
"""The path of a partner's status callbacks on the meter's public host, as a route template (the meter's route)."""
TWILIO_STATUS_CALLBACK_ROUTE = f"~/twilio/{PARTNER_ID}/status$"
"""The same paths as a Kong regex route path (`~` prefix: Kong 3 regex paths), for the region's gateway."""


def twilio_status_callback_path(partner_id: str) -> str:
    """The path of a partner's status callbacks on the meter's public host (what Twilio signs, after the host)."""
    return TWILIO_STATUS_CALLBACK_TEMPLATE.format(partner_id=partner_id)


def install_id(partner_id: str, integration_id: str) -> str:
    """An installation's id (the INSTALLS key): `<partner>/<integration>`."""
    return f"{partner_id}/{integration_id}"
