"""RegionalDeployment: one of the 15 regions - KMS, data buckets, network, EKS, Kong data plane, Snowflake."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Literal

import pulumi
import pulumi_aws as aws
import pulumi_kong as kong
import pulumi_kubernetes as k8s
import pulumi_random as random
import pulumi_snowflake as snowflake
import pulumi_tls as tls

from components.certificate_sync import KongCertificateSync, KongCertificateSyncArgs
from components.cluster_addons import ClusterAddons, ClusterAddonsArgs
from components.country_launch import CountryLaunch, CountryLaunchArgs
from components.gateway_certificates import bind_certificate
from components.outputs import secret
from components.pod_identity import POD_IDENTITY_TRUST_POLICY
from components.runtime_job import RuntimeJob, RuntimeJobArgs
from components.runtime_service import SPOOL_MOUNT, RuntimeService, RuntimeServiceArgs
from components.secure_bucket import SecureBucket, SecureBucketArgs
from components.snowflake_organization import rsa_public_key_body
from components.snowflake_preview import features_for
from components.snowflake_warehouse import SNOWFLAKE_TYPES, SnowflakeWarehouse, SnowflakeWarehouseArgs
from components.voice_endpoint import VoiceEndpoint, VoiceEndpointArgs
from foundation.naming import (
    CALL_DATA,
    FINANCIAL_RECORDS,
    STATEMENT_RETENTION_DAYS,
    TWILIO_STATUS_CALLBACK_ROUTE,
    region_object,
)
from gateway.kong_plugins import KONG_IMAGE_TAG
from gateway.redis import REDIS_AUTH_ENV, REDIS_NAMESPACE, REDIS_PORT, REDIS_SERVICE
from gateway.tls import ACME_ISSUER
from gateway.vault import METER_AUTHORIZATION, env_variable
from gateway.voice import VoiceUpstream
from regions.catalog import Country, Region
from regions.network import INTERFACE_ENDPOINT_SERVICES, address_plan

PLATFORM_NAMESPACE = "platform"
METER_PORT = 8787
STATEMENTS_PREFIX = "statements"
"""Key prefix of the payout statements in the region's statements bucket (the payouts role's only S3 prefix)."""
KONG_DATA_PLANE_LABELS = {"app.kubernetes.io/instance": "kong-dp"}
"""Labels the Kong chart puts on the data-plane pods of the `kong-dp` release: the only callers of the meter."""
KONG_CHART_VERSION = "2.52.0"
CERT_MANAGER_CHART_VERSION = "v1.18.2"
ACME_SERVER = "https://acme-v02.api.letsencrypt.org/directory"
GATEWAY_POD_LABELS = {"app.kubernetes.io/name": "kong", "app.kubernetes.io/instance": "kong-dp"}
CLUSTER_POLICIES = ("AmazonEKSClusterPolicy",)
NODE_POLICIES = ("AmazonEKSWorkerNodePolicy", "AmazonEKS_CNI_Policy", "AmazonEC2ContainerRegistryReadOnly")
ACME_RECORDS_ONLY = {
    "ForAllValues:StringEquals": {"route53:ChangeResourceRecordSetsRecordTypes": ["TXT"]},
    "ForAllValues:StringLike": {"route53:ChangeResourceRecordSetsNormalizedRecordNames": ["_acme-challenge.*"]},
}
"""cert-manager may change TXT records under `_acme-challenge` names and nothing else in the platform zone (not a
partner's `api` CNAME, not another region's records). Route 53 condition keys for ChangeResourceRecordSets (names
are normalized: lower case, no trailing dot): AWS Route 53 developer guide, "Using IAM policy conditions for
fine-grained access control", https://docs.aws.amazon.com/Route53/latest/DeveloperGuide/specifying-rrset-conditions.html.
Delegated partner challenges land there too: their CNAME target is `_acme-challenge.<id>.<zone>` (gateway/tls.py)."""
VPC_CNI_CONFIGURATION = {"enableNetworkPolicy": "true"}
"""The VPC CNI leaves NetworkPolicy objects unenforced unless its add-on turns the network policy agent on.
Source: AWS EKS user guide, "Restrict Pod network traffic with Kubernetes network policies",
https://docs.aws.amazon.com/eks/latest/userguide/cni-network-policy.html (read 2026-11-29)."""


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


