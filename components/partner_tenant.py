"""PartnerTenant: one white-label partner's isolated slice of its home region, gateway and warehouse."""

from __future__ import annotations

import json
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws
import pulumi_kong as kong
import pulumi_kubernetes as k8s
import pulumi_random as random
import pulumi_snowflake as snowflake
import pulumi_tls as tls

from components.outputs import secret
from components.secure_bucket import SecureBucket, SecureBucketArgs
from components.snowflake_grants import Grant, grant_all, on_all, on_future, on_object, on_schema
from components.snowflake_organization import rsa_public_key_body
from components.snowflake_warehouse import partner_reader_role
from components.warehouse_tables import PARTNER_USAGE_COLUMNS
from gateway.plans import rate_limit_config, tier_acl_group
from partners.spec import PartnerSpec
from partners.tiers import Tier

GATEWAY_NAMESPACE = "platform"
GATEWAY_POD_LABELS = {"app.kubernetes.io/name": "kong"}


@dataclass(frozen=True)
class PartnerTenantArgs:
    spec: PartnerSpec
    """The partner's spec (partners/<id>.yaml)."""
    tier: Tier
    """The partner's row of the tier table."""
    retention_days: int
    """Strictest retention among the partner's countries."""
    name_prefix: str
    """Prefix of globally unique physical names."""
    cluster_name: pulumi.Input[str]
    """Home region's EKS cluster (region stack output)."""
    region_key_alias: pulumi.Input[str]
    """Home region's KMS key alias, for tenants that share the region's buckets."""
    region_buckets: dict[str, pulumi.Input[str]]
    """Home region's shared data buckets by purpose (region stack outputs)."""
    snowflake_database: pulumi.Input[str]
    """Home region's Snowflake database (region stack output)."""
    snowflake_warehouse: pulumi.Input[str]
    """Home region's warehouse for partner queries (region stack output)."""
    rest_service_id: pulumi.Input[str]
    """Kong REST API service the custom domain routes to (global stack output)."""
    retain_data: bool = True
    """Keep data-bearing resources (buckets, keys, schema) when the stack deletes them."""
    active: bool = True
    """False once offboarded: only the data-bearing resources remain, until their retention runs out."""


