"""A partner's Snowflake objects in its home region's warehouse, registered by its PartnerTenant with the tenant as
their parent: its managed-access schema with a secure USAGE view of its own metered calls, a read-only role granted
on that schema (and the partner warehouse), and a key-pair service user holding the role.

A builder, not a component of its own: a component here would change the URN of every object below it (a real `up`
would drop and recreate the partner's schema)."""

from __future__ import annotations

import pulumi
import pulumi_snowflake as snowflake
import pulumi_tls as tls

from components.outputs import secret
from components.snowflake_grants import Grant, grant_all, on_all, on_future, on_object, on_schema
from components.snowflake_organization import rsa_public_key_body
from foundation.naming import partner_reader_role, partner_schema, partner_service_user
from foundation.warehouse_schema import PARTNER_USAGE_COLUMNS


def build_partner_schema(
    name: str, partner_id: str, database: pulumi.Input[str], data: pulumi.ResourceOptions
) -> snowflake.Schema:
    """The partner's schema (`data`: parent and retain_on_delete: it holds the partner's objects)."""
    return snowflake.Schema(
        f"{name}-schema",
        database=database,
        name=partner_schema(partner_id),
        comment=f"Partner {partner_id}: its own views of platform data",
        with_managed_access="true",
        opts=data,
    )


def build_warehouse_access(
    name: str,
    partner_id: str,
    database: pulumi.Input[str],
    warehouse: pulumi.Input[str],
    schema: snowflake.Schema,
    child: pulumi.ResourceOptions,
) -> dict[str, object]:
    """The view, role, grants and service user; returns the outputs they add (role, user, the user's key)."""
    role_name = partner_reader_role(partner_id)
    # From the schema's own output: grants and the user's default namespace wait for the schema.
    schema_fqn = pulumi.Output.concat(database, ".", schema.name)
    usage_source = pulumi.Output.concat(database, ".RAW.USAGE_EVENTS")
    view = snowflake.View(
        f"{name}-usage-view",
        database=database,
        schema=schema.name,
        name="USAGE",
        is_secure="true",
        comment="The partner's metered calls (the row access policy on the source keeps other partners' rows out)",
        statement=pulumi.Output.concat(
            f"SELECT {', '.join(PARTNER_USAGE_COLUMNS)} FROM ",
            usage_source,
        ),
        opts=child,
    )
    role = snowflake.AccountRole(
        f"{name}-reader-role", name=role_name, comment=f"Read-only access for partner {partner_id}", opts=child
    )
    grant_all(
        f"{name}-grant",
        role.name,
        {
            "db-usage": Grant(("USAGE",), on_object("DATABASE", database)),
            "schema-usage": Grant(("USAGE",), on_schema(schema_fqn)),
            "views-select": Grant(("SELECT",), on_all("VIEWS", schema_fqn), after=(view,)),
            "future-views-select": Grant(("SELECT",), on_future("VIEWS", schema_fqn)),
            "warehouse-usage": Grant(("USAGE",), on_object("WAREHOUSE", warehouse)),
        },
        child,
    )
    key = tls.PrivateKey(f"{name}-service-key", algorithm="RSA", rsa_bits=4096, opts=child)
    user = snowflake.ServiceUser(
        f"{name}-service-user",
        name=partner_service_user(partner_id),
        comment=f"Service user of partner {partner_id}",
        default_role=role.name,
        default_warehouse=warehouse,
        default_namespace=schema_fqn,
        rsa_public_key=key.public_key_pem.apply(rsa_public_key_body),
        opts=child,
    )
    snowflake.GrantAccountRole(f"{name}-service-user-role", role_name=role.name, user_name=user.name, opts=child)
    return {
        "snowflake_role": role_name,
        "snowflake_user": user.name,
        "snowflake_private_key": secret(key.private_key_pem),
    }