class RegionalDeployment(pulumi.ComponentResource):
    def __init__(self, name: str, args: RegionalDeploymentArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("platform:regional_deployment:RegionalDeployment", name, None, opts)
        region = args.region
        base_name = f"{args.name_prefix}-{region.code}"
        tags = {"platform:region": region.code, "platform:managed-by": "platformctl"}

        provider = aws.Provider(
            f"{name}-aws",
            region=region.aws_region,
            default_tags=aws.ProviderDefaultTagsArgs(tags=tags),
            opts=pulumi.ResourceOptions(parent=self),
        )
        aws_opts = pulumi.ResourceOptions(parent=self, provider=provider)

        key = aws.kms.Key(
            f"{name}-data-key",
            description=f"Call data at rest in {region.code}",
            enable_key_rotation=True,
            deletion_window_in_days=30,
            opts=pulumi.ResourceOptions(parent=self, provider=provider, retain_on_delete=True),
        )
        self.key_alias = f"alias/{base_name}-data"
        aws.kms.Alias(f"{name}-data-key-alias", name=self.key_alias, target_key_id=key.key_id, opts=aws_opts)

        self.buckets = {
            purpose: SecureBucket(
                f"{name}-{purpose}",
                SecureBucketArgs(
                    bucket_name=f"{base_name}-{purpose}",
                    kms_key_arn=key.arn,
                    retention_days=args.retention_days,
                    tags={"platform:data": purpose, "platform:data-class": CALL_DATA},
                ),
                opts=aws_opts,
            )
            for purpose in ("recordings", "transcripts")
        }
        # Payout statements are accounting records, not call data: no caller's personal data, and a legal duty to
        # keep them (and their history) for years, so they do not expire with the region's call-data retention.
        self.buckets["statements"] = SecureBucket(
            f"{name}-statements",
            SecureBucketArgs(
                bucket_name=f"{base_name}-statements",
                kms_key_arn=key.arn,
                retention_days=STATEMENT_RETENTION_DAYS,
                noncurrent_days=STATEMENT_RETENTION_DAYS,
                tags={"platform:data": "statements", "platform:data-class": FINANCIAL_RECORDS},
            ),
            opts=aws_opts,
        )

        private_subnets, public_subnets = self._network(name, region, aws_opts)
        cluster = self._cluster(name, base_name, args, key, private_subnets, public_subnets, aws_opts)

        kubeconfig = secret(
            pulumi.Output.all(cluster.name, cluster.endpoint, cluster.certificate_authority.data).apply(
                lambda parts: _kubeconfig(parts[0], parts[1], parts[2], region.aws_region)
            )
        )
        k8s_provider = k8s.Provider(
            f"{name}-k8s",
            kubeconfig=kubeconfig,
            enable_server_side_apply=True,
            opts=pulumi.ResourceOptions(parent=self),
        )
        k8s_opts = pulumi.ResourceOptions(parent=self, provider=k8s_provider)
        self.addons = ClusterAddons(
            f"{name}-addons",
            ClusterAddonsArgs(
                cluster_name=cluster.name,
                node_group=self.node_group,
                pod_identity_agent=self.pod_identity_agent,
                kms_key_arn=key.arn,
                k8s_provider=k8s_provider,
            ),
            opts=pulumi.ResourceOptions(parent=self, provider=provider),
        )
        # Pods need nodes: every Helm release and workload of the region is created after the node group.
        self.on_nodes = pulumi.ResourceOptions(depends_on=[self.node_group])
        namespace = k8s.core.v1.Namespace(
            f"{name}-platform-ns",
            metadata=k8s.meta.v1.ObjectMetaArgs(
                name=PLATFORM_NAMESPACE,
                labels={"app.kubernetes.io/part-of": "platform", "pod-security.kubernetes.io/enforce": "restricted"},
            ),
            opts=k8s_opts,
        )
        redis_endpoint, redis_token = self._redis(name, base_name, key, cluster, aws_opts)
        gateway = self._kong_data_plane(name, args, namespace, redis_endpoint, redis_token, k8s_opts)
        self._cert_manager(name, base_name, args, cluster, aws_opts, k8s_opts)
        for country in args.launched:
            CountryLaunch(
                f"{name}-country-{country.code.lower()}",
                CountryLaunchArgs(country=country, namespace=namespace.metadata.name),
                opts=k8s_opts,
            )

        snowflake_provider = snowflake.Provider(
            f"{name}-snowflake",
            organization_name=args.snowflake_organization,
            account_name=args.snowflake_account,
            user="PLATFORMCTL",
            authenticator="SNOWFLAKE_JWT",
            private_key=args.snowflake_private_key,
            role="ACCOUNTADMIN",
            preview_features_enabled=features_for(SNOWFLAKE_TYPES),
            opts=pulumi.ResourceOptions(parent=self),
        )
        warehouse = SnowflakeWarehouse(
            f"{name}-warehouse",
            SnowflakeWarehouseArgs(
                region_code=region.code,
                monthly_credit_quota=args.snowflake_monthly_credits,
                retention_days=args.retention_days,
            ),
            opts=pulumi.ResourceOptions(parent=self, provider=snowflake_provider),
        )

        if args.meter_image:
            self.cert_sync = KongCertificateSync(
                f"{name}-cert-sync",
                KongCertificateSyncArgs(
                    region_code=region.code,
                    namespace=namespace.metadata.name,
                    image=args.meter_image,
                    kong_admin_url=args.kong_admin_url,
                    kong_admin_token=args.kong_admin_token,
                ),
                opts=pulumi.ResourceOptions.merge(
                    k8s_opts, pulumi.ResourceOptions(depends_on=[namespace, self.node_group])
                ),
            )
            # The webhooks service first: the meter and the payouts job post their events to it (its in-cluster URL
            # and the producers' token in their environment); without it they run with event production off.
            producer_env: tuple[dict[str, pulumi.Input[str]], dict[str, pulumi.Input[str]]] = ({}, {})
            if args.webhooks_kong_token:
                self._webhooks(name, args, namespace, key, cluster, provider, k8s_provider)
                producer_env = (
                    {"WEBHOOKS_URL": self.webhooks.cluster_url},
                    {"WEBHOOKS_EVENT_TOKEN": self.webhooks.event_token},
                )
            self._meter(name, args, namespace, warehouse, k8s_opts, snowflake_provider, producer_env)
            if args.meter_host:
                self._meter_route(name, args, namespace, gateway, k8s_provider, aws_opts)
            self._payouts(
                name, args, namespace, warehouse, key, cluster, aws_opts, k8s_opts, snowflake_provider, producer_env
            )
        if args.voice_host and args.voice_upstream is not None:
            VoiceEndpoint(
                f"{name}-voice",
                VoiceEndpointArgs(
                    region_code=region.code,
                    host=args.voice_host,
                    upstream=args.voice_upstream,
                    dns_zone_id=args.dns_zone_id,
                    gateway_hostname=gateway.status.apply(_load_balancer_hostname),
                    namespace=PLATFORM_NAMESPACE,
                    # The sync that copies its Secret into Kong runs from the services image, like the meter.
                    depends_on=(namespace, self.acme_issuer, *([self.cert_sync] if args.meter_image else [])),
                ),
                opts=pulumi.ResourceOptions(parent=self, providers={"aws": provider, "kubernetes": k8s_provider}),
            )

        self.outputs = {
            "aws_region": region.aws_region,
            "kms_key_arn": key.arn,
            "kms_key_alias": self.key_alias,
            "recordings_bucket": self.buckets["recordings"].bucket.bucket,
            "transcripts_bucket": self.buckets["transcripts"].bucket.bucket,
            "statements_bucket": self.buckets["statements"].bucket.bucket,
            "retention_days": args.retention_days,
            "launched_countries": [c.code for c in args.launched],
            "cluster_name": cluster.name,
            "kubeconfig": kubeconfig,
            "platform_namespace": namespace.metadata.name,
            "gateway_hostname": gateway.status.apply(_load_balancer_hostname),
            "snowflake_database": warehouse.database_name,
            "snowflake_partner_warehouse": warehouse.partner_warehouse_name,
            "snowflake_account": args.snowflake_account,
            "meter_public_url": args.meter_public_url,
        }
        self.register_outputs(self.outputs)

    def _webhooks(
        self,
        name: str,
        args: RegionalDeploymentArgs,
        namespace: k8s.core.v1.Namespace,
        key: aws.kms.Key,
        cluster: aws.eks.Cluster,
        provider: aws.Provider,
        k8s_provider: k8s.Provider,
    ) -> None:
        """The webhooks service (components/webhooks_dispatcher.py): deliveries of this region's events."""
        from components.webhooks_dispatcher import WebhooksDispatcher, WebhooksDispatcherArgs

        self.webhooks = WebhooksDispatcher(
            f"{name}-webhooks",
            WebhooksDispatcherArgs(
                region_code=args.region.code,
                namespace=namespace.metadata.name,
                image=args.meter_image,
                kms_key_arn=key.arn,
                cluster_name=cluster.name,
                kong_token=args.webhooks_kong_token,
                gateway_labels=KONG_DATA_PLANE_LABELS,
                producer_labels=({"app": "meter"}, {"app": "payouts"}),
                vpc_cidr=str(args.region.cidr),
                endpoint_cidrs=tuple(str(c) for c in address_plan(args.region).endpoints),
                platform_domains=(args.dns_zone_name,) if args.dns_zone_name else (),
                storage_class=self.addons.storage_class_name,
                runs_after=(self.node_group, self.pod_identity_agent, *self.addons.storage),
            ),
            opts=pulumi.ResourceOptions(parent=self, providers=[provider, k8s_provider]),
        )

    def _meter_route(
        self,
        name: str,
        args: RegionalDeploymentArgs,
        namespace: k8s.core.v1.Namespace,
        gateway: k8s.core.v1.Service,
        k8s_provider: k8s.Provider,
        aws_opts: pulumi.ResourceOptions,
    ) -> None:
        """The meter's public host: a DNS name to this region's gateway, a certificate bound to Kong for it (SNI),
        and the one route that reaches the meter from outside (Twilio's status callbacks), created after the
        certificate so Kong never answers the host with its default certificate."""
        host = args.meter_host
        aws.route53.Record(
            f"{name}-dns-meter",
            zone_id=args.dns_zone_id,
            name=host,
            type="CNAME",
            ttl=300,
            records=[gateway.status.apply(_load_balancer_hostname)],
            opts=aws_opts,
        )
        binding = bind_certificate(
            name,
            "meter",
            [host],
            PLATFORM_NAMESPACE,
            labels={"app.kubernetes.io/name": "meter"},
            parent=self,
            # The Certificate kind exists once cert-manager's release has installed its CRDs; the issuer after it.
            depends_on=[namespace, self.acme_issuer, self.cert_sync],
            k8s_provider=k8s_provider,
        )
        kong.Route(
            f"{name}-meter-twilio",
            name=f"meter-twilio-status-{args.region.code}",
            service_id=args.kong_meter_service_id,
            protocols=["https"],
            methods=["POST"],
            hosts=[host],
            snis=[host],
            # Only the callback path reaches the meter from outside; /kong/http-log and /metrics do not.
            paths=[TWILIO_STATUS_CALLBACK_ROUTE],
            strip_path=False,
            preserve_host=True,
            https_redirect_status_code=426,
            tags=["platform", "service:meter", f"region:{args.region.code}"],
            opts=pulumi.ResourceOptions(parent=self, depends_on=[binding]),
        )

    def _meter(
        self,
        name: str,
        args: RegionalDeploymentArgs,
        namespace: k8s.core.v1.Namespace,
        warehouse: SnowflakeWarehouse,
        k8s_opts: pulumi.ResourceOptions,
        snowflake_provider: snowflake.Provider,
        producer_env: tuple[dict[str, pulumi.Input[str]], dict[str, pulumi.Input[str]]],
    ) -> None:
        """The usage meter: its own Snowflake service user holding only the loader role, and the RuntimeService.
        `producer_env`: (env, secret env) that point it at the region's webhooks service (empty: none)."""
        key, warehouse_url = self._warehouse_user(
            name, "meter", "The usage meter", warehouse.loader_role, args, warehouse, snowflake_provider
        )
        RuntimeService(
            f"{name}-meter",
            RuntimeServiceArgs(
                service="meter",
                namespace=namespace.metadata.name,
                image=args.meter_image,
                args=(
                    "meter",
                    "serve",
                    "--host",
                    "0.0.0.0",
                    "--port",
                    str(METER_PORT),
                    "--region",
                    args.region.code,
                    "--spool",
                    f"{SPOOL_MOUNT}/spool.db",
                ),
                port=METER_PORT,
                admit_from=KONG_DATA_PLANE_LABELS,
                secret_env={
                    "TWILIO_ACCOUNT_SID": args.twilio_account_sid,
                    "TWILIO_AUTH_TOKEN": args.twilio_auth_token,
                    "METER_KONG_TOKEN": args.meter_kong_token,
                    "SNOWFLAKE_PRIVATE_KEY": key.private_key_pem,
                    "METER_WAREHOUSE_URL": warehouse_url,
                    "METER_PUBLIC_URL": args.meter_public_url,
                    **producer_env[1],
                },
                env=producer_env[0],
                spool_size="10Gi",
                # /healthz is readiness (spool full, warehouse behind): a restart fixes none of that.
                liveness_path="/livez",
                storage_class=self.addons.storage_class_name,
            ),
            # Its claims bind only once the CSI driver and the class exist; its HPA scales on metrics-server's data.
            opts=pulumi.ResourceOptions.merge(
                k8s_opts,
                pulumi.ResourceOptions(depends_on=[self.node_group, *self.addons.storage, *self.addons.metrics]),
            ),
        )

    def _payouts(
        self,
        name: str,
        args: RegionalDeploymentArgs,
        namespace: k8s.core.v1.Namespace,
        warehouse: SnowflakeWarehouse,
        key: aws.kms.Key,
        cluster: aws.eks.Cluster,
        aws_opts: pulumi.ResourceOptions,
        k8s_opts: pulumi.ResourceOptions,
        snowflake_provider: snowflake.Provider,
        producer_env: tuple[dict[str, pulumi.Input[str]], dict[str, pulumi.Input[str]]],
    ) -> None:
        """The monthly payouts job: reads this region's warehouse, pays this region's partners (usage never leaves
        the region), writes statements to this region's statements bucket."""
        # EKS Pod Identity (the agent add-on is installed with the cluster): the job's ServiceAccount alone may read
        # and write statements, and only under statements/; no AWS key lives in the cluster.
        role = aws.iam.Role(
            f"{name}-payouts-role",
            assume_role_policy=POD_IDENTITY_TRUST_POLICY,
            opts=aws_opts,
        )
        bucket_arn = f"arn:aws:s3:::{args.name_prefix}-{args.region.code}-statements"  # the name is fixed at plan time
        aws.iam.RolePolicy(
            f"{name}-payouts-statements",
            role=role.id,
            policy=json.dumps(
                {
                    "Version": "2012-10-17",
                    "Statement": [
                        {
                            "Effect": "Allow",
                            "Action": ["s3:GetObject", "s3:PutObject"],
                            "Resource": f"{bucket_arn}/{STATEMENTS_PREFIX}/*",
                        },
                        {"Effect": "Allow", "Action": ["s3:GetBucketVersioning"], "Resource": bucket_arn},
                        # Without s3:ListBucket, S3 answers a statement not yet written with 403 AccessDenied, not 404
                        # ("If you don't have the s3:ListBucket permission, Amazon S3 returns an HTTP status code 403",
                        # docs.aws.amazon.com/AmazonS3/latest/API/API_GetObject.html, Permissions). Listing only under
                        # the prefix: s3:prefix is the ListBucket condition key that limits a listing to a key prefix
                        # (S3 user guide, "Bucket policy examples using condition keys", amazon-s3-policy-keys.html;
                        # AWS knowledge center, iam-s3-user-specific-folder). For GetObject's 403-or-404 decision S3
                        # evaluates ListBucket with the requested key as s3:prefix (what Ceph RGW now does "to match
                        # aws behavior", github.com/ceph/ceph/pull/68577), so `statements/*` covers every statement.
                        {
                            "Effect": "Allow",
                            "Action": ["s3:ListBucket"],
                            "Resource": bucket_arn,
                            "Condition": {"StringLike": {"s3:prefix": [f"{STATEMENTS_PREFIX}/*", STATEMENTS_PREFIX]}},
                        },
                    ],
                }
            ),
            opts=aws_opts,
        )
        aws.iam.RolePolicy(
            f"{name}-payouts-kms",
            role=role.id,
            policy=pulumi.Output.json_dumps(
                {
                    "Version": "2012-10-17",
                    "Statement": [
                        {"Effect": "Allow", "Action": ["kms:GenerateDataKey", "kms:Decrypt"], "Resource": key.arn}
                    ],
                }
            ),
            opts=aws_opts,
        )
        identity = aws.eks.PodIdentityAssociation(
            f"{name}-payouts-identity",
            cluster_name=cluster.name,
            namespace=PLATFORM_NAMESPACE,
            service_account="payouts",
            role_arn=role.arn,
            opts=aws_opts,
        )
        user_key, warehouse_url = self._warehouse_user(
            name, "payouts", "The payouts job", warehouse.payouts_role, args, warehouse, snowflake_provider
        )
        RuntimeJob(
            f"{name}-payouts",
            RuntimeJobArgs(
                job="payouts",
                namespace=namespace.metadata.name,
                image=args.meter_image,
                args=(
                    ("payouts", "run", "--period", "previous", "--region", args.region.code)
                    + (("--live",) if args.stripe_mode == "live" else ())
                ),
                schedule=args.payouts_schedule,
                secret_env={
                    "STRIPE_API_KEY": args.stripe_api_key,
                    "SNOWFLAKE_PRIVATE_KEY": user_key.private_key_pem,
                    "PAYOUTS_WAREHOUSE_URL": warehouse_url,
                    **producer_env[1],
                },
                env={
                    **producer_env[0],
                    "PAYOUTS_STATEMENTS": pulumi.Output.concat(
                        "s3://", self.buckets["statements"].bucket.bucket, f"/{STATEMENTS_PREFIX}"
                    ),
                    "PAYOUTS_KMS_KEY_ID": key.arn,
                    "AWS_REGION": args.region.aws_region,
                },
            ),
            # Pod Identity is injected at pod admission: the association must exist before the first pod.
            opts=pulumi.ResourceOptions.merge(
                k8s_opts, pulumi.ResourceOptions(depends_on=[self.node_group, identity, self.pod_identity_agent])
            ),
        )

    def _warehouse_user(
        self,
        name: str,
        purpose: str,
        description: str,
        role: pulumi.Output[str],
        args: RegionalDeploymentArgs,
        warehouse: SnowflakeWarehouse,
        snowflake_provider: snowflake.Provider,
    ) -> tuple[tls.PrivateKey, pulumi.Output[str]]:
        """A runtime service's own key-pair Snowflake user holding only `role`; returns its key and the warehouse URL
        the service connects with (`services/warehouse.py`)."""
        sf_opts = pulumi.ResourceOptions(parent=self, provider=snowflake_provider)
        key = tls.PrivateKey(
            f"{name}-{purpose}-key", algorithm="RSA", rsa_bits=4096, opts=pulumi.ResourceOptions(parent=self)
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

    def _network(
        self, name: str, region: Region, opts: pulumi.ResourceOptions
    ) -> tuple[list[aws.ec2.Subnet], list[aws.ec2.Subnet]]:
        vpc = self.vpc = aws.ec2.Vpc(
            f"{name}-vpc",
            cidr_block=str(region.cidr),
            enable_dns_hostnames=True,
            enable_dns_support=True,
            tags={"Name": f"platform-{region.code}"},
            opts=opts,
        )
        plan = address_plan(region)
        igw = aws.ec2.InternetGateway(f"{name}-igw", vpc_id=vpc.id, opts=opts)
        public_rt = aws.ec2.RouteTable(
            f"{name}-public-rt",
            vpc_id=vpc.id,
            routes=[aws.ec2.RouteTableRouteArgs(cidr_block="0.0.0.0/0", gateway_id=igw.id)],
            opts=opts,
        )
        private_subnets, public_subnets, endpoint_subnets = [], [], []
        # Zone IDs, not names: a zone name is a different physical zone in each account.
        for zone_id, cidr in zip(region.zone_ids, plan.public, strict=True):
            public = aws.ec2.Subnet(
                f"{name}-public-{zone_id}",
                vpc_id=vpc.id,
                availability_zone_id=zone_id,
                cidr_block=str(cidr),
                map_public_ip_on_launch=False,
                tags={"kubernetes.io/role/elb": "1"},
                opts=opts,
            )
            aws.ec2.RouteTableAssociation(
                f"{name}-public-{zone_id}-rt", subnet_id=public.id, route_table_id=public_rt.id, opts=opts
            )
            public_subnets.append(public)
        eip = aws.ec2.Eip(f"{name}-nat-ip", domain="vpc", opts=opts)
        nat = aws.ec2.NatGateway(f"{name}-nat", allocation_id=eip.id, subnet_id=public_subnets[0].id, opts=opts)
        private_rt = aws.ec2.RouteTable(
            f"{name}-private-rt",
            vpc_id=vpc.id,
            routes=[aws.ec2.RouteTableRouteArgs(cidr_block="0.0.0.0/0", nat_gateway_id=nat.id)],
            opts=opts,
        )
        for zone_id, cidr in zip(region.zone_ids, plan.private, strict=True):
            private = aws.ec2.Subnet(
                f"{name}-private-{zone_id}",
                vpc_id=vpc.id,
                availability_zone_id=zone_id,
                cidr_block=str(cidr),
                tags={"kubernetes.io/role/internal-elb": "1"},
                opts=opts,
            )
            aws.ec2.RouteTableAssociation(
                f"{name}-private-{zone_id}-rt", subnet_id=private.id, route_table_id=private_rt.id, opts=opts
            )
            private_subnets.append(private)
        for zone_id, cidr in zip(region.zone_ids, plan.endpoints, strict=True):
            endpoint_subnets.append(
                aws.ec2.Subnet(
                    f"{name}-endpoints-{zone_id}",
                    vpc_id=vpc.id,
                    availability_zone_id=zone_id,
                    cidr_block=str(cidr),
                    tags={"platform:subnet": "endpoints"},
                    opts=opts,
                )
            )
        self._endpoints(name, region, vpc, private_rt, endpoint_subnets, opts)
        self.private_subnets = private_subnets
        return private_subnets, public_subnets

    def _endpoints(
        self,
        name: str,
        region: Region,
        vpc: aws.ec2.Vpc,
        private_rt: aws.ec2.RouteTable,
        subnets: list[aws.ec2.Subnet],
        opts: pulumi.ResourceOptions,
    ) -> None:
        """AWS APIs inside the VPC: tenants reach S3, KMS and STS without the NAT, and network policy can name them."""
        aws.ec2.VpcEndpoint(
            f"{name}-s3-gateway",
            vpc_id=vpc.id,
            service_name=f"com.amazonaws.{region.aws_region}.s3",
            vpc_endpoint_type="Gateway",
            route_table_ids=[private_rt.id],
            opts=opts,
        )
        https_in = aws.ec2.SecurityGroup(
            f"{name}-endpoints-sg",
            description="HTTPS from the VPC to its interface endpoints",
            vpc_id=vpc.id,
            ingress=[
                aws.ec2.SecurityGroupIngressArgs(
                    protocol="tcp", from_port=443, to_port=443, cidr_blocks=[str(region.cidr)]
                )
            ],
            opts=opts,
        )
        for service in INTERFACE_ENDPOINT_SERVICES:
            aws.ec2.VpcEndpoint(
                f"{name}-{service}-endpoint",
                vpc_id=vpc.id,
                service_name=f"com.amazonaws.{region.aws_region}.{service}",
                vpc_endpoint_type="Interface",
                subnet_ids=[s.id for s in subnets],
                security_group_ids=[https_in.id],
                private_dns_enabled=True,
                # S3 has a gateway endpoint too: answer the VPC's own lookups with the interface endpoint's addresses,
                # the only S3 addresses a tenant's NetworkPolicy lets its pods reach.
                dns_options=(
                    aws.ec2.VpcEndpointDnsOptionsArgs(private_dns_only_for_inbound_resolver_endpoint=False)
                    if service == "s3"
                    else None
                ),
                opts=opts,
            )

    def _cluster(
        self,
        name: str,
        base_name: str,
        args: RegionalDeploymentArgs,
        key: aws.kms.Key,
        private_subnets: list[aws.ec2.Subnet],
        public_subnets: list[aws.ec2.Subnet],
        opts: pulumi.ResourceOptions,
    ) -> aws.eks.Cluster:
        cluster_role = _service_role(f"{name}-cluster-role", "eks.amazonaws.com", CLUSTER_POLICIES, opts)
        cluster = aws.eks.Cluster(
            f"{name}-cluster",
            name=base_name,
            version=args.kubernetes_version,
            role_arn=cluster_role.arn,
            vpc_config=aws.eks.ClusterVpcConfigArgs(
                subnet_ids=[s.id for s in private_subnets + public_subnets],
                endpoint_private_access=True,
                endpoint_public_access=True,
            ),
            access_config=aws.eks.ClusterAccessConfigArgs(authentication_mode="API"),
            encryption_config=aws.eks.ClusterEncryptionConfigArgs(
                provider=aws.eks.ClusterEncryptionConfigProviderArgs(key_arn=key.arn), resources=["secrets"]
            ),
            enabled_cluster_log_types=["api", "audit", "authenticator"],
            opts=opts,
        )
        node_role = _service_role(f"{name}-node-role", "ec2.amazonaws.com", NODE_POLICIES, opts)
        self.node_group = aws.eks.NodeGroup(
            f"{name}-nodes",
            cluster_name=cluster.name,
            node_group_name="general",
            node_role_arn=node_role.arn,
            subnet_ids=[s.id for s in private_subnets],
            instance_types=["m6i.xlarge"],
            scaling_config=aws.eks.NodeGroupScalingConfigArgs(desired_size=3, min_size=3, max_size=12),
            update_config=aws.eks.NodeGroupUpdateConfigArgs(max_unavailable=1),
            opts=opts,
        )
        # Partner workloads get their AWS permissions through EKS Pod Identity.
        self.pod_identity_agent = aws.eks.Addon(
            f"{name}-pod-identity", cluster_name=cluster.name, addon_name="eks-pod-identity-agent", opts=opts
        )
        aws.eks.Addon(
            f"{name}-vpc-cni",
            cluster_name=cluster.name,
            addon_name="vpc-cni",
            configuration_values=json.dumps(VPC_CNI_CONFIGURATION),
            # EKS installs the CNI itself; the add-on takes it over with this configuration.
            resolve_conflicts_on_create="OVERWRITE",
            resolve_conflicts_on_update="OVERWRITE",
            opts=opts,
        )
        return cluster

    def _redis(
        self, name: str, base_name: str, key: aws.kms.Key, cluster: aws.eks.Cluster, opts: pulumi.ResourceOptions
    ) -> tuple[pulumi.Output[str], pulumi.Output[str]]:
        """The region's Redis for the gateway's shared counters (gateway/plans.py says how Kong finds it)."""
        token = random.RandomPassword(
            f"{name}-kong-redis-token", length=64, special=False, opts=pulumi.ResourceOptions(parent=self)
        )
        subnets = aws.elasticache.SubnetGroup(
            f"{name}-kong-redis-subnets",
            name=f"{base_name}-kong-redis",
            description=f"Gateway Redis of {base_name} (private subnets)",
            subnet_ids=[s.id for s in self.private_subnets],
            opts=opts,
        )
        # Only the cluster's nodes (EKS's cluster security group, which managed node groups use) reach Redis.
        security_group = aws.ec2.SecurityGroup(
            f"{name}-kong-redis-sg",
            vpc_id=self.vpc.id,
            description="Gateway Redis: TLS from the EKS cluster only",
            ingress=[
                aws.ec2.SecurityGroupIngressArgs(
                    protocol="tcp",
                    from_port=REDIS_PORT,
                    to_port=REDIS_PORT,
                    security_groups=[cluster.vpc_config.cluster_security_group_id],
                    description="Kong data plane",
                )
            ],
            opts=opts,
        )
        redis = aws.elasticache.ReplicationGroup(
            f"{name}-kong-redis",
            replication_group_id=f"{base_name}-kong"[:40],
            description=f"Gateway rate-limit counters of {base_name}",
            engine="redis",
            engine_version="7.1",
            node_type="cache.t4g.small",
            num_cache_clusters=2,
            automatic_failover_enabled=True,
            multi_az_enabled=True,
            port=REDIS_PORT,
            subnet_group_name=subnets.name,
            security_group_ids=[security_group.id],
            transit_encryption_enabled=True,
            at_rest_encryption_enabled=True,
            kms_key_id=key.arn,
            auth_token=secret(token.result),
            apply_immediately=True,
            opts=opts,
        )
        return redis.primary_endpoint_address, secret(token.result)

    def _kong_data_plane(
        self,
        name: str,
        args: RegionalDeploymentArgs,
        namespace: k8s.core.v1.Namespace,
        redis_endpoint: pulumi.Input[str],
        redis_token: pulumi.Input[str],
        opts: pulumi.ResourceOptions,
    ) -> k8s.core.v1.Service:
        cert = k8s.core.v1.Secret(
            f"{name}-kong-cluster-cert",
            metadata=k8s.meta.v1.ObjectMetaArgs(name="kong-cluster-cert", namespace=namespace.metadata.name),
            type="kubernetes.io/tls",
            string_data={"tls.crt": args.kong_cluster_cert, "tls.key": pulumi.Output.secret(args.kong_cluster_key)},
            opts=opts,
        )
        # The same in-cluster name in every region, aliasing this region's Redis: the one global plugin config
        # names it, each data plane resolves it to its own region.
        k8s.core.v1.Service(
            f"{name}-kong-redis",
            metadata=k8s.meta.v1.ObjectMetaArgs(name=REDIS_SERVICE, namespace=REDIS_NAMESPACE),
            spec=k8s.core.v1.ServiceSpecArgs(type="ExternalName", external_name=redis_endpoint),
            opts=pulumi.ResourceOptions.merge(opts, pulumi.ResourceOptions(depends_on=[namespace])),
        )
        redis_auth = k8s.core.v1.Secret(
            f"{name}-kong-redis-auth",
            metadata=k8s.meta.v1.ObjectMetaArgs(name="kong-redis-auth", namespace=namespace.metadata.name),
            type="Opaque",
            string_data={"token": redis_token},
            opts=opts,
        )
        custom_env: dict[str, object] = {
            REDIS_AUTH_ENV.replace("-", "_"): {
                "valueFrom": {"secretKeyRef": {"name": redis_auth.metadata.name, "key": "token"}}
            }
        }
        if args.meter_kong_token:
            # The whole Authorization header http-log sends to the meter, for {vault://env/meter-kong-authorization}
            # (gateway/vault.py): the token is in this Secret only, never in Kong's configuration.
            meter_auth = k8s.core.v1.Secret(
                f"{name}-kong-meter-auth",
                metadata=k8s.meta.v1.ObjectMetaArgs(name="kong-meter-auth", namespace=namespace.metadata.name),
                type="Opaque",
                string_data={"authorization": secret(pulumi.Output.concat("Bearer ", args.meter_kong_token))},
                opts=opts,
            )
            custom_env[env_variable(METER_AUTHORIZATION)] = {
                "valueFrom": {"secretKeyRef": {"name": meter_auth.metadata.name, "key": "authorization"}}
            }
        release = k8s.helm.v3.Release(
            f"{name}-kong-data-plane",
            name="kong-dp",
            chart="kong",
            version=KONG_CHART_VERSION,
            repository_opts=k8s.helm.v3.RepositoryOptsArgs(repo="https://charts.konghq.com"),
            namespace=namespace.metadata.name,
            values={
                "image": {"repository": "kong", "tag": KONG_IMAGE_TAG},
                "secretVolumes": [cert.metadata.name],
                "admin": {"enabled": False},
                "env": {
                    "role": "data_plane",
                    "database": "off",
                    "cluster_mtls": "shared",
                    "cluster_control_plane": args.kong_cluster_endpoint,
                    "cluster_telemetry_endpoint": args.kong_telemetry_endpoint,
                    "cluster_cert": "/etc/secrets/kong-cluster-cert/tls.crt",
                    "cluster_cert_key": "/etc/secrets/kong-cluster-cert/tls.key",
                    "lua_ssl_trusted_certificate": "system",
                },
                # Not KONG_-prefixed (customEnv): Kong's env vault reads them for {vault://env/platform-redis-auth}
                # and {vault://env/meter-kong-authorization}.
                "customEnv": custom_env,
                # The public load balancer is the Service below, whose name the region exports for DNS.
                "proxy": {"type": "ClusterIP"},
                "ingressController": {"enabled": False},
                "replicaCount": 3,
                "podDisruptionBudget": {"enabled": True, "maxUnavailable": 1},
            },
            opts=pulumi.ResourceOptions.merge(opts, self.on_nodes),
        )
        return k8s.core.v1.Service(
            f"{name}-gateway-lb",
            metadata=k8s.meta.v1.ObjectMetaArgs(
                name="kong-gateway",
                namespace=namespace.metadata.name,
                annotations={
                    "service.beta.kubernetes.io/aws-load-balancer-type": "nlb",
                    "service.beta.kubernetes.io/aws-load-balancer-scheme": "internet-facing",
                },
            ),
            spec=k8s.core.v1.ServiceSpecArgs(
                type="LoadBalancer",
                selector=GATEWAY_POD_LABELS,
                ports=[
                    k8s.core.v1.ServicePortArgs(name="https", port=443, target_port=8443, protocol="TCP"),
                    k8s.core.v1.ServicePortArgs(name="http", port=80, target_port=8000, protocol="TCP"),
                ],
            ),
            opts=pulumi.ResourceOptions.merge(opts, pulumi.ResourceOptions(depends_on=[release])),
        )

    def _cert_manager(
        self,
        name: str,
        base_name: str,
        args: RegionalDeploymentArgs,
        cluster: aws.eks.Cluster,
        aws_opts: pulumi.ResourceOptions,
        k8s_opts: pulumi.ResourceOptions,
    ) -> None:
        """cert-manager with one ClusterIssuer: ACME DNS-01 in the platform's Route 53 zone (gateway/tls.py)."""
        namespace = k8s.core.v1.Namespace(
            f"{name}-cert-manager-ns", metadata=k8s.meta.v1.ObjectMetaArgs(name="cert-manager"), opts=k8s_opts
        )
        role = aws.iam.Role(
            f"{name}-cert-manager-role",
            description="cert-manager: DNS-01 answers in the platform zone",
            assume_role_policy=POD_IDENTITY_TRUST_POLICY,
            opts=aws_opts,
        )
        aws.iam.RolePolicy(
            f"{name}-cert-manager-dns",
            role=role.name,
            policy=pulumi.Output.json_dumps(
                {
                    "Version": "2012-10-17",
                    "Statement": [
                        {"Effect": "Allow", "Action": "route53:GetChange", "Resource": "arn:aws:route53:::change/*"},
                        {
                            "Effect": "Allow",
                            "Action": "route53:ListResourceRecordSets",
                            "Resource": pulumi.Output.concat("arn:aws:route53:::hostedzone/", args.dns_zone_id),
                        },
                        {
                            "Effect": "Allow",
                            "Action": "route53:ChangeResourceRecordSets",
                            "Resource": pulumi.Output.concat("arn:aws:route53:::hostedzone/", args.dns_zone_id),
                            "Condition": ACME_RECORDS_ONLY,
                        },
                        {"Effect": "Allow", "Action": "route53:ListHostedZonesByName", "Resource": "*"},
                    ],
                }
            ),
            opts=aws_opts,
        )
        identity = aws.eks.PodIdentityAssociation(
            f"{name}-cert-manager-identity",
            cluster_name=cluster.name,
            namespace="cert-manager",
            service_account="cert-manager",
            role_arn=role.arn,
            opts=aws_opts,
        )
        release = k8s.helm.v3.Release(
            f"{name}-cert-manager",
            name="cert-manager",
            chart="cert-manager",
            version=CERT_MANAGER_CHART_VERSION,
            repository_opts=k8s.helm.v3.RepositoryOptsArgs(repo="https://charts.jetstack.io"),
            namespace=namespace.metadata.name,
            values={"crds": {"enabled": True}, "serviceAccount": {"name": "cert-manager"}},
            # Pod Identity is injected only when a pod is admitted: the association (and the agent that serves its
            # credentials) must exist before cert-manager's pods start, or they get no AWS credentials and every
            # DNS-01 challenge fails.
            opts=pulumi.ResourceOptions.merge(
                k8s_opts,
                pulumi.ResourceOptions(depends_on=[self.node_group, identity, self.pod_identity_agent]),
            ),
        )
        self.acme_issuer = k8s.apiextensions.CustomResource(
            f"{name}-acme-issuer",
            api_version="cert-manager.io/v1",
            kind="ClusterIssuer",
            metadata=k8s.meta.v1.ObjectMetaArgs(name=ACME_ISSUER),
            spec={
                "acme": {
                    "server": ACME_SERVER,
                    "email": args.acme_email,
                    "privateKeySecretRef": {"name": f"{ACME_ISSUER}-account"},
                    "solvers": [
                        {
                            "dns01": {
                                # Partner domains delegate _acme-challenge to a name in the platform zone (CNAME).
                                "cnameStrategy": "Follow",
                                "route53": {"region": "us-east-1", "hostedZoneID": args.dns_zone_id},
                            }
                        }
                    ],
                }
            },
            opts=pulumi.ResourceOptions.merge(k8s_opts, pulumi.ResourceOptions(depends_on=[release])),
        )


def _load_balancer_hostname(status: object) -> str:
    """The NLB's DNS name from a LoadBalancer Service's status ('' until AWS has assigned it)."""
    ingress = (getattr(status, "load_balancer", None) and status.load_balancer.ingress) or []  # type: ignore[attr-defined]
    return (ingress[0].hostname or "") if ingress else ""


def _service_role(name: str, service: str, managed: tuple[str, ...], opts: pulumi.ResourceOptions) -> aws.iam.Role:
    role = aws.iam.Role(
        name,
        assume_role_policy=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [{"Effect": "Allow", "Principal": {"Service": service}, "Action": "sts:AssumeRole"}],
            }
        ),
        opts=opts,
    )
    for policy in managed:
        aws.iam.RolePolicyAttachment(
            f"{name}-{policy.lower().replace('_', '-')}",
            role=role.name,
            policy_arn=f"arn:aws:iam::aws:policy/{policy}",
            opts=opts,
        )
    return role


def _kubeconfig(cluster_name: str, endpoint: str, ca_data: str, aws_region: str) -> str:
    """A kubeconfig that authenticates with `aws eks get-token` (no long-lived credential in state)."""
    return json.dumps(
        {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [
                {"name": cluster_name, "cluster": {"server": endpoint, "certificate-authority-data": ca_data}}
            ],
            "contexts": [{"name": cluster_name, "context": {"cluster": cluster_name, "user": cluster_name}}],
            "current-context": cluster_name,
            "users": [
                {
                    "name": cluster_name,
                    "user": {
                        "exec": {
                            "apiVersion": "client.authentication.k8s.io/v1beta1",
                            "command": "aws",
                            "args": ["eks", "get-token", "--cluster-name", cluster_name, "--region", aws_region],
                        }
                    },
                }
            ],
        }
    )