class PartnerTenant(pulumi.ComponentResource):
    namespace: str
    api_key: pulumi.Output[str]

    def __init__(self, name: str, args: PartnerTenantArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("platform:partner_tenant:PartnerTenant", name, None, opts)
        spec = args.spec
        self.namespace = f"partner-{spec.id}"
        labels = {"partner_id": spec.id, "isolation": "strict", "platform/tier": spec.tier}
        child = pulumi.ResourceOptions(parent=self)
        data = pulumi.ResourceOptions(parent=self, retain_on_delete=args.retain_data)

        self.outputs: dict[str, object] = {"namespace": self.namespace, "active": args.active}
        schema = self._schema(name, args, data)
        key = self._dedicated_storage(name, args, child, data) if args.tier.dedicated_storage else None
        if args.active:
            self._kubernetes(name, args, labels, child)
            self._gateway(name, args, child)
            self._warehouse_access(name, args, schema, child)
            self._workload_identity(name, args, key, child)
        self.register_outputs(self.outputs)

    def _kubernetes(
        self, name: str, args: PartnerTenantArgs, labels: dict[str, str], child: pulumi.ResourceOptions
    ) -> None:
        spec, tier, ns = args.spec, args.tier, self.namespace
        namespace = k8s.core.v1.Namespace(
            f"{name}-namespace",
            metadata=k8s.meta.v1.ObjectMetaArgs(
                name=ns, labels={**labels, "pod-security.kubernetes.io/enforce": "restricted"}
            ),
            opts=child,
        )
        in_ns = pulumi.ResourceOptions(parent=self, depends_on=[namespace])

        def meta(object_name: str) -> k8s.meta.v1.ObjectMetaArgs:
            return k8s.meta.v1.ObjectMetaArgs(name=object_name, namespace=ns, labels=labels)

        k8s.core.v1.ResourceQuota(
            f"{name}-quota",
            metadata=meta("tenant-quota"),
            spec=k8s.core.v1.ResourceQuotaSpecArgs(hard=tier.quota.hard()),
            opts=in_ns,
        )
        limits = tier.container_limits
        k8s.core.v1.LimitRange(
            f"{name}-limits",
            metadata=meta("tenant-limits"),
            spec=k8s.core.v1.LimitRangeSpecArgs(
                limits=[
                    k8s.core.v1.LimitRangeItemArgs(
                        type="Container",
                        default={"cpu": limits.default_cpu, "memory": limits.default_memory},
                        default_request={"cpu": limits.default_request_cpu, "memory": limits.default_request_memory},
                        max={"cpu": limits.max_cpu, "memory": limits.max_memory},
                    )
                ]
            ),
            opts=in_ns,
        )
        same_namespace = k8s.networking.v1.NetworkPolicyPeerArgs(pod_selector=k8s.meta.v1.LabelSelectorArgs())
        policies = {
            "default-deny": k8s.networking.v1.NetworkPolicySpecArgs(
                pod_selector=k8s.meta.v1.LabelSelectorArgs(), policy_types=["Ingress", "Egress"]
            ),
            "allow-same-namespace": k8s.networking.v1.NetworkPolicySpecArgs(
                pod_selector=k8s.meta.v1.LabelSelectorArgs(),
                policy_types=["Ingress", "Egress"],
                ingress=[k8s.networking.v1.NetworkPolicyIngressRuleArgs(from_=[same_namespace])],
                egress=[k8s.networking.v1.NetworkPolicyEgressRuleArgs(to=[same_namespace])],
            ),
            "allow-gateway": k8s.networking.v1.NetworkPolicySpecArgs(
                pod_selector=k8s.meta.v1.LabelSelectorArgs(),
                policy_types=["Ingress"],
                ingress=[
                    k8s.networking.v1.NetworkPolicyIngressRuleArgs(
                        from_=[
                            k8s.networking.v1.NetworkPolicyPeerArgs(
                                namespace_selector=k8s.meta.v1.LabelSelectorArgs(
                                    match_labels={"kubernetes.io/metadata.name": GATEWAY_NAMESPACE}
                                ),
                                pod_selector=k8s.meta.v1.LabelSelectorArgs(match_labels=GATEWAY_POD_LABELS),
                            )
                        ]
                    )
                ],
            ),
            "allow-dns": k8s.networking.v1.NetworkPolicySpecArgs(
                pod_selector=k8s.meta.v1.LabelSelectorArgs(),
                policy_types=["Egress"],
                egress=[
                    k8s.networking.v1.NetworkPolicyEgressRuleArgs(
                        to=[
                            k8s.networking.v1.NetworkPolicyPeerArgs(
                                namespace_selector=k8s.meta.v1.LabelSelectorArgs(
                                    match_labels={"kubernetes.io/metadata.name": "kube-system"}
                                ),
                                pod_selector=k8s.meta.v1.LabelSelectorArgs(match_labels={"k8s-app": "kube-dns"}),
                            )
                        ],
                        ports=[
                            k8s.networking.v1.NetworkPolicyPortArgs(protocol="UDP", port=53),
                            k8s.networking.v1.NetworkPolicyPortArgs(protocol="TCP", port=53),
                        ],
                    )
                ],
            ),
        }
        for policy_name, policy_spec in policies.items():
            k8s.networking.v1.NetworkPolicy(
                f"{name}-{policy_name}", metadata=meta(policy_name), spec=policy_spec, opts=in_ns
            )

        self.service_account = f"{spec.id}-workload"
        k8s.core.v1.ServiceAccount(f"{name}-workload-sa", metadata=meta(self.service_account), opts=in_ns)

        branding = spec.branding
        theme = {
            "colors": {
                "primary": branding.primary_color,
                "secondary": branding.secondary_color,
                "accent": branding.accent_color,
                "background": branding.background_color,
                "text": branding.text_color,
            },
            "typography": {
                "font_family": branding.font_family,
                "heading_font": branding.heading_font or branding.font_family,
                "base_size": branding.base_size,
            },
            "logo": {
                "url": branding.logo_url,
                "favicon": branding.favicon_url,
                "email_header": branding.email_logo_url,
            },
            "company_name": spec.company_name,
            "domain": spec.domain,
        }
        k8s.core.v1.ConfigMap(
            f"{name}-branding",
            metadata=meta("branding"),
            data={
                "theme.json": json.dumps(theme, sort_keys=True),
                "custom.css": branding.custom_css,
                "voice-greeting": branding.voice_greeting,
                "voice-personality": branding.voice_personality,
            },
            opts=in_ns,
        )

    def _gateway(self, name: str, args: PartnerTenantArgs, child: pulumi.ResourceOptions) -> None:
        spec = args.spec
        consumer = kong.Consumer(
            f"{name}-consumer",
            username=self.namespace,
            custom_id=spec.id,
            tags=[f"partner:{spec.id}", f"tier:{spec.tier}"],
            opts=child,
        )
        key = random.RandomPassword(f"{name}-api-key", length=48, special=False, opts=child)
        kong.ConsumerKeyAuth(
            f"{name}-key-auth", consumer_id=consumer.id, key=key.result, tags=[f"partner:{spec.id}"], opts=child
        )
        for group in (tier_acl_group(spec.tier), self.namespace):
            kong.ConsumerAcl(
                f"{name}-acl-{group}", consumer_id=consumer.id, group=group, tags=[f"partner:{spec.id}"], opts=child
            )
        kong.Plugin(
            f"{name}-rate-limit",
            name="rate-limiting",
            consumer_id=consumer.id,
            config_json=rate_limit_config(args.tier.rate_limit),
            tags=[f"partner:{spec.id}"],
            opts=child,
        )
        route = kong.Route(
            f"{name}-domain-route",
            name=f"{self.namespace}-domain",
            service_id=args.rest_service_id,
            protocols=["https"],
            hosts=[spec.domain],
            snis=[spec.domain],
            preserve_host=True,
            strip_path=False,
            tags=[f"partner:{spec.id}"],
            opts=child,
        )
        # Upstreams learn which brand a request came in on from the gateway, never from the client.
        kong.Plugin(
            f"{name}-domain-partner-header",
            name="request-transformer",
            route_id=route.id,
            config_json=json.dumps(
                {"remove": {"headers": ["X-Partner-Id"]}, "add": {"headers": [f"X-Partner-Id:{spec.id}"]}}
            ),
            tags=[f"partner:{spec.id}"],
            opts=child,
        )
        self.api_key = key.result
        self.outputs.update({"kong_consumer": self.namespace, "api_key": secret(key.result)})

    def _schema(self, name: str, args: PartnerTenantArgs, data: pulumi.ResourceOptions) -> snowflake.Schema:
        self.outputs["snowflake_schema"] = f"PARTNER_{args.spec.snowflake_id}"
        return snowflake.Schema(
            f"{name}-schema",
            database=args.snowflake_database,
            name=f"PARTNER_{args.spec.snowflake_id}",
            comment=f"Partner {args.spec.id}: its own views of platform data",
            with_managed_access="true",
            opts=data,
        )

    def _warehouse_access(
        self, name: str, args: PartnerTenantArgs, schema: snowflake.Schema, child: pulumi.ResourceOptions
    ) -> None:
        sf_id = args.spec.snowflake_id
        schema_name = f"PARTNER_{sf_id}"
        role_name = partner_reader_role(sf_id)
        schema_fqn = pulumi.Output.concat(args.snowflake_database, ".", schema_name)
        usage_source = pulumi.Output.concat(args.snowflake_database, ".RAW.USAGE_EVENTS")
        snowflake.View(
            f"{name}-usage-view",
            database=args.snowflake_database,
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
            f"{name}-reader-role", name=role_name, comment=f"Read-only access for partner {args.spec.id}", opts=child
        )
        grant_all(
            f"{name}-grant",
            role.name,
            {
                "db-usage": Grant(("USAGE",), on_object("DATABASE", args.snowflake_database)),
                "schema-usage": Grant(("USAGE",), on_schema(schema_fqn)),
                "views-select": Grant(("SELECT",), on_all("VIEWS", schema_fqn)),
                "future-views-select": Grant(("SELECT",), on_future("VIEWS", schema_fqn)),
                "warehouse-usage": Grant(("USAGE",), on_object("WAREHOUSE", args.snowflake_warehouse)),
            },
            child,
        )
        key = tls.PrivateKey(f"{name}-service-key", algorithm="RSA", rsa_bits=4096, opts=child)
        user = snowflake.ServiceUser(
            f"{name}-service-user",
            name=f"PARTNER_{sf_id}_SVC",
            comment=f"Service user of partner {args.spec.id}",
            default_role=role.name,
            default_warehouse=args.snowflake_warehouse,
            default_namespace=schema_fqn,
            rsa_public_key=key.public_key_pem.apply(rsa_public_key_body),
            opts=child,
        )
        snowflake.GrantAccountRole(f"{name}-service-user-role", role_name=role.name, user_name=user.name, opts=child)
        self.outputs.update(
            {
                "snowflake_role": role_name,
                "snowflake_user": user.name,
                "snowflake_private_key": secret(key.private_key_pem),
            }
        )

    def _dedicated_storage(
        self, name: str, args: PartnerTenantArgs, child: pulumi.ResourceOptions, data: pulumi.ResourceOptions
    ) -> str:
        """Enterprise tenants: their own KMS key and bucket. Returns the key's alias."""
        spec = args.spec
        key = aws.kms.Key(
            f"{name}-data-key",
            description=f"Call data of partner {spec.id}",
            enable_key_rotation=True,
            deletion_window_in_days=30,
            opts=data,
        )
        key_alias = f"alias/{args.name_prefix}-partner-{spec.id}"
        aws.kms.Alias(f"{name}-data-key-alias", name=key_alias, target_key_id=key.key_id, opts=child)
        bucket_name = self._dedicated_bucket_name(args)
        SecureBucket(
            f"{name}-data",
            SecureBucketArgs(
                bucket_name=bucket_name,
                kms_key_arn=key.arn,
                retention_days=args.retention_days,
                retain_on_delete=args.retain_data,
                tags={"platform:partner": spec.id, "platform:data": "partner"},
            ),
            opts=child,
        )
        self.outputs["data_bucket"] = bucket_name
        return key_alias

    @staticmethod
    def _dedicated_bucket_name(args: PartnerTenantArgs) -> str:
        return f"{args.name_prefix}-partner-{args.spec.id}"

    def _workload_identity(
        self, name: str, args: PartnerTenantArgs, dedicated_key_alias: str | None, child: pulumi.ResourceOptions
    ) -> None:
        """An IAM role for the tenant's pods (EKS Pod Identity), limited to the tenant's own data."""
        spec = args.spec
        list_statement: dict[str, object] = {"Effect": "Allow", "Action": "s3:ListBucket"}
        key_alias: pulumi.Input[str]
        if dedicated_key_alias is not None:
            bucket_name = self._dedicated_bucket_name(args)
            key_alias = dedicated_key_alias
            object_arns: list[pulumi.Input[str]] = [f"arn:aws:s3:::{bucket_name}/*"]
            list_statement["Resource"] = [f"arn:aws:s3:::{bucket_name}"]
        else:
            prefix = f"partners/{spec.id}/"
            key_alias = args.region_key_alias
            object_arns = [
                pulumi.Output.concat("arn:aws:s3:::", b, "/", prefix, "*") for b in args.region_buckets.values()
            ]
            list_statement["Resource"] = [
                pulumi.Output.concat("arn:aws:s3:::", b) for b in args.region_buckets.values()
            ]
            list_statement["Condition"] = {"StringLike": {"s3:prefix": [f"{prefix}*"]}}
            self.outputs["data_prefix"] = prefix

        role = aws.iam.Role(
            f"{name}-workload-role",
            description=f"Pod identity of partner {spec.id}'s workloads",
            assume_role_policy=json.dumps(
                {
                    "Version": "2012-10-17",
                    "Statement": [
                        {
                            "Effect": "Allow",
                            "Principal": {"Service": "pods.eks.amazonaws.com"},
                            "Action": ["sts:AssumeRole", "sts:TagSession"],
                        }
                    ],
                }
            ),
            opts=child,
        )
        aws.iam.RolePolicy(
            f"{name}-workload-data-access",
            role=role.name,
            policy=pulumi.Output.json_dumps(
                {
                    "Version": "2012-10-17",
                    "Statement": [
                        {
                            "Effect": "Allow",
                            "Action": ["s3:GetObject", "s3:PutObject", "s3:DeleteObject"],
                            "Resource": object_arns,
                        },
                        list_statement,
                        {
                            "Effect": "Allow",
                            "Action": ["kms:Decrypt", "kms:GenerateDataKey"],
                            "Resource": "*",
                            "Condition": {"ForAnyValue:StringEquals": {"kms:ResourceAliases": key_alias}},
                        },
                    ],
                }
            ),
            opts=child,
        )
        aws.eks.PodIdentityAssociation(
            f"{name}-pod-identity",
            cluster_name=args.cluster_name,
            namespace=self.namespace,
            service_account=self.service_account,
            role_arn=role.arn,
            opts=child,
        )
        self.outputs["workload_role"] = role.arn
