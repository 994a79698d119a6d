"""Targets of Snowflake privilege grants, so components list their grants as data: (privileges, target)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_snowflake as snowflake


@dataclass(frozen=True)
class Grant:
    privileges: tuple[str, ...]
    """Privileges granted."""
    target: dict[str, Any]
    """One of the grant resource's on_* arguments, from the helpers below."""
    after: tuple[pulumi.Resource, ...] = ()
    """Objects an "all existing" grant must wait for: it covers only what exists when it runs."""


def on_object(object_type: str, name: pulumi.Input[str]) -> dict[str, Any]:
    """A database, warehouse or other account object."""
    args = snowflake.GrantPrivilegesToAccountRoleOnAccountObjectArgs(object_type=object_type, object_name=name)
    return {"on_account_object": args}


def on_schema(schema: pulumi.Input[str]) -> dict[str, Any]:
    """A schema, by its DATABASE.SCHEMA name."""
    return {"on_schema": snowflake.GrantPrivilegesToAccountRoleOnSchemaArgs(schema_name=schema)}


def on_table(table: pulumi.Input[str]) -> dict[str, Any]:
    """One table, by its DATABASE.SCHEMA.TABLE name."""
    args = snowflake.GrantPrivilegesToAccountRoleOnSchemaObjectArgs(object_type="TABLE", object_name=table)
    return {"on_schema_object": args}


def on_all(plural: str, schema: pulumi.Input[str]) -> dict[str, Any]:
    """Every existing object of a kind (TABLES, VIEWS) in a schema."""
    all_args = snowflake.GrantPrivilegesToAccountRoleOnSchemaObjectAllArgs(object_type_plural=plural, in_schema=schema)
    return {"on_schema_object": snowflake.GrantPrivilegesToAccountRoleOnSchemaObjectArgs(all=all_args)}


def on_future(plural: str, schema: pulumi.Input[str]) -> dict[str, Any]:
    """Objects of a kind created in a schema from now on."""
    future = snowflake.GrantPrivilegesToAccountRoleOnSchemaObjectFutureArgs(object_type_plural=plural, in_schema=schema)
    return {"on_schema_object": snowflake.GrantPrivilegesToAccountRoleOnSchemaObjectArgs(future=future)}


def grant_all(
    name: str, role: pulumi.Input[str], grants: dict[str, Grant], opts: pulumi.ResourceOptions
) -> list[snowflake.GrantPrivilegesToAccountRole]:
    """One GrantPrivilegesToAccountRole per entry, named f"{name}-{key}". Pass names as outputs of the objects they
    name (role.name, Output.concat(database.name, ".", schema.name)), so each grant waits for what it names."""
    return [
        snowflake.GrantPrivilegesToAccountRole(
            f"{name}-{key}",
            account_role_name=role,
            privileges=list(grant.privileges),
            opts=pulumi.ResourceOptions.merge(opts, pulumi.ResourceOptions(depends_on=list(grant.after)))
            if grant.after
            else opts,
            **grant.target,
        )
        for key, grant in grants.items()
    ]
