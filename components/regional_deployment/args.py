"""The arguments of a RegionalDeployment (every part of the region reads them)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import pulumi

from gateway.voice import VoiceUpstream
from regions.catalog import Country, Region


@dataclass(frozen=True)
class RegionalDeploymentArgs:
    region: Region
    """The catalog entry of the region."""
    launched: tuple[Country, ...]
    """Countries launched in the region (stack config `platform:launchedCountries`)."""
    retention_days: int
    """Strictest retention among the launched countries: the data buckets' expiry."""
    name_prefix: str
    """Prefix of globally unique physical names."""
    kubernetes_version: str
    """EKS control-plane version."""
    kong_cluster_endpoint: pulumi.Input[str]
    """host:port of the Kong control plane's cluster listener (global stack output)."""
    kong_telemetry_endpoint: pulumi.Input[str]
    """host:port of the Kong control plane's telemetry listener (global stack output)."""
    kong_cluster_cert: pulumi.Input[str]
    """PEM certificate shared by the Kong control plane and data planes (global stack output)."""
    kong_cluster_key: pulumi.Input[str]
    """PEM private key of that certificate (secret global stack output)."""
    dns_zone_id: pulumi.Input[str]
    """Route 53 zone of the platform (global stack output): cert-manager answers DNS-01 challenges in it."""
    acme_email: str
    """Account address of the ACME (Let's Encrypt) registration."""
    snowflake_organization: str
    """Snowflake organization name."""
    snowflake_account: pulumi.Input[str]
    """The region's Snowflake account name (global stack output)."""
    snowflake_private_key: pulumi.Input[str]
    """PEM key of the account's admin service user (secret global stack output)."""
    meter_image: str = ""
    """Image of the platform services (`services/Dockerfile`) the meter runs from; empty: no meter."""
    meter_public_url: pulumi.Input[str] = ""
    """https://meter.<region>.<zone>: the URL Twilio calls and signs."""
    meter_kong_token: pulumi.Input[str] = ""
    """Bearer token Kong's http-log plugin sends to the meter (secret global stack output)."""
    meter_host: pulumi.Input[str] = ""
    """meter.<region>.<zone>: the host Twilio's callbacks reach the meter on (routed through the region's gateway)."""
    kong_meter_service_id: pulumi.Input[str] = ""
    """Kong service of the meter (global stack output); the region routes its meter host to it."""
    twilio_account_sid: pulumi.Input[str] = ""
    """Master Twilio account SID the meter looks partners' subaccounts (and their tokens) up with (secret config)."""
    twilio_auth_token: pulumi.Input[str] = ""
    """The master account's auth token: the meter asks Twilio for each partner subaccount's token with it (Twilio
    signs a subaccount's callbacks with that subaccount's token) (secret stack config)."""
    snowflake_monthly_credits: int = 200
    """Credit quota of the region's resource monitor."""
    stripe_api_key: pulumi.Input[str] = ""
    """Stripe secret key the payouts job transfers with (secret stack config)."""
    payouts_schedule: str = "0 6 2 * *"
    """When the payouts job pays the month before (UTC): the 2nd, after late callbacks of the month's last day."""
    stripe_mode: Literal["test", "live"] = "test"
    """Stack config platform:stripeMode: `live` runs the payouts job with `--live` (only then a live key runs)."""
    voice_host: pulumi.Input[str] = ""
    """voice.<region>.<zone>: the host the partners' numbers' voice URL names; empty: no voice endpoint."""
    voice_upstream: VoiceUpstream | None = None
    """The region's voice service (stack config platform:voiceUpstream) the voice host is routed to."""
    dns_zone_name: pulumi.Input[str] = ""
    """The platform's public zone (global stack output): webhook endpoints may not point into it."""
    webhooks_kong_token: pulumi.Input[str] = ""
    """Bearer token Kong forwards webhook management requests with (secret global stack output); empty: no webhooks
    service (it runs from the same image as the meter)."""
    kong_admin_url: pulumi.Input[str] = ""
    """The Kong control plane's Admin API: the region's certificate sync writes certificates there."""
    kong_admin_token: pulumi.Input[str] = ""
    """Its admin token (secret stack config)."""
