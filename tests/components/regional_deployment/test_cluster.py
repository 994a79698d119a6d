"""The region's cluster (components/regional_deployment/cluster.py): EKS, node group, kubeconfig."""

from __future__ import annotations

from tests.conftest import Plan


def test_cluster_encrypts_secrets_and_exports_kubeconfig_as_secret(fleet: Plan) -> None:
    stack = "region-eu-central"
    cluster = fleet.one(stack, "aws:eks/cluster:Cluster", "region-cluster")
    assert cluster.inputs["encryptionConfig"]["resources"] == ["secrets"]
    assert cluster.inputs["name"] == "voiceplat-eu-central"
    assert fleet.one(stack, "aws:eks/nodeGroup:NodeGroup", "region-nodes").inputs["scalingConfig"]["minSize"] == 3
    roles = fleet.resources(stack, "aws:iam/rolePolicyAttachment:RolePolicyAttachment")
    assert {r.inputs["policyArn"].rsplit("/", 1)[1] for r in roles} == {
        "AmazonEKSClusterPolicy",
        "AmazonEKSWorkerNodePolicy",
        "AmazonEKS_CNI_Policy",
        "AmazonEC2ContainerRegistryReadOnly",
        "AmazonEBSCSIDriverPolicy",  # the EBS CSI controller's own role, not the nodes' (test_cluster_addons.py)
    }
    assert fleet.outputs(stack)["kubeconfig"] == "[secret]"
    k8s_provider = fleet.one(stack, "pulumi:providers:kubernetes", "region-k8s")
    assert k8s_provider.inputs["kubeconfig"] == "[secret]"
