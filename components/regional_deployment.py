"""RegionalDeployment: one of the 15 regions - KMS, data buckets, network, EKS, Kong data plane, Snowflake."""

from __future__ import annotations

import json
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws
import pulumi_kubernetes as k8s
import pulumi_snowflake as snowflake

from components.country_launch import CountryLaunch, CountryLaunchArgs
from components.outputs import secret
from components.secure_bucket import SecureBucket, SecureBucketArgs
from components.snowflake_preview import features_for
from components.snowflake_warehouse import SNOWFLAKE_TYPES, SnowflakeWarehouse, SnowflakeWarehouseArgs
from regions.catalog import Country, Region
from regions.network import INTERFACE_ENDPOINT_SERVICES, address_plan

PLATFORM_NAMESPACE = "platform"
KONG_CHART_VERSION = "2.52.0"
CLUSTER_POLICIES = ("AmazonEKSClusterPolicy",)
NODE_POLICIES = ("AmazonEKSWorkerNodePolicy", "AmazonEKS_CNI_Policy", "AmazonEC2ContainerRegistryReadOnly")
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
    snowflake_organization: str
    """Snowflake organization name."""
    snowflake_account: pulumi.Input[str]
    """The region's Snowflake account name (global stack output)."""
    snowflake_private_key: pulumi.Input[str]
    """PEM key of the account's admin service user (secret global stack output)."""
    snowflake_monthly_credits: int = 200
    """Credit quota of the region's resource monitor."""


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
                    tags={"platform:data": purpose},
                ),
                opts=aws_opts,
            )
            for purpose in ("recordings", "transcripts")
        }

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
        namespace = k8s.core.v1.Namespace(
            f"{name}-platform-ns",
            metadata=k8s.meta.v1.ObjectMetaArgs(
                name=PLATFORM_NAMESPACE,
                labels={"app.kubernetes.io/part-of": "platform", "pod-security.kubernetes.io/enforce": "restricted"},
            ),
            opts=k8s_opts,
        )
        self._kong_data_plane(name, args, namespace, k8s_opts)
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

        self.outputs = {
            "aws_region": region.aws_region,
            "kms_key_arn": key.arn,
            "kms_key_alias": self.key_alias,
            "recordings_bucket": self.buckets["recordings"].bucket.bucket,
            "transcripts_bucket": self.buckets["transcripts"].bucket.bucket,
            "retention_days": args.retention_days,
            "launched_countries": [c.code for c in args.launched],
            "cluster_name": cluster.name,
            "kubeconfig": kubeconfig,
            "platform_namespace": namespace.metadata.name,
            "snowflake_database": warehouse.database_name,
            "snowflake_partner_warehouse": warehouse.partner_warehouse_name,
            "snowflake_account": args.snowflake_account,
        }
        self.register_outputs(self.outputs)

    def _network(
        self, name: str, region: Region, opts: pulumi.ResourceOptions
    ) -> tuple[list[aws.ec2.Subnet], list[aws.ec2.Subnet]]:
        vpc = aws.ec2.Vpc(
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
        aws.eks.NodeGroup(
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
        aws.eks.Addon(f"{name}-pod-identity", cluster_name=cluster.name, addon_name="eks-pod-identity-agent", opts=opts)
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

    def _kong_data_plane(
        self, name: str, args: RegionalDeploymentArgs, namespace: k8s.core.v1.Namespace, opts: pulumi.ResourceOptions
    ) -> None:
        cert = k8s.core.v1.Secret(
            f"{name}-kong-cluster-cert",
            metadata=k8s.meta.v1.ObjectMetaArgs(name="kong-cluster-cert", namespace=namespace.metadata.name),
            type="kubernetes.io/tls",
            string_data={"tls.crt": args.kong_cluster_cert, "tls.key": pulumi.Output.secret(args.kong_cluster_key)},
            opts=opts,
        )
        k8s.helm.v3.Release(
            f"{name}-kong-data-plane",
            name="kong-dp",
            chart="kong",
            version=KONG_CHART_VERSION,
            repository_opts=k8s.helm.v3.RepositoryOptsArgs(repo="https://charts.konghq.com"),
            namespace=namespace.metadata.name,
            values={
                "image": {"repository": "kong", "tag": "3.9"},
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
                "proxy": {
                    "type": "LoadBalancer",
                    "annotations": {"service.beta.kubernetes.io/aws-load-balancer-type": "nlb"},
                },
                "ingressController": {"enabled": False},
                "replicaCount": 3,
                "podDisruptionBudget": {"enabled": True, "maxUnavailable": 1},
            },
            opts=opts,
        )


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
