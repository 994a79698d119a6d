"""RegionalDeployment: one of the 15 regions - KMS, data buckets, network, EKS, Kong data plane, Snowflake."""

from __future__ import annotations

import ipaddress
import json
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws
import pulumi_kubernetes as k8s
import pulumi_snowflake as snowflake
import pulumi_tls as tls

from components.country_launch import CountryLaunch, CountryLaunchArgs
from components.outputs import secret
from components.runtime_job import RuntimeJob, RuntimeJobArgs
from components.runtime_service import SPOOL_MOUNT, RuntimeService, RuntimeServiceArgs
from components.secure_bucket import SecureBucket, SecureBucketArgs
from components.snowflake_organization import rsa_public_key_body
from components.snowflake_warehouse import SnowflakeWarehouse, SnowflakeWarehouseArgs
from regions.catalog import Country, Region

PLATFORM_NAMESPACE = "platform"
METER_PORT = 8787
KONG_DATA_PLANE_LABELS = {"app.kubernetes.io/instance": "kong-dp"}
"""Labels the Kong chart puts on the data-plane pods of the `kong-dp` release: the only callers of the meter."""
KONG_CHART_VERSION = "2.52.0"
CLUSTER_POLICIES = ("AmazonEKSClusterPolicy",)
NODE_POLICIES = ("AmazonEKSWorkerNodePolicy", "AmazonEKS_CNI_Policy", "AmazonEC2ContainerRegistryReadOnly")


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
    meter_image: str = ""
    """Image of the platform services (`services/Dockerfile`) the meter runs from; empty: no meter."""
    meter_public_url: pulumi.Input[str] = ""
    """https://meter.<region>.<zone>: the URL Twilio calls and signs."""
    meter_kong_token: pulumi.Input[str] = ""
    """Bearer token Kong's http-log plugin sends to the meter (secret global stack output)."""
    twilio_auth_token: pulumi.Input[str] = ""
    """Twilio auth token that signs status callbacks (secret stack config)."""
    snowflake_monthly_credits: int = 200
    """Credit quota of the region's resource monitor."""
    stripe_api_key: pulumi.Input[str] = ""
    """Stripe secret key the payouts job transfers with (secret stack config)."""
    payouts_schedule: str = "0 6 2 * *"
    """When the payouts job pays the month before (UTC): the 2nd, after late callbacks of the month's last day."""


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
            for purpose in ("recordings", "transcripts", "statements")
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
            self._meter(name, args, namespace, warehouse, k8s_opts, snowflake_provider)
            self._payouts(name, args, namespace, warehouse, key, cluster, aws_opts, k8s_opts, snowflake_provider)

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
            "snowflake_database": warehouse.database_name,
            "snowflake_partner_warehouse": warehouse.partner_warehouse_name,
            "snowflake_account": args.snowflake_account,
            "meter_public_url": args.meter_public_url,
        }
        self.register_outputs(self.outputs)

    def _meter(
        self,
        name: str,
        args: RegionalDeploymentArgs,
        namespace: k8s.core.v1.Namespace,
        warehouse: SnowflakeWarehouse,
        k8s_opts: pulumi.ResourceOptions,
        snowflake_provider: snowflake.Provider,
    ) -> None:
        """The usage meter: its own Snowflake service user holding only the loader role, and the RuntimeService."""
        sf_opts = pulumi.ResourceOptions(parent=self, provider=snowflake_provider)
        key = tls.PrivateKey(
            f"{name}-meter-key", algorithm="RSA", rsa_bits=4096, opts=pulumi.ResourceOptions(parent=self)
        )
        user = snowflake.ServiceUser(
            f"{name}-meter-user",
            name=f"{warehouse.database_name}_METER",
            comment=f"The usage meter of region {args.region.code}",
            default_role=warehouse.loader_role_name,
            default_warehouse=warehouse.load_warehouse_name,
            rsa_public_key=key.public_key_pem.apply(rsa_public_key_body),
            opts=sf_opts,
        )
        snowflake.GrantAccountRole(
            f"{name}-meter-user-role", role_name=warehouse.loader_role_name, user_name=user.name, opts=sf_opts
        )
        account = pulumi.Output.concat(args.snowflake_organization, "-", args.snowflake_account)
        warehouse_url = pulumi.Output.concat(
            "snowflake://",
            account,
            "/",
            warehouse.database_name,
            "?user=",
            user.name,
            "&role=",
            warehouse.loader_role_name,
            "&warehouse=",
            warehouse.load_warehouse_name,
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
                    "TWILIO_AUTH_TOKEN": args.twilio_auth_token,
                    "METER_KONG_TOKEN": args.meter_kong_token,
                    "SNOWFLAKE_PRIVATE_KEY": key.private_key_pem,
                    "METER_WAREHOUSE_URL": warehouse_url,
                    "METER_PUBLIC_URL": args.meter_public_url,
                },
                spool_size="10Gi",
            ),
            opts=k8s_opts,
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
    ) -> None:
        """The monthly payouts job: reads this region's warehouse, pays this region's partners (usage never leaves
        the region), writes statements to this region's statements bucket."""
        # EKS Pod Identity (the agent add-on is installed with the cluster): the job's ServiceAccount alone may read
        # and write statements, and only under statements/; no AWS key lives in the cluster.
        role = aws.iam.Role(
            f"{name}-payouts-role",
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
                            "Resource": f"{bucket_arn}/statements/*",
                        },
                        {"Effect": "Allow", "Action": ["s3:GetBucketVersioning"], "Resource": bucket_arn},
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
        aws.eks.PodIdentityAssociation(
            f"{name}-payouts-identity",
            cluster_name=cluster.name,
            namespace=PLATFORM_NAMESPACE,
            service_account="payouts",
            role_arn=role.arn,
            opts=aws_opts,
        )
        sf_opts = pulumi.ResourceOptions(parent=self, provider=snowflake_provider)
        user_key = tls.PrivateKey(
            f"{name}-payouts-key", algorithm="RSA", rsa_bits=4096, opts=pulumi.ResourceOptions(parent=self)
        )
        user = snowflake.ServiceUser(
            f"{name}-payouts-user",
            name=f"{warehouse.database_name}_PAYOUTS",
            comment=f"The payouts job of region {args.region.code}",
            default_role=warehouse.loader_role_name,
            default_warehouse=warehouse.load_warehouse_name,
            rsa_public_key=user_key.public_key_pem.apply(rsa_public_key_body),
            opts=sf_opts,
        )
        snowflake.GrantAccountRole(
            f"{name}-payouts-user-role", role_name=warehouse.loader_role_name, user_name=user.name, opts=sf_opts
        )
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
            warehouse.loader_role_name,
            "&warehouse=",
            warehouse.load_warehouse_name,
        )
        RuntimeJob(
            f"{name}-payouts",
            RuntimeJobArgs(
                job="payouts",
                namespace=namespace.metadata.name,
                image=args.meter_image,
                args=("payouts", "run", "--period", "previous", "--region", args.region.code),
                schedule=args.payouts_schedule,
                secret_env={
                    "STRIPE_API_KEY": args.stripe_api_key,
                    "SNOWFLAKE_PRIVATE_KEY": user_key.private_key_pem,
                    "PAYOUTS_WAREHOUSE_URL": warehouse_url,
                },
                env={
                    "PAYOUTS_STATEMENTS": pulumi.Output.concat(
                        "s3://", self.buckets["statements"].bucket.bucket, "/statements"
                    ),
                    "PAYOUTS_KMS_KEY_ID": key.arn,
                    "AWS_REGION": args.region.aws_region,
                },
            ),
            opts=k8s_opts,
        )

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
        # /16 → private /19s first, then public /24s from the top of the range.
        private_ranges = list(region.cidr.subnets(new_prefix=19))
        public_ranges = list(ipaddress.ip_network(private_ranges[-1]).subnets(new_prefix=24))
        igw = aws.ec2.InternetGateway(f"{name}-igw", vpc_id=vpc.id, opts=opts)
        public_rt = aws.ec2.RouteTable(
            f"{name}-public-rt",
            vpc_id=vpc.id,
            routes=[aws.ec2.RouteTableRouteArgs(cidr_block="0.0.0.0/0", gateway_id=igw.id)],
            opts=opts,
        )
        private_subnets, public_subnets = [], []
        for index, zone in enumerate(region.availability_zones):
            public = aws.ec2.Subnet(
                f"{name}-public-{zone[-1]}",
                vpc_id=vpc.id,
                availability_zone=zone,
                cidr_block=str(public_ranges[index]),
                map_public_ip_on_launch=False,
                tags={"kubernetes.io/role/elb": "1"},
                opts=opts,
            )
            aws.ec2.RouteTableAssociation(
                f"{name}-public-{zone[-1]}-rt", subnet_id=public.id, route_table_id=public_rt.id, opts=opts
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
        for index, zone in enumerate(region.availability_zones):
            private = aws.ec2.Subnet(
                f"{name}-private-{zone[-1]}",
                vpc_id=vpc.id,
                availability_zone=zone,
                cidr_block=str(private_ranges[index]),
                tags={"kubernetes.io/role/internal-elb": "1"},
                opts=opts,
            )
            aws.ec2.RouteTableAssociation(
                f"{name}-private-{zone[-1]}-rt", subnet_id=private.id, route_table_id=private_rt.id, opts=opts
            )
            private_subnets.append(private)
        return private_subnets, public_subnets

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
