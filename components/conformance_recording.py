"""ConformanceRecording: what one integration's conformance job needs to record its result in one region's
warehouse, made the way the payouts CronJob gets its access (a key-pair Snowflake service user holding one role,
its key and warehouse URL in a Secret the job alone reads, `CONFORMANCE_WAREHOUSE_URL` + `SNOWFLAKE_PRIVATE_KEY`,
the names services/conformance.py reads), but per integration and from the integration stack:

- Snowflake (the region's account, through the given provider): a role that may INSERT and SELECT on
  RAW.CONFORMANCE_RESULTS only (SELECT: the MERGE's match on RESULT_ID reads the table; the loader role that the
  meter's MERGE runs under holds the same pair) and use the region's load warehouse; a service user holding it.
  Retiring the integration drops both: nothing outlives it.
- Kubernetes (the integration's system namespace): the Secret, and an egress NetworkPolicy that lets the conformance
  pods reach Snowflake on 443 (public addresses only, like the egress proxy: Snowflake has no fixed addresses); the
  sandbox's own policies are unchanged.

The job reads the Secret as the ConformanceJob's container (components/conformance_job.py) takes it as `env_from`
and gets `--integration/--region/--image-digest` (see `conformance_record_args`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pulumi
import pulumi_kubernetes as k8s
import pulumi_snowflake as snowflake
import pulumi_tls as tls

from components.snowflake_grants import Grant, grant_all, on_object, on_schema, on_table
from components.snowflake_organization import rsa_public_key_body
from foundation.naming import integration_system_namespace, region_database, region_object, snowflake_ident
from foundation.warehouse_schema import CONFORMANCE_RESULTS, RAW

SECRET_NAME = "conformance-warehouse"
"""The Secret the conformance job takes its warehouse settings from (env_from)."""
WAREHOUSE_URL_ENV = "CONFORMANCE_WAREHOUSE_URL"
"""services/conformance.py's WAREHOUSE_ENV (not imported: components do not import services)."""
KEY_ENV = "SNOWFLAKE_PRIVATE_KEY"
"""services/warehouse.py's KEY_ENV."""
CONFORMANCE_LABELS = {"app.kubernetes.io/name": "conformance"}
"""The conformance job's pod labels (components/integration_sandbox.py)."""
NOT_SNOWFLAKE = ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "169.254.0.0/16", "100.64.0.0/10", "127.0.0.0/8")
"""Never reachable on the way to Snowflake: the VPC, peers, link-local (instance metadata), CGNAT, loopback."""


@dataclass(frozen=True)
class ConformanceRecordingArgs:
    integration_id: str
    """The integration whose job records."""
    region: str
    """The region code (its warehouse is PLATFORM_<REGION>)."""
    snowflake_organization: pulumi.Input[str]
    """Snowflake organization name (stack config platform:snowflakeOrganization)."""
    snowflake_account: pulumi.Input[str]
    """The region's Snowflake account name (the region stack's output `snowflake_account`)."""
    namespace_ready: Sequence[pulumi.Resource] = ()
    """What the Secret and NetworkPolicy wait for: the system namespace they live in (a component's depends_on does
    not reach its children)."""


def conformance_record_args(integration_id: str, region: str, image: str) -> list[str]:
    """What the conformance job's arguments gain to record its run (its image digest taken from the spec's image)."""
    return ["--integration", integration_id, "--region", region, "--image-digest", image.rpartition("@")[2]]


class ConformanceRecording(pulumi.ComponentResource):
    """Give `opts` the region's Snowflake provider and Kubernetes provider (`providers=[...]`)."""

    def __init__(self, name: str, args: ConformanceRecordingArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("platform:conformance_recording:ConformanceRecording", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        database = region_database(args.region)
        ident = snowflake_ident(args.integration_id)
        load_warehouse = region_object(args.region, "LOAD_WH")
        role = snowflake.AccountRole(
            f"{name}-role",
            name=region_object(args.region, f"CONFORMANCE_{ident}"),
            comment=f"The conformance job of integration {args.integration_id}: writes its results only",
            opts=child,
        )
        grant_all(
            f"{name}-grant",
            role.name,
            {
                "db-usage": Grant(("USAGE",), on_object("DATABASE", database)),
                "raw-usage": Grant(("USAGE",), on_schema(f"{database}.{RAW}")),
                "results": Grant(("INSERT", "SELECT"), on_table(CONFORMANCE_RESULTS.fqn(database))),
                "wh": Grant(("USAGE",), on_object("WAREHOUSE", load_warehouse)),
            },
            child,
        )
        key = tls.PrivateKey(f"{name}-key", algorithm="RSA", rsa_bits=4096, opts=child)
        user = snowflake.ServiceUser(
            f"{name}-user",
            name=region_object(args.region, f"CONFORMANCE_{ident}"),
            comment=f"The conformance job of integration {args.integration_id} in region {args.region}",
            default_role=role.name,
            default_warehouse=load_warehouse,
            rsa_public_key=key.public_key_pem.apply(rsa_public_key_body),
            opts=child,
        )
        snowflake.GrantAccountRole(f"{name}-user-role", role_name=role.name, user_name=user.name, opts=child)
        url = pulumi.Output.concat(
            "snowflake://",
            args.snowflake_organization,
            "-",
            args.snowflake_account,
            f"/{database}?user=",
            user.name,
            "&role=",
            role.name,
            f"&warehouse={load_warehouse}",
        )
        namespace = integration_system_namespace(args.integration_id)
        in_namespace = pulumi.ResourceOptions(parent=self, depends_on=list(args.namespace_ready))
        labels = {"integration_id": args.integration_id, "isolation": "strict"}
        values: dict[str, pulumi.Input[str]] = {WAREHOUSE_URL_ENV: url, KEY_ENV: key.private_key_pem}
        secret = k8s.core.v1.Secret(
            f"{name}-secret",
            metadata=k8s.meta.v1.ObjectMetaArgs(name=SECRET_NAME, namespace=namespace, labels=labels),
            type="Opaque",
            string_data={env: pulumi.Output.secret(value) for env, value in values.items()},
            opts=in_namespace,
        )
        np = k8s.networking.v1
        k8s.networking.v1.NetworkPolicy(
            f"{name}-egress",
            metadata=k8s.meta.v1.ObjectMetaArgs(name="allow-conformance-warehouse", namespace=namespace, labels=labels),
            spec=np.NetworkPolicySpecArgs(
                pod_selector=k8s.meta.v1.LabelSelectorArgs(match_labels=CONFORMANCE_LABELS),
                policy_types=["Egress"],
                egress=[
                    np.NetworkPolicyEgressRuleArgs(
                        to=[
                            np.NetworkPolicyPeerArgs(
                                ip_block=np.IPBlockArgs(cidr="0.0.0.0/0", except_=list(NOT_SNOWFLAKE))
                            )
                        ],
                        ports=[np.NetworkPolicyPortArgs(protocol="TCP", port=443)],
                    )
                ],
            ),
            opts=in_namespace,
        )
        self.secret_name = secret.metadata.name
        self.register_outputs({"secret": secret.metadata.name, "user": user.name, "role": role.name})
