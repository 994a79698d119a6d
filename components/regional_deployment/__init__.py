"""RegionalDeployment: one of the 15 regions - KMS, data buckets, network, EKS, Kong data plane, Snowflake.

The package holds the region's parts by concern, each a plain builder module: `storage` (data key, buckets),
`network` (VPC, subnets, endpoints), `cluster` (EKS, node group, add-ons, platform namespace), `gateway` (Redis,
Kong data plane, load balancer), `certificates` (cert-manager, ACME issuer, certificate sync), `warehouse`
(Snowflake provider, warehouse objects, service users) and `services` (webhooks, meter, payouts, voice endpoint).

Why builders and not ComponentResources of their own: a resource's URN carries its parent chain. A component per
part would put every resource of the region under a new parent, so each URN would change and a real `pulumi up`
would delete and recreate the VPC, the EKS cluster and the data buckets (Pulumi has no aliases for them here). The
builders register every resource with `parent=` this deployment, under the same names and in the same order as
one class did before, so the plans and the stacks' state stay as they are.
"""

from __future__ import annotations

import pulumi
import pulumi_aws as aws

from components.country_launch import CountryLaunch, CountryLaunchArgs
from components.outputs import RegionOutput
from components.regional_deployment.args import RegionalDeploymentArgs
from components.regional_deployment.certificates import build_cert_manager, build_certificate_sync
from components.regional_deployment.cluster import build_cluster
from components.regional_deployment.gateway import build_gateway, load_balancer_hostname
from components.regional_deployment.network import build_network
from components.regional_deployment.services import RegionServices
from components.regional_deployment.storage import build_storage
from components.regional_deployment.warehouse import build_warehouse

__all__ = ["RegionalDeployment", "RegionalDeploymentArgs"]


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

        storage = build_storage(self, name, base_name, args, provider)
        network = build_network(name, region, aws_opts)
        cluster = build_cluster(self, name, base_name, args, storage.key, network, provider)
        gateway = build_gateway(self, name, base_name, args, storage.key, network, cluster, aws_opts)
        acme_issuer = build_cert_manager(name, args, cluster, aws_opts)
        for country in args.launched:
            CountryLaunch(
                f"{name}-country-{country.code.lower()}",
                CountryLaunchArgs(country=country, namespace=cluster.namespace.metadata.name),
                opts=cluster.k8s_opts,
            )
        warehouse = build_warehouse(self, name, args)
        cert_sync = build_certificate_sync(name, args, cluster) if args.meter_image else None
        RegionServices(self, name, args, provider, storage, cluster, gateway, acme_issuer, warehouse).build(cert_sync)

        self.outputs = {
            RegionOutput.AWS_REGION: region.aws_region,
            RegionOutput.KMS_KEY_ARN: storage.key.arn,
            RegionOutput.KMS_KEY_ALIAS: storage.key_alias,
            RegionOutput.RECORDINGS_BUCKET: storage.buckets["recordings"].bucket.bucket,
            RegionOutput.TRANSCRIPTS_BUCKET: storage.buckets["transcripts"].bucket.bucket,
            RegionOutput.STATEMENTS_BUCKET: storage.buckets["statements"].bucket.bucket,
            RegionOutput.RETENTION_DAYS: args.retention_days,
            RegionOutput.LAUNCHED_COUNTRIES: [c.code for c in args.launched],
            RegionOutput.CLUSTER_NAME: cluster.cluster.name,
            RegionOutput.KUBECONFIG: cluster.kubeconfig,
            RegionOutput.PLATFORM_NAMESPACE: cluster.namespace.metadata.name,
            RegionOutput.GATEWAY_HOSTNAME: gateway.status.apply(load_balancer_hostname),
            RegionOutput.SNOWFLAKE_DATABASE: warehouse.warehouse.database_name,
            RegionOutput.SNOWFLAKE_PARTNER_WAREHOUSE: warehouse.warehouse.partner_warehouse_name,
            RegionOutput.SNOWFLAKE_ACCOUNT: args.snowflake_account,
            RegionOutput.METER_PUBLIC_URL: args.meter_public_url,
        }
        self.register_outputs(self.outputs)
