"""ClusterAddons: what a region's EKS cluster needs before its workloads can run as planned - block storage (the EBS
CSI driver with its own Pod Identity role, and an encrypted default gp3 StorageClass) and resource metrics for the
HorizontalPodAutoscalers (metrics-server).

Why: an EKS cluster created on Kubernetes 1.30 or later has no default StorageClass and no EBS CSI driver, so a
PersistentVolumeClaim without a class stays Pending (AWS EKS user guide, "Store Kubernetes volumes with Amazon EBS",
https://docs.aws.amazon.com/eks/latest/userguide/ebs-csi.html, and the 1.30 release notes, "gp2 StorageClass is no
longer the default", https://docs.aws.amazon.com/eks/latest/userguide/kubernetes-versions-standard.html). Metrics
Server is not deployed by default either, and without it an HPA has no CPU metric and never scales (AWS EKS user
guide, "View resource usage with the Kubernetes Metrics Server",
https://docs.aws.amazon.com/eks/latest/userguide/metrics-server.html).

Both are EKS managed add-ons (`aws-ebs-csi-driver`, and the community add-on `metrics-server`): EKS installs the
version that matches the cluster and upgrades with it. No `addon_version` is pinned: EKS picks the default version
for the cluster's Kubernetes version (CreateAddon, `addonVersion` optional,
https://docs.aws.amazon.com/eks/latest/APIReference/API_CreateAddon.html). Both run pods, so both are created after
the node group: CreateAddon reports a Deployment with no node to run on as DEGRADED and the provider's create then
fails after its timeout.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws
import pulumi_kubernetes as k8s

from components.pod_identity import POD_IDENTITY_TRUST_POLICY

EBS_CSI_ADDON = "aws-ebs-csi-driver"
"""EKS add-on name of the Amazon EBS CSI driver (aws eks describe-addon-versions)."""
EBS_CSI_PROVISIONER = "ebs.csi.aws.com"
"""The driver's CSI name: a StorageClass's provisioner."""
EBS_CSI_CONTROLLER_SA = "ebs-csi-controller-sa"
"""The controller's ServiceAccount in kube-system: it alone calls EC2 (creates, attaches volumes)."""
EBS_CSI_POLICY = "arn:aws:iam::aws:policy/service-role/AmazonEBSCSIDriverPolicy"
"""AWS managed policy of the driver (AWS Managed Policy reference, "AmazonEBSCSIDriverPolicy")."""
METRICS_SERVER_ADDON = "metrics-server"
"""EKS community add-on name of the Kubernetes Metrics Server (AWS EKS user guide, "Community add-ons")."""
DEFAULT_STORAGE_CLASS = "gp3-encrypted"
"""The region's default StorageClass: gp3 volumes encrypted with the region's customer-managed key."""
DEFAULT_CLASS_ANNOTATION = "storageclass.kubernetes.io/is-default-class"
"""Kubernetes docs, "Change the default StorageClass": a claim without storageClassName gets the annotated class."""


@dataclass(frozen=True)
class ClusterAddonsArgs:
    cluster_name: pulumi.Input[str]
    """The region's EKS cluster."""
    node_group: pulumi.Resource
    """The managed node group the add-ons' pods run on (they are created after it)."""
    pod_identity_agent: pulumi.Resource
    """The Pod Identity agent add-on: the EBS controller's credentials come through it."""
    kms_key_arn: pulumi.Input[str]
    """The region's customer-managed key: every volume the default class provisions is encrypted with it."""
    k8s_provider: pulumi.ProviderResource
    """The cluster's Kubernetes provider (the StorageClass)."""


def ebs_key_policy(key_arn: str) -> dict[str, object]:
    """What the EBS CSI controller needs of a customer-managed key to create and attach volumes encrypted with it:
    use the key, and give EC2 a grant on it for the attached volume (AWS EKS user guide, "Create an Amazon EBS CSI
    driver IAM role", custom KMS key, https://docs.aws.amazon.com/eks/latest/userguide/ebs-csi.html#csi-iam-role)."""
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Action": ["kms:CreateGrant", "kms:ListGrants", "kms:RevokeGrant"],
                "Resource": [key_arn],
                "Condition": {"Bool": {"kms:GrantIsForAWSResource": "true"}},
            },
            {
                "Effect": "Allow",
                "Action": ["kms:Encrypt", "kms:Decrypt", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:DescribeKey"],
                "Resource": [key_arn],
            },
        ],
    }


