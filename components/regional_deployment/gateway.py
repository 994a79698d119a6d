"""The region's gateway data plane: the Kong data plane (Helm release) that joins the global control plane, the
region's Redis for the gateway's shared rate-limit counters, and the public load balancer in front of Kong."""

from __future__ import annotations

import pulumi
import pulumi_aws as aws
import pulumi_kubernetes as k8s
import pulumi_random as random

from components.outputs import secret
from components.regional_deployment.args import RegionalDeploymentArgs
from components.regional_deployment.cluster import RegionCluster
from components.regional_deployment.network import RegionNetwork
from gateway.kong_plugins import KONG_IMAGE_TAG
from gateway.redis import REDIS_AUTH_ENV, REDIS_NAMESPACE, REDIS_PORT, REDIS_SERVICE
from gateway.vault import METER_AUTHORIZATION, env_variable

KONG_DATA_PLANE_LABELS = {"app.kubernetes.io/instance": "kong-dp"}
"""Labels the Kong chart puts on the data-plane pods of the `kong-dp` release: the only callers of the meter."""
KONG_CHART_VERSION = "2.52.0"
GATEWAY_POD_LABELS = {"app.kubernetes.io/name": "kong", "app.kubernetes.io/instance": "kong-dp"}


def build_gateway(
    parent: pulumi.Resource,
    name: str,
    base_name: str,
    args: RegionalDeploymentArgs,
    key: aws.kms.Key,
    network: RegionNetwork,
    cluster: RegionCluster,
    aws_opts: pulumi.ResourceOptions,
) -> k8s.core.v1.Service:
    """Redis, then the data plane that counts in it; returns the gateway's LoadBalancer Service."""
    redis_endpoint, redis_token = _redis(parent, name, base_name, key, network, cluster.cluster, aws_opts)
    return _kong_data_plane(name, args, cluster, redis_endpoint, redis_token)


def load_balancer_hostname(status: object) -> str:
    """The NLB's DNS name from a LoadBalancer Service's status ('' until AWS has assigned it)."""
    ingress = (getattr(status, "load_balancer", None) and status.load_balancer.ingress) or []  # type: ignore[attr-defined]
    return (ingress[0].hostname or "") if ingress else ""


def _redis(
    parent: pulumi.Resource,
    name: str,
    base_name: str,
    key: aws.kms.Key,
    network: RegionNetwork,
    cluster: aws.eks.Cluster,
    opts: pulumi.ResourceOptions,
) -> tuple[pulumi.Output[str], pulumi.Output[str]]:
    """The region's Redis for the gateway's shared counters (gateway/rate_limits.py says how Kong finds it)."""
    token = random.RandomPassword(
        f"{name}-kong-redis-token", length=64, special=False, opts=pulumi.ResourceOptions(parent=parent)
    )
    subnets = aws.elasticache.SubnetGroup(
        f"{name}-kong-redis-subnets",
        name=f"{base_name}-kong-redis",
        description=f"Gateway Redis of {base_name} (private subnets)",
        subnet_ids=[s.id for s in network.private_subnets],
        opts=opts,
    )
    # Only the cluster's nodes (EKS's cluster security group, which managed node groups use) reach Redis.
    security_group = aws.ec2.SecurityGroup(
        f"{name}-kong-redis-sg",
        vpc_id=network.vpc.id,
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
    name: str,
    args: RegionalDeploymentArgs,
    cluster: RegionCluster,
    redis_endpoint: pulumi.Input[str],
    redis_token: pulumi.Input[str],
) -> k8s.core.v1.Service:
    namespace, opts = cluster.namespace, cluster.k8s_opts
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
        opts=pulumi.ResourceOptions.merge(opts, cluster.on_nodes),
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
