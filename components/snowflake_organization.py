"""SnowflakeOrganization: the org-level objects - one Snowflake account per region, each with a key-pair admin."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_snowflake as snowflake
import pulumi_tls as tls

from components.outputs import secret
from foundation.naming import region_account
from regions.catalog import Region

SNOWFLAKE_TYPES = ("snowflake:index/account:Account",)
"""Resource types this component registers: its provider enables the preview features they need."""


@dataclass(frozen=True)
class SnowflakeOrganizationArgs:
    regions: tuple[Region, ...]
    """Regions that get an account."""
    admin_email: str
    """Where Snowflake sends account notices."""
    edition: str = "BUSINESS_CRITICAL"
    """Account edition: Business Critical for customer-managed keys and HIPAA/PCI-grade controls."""


def rsa_public_key_body(pem: str) -> str:
    """Snowflake takes a public key without its PEM armour lines."""
    return "".join(line for line in pem.strip().splitlines() if not line.startswith("-----"))


class SnowflakeOrganization(pulumi.ComponentResource):
    accounts: dict[str, str]
    admin_keys: dict[str, pulumi.Output[str]]

    def __init__(self, name: str, args: SnowflakeOrganizationArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("platform:snowflake_organization:SnowflakeOrganization", name, None, opts)
        self.accounts, self.admin_keys = {}, {}
        for region in args.regions:
            key = tls.PrivateKey(
                f"{name}-{region.code}-admin-key",
                algorithm="RSA",
                rsa_bits=4096,
                opts=pulumi.ResourceOptions(parent=self),
            )
            snowflake.Account(
                f"{name}-{region.code}",
                name=region_account(region.code),
                region=region.snowflake_region,
                edition=args.edition,
                admin_name="PLATFORMCTL",
                admin_user_type="SERVICE",
                admin_rsa_public_key=key.public_key_pem.apply(rsa_public_key_body),
                email=args.admin_email,
                comment=f"Platform region {region.code}",
                grace_period_in_days=14,
                opts=pulumi.ResourceOptions(parent=self, protect=True),
            )
            self.accounts[region.code] = region_account(region.code)
            self.admin_keys[region.code] = secret(key.private_key_pem)
        self.register_outputs({"accounts": self.accounts, "admin_keys": self.admin_keys})
