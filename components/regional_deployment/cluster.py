"""The region's Kubernetes: the EKS cluster and its managed node group, the add-ons every workload relies on
(Pod Identity, the VPC CNI with network policy, storage, metrics), the provider that reaches the cluster and the
platform namespace the region's own workloads run in."""

from __future__ import annotations

import json
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws
import pulumi_kubernetes as k8s

from components.cluster_addons import ClusterAddons, ClusterAddonsArgs
from components.outputs import secret
from components.regional_deployment.args import RegionalDeploymentArgs
from components.regional_deployment.network import RegionNetwork

PLATFORM_NAMESPACE = "platform"
CLUSTER_POLICIES = ("AmazonEKSClusterPolicy",)
NODE_POLICIES = ("AmazonEKSWorkerNodePolicy", "AmazonEKS_CNI_Policy", "AmazonEC2ContainerRegistryReadOnly")
VPC_CNI_CONFIGURATION = {"enableNetworkPolicy": "true"}
"""The VPC CNI leaves NetworkPolicy objects unenforced unless its add-on turns the network policy agent on.
Source: AWS EKS user guide, "Restrict Pod network traffic with Kubernetes network policies",
https://docs.aws.amazon.com/eks/latest/userguide/cni-network-policy.html (read 2026-11-29)."""


@dataclass(frozen=True)
class RegionCluster:
    cluster: aws.eks.Cluster
    """The EKS cluster."""
    node_group: aws.eks.NodeGroup
    """Its managed node group: pods need nodes."""
    pod_identity_agent: aws.eks.Addon
    """The EKS Pod Identity agent add-on: a pod gets its role's credentials only once the agent runs."""
    kubeconfig: pulumi.Output[str]
    """Kubeconfig of the cluster (secret), exported for the partner and integration stacks."""
    k8s_provider: k8s.Provider
    """The Kubernetes provider of the cluster."""
    k8s_opts: pulumi.ResourceOptions
    """parent (the deployment) and that provider: what every Kubernetes object of the region is created with."""
    addons: ClusterAddons
    """Storage (the encrypted default class) and metrics-server."""
    on_nodes: pulumi.ResourceOptions
    """depends_on the node group: every Helm release and workload of the region is created after it."""
    namespace: k8s.core.v1.Namespace
    """The platform namespace (Kong data plane, meter, payouts, webhooks, certificate sync)."""


def build_cluster(
    parent: pulumi.Resource,
    name: str,
    base_name: str,
    args: RegionalDeploymentArgs,
    key: aws.kms.Key,
    network: RegionNetwork,
    provider: aws.Provider,
) -> RegionCluster:
    region = args.region
    opts = pulumi.ResourceOptions(parent=parent, provider=provider)
    cluster_role = _service_role(f"{name}-cluster-role", "eks.amazonaws.com", CLUSTER_POLICIES, opts)
    cluster = aws.eks.Cluster(
        f"{name}-cluster",
        name=base_name,
        version=args.kubernetes_version,
        role_arn=cluster_role.arn,
        vpc_config=aws.eks.ClusterVpcConfigArgs(
            subnet_ids=[s.id for s in network.private_subnets + network.public_subnets],
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
    node_group = aws.eks.NodeGroup(
        f"{name}-nodes",
        cluster_name=cluster.name,
        node_group_name="general",
        node_role_arn=node_role.arn,
        subnet_ids=[s.id for s in network.private_subnets],
        instance_types=["m6i.xlarge"],
        scaling_config=aws.eks.NodeGroupScalingConfigArgs(desired_size=3, min_size=3, max_size=12),
        update_config=aws.eks.NodeGroupUpdateConfigArgs(max_unavailable=1),
        opts=opts,
    )
    # Partner workloads get their AWS permissions through EKS Pod Identity.
    pod_identity_agent = aws.eks.Addon(
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
    kubeconfig = secret(
        pulumi.Output.all(cluster.name, cluster.endpoint, cluster.certificate_authority.data).apply(
            lambda parts: _kubeconfig(parts[0], parts[1], parts[2], region.aws_region)
        )
    )
    k8s_provider = k8s.Provider(
        f"{name}-k8s",
        kubeconfig=kubeconfig,
        enable_server_side_apply=True,
        opts=pulumi.ResourceOptions(parent=parent),
    )
    k8s_opts = pulumi.ResourceOptions(parent=parent, provider=k8s_provider)
    addons = ClusterAddons(
        f"{name}-addons",
        ClusterAddonsArgs(
            cluster_name=cluster.name,
            node_group=node_group,
            pod_identity_agent=pod_identity_agent,
            kms_key_arn=key.arn,
            k8s_provider=k8s_provider,
        ),
        opts=pulumi.ResourceOptions(parent=parent, provider=provider),
    )
    # Pods need nodes: every Helm release and workload of the region is created after the node group.
    on_nodes = pulumi.ResourceOptions(depends_on=[node_group])
    namespace = k8s.core.v1.Namespace(
        f"{name}-platform-ns",
        metadata=k8s.meta.v1.ObjectMetaArgs(
            name=PLATFORM_NAMESPACE,
            labels={"app.kubernetes.io/part-of": "platform", "pod-security.kubernetes.io/enforce": "restricted"},
        ),
        opts=k8s_opts,
    )
    return RegionCluster(
        cluster=cluster,
        node_group=node_group,
        pod_identity_agent=pod_identity_agent,
        kubeconfig=kubeconfig,
        k8s_provider=k8s_provider,
        k8s_opts=k8s_opts,
        addons=addons,
        on_nodes=on_nodes,
        namespace=namespace,
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
