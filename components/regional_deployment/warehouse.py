"""The region's Snowflake account objects: the provider that reaches the account, the SnowflakeWarehouse
(database, schemas, warehouses, roles) and the key-pair service users of the region's runtime services."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_snowflake as snowflake
import pulumi_tls as tls

from components.regional_deployment.args import RegionalDeploymentArgs
from components.snowflake_organization import rsa_public_key_body
from components.snowflake_preview import features_for
from components.snowflake_warehouse import SNOWFLAKE_TYPES, SnowflakeWarehouse, SnowflakeWarehouseArgs
from foundation.naming import region_object


@dataclass(frozen=True)
class RegionWarehouse:
    provider: snowflake.Provider
    """The provider of the region's Snowflake account (admin service user, key-pair authentication)."""
    warehouse: SnowflakeWarehouse
    """The region's warehouse objects."""


def build_warehouse(parent: pulumi.Resource, name: str, args: RegionalDeploymentArgs) -> RegionWarehouse:
    provider = snowflake.Provider(
        f"{name}-snowflake",
        organization_name=args.snowflake_organization,
        account_name=args.snowflake_account,
        user="PLATFORMCTL",
        authenticator="SNOWFLAKE_JWT",
        private_key=args.snowflake_private_key,
        role="ACCOUNTADMIN",
        preview_features_enabled=features_for(SNOWFLAKE_TYPES),
        opts=pulumi.ResourceOptions(parent=parent),
    )
    warehouse = SnowflakeWarehouse(
        f"{name}-warehouse",
        SnowflakeWarehouseArgs(
            region_code=args.region.code,
            monthly_credit_quota=args.snowflake_monthly_credits,
            retention_days=args.retention_days,
        ),
        opts=pulumi.ResourceOptions(parent=parent, provider=provider),
    )
    return RegionWarehouse(provider=provider, warehouse=warehouse)


def warehouse_user(
    parent: pulumi.Resource,
    name: str,
    purpose: str,
    description: str,
    role: pulumi.Output[str],
    args: RegionalDeploymentArgs,
    region_warehouse: RegionWarehouse,
) -> tuple[tls.PrivateKey, pulumi.Output[str]]:
    """A runtime service's own key-pair Snowflake user holding only `role`; returns its key and the warehouse URL
    the service connects with (`services/warehouse.py`)."""
    warehouse = region_warehouse.warehouse
    sf_opts = pulumi.ResourceOptions(parent=parent, provider=region_warehouse.provider)
    key = tls.PrivateKey(
        f"{name}-{purpose}-key", algorithm="RSA", rsa_bits=4096, opts=pulumi.ResourceOptions(parent=parent)
    )
    user = snowflake.ServiceUser(
        f"{name}-{purpose}-user",
        name=region_object(args.region.code, purpose.upper()),
        comment=f"{description} of region {args.region.code}",
        default_role=role,
        default_warehouse=warehouse.load_warehouse,
        rsa_public_key=key.public_key_pem.apply(rsa_public_key_body),
        opts=sf_opts,
    )
    snowflake.GrantAccountRole(f"{name}-{purpose}-user-role", role_name=role, user_name=user.name, opts=sf_opts)
    warehouse_url = pulumi.Output.concat(
        "snowflake://",
        args.snowflake_organization,
        "-",
        args.snowflake_account,
        "/",
        warehouse.database_name,
        "?user=",
        user.name,
        "&role=",
        role,
        "&warehouse=",
        warehouse.load_warehouse,
    )
    return key, warehouse_url