class ClusterAddons(pulumi.ComponentResource):
    storage_class_name: str
    """Name of the default StorageClass (claims name it explicitly too)."""
    storage: list[pulumi.Resource]
    """What a claim needs before it can bind: the CSI driver and the StorageClass."""
    metrics: list[pulumi.Resource]
    """What an HPA's resource metric comes from (metrics-server)."""

    def __init__(self, name: str, args: ClusterAddonsArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("platform:cluster_addons:ClusterAddons", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        after_nodes = pulumi.ResourceOptions(parent=self, depends_on=[args.node_group, args.pod_identity_agent])

        role = aws.iam.Role(
            f"{name}-ebs-csi-role",
            description="EBS CSI controller (kube-system/ebs-csi-controller-sa): volumes of the region's cluster",
            assume_role_policy=POD_IDENTITY_TRUST_POLICY,
            opts=child,
        )
        managed = aws.iam.RolePolicyAttachment(
            f"{name}-ebs-csi-managed", role=role.name, policy_arn=EBS_CSI_POLICY, opts=child
        )
        key_policy = aws.iam.RolePolicy(
            f"{name}-ebs-csi-kms",
            role=role.id,
            policy=pulumi.Output.from_input(args.kms_key_arn).apply(lambda arn: json.dumps(ebs_key_policy(arn))),
            opts=child,
        )
        # The add-on creates its Pod Identity association itself, with the add-on (CreateAddon
        # `podIdentityAssociations`): the controller's pods are admitted with credentials on their first start.
        ebs = aws.eks.Addon(
            f"{name}-ebs-csi",
            cluster_name=args.cluster_name,
            addon_name=EBS_CSI_ADDON,
            pod_identity_associations=[
                aws.eks.AddonPodIdentityAssociationArgs(role_arn=role.arn, service_account=EBS_CSI_CONTROLLER_SA)
            ],
            resolve_conflicts_on_create="OVERWRITE",
            resolve_conflicts_on_update="OVERWRITE",
            opts=pulumi.ResourceOptions.merge(after_nodes, pulumi.ResourceOptions(depends_on=[managed, key_policy])),
        )
        metrics_server = aws.eks.Addon(
            f"{name}-metrics-server",
            cluster_name=args.cluster_name,
            addon_name=METRICS_SERVER_ADDON,
            resolve_conflicts_on_create="OVERWRITE",
            resolve_conflicts_on_update="OVERWRITE",
            opts=after_nodes,
        )
        # Parameters of the driver's StorageClass: aws-ebs-csi-driver docs/parameters.md (`type`, `encrypted`,
        # `kmsKeyId`); WaitForFirstConsumer creates each volume in the zone its pod is scheduled to.
        storage_class = k8s.storage.v1.StorageClass(
            f"{name}-default-storage-class",
            metadata=k8s.meta.v1.ObjectMetaArgs(
                name=DEFAULT_STORAGE_CLASS, annotations={DEFAULT_CLASS_ANNOTATION: "true"}
            ),
            provisioner=EBS_CSI_PROVISIONER,
            parameters={"type": "gp3", "encrypted": "true", "kmsKeyId": args.kms_key_arn},
            volume_binding_mode="WaitForFirstConsumer",
            allow_volume_expansion=True,
            reclaim_policy="Retain",
            opts=pulumi.ResourceOptions(parent=self, provider=args.k8s_provider, depends_on=[ebs]),
        )
        self.storage_class_name = DEFAULT_STORAGE_CLASS
        self.storage = [ebs, storage_class]
        self.metrics = [metrics_server]
        self.register_outputs({"storage_class": DEFAULT_STORAGE_CLASS, "ebs_csi_role": role.arn})
