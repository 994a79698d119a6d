"""The region's runtime services, all from the platform services image: the webhooks service, the usage meter (and
its public host for Twilio's callbacks), the monthly payouts job; and the voice endpoint the partners' numbers call."""

from __future__ import annotations

import json
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws
import pulumi_kong as kong
import pulumi_kubernetes as k8s

from components.certificate_sync import KongCertificateSync
from components.gateway_certificates import bind_certificate
from components.pod_identity import POD_IDENTITY_TRUST_POLICY
from components.regional_deployment.args import RegionalDeploymentArgs
from components.regional_deployment.cluster import PLATFORM_NAMESPACE, RegionCluster
from components.regional_deployment.gateway import KONG_DATA_PLANE_LABELS, load_balancer_hostname
from components.regional_deployment.storage import RegionStorage
from components.regional_deployment.warehouse import RegionWarehouse, warehouse_user
from components.runtime_job import RuntimeJob, RuntimeJobArgs
from components.runtime_service import SPOOL_MOUNT, RuntimeService, RuntimeServiceArgs
from components.voice_endpoint import VoiceEndpoint, VoiceEndpointArgs
from components.webhooks_dispatcher import WebhooksDispatcher, WebhooksDispatcherArgs
from foundation.naming import TWILIO_STATUS_CALLBACK_ROUTE
from regions.network import address_layout

METER_PORT = 8787
STATEMENTS_PREFIX = "statements"
"""Key prefix of the payout statements in the region's statements bucket (the payouts role's only S3 prefix)."""

ProducerEnv = tuple[dict[str, pulumi.Input[str]], dict[str, pulumi.Input[str]]]
"""(env, secret env) that point an event producer at the region's webhooks service (both empty: none)."""


