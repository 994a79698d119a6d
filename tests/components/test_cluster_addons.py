"""A region's first deploy under the SDK's mocks: storage and metrics add-ons, cert-manager's narrowed DNS
permission, identities before pods, and certificates that reach Kong through the sync (no read of the Secret)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import pytest

from components.cluster_addons import ebs_key_policy
from platformctl.offline.planner import StackPlan
from platformctl.offline.recorder import RecordedResource
from tests.conftest import Plan

REGION = "region-eu-central"
PARTNER = "partner-acme-voice"
ADDON = "aws:eks/addon:Addon"


@pytest.fixture
def plans(fleet: Plan) -> Mapping[str, StackPlan]:
    """The region and the partner as the session's `fleet` planned them (each stack once per session; read only)."""
    return fleet.plans


def _one(plans: Mapping[str, StackPlan], stack: str, name: str) -> RecordedResource:
    (found,) = [r for r in plans[stack].recording.resources if r.name == name]
    return found


def _urn(plans: Mapping[str, StackPlan], stack: str, name: str) -> str:
    return _one(plans, stack, name).urn


def test_the_ebs_csi_driver_is_an_eks_addon_with_its_own_pod_identity_role(plans: Mapping[str, StackPlan]) -> None:
    addon = _one(plans, REGION, "region-addons-ebs-csi")
    assert addon.inputs["addonName"] == "aws-ebs-csi-driver"
    role = _one(plans, REGION, "region-addons-ebs-csi-role")
    assert addon.inputs["podIdentityAssociations"] == [
        {"roleArn": "[unknown]", "serviceAccount": "ebs-csi-controller-sa"}
    ]
    assert addon.property_dependencies["podIdentityAssociations"] == [role.urn]
    assert json.loads(role.inputs["assumeRolePolicy"])["Statement"][0]["Principal"] == {
        "Service": "pods.eks.amazonaws.com"
    }
    managed = _one(plans, REGION, "region-addons-ebs-csi-managed")
    assert managed.inputs["policyArn"] == "arn:aws:iam::aws:policy/service-role/AmazonEBSCSIDriverPolicy"
    kms_policy = _one(plans, REGION, "region-addons-ebs-csi-kms")
    assert kms_policy.property_dependencies["policy"] == [_urn(plans, REGION, "region-data-key")]
    statements: list[dict[str, Any]] = ebs_key_policy("arn:aws:kms:eu-central-1:111122223333:key/k")["Statement"]  # type: ignore[assignment]
    grant, use = statements
    assert grant["Resource"] == use["Resource"] == ["arn:aws:kms:eu-central-1:111122223333:key/k"]
    assert grant["Action"] == ["kms:CreateGrant", "kms:ListGrants", "kms:RevokeGrant"]
    assert grant["Condition"] == {"Bool": {"kms:GrantIsForAWSResource": "true"}}
    assert "kms:GenerateDataKey*" in use["Action"]
    # Its controller Deployment needs nodes: the add-on is created after the node group.
    assert _urn(plans, REGION, "region-nodes") in addon.dependencies


def test_the_default_storage_class_is_encrypted_gp3_with_the_region_key(plans: Mapping[str, StackPlan]) -> None:
    storage_class = _one(plans, REGION, "region-addons-default-storage-class")
    assert storage_class.inputs["provisioner"] == "ebs.csi.aws.com"
    assert storage_class.inputs["metadata"]["annotations"] == {"storageclass.kubernetes.io/is-default-class": "true"}
    assert storage_class.inputs["parameters"]["type"] == "gp3"
    assert storage_class.inputs["parameters"]["encrypted"] == "true"
    assert storage_class.property_dependencies["parameters"] == [_urn(plans, REGION, "region-data-key")]
    assert storage_class.inputs["volumeBindingMode"] == "WaitForFirstConsumer"


def test_the_meter_claims_name_the_class_and_wait_for_driver_class_and_metrics(plans: Mapping[str, StackPlan]) -> None:
    """Failing before: the claims named no class, nothing installed a driver, and nothing served CPU metrics."""
    meter = _one(plans, REGION, "region-meter-workload")
    (claim,) = meter.inputs["spec"]["volumeClaimTemplates"]
    assert claim["spec"]["storageClassName"] == "gp3-encrypted"
    component = _one(plans, REGION, "region-meter")
    for name in ("region-nodes", "region-addons-ebs-csi", "region-addons-default-storage-class",
                 "region-addons-metrics-server"):  # fmt: skip
        assert _urn(plans, REGION, name) in component.dependencies, name
    metrics = _one(plans, REGION, "region-addons-metrics-server")
    assert metrics.inputs["addonName"] == "metrics-server"


