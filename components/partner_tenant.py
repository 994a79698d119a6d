"""PartnerTenant: one white-label partner's isolated slice of its home region, gateway and warehouse."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws
import pulumi_kong as kong
import pulumi_kubernetes as k8s
import pulumi_random as random

from components.gateway_certificates import bind_certificate
from components.network_policies import tenant_network_policies
from components.outputs import secret
from components.partner_telephony import PartnerTelephony, PartnerTelephonyArgs
from components.pod_identity import POD_IDENTITY_TRUST_POLICY
from components.secure_bucket import SecureBucket, SecureBucketArgs
from components.tenant_warehouse import build_partner_schema, build_warehouse_access
from foundation.naming import (
    TWILIO_CALLBACK_OVERRIDES,
    partner_namespace,
    partner_schema,
    tier_acl_group,
    twilio_status_callback_path,
)
from gateway.cors import cors_config, partner_origins
from gateway.model import ApiCatalog
from gateway.rate_limits import rate_limit_config
from gateway.routes import platform_routes
from gateway.tls import acme_delegation_name, acme_delegation_target, challenge_record, platform_hosts
from partners.spec import PartnerSpec
from partners.telephony import NumberSlot
from partners.tiers import Tier

SNOWFLAKE_TYPES = (
    "snowflake:index/schema:Schema",
    "snowflake:index/view:View",
    "snowflake:index/accountRole:AccountRole",
    "snowflake:index/grantPrivilegesToAccountRole:GrantPrivilegesToAccountRole",
    "snowflake:index/serviceUser:ServiceUser",
    "snowflake:index/grantAccountRole:GrantAccountRole",
)
"""Resource types this component registers: its provider enables the preview features they need."""


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
    apis: ApiCatalog
    """The API surface (gateway/apis.yaml): the partner's hosts get a copy of every platform route."""
    kong_service_ids: pulumi.Input[dict[str, str]]
    """Kong service id per API (global stack output)."""
    dns_zone: str
    """The platform's public zone: the partner's platform names are api/dashboard/webhooks.<id>.<zone>."""
    dns_zone_id: pulumi.Input[str]
    """Route 53 hosted zone of that zone (global stack output)."""
    gateway_hostname: pulumi.Input[str]
    """Home region's gateway load balancer name (region stack output): the platform names' CNAME target."""
    domain_verified: bool = False
    """The partner's TXT proof for its domain was checked (stack config platform:domainVerified names the domain)."""
    endpoint_cidrs: tuple[str, ...] = ()
    """Home region's interface-endpoint subnets (S3, KMS, STS): the only VPC addresses tenant pods may call."""
    retain_data: bool = True
    """Keep data-bearing resources (buckets, keys, schema) when the stack deletes them."""
    active: bool = True
    """False once offboarded: only the data-bearing resources remain, until their retention runs out."""
    number_slots: tuple[NumberSlot, ...] = ()
    """Twilio number slots from the spec's `telephony` section (none: no subaccount either)."""
    voice_endpoint_url: pulumi.Input[str] = ""
    """Home region's voice endpoint through the gateway (region stack output), the numbers' voice URL."""
    meter_public_url: pulumi.Input[str] = ""
    """Home region's meter (region stack output); the numbers' status callback is under it."""
    bundle_required_slots: frozenset[str] = frozenset()
    """Number slots whose country and type need a regulatory bundle (they wait for one instead of failing)."""
    keep_numbers: bool = True
    """Keep numbers and subaccount, also once offboarded; False on purge or an explicit release."""


