"""The payouts CronJob in a region stack (RuntimeJob) under the SDK's mocks; manifests validated strictly."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest

from foundation.yamlio import dump_yaml, load_yaml_file
from tests.conftest import Plan

STACK = "region-eu-central"
KINDS = (
    "kubernetes:batch/v1:CronJob",
    "kubernetes:core/v1:ServiceAccount",
    "kubernetes:core/v1:Secret",
    "kubernetes:networking.k8s.io/v1:NetworkPolicy",
)


@pytest.fixture
def planned(fleet: Plan) -> Plan:
    """The global and the region stack as the session's `fleet` planned them (each stack once per session; read
    only)."""
    return fleet


def _parts(plan: Plan) -> dict[str, Any]:
    parent = plan.one(STACK, "platform:runtime_job:RuntimeJob", "region-payouts")
    return {r.type: r for r in plan.resources(STACK) if r.parent == parent.urn}


def test_the_payouts_job_pays_the_previous_month_of_its_own_region(planned: Plan) -> None:
    parts = _parts(planned)
    assert set(parts) == set(KINDS)
    cron = parts["kubernetes:batch/v1:CronJob"].inputs["spec"]
    assert cron["schedule"] == "0 6 2 * *" and cron["timeZone"] == "Etc/UTC"
    assert cron["concurrencyPolicy"] == "Forbid"
    pod = cron["jobTemplate"]["spec"]["template"]["spec"]
    assert pod["restartPolicy"] == "Never"
    container = pod["containers"][0]
    # The services' own console script, not the image's ENTRYPOINT; test mode (the default): no --live.
    assert container["command"] == ["platform-services"]
    assert container["args"] == ["payouts", "run", "--period", "previous", "--region", "eu-central"]
    env = {e["name"]: e for e in container["env"]}
    for name in ("STRIPE_API_KEY", "SNOWFLAKE_PRIVATE_KEY", "PAYOUTS_WAREHOUSE_URL"):
        assert "valueFrom" in env[name] and "value" not in env[name]  # secrets by reference only
    assert env["PAYOUTS_STATEMENTS"]["value"].startswith("s3://voiceplat-eu-central-statements")
    policy = parts["kubernetes:networking.k8s.io/v1:NetworkPolicy"].inputs["spec"]
    assert policy["policyTypes"] == ["Ingress"] and policy.get("ingress", []) == []
    steps = json.loads(planned.preview_json(STACK))["steps"]
    (secret,) = [s for s in steps if s["urn"].endswith("::region-payouts-secret")]
    assert secret["newState"]["inputs"]["stringData"] == "[secret]"
    assert "sk_" not in planned.preview_json(STACK)


def test_statements_bucket_is_versioned_and_kms_encrypted(planned: Plan) -> None:
    assert planned.outputs(STACK)["statements_bucket"] == "voiceplat-eu-central-statements"
    versioning = planned.one(STACK, "aws:s3/bucketVersioning:BucketVersioning", "region-statements-versioning")
    assert versioning.inputs["versioningConfiguration"]["status"] == "Enabled"
    encryption = planned.one(
        STACK,
        "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration",
        "region-statements-encryption",
    )
    rule = encryption.inputs["rules"][0]["applyServerSideEncryptionByDefault"]
    assert rule["sseAlgorithm"] == "aws:kms"


@pytest.mark.parametrize("kind", KINDS)
def test_manifests_validate_strictly(planned: Plan, kind: str) -> None:
    manifest = json.loads(json.dumps(_parts(planned)[kind].inputs))
    if kind == "kubernetes:core/v1:Secret":
        manifest.pop("stringData", None)  # a secret in the plan; its shape is the provider's
    kubernetes_validate.validate(manifest, "1.33", strict=True)


def test_only_the_job_may_write_statements(planned: Plan) -> None:
    association = planned.one(STACK, "aws:eks/podIdentityAssociation:PodIdentityAssociation", "region-payouts-identity")
    assert association.inputs["namespace"] == "platform" and association.inputs["serviceAccount"] == "payouts"
    role = planned.one(STACK, "aws:iam/role:Role", "region-payouts-role")
    trust = json.loads(role.inputs["assumeRolePolicy"])
    assert trust["Statement"][0]["Principal"] == {"Service": "pods.eks.amazonaws.com"}
    policy = planned.one(STACK, "aws:iam/rolePolicy:RolePolicy", "region-payouts-statements").inputs["policy"]
    statements = json.loads(policy)["Statement"]
    grants = {(tuple(st["Action"]), st["Resource"]) for st in statements}
    assert grants == {
        (("s3:GetObject", "s3:PutObject"), "arn:aws:s3:::voiceplat-eu-central-statements/statements/*"),
        (("s3:GetBucketVersioning",), "arn:aws:s3:::voiceplat-eu-central-statements"),
        (("s3:ListBucket",), "arn:aws:s3:::voiceplat-eu-central-statements"),
    }
    assert all(st["Effect"] == "Allow" for st in statements)
    # Listing (what turns a statement not yet written from 403 into 404) only under the job's own prefix.
    (listing,) = [st for st in statements if st["Action"] == ["s3:ListBucket"]]
    assert listing["Condition"] == {"StringLike": {"s3:prefix": ["statements/*", "statements"]}}
    assert all("Condition" not in st for st in statements if st is not listing)
    assert env_prefix(planned) == "statements"
    assert planned.one(STACK, "aws:iam/rolePolicy:RolePolicy", "region-payouts-kms")


def test_the_payouts_user_reads_and_writes_nothing(planned: Plan) -> None:
    binding = planned.one(STACK, "snowflake:index/grantAccountRole:GrantAccountRole", "region-payouts-user-role")
    role = binding.inputs["roleName"]
    assert role.endswith("_PAYOUTS")
    grants = [
        g
        for g in planned.resources(STACK, "snowflake:index/grantPrivilegesToAccountRole:GrantPrivilegesToAccountRole")
        if g.inputs.get("accountRoleName") == role
    ]
    privileges = {p for g in grants for p in g.inputs.get("privileges", [])}
    assert grants and privileges <= {"USAGE", "SELECT"}, privileges


def env_prefix(plan: Plan) -> str:
    """The key prefix the job writes statements under (PAYOUTS_STATEMENTS = s3://bucket/prefix)."""
    pod = _parts(plan)["kubernetes:batch/v1:CronJob"].inputs["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    env = {e["name"]: e.get("value") for e in pod["containers"][0]["env"]}
    return str(env["PAYOUTS_STATEMENTS"]).split("/", 3)[3]


def _set_config(root: Path, stack: str, values: dict[str, object]) -> None:
    path = root / "stacks" / f"Pulumi.{stack}.yaml"
    doc = load_yaml_file(path, path.name)
    doc["config"].update(values)
    path.write_text(dump_yaml(doc))


def test_live_mode_runs_the_job_with_live(repo_copy: Path, plan_in) -> None:
    _set_config(repo_copy, STACK, {"platform:stripeMode": "live"})
    container = _parts(plan_in(repo_copy, STACK))["kubernetes:batch/v1:CronJob"].inputs["spec"]["jobTemplate"]
    args = container["spec"]["template"]["spec"]["containers"][0]["args"]
    assert args == ["payouts", "run", "--period", "previous", "--region", "eu-central", "--live"]


@pytest.mark.parametrize("mode", ["LIVE", "production", "", "live "])
def test_unknown_stripe_mode_is_refused_naming_the_file_and_key(repo_copy: Path, plan_in, mode: str) -> None:
    from foundation.errors import InputError

    _set_config(repo_copy, STACK, {"platform:stripeMode": mode})
    if mode == "":
        # Empty is unset: the default, test mode.
        args = _parts(plan_in(repo_copy, STACK))["kubernetes:batch/v1:CronJob"].inputs["spec"]["jobTemplate"]
        assert "--live" not in args["spec"]["template"]["spec"]["containers"][0]["args"]
        return
    with pytest.raises(InputError, match=r"stacks/Pulumi\.region-eu-central\.yaml: platform:stripeMode: must be"):
        plan_in(repo_copy, STACK)
