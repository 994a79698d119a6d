"""Output helpers shared by the components, and the names of the stack outputs that cross stacks.

A stack output's name is a contract between the stack that exports it and every StackReference that reads it
(`__main__.py` both exports and reads them; the region's outputs come from `RegionalDeployment.outputs`). The names
are defined here once and imported on both sides, never retyped."""

from __future__ import annotations

from typing import Any, Final, cast

import pulumi


def secret(value: pulumi.Input[str]) -> pulumi.Output[str]:
    """`pulumi.Output.secret` for strings (its stub's type variable resolves to Never under mypy)."""
    return cast(pulumi.Output[str], pulumi.Output.secret(cast(Any, value)))


class GlobalOutput:
    """Outputs of the `global` stack: the region, partner and integration stacks read them."""

    KONG_SERVICE_IDS: Final = "kong_service_ids"
    KONG_RATE_LIMIT_PLANS: Final = "kong_rate_limit_plans"
    KONG_CLUSTER_ENDPOINT: Final = "kong_cluster_endpoint"
    KONG_TELEMETRY_ENDPOINT: Final = "kong_telemetry_endpoint"
    KONG_CLUSTER_CERT: Final = "kong_cluster_cert"
    KONG_CLUSTER_KEY: Final = "kong_cluster_key"
    DNS_ZONE_ID: Final = "dns_zone_id"
    DNS_ZONE_NAME: Final = "dns_zone_name"
    SNOWFLAKE_ACCOUNTS: Final = "snowflake_accounts"
    SNOWFLAKE_ADMIN_KEYS: Final = "snowflake_admin_keys"
    METER_KONG_TOKEN: Final = "meter_kong_token"
    KONG_METER_SERVICE_ID: Final = "kong_meter_service_id"
    WEBHOOKS_KONG_TOKEN: Final = "webhooks_kong_token"


class RegionOutput:
    """Outputs of a `region-<code>` stack: its partners and integrations read them."""

    AWS_REGION: Final = "aws_region"
    KMS_KEY_ARN: Final = "kms_key_arn"
    KMS_KEY_ALIAS: Final = "kms_key_alias"
    RECORDINGS_BUCKET: Final = "recordings_bucket"
    TRANSCRIPTS_BUCKET: Final = "transcripts_bucket"
    STATEMENTS_BUCKET: Final = "statements_bucket"
    RETENTION_DAYS: Final = "retention_days"
    LAUNCHED_COUNTRIES: Final = "launched_countries"
    CLUSTER_NAME: Final = "cluster_name"
    KUBECONFIG: Final = "kubeconfig"
    PLATFORM_NAMESPACE: Final = "platform_namespace"
    GATEWAY_HOSTNAME: Final = "gateway_hostname"
    SNOWFLAKE_DATABASE: Final = "snowflake_database"
    SNOWFLAKE_PARTNER_WAREHOUSE: Final = "snowflake_partner_warehouse"
    SNOWFLAKE_ACCOUNT: Final = "snowflake_account"
    METER_PUBLIC_URL: Final = "meter_public_url"
    VOICE_ENDPOINT_URL: Final = "voice_endpoint_url"