@dataclass(frozen=True)
class RegionServices:
    """Builds the region's services from the parts they run on; every resource's parent is the deployment."""

    parent: pulumi.Resource
    """The RegionalDeployment."""
    name: str
    """Its name: the prefix of every resource name."""
    args: RegionalDeploymentArgs
    """Its arguments."""
    provider: aws.Provider
    """The region's AWS provider."""
    storage: RegionStorage
    """The data key and buckets."""
    cluster: RegionCluster
    """The cluster, its providers and the platform namespace."""
    gateway: k8s.core.v1.Service
    """The gateway's load balancer (public hosts point at it)."""
    acme_issuer: k8s.apiextensions.CustomResource
    """The ClusterIssuer the services' certificates come from."""
    warehouse: RegionWarehouse
    """The region's Snowflake objects and provider."""

    @property
    def aws_opts(self) -> pulumi.ResourceOptions:
        return pulumi.ResourceOptions(parent=self.parent, provider=self.provider)

    def build(self, cert_sync: KongCertificateSync | None) -> None:
        """The services that run from the image (when the region has one: `cert_sync` is its certificate sync),
        then the voice endpoint."""
        args = self.args
        if args.meter_image and cert_sync is not None:
            # The webhooks service first: the meter and the payouts job post their events to it (its in-cluster URL
            # and the producers' token in their environment); without it they run with event production off.
            producer_env: ProducerEnv = ({}, {})
            if args.webhooks_kong_token:
                webhooks = self._webhooks()
                producer_env = (
                    {"WEBHOOKS_URL": webhooks.cluster_url},
                    {"WEBHOOKS_EVENT_TOKEN": webhooks.event_token},
                )
            self._meter(producer_env)
            if args.meter_host:
                self._meter_route(cert_sync)
            self._payouts(producer_env)
        if args.voice_host and args.voice_upstream is not None:
            VoiceEndpoint(
                f"{self.name}-voice",
                VoiceEndpointArgs(
                    region_code=args.region.code,
                    host=args.voice_host,
                    upstream=args.voice_upstream,
                    dns_zone_id=args.dns_zone_id,
                    gateway_hostname=self.gateway.status.apply(load_balancer_hostname),
                    namespace=PLATFORM_NAMESPACE,
                    # The sync that copies its Secret into Kong runs from the services image, like the meter.
                    depends_on=(self.cluster.namespace, self.acme_issuer, *([cert_sync] if cert_sync else [])),
                ),
                opts=pulumi.ResourceOptions(
                    parent=self.parent, providers={"aws": self.provider, "kubernetes": self.cluster.k8s_provider}
                ),
            )

    def _webhooks(self) -> WebhooksDispatcher:
        """The webhooks service (components/webhooks_dispatcher.py): deliveries of this region's events."""
        args, cluster = self.args, self.cluster
        return WebhooksDispatcher(
            f"{self.name}-webhooks",
            WebhooksDispatcherArgs(
                region_code=args.region.code,
                namespace=cluster.namespace.metadata.name,
                image=args.meter_image,
                kms_key_arn=self.storage.key.arn,
                cluster_name=cluster.cluster.name,
                kong_token=args.webhooks_kong_token,
                gateway_labels=KONG_DATA_PLANE_LABELS,
                producer_labels=({"app": "meter"}, {"app": "payouts"}),
                vpc_cidr=str(args.region.cidr),
                endpoint_cidrs=tuple(str(c) for c in address_layout(args.region).endpoints),
                platform_domains=(args.dns_zone_name,) if args.dns_zone_name else (),
                storage_class=cluster.addons.storage_class_name,
                runs_after=(cluster.node_group, cluster.pod_identity_agent, *cluster.addons.storage),
            ),
            opts=pulumi.ResourceOptions(parent=self.parent, providers=[self.provider, cluster.k8s_provider]),
        )

    def _meter(self, producer_env: ProducerEnv) -> None:
        """The usage meter: its own Snowflake service user holding only the loader role, and the RuntimeService.
        `producer_env`: (env, secret env) that point it at the region's webhooks service (empty: none)."""
        args, name, cluster = self.args, self.name, self.cluster
        key, warehouse_url = warehouse_user(
            self.parent, name, "meter", "The usage meter", self.warehouse.warehouse.loader_role, args, self.warehouse
        )
        RuntimeService(
            f"{name}-meter",
            RuntimeServiceArgs(
                service="meter",
                namespace=cluster.namespace.metadata.name,
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
                storage_class=cluster.addons.storage_class_name,
            ),
            # Its claims bind only once the CSI driver and the class exist; its HPA scales on metrics-server's data.
            opts=pulumi.ResourceOptions.merge(
                cluster.k8s_opts,
                pulumi.ResourceOptions(
                    depends_on=[cluster.node_group, *cluster.addons.storage, *cluster.addons.metrics]
                ),
            ),
        )

    def _meter_route(self, cert_sync: KongCertificateSync) -> None:
        """The meter's public host: a DNS name to this region's gateway, a certificate bound to Kong for it (SNI),
        and the one route that reaches the meter from outside (Twilio's status callbacks), created after the
        certificate so Kong never answers the host with its default certificate."""
        args, name = self.args, self.name
        host = args.meter_host
        aws.route53.Record(
            f"{name}-dns-meter",
            zone_id=args.dns_zone_id,
            name=host,
            type="CNAME",
            ttl=300,
            records=[self.gateway.status.apply(load_balancer_hostname)],
            opts=self.aws_opts,
        )
        binding = bind_certificate(
            name,
            "meter",
            [host],
            PLATFORM_NAMESPACE,
            labels={"app.kubernetes.io/name": "meter"},
            parent=self.parent,
            # The Certificate kind exists once cert-manager's release has installed its CRDs; the issuer after it.
            depends_on=[self.cluster.namespace, self.acme_issuer, cert_sync],
            k8s_provider=self.cluster.k8s_provider,
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
            opts=pulumi.ResourceOptions(parent=self.parent, depends_on=[binding]),
        )

    def _payouts(self, producer_env: ProducerEnv) -> None:
        """The monthly payouts job: reads this region's warehouse, pays this region's partners (usage never leaves
        the region), writes statements to this region's statements bucket."""
        args, name, cluster, key = self.args, self.name, self.cluster, self.storage.key
        # EKS Pod Identity (the agent add-on is installed with the cluster): the job's ServiceAccount alone may read
        # and write statements, and only under statements/; no AWS key lives in the cluster.
        role = aws.iam.Role(
            f"{name}-payouts-role",
            assume_role_policy=POD_IDENTITY_TRUST_POLICY,
            opts=self.aws_opts,
        )
        bucket_arn = f"arn:aws:s3:::{self.storage.bucket_names['statements']}"  # the name is fixed at plan time
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
            opts=self.aws_opts,
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
            opts=self.aws_opts,
        )
        identity = aws.eks.PodIdentityAssociation(
            f"{name}-payouts-identity",
            cluster_name=cluster.cluster.name,
            namespace=PLATFORM_NAMESPACE,
            service_account="payouts",
            role_arn=role.arn,
            opts=self.aws_opts,
        )
        user_key, warehouse_url = warehouse_user(
            self.parent, name, "payouts", "The payouts job", self.warehouse.warehouse.payouts_role, args, self.warehouse
        )
        RuntimeJob(
            f"{name}-payouts",
            RuntimeJobArgs(
                job="payouts",
                namespace=cluster.namespace.metadata.name,
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
                        "s3://", self.storage.buckets["statements"].bucket.bucket, f"/{STATEMENTS_PREFIX}"
                    ),
                    "PAYOUTS_KMS_KEY_ID": key.arn,
                    "AWS_REGION": args.region.aws_region,
                },
            ),
            # Pod Identity is injected at pod admission: the association must exist before the first pod.
            opts=pulumi.ResourceOptions.merge(
                cluster.k8s_opts,
                pulumi.ResourceOptions(depends_on=[cluster.node_group, identity, cluster.pod_identity_agent]),
            ),
        )