def test_cert_manager_may_change_only_acme_challenge_txt_records(plans: Mapping[str, StackPlan]) -> None:
    """Failing before: ChangeResourceRecordSets on the whole zone (any record, any type)."""
    policy = json.loads(_one(plans, REGION, "region-cert-manager-dns").inputs["policy"])
    changes = [s for s in policy["Statement"] if "route53:ChangeResourceRecordSets" in json.dumps(s["Action"])]
    assert len(changes) == 1
    assert changes[0]["Action"] == "route53:ChangeResourceRecordSets"
    assert changes[0]["Condition"] == {
        "ForAllValues:StringEquals": {"route53:ChangeResourceRecordSetsRecordTypes": ["TXT"]},
        "ForAllValues:StringLike": {"route53:ChangeResourceRecordSetsNormalizedRecordNames": ["_acme-challenge.*"]},
    }
    # The delegated partner challenges are inside that pattern too.
    delegation = plans[PARTNER].recording.outputs["acme_delegation"]["value"]
    assert delegation.startswith("_acme-challenge.")


def test_cert_manager_pods_start_after_their_identity_and_nodes(plans: Mapping[str, StackPlan]) -> None:
    release = _one(plans, REGION, "region-cert-manager")
    for name in ("region-cert-manager-identity", "region-pod-identity", "region-nodes"):
        assert _urn(plans, REGION, name) in release.dependencies, name
    assert _urn(plans, REGION, "region-nodes") in _one(plans, REGION, "region-kong-data-plane").dependencies


def test_the_meter_certificate_waits_for_the_issuer_that_waits_for_the_crds(plans: Mapping[str, StackPlan]) -> None:
    certificate = _one(plans, REGION, "region-cert-meter")
    issuer = _one(plans, REGION, "region-acme-issuer")
    assert issuer.urn in certificate.dependencies
    assert _urn(plans, REGION, "region-cert-manager") in issuer.dependencies


@pytest.mark.parametrize(
    ("stack", "purpose", "namespace"),
    [(REGION, "meter", "platform"), (PARTNER, "platform-hosts", "partner-acme-voice")],
)
def test_certificates_are_registered_with_the_sync_and_never_read(
    plans: Mapping[str, StackPlan], stack: str, purpose: str, namespace: str
) -> None:
    """Failing before: a Secret.get of the Certificate's Secret in the same update, and a Kong certificate whose
    content only a new `pulumi up` would change."""
    resources = plans[stack].recording.resources
    assert [r.urn for r in resources if r.read_id] == []
    assert [r.urn for r in resources if r.type == "kong:index/certificate:Certificate"] == []
    prefix = "region" if stack == REGION else "tenant"
    role = _one(plans, stack, f"{prefix}-cert-sync-{purpose}")
    assert role.inputs["metadata"]["namespace"] == namespace
    assert role.inputs["metadata"]["labels"]["platform.io/kong-certificate-sync"] == "true"
    assert role.inputs["rules"] == [
        {"apiGroups": [""], "resources": ["secrets"], "verbs": ["get"], "resourceNames": [f"tls-{purpose}"]}
    ]
    binding = _one(plans, stack, f"{prefix}-cert-sync-{purpose}-binding")
    assert binding.inputs["subjects"] == [{"kind": "ServiceAccount", "name": "kong-cert-sync", "namespace": "platform"}]


def test_the_region_runs_the_certificate_sync(plans: Mapping[str, StackPlan]) -> None:
    cron = _one(plans, REGION, "region-cert-sync-job-cronjob")
    pod = cron.inputs["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    assert pod["containers"][0]["args"] == ["certs", "sync", "--region", "eu-central"]
    assert pod["automountServiceAccountToken"] is True and pod["serviceAccountName"] == "kong-cert-sync"
    cluster_role = _one(plans, REGION, "region-cert-sync-role")
    assert cluster_role.inputs["rules"] == [
        {"apiGroups": ["rbac.authorization.k8s.io"], "resources": ["roles"], "verbs": ["list"]}
    ]


def test_the_sync_label_is_the_one_the_service_looks_for() -> None:
    from gateway.tls import CERT_SYNC_LABEL
    from services.certsync import SYNC_LABEL

    assert CERT_SYNC_LABEL == SYNC_LABEL