class PartnerTenant(pulumi.ComponentResource):
    namespace: str
    api_key: pulumi.Output[str]

    def __init__(self, name: str, args: PartnerTenantArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("platform:partner_tenant:PartnerTenant", name, None, opts)
        spec = args.spec
        self.namespace = partner_namespace(spec.id)
        labels = {"partner_id": spec.id, "isolation": "strict", "platform/tier": spec.tier}
        child = pulumi.ResourceOptions(parent=self)
        data = pulumi.ResourceOptions(parent=self, retain_on_delete=args.retain_data)

        self.outputs: dict[str, object] = {"namespace": self.namespace, "active": args.active}
        self.outputs["snowflake_schema"] = partner_schema(spec.id)
        schema = build_partner_schema(name, spec.id, args.snowflake_database, data)
        key = self._dedicated_storage(name, args, child, data) if args.tier.dedicated_storage else None
        if args.number_slots:
            self._telephony(name, args)
        if args.active:
            self._kubernetes(name, args, labels, child)
            self._gateway(name, args, child)
            self.outputs.update(
                build_warehouse_access(name, spec.id, args.snowflake_database, args.snowflake_warehouse, schema, child)
            )
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
        self.namespace_resource = namespace
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
        for policy_name, policy_spec in tenant_network_policies(args.endpoint_cidrs).items():
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
        self._hosts(name, args, child)
        self.api_key = key.result
        self.outputs.update({"kong_consumer": self.namespace, "api_key": secret(key.result)})

    def _telephony(self, name: str, args: PartnerTenantArgs) -> None:
        telephony = PartnerTelephony(
            f"{name}-telephony",
            PartnerTelephonyArgs(
                partner_id=args.spec.id,
                slots=args.number_slots,
                voice_url=args.voice_endpoint_url,
                status_callback=pulumi.Output.concat(
                    args.meter_public_url, twilio_status_callback_path(args.spec.id), TWILIO_CALLBACK_OVERRIDES
                ),
                keep_on_delete=args.keep_numbers,
                bundle_required=args.bundle_required_slots,
            ),
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.outputs.update(telephony.outputs)

    def _hosts(self, name: str, args: PartnerTenantArgs, child: pulumi.ResourceOptions) -> None:
        """DNS, certificates and routes of every host the partner is served on (see gateway/tls.py for the design)."""
        spec = args.spec
        platform_names = platform_hosts(spec.id, args.dns_zone)
        for label, host in platform_names.items():
            aws.route53.Record(
                f"{name}-dns-{label}",
                zone_id=args.dns_zone_id,
                name=host,
                type="CNAME",
                ttl=300,
                records=[args.gateway_hostname],
                opts=child,
            )
        # The partner proves its domain with a TXT record holding this token, which only it is told (secret output).
        token = random.RandomPassword(f"{name}-domain-token", length=40, special=False, opts=child)
        self.outputs.update(
            {
                "platform_hosts": list(platform_names.values()),
                "domain_challenge_record": challenge_record(spec.domain),
                "domain_challenge_token": secret(token.result),
                "acme_delegation": {
                    "name": acme_delegation_name(spec.domain),
                    "type": "CNAME",
                    "value": acme_delegation_target(spec.id, args.dns_zone),
                },
                "domain_verified": args.domain_verified,
            }
        )
        bindings = [self._certificate(name, "platform-hosts", list(platform_names.values()), args, child)]
        hosts = [platform_names["api"]]
        if args.domain_verified:
            bindings.append(self._certificate(name, "custom-domain", [spec.domain], args, child))
            hosts.append(spec.domain)
        # A route is created only after the Kong certificate for each of its hosts: Kong never has a route on a host
        # it would answer with its default certificate. https only: plain http gets 426, no TLS at all.
        after_certs = pulumi.ResourceOptions(parent=self, depends_on=bindings)
        for route_spec in platform_routes(args.apis):
            route = kong.Route(
                f"{name}-{route_spec.name}",
                name=f"{self.namespace}-{route_spec.name}",
                service_id=pulumi.Output.from_input(args.kong_service_ids).apply(_item(route_spec.api)),
                protocols=["https"],
                hosts=hosts,
                snis=hosts,
                paths=[route_spec.path],
                strip_path=False,
                preserve_host=True,
                https_redirect_status_code=426,
                tags=[f"partner:{spec.id}", f"api:{route_spec.api}", f"version:{route_spec.version}"],
                opts=after_certs,
            )
            # Browsers may call the partner's routes from its own dashboards and from nowhere else (the route's
            # plugin; there is no global one). Kong answers the preflight in the cors plugin, before key-auth.
            kong.Plugin(
                f"{name}-{route_spec.name}-cors",
                name="cors",
                route_id=route.id,
                config_json=cors_config(
                    partner_origins(
                        args.apis.global_plugins.cors_origins,
                        spec.id,
                        args.dns_zone,
                        spec.domain if args.domain_verified else None,
                    ),
                    args.apis.global_plugins.correlation_id.header_name,
                ),
                tags=[f"partner:{spec.id}"],
                opts=child,
            )
            if route_spec.deprecation is not None:
                kong.Plugin(
                    f"{name}-{route_spec.name}-deprecation",
                    name="response-transformer",
                    route_id=route.id,
                    config_json=route_spec.deprecation,
                    tags=[f"partner:{spec.id}"],
                    opts=child,
                )
        self.outputs["routed_hosts"] = hosts

    def _certificate(
        self, name: str, purpose: str, hosts: list[str], args: PartnerTenantArgs, child: pulumi.ResourceOptions
    ) -> k8s.apiextensions.CustomResource:
        return bind_certificate(
            name,
            purpose,
            hosts,
            self.namespace,
            labels={"partner_id": args.spec.id},
            parent=self,
            depends_on=[self.namespace_resource],
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
            assume_role_policy=POD_IDENTITY_TRUST_POLICY,
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


def _item(key: str) -> Callable[[Mapping[str, str]], str]:
    return lambda mapping: mapping[key]
