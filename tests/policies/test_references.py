"""named-without-dependency: a component that names a planned resource by a plain string is caught; passing the
resource's output is not. The components run for real under the recorder (the offline plan's mock engine)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from platformctl.offline.recorder import record_stack
from platformctl.planning import policy_resources
from policies.references import check_named_without_dependency
from policies.rules import POLICIES, Resource, StackContext
from regions.catalog import load_catalog
from tests.conftest import Plan

PROGRAM = '''
import json

import pulumi
import pulumi_aws as aws
import pulumi_kubernetes as k8s
import pulumi_snowflake as snowflake

BY_OUTPUT = pulumi.Config("test").get_bool("byOutput")


class Tenant(pulumi.ComponentResource):
    """Objects that name each other: by output (BY_OUTPUT) or by the same name typed as a string."""

    def __init__(self, name: str) -> None:
        super().__init__("test:tenant:Tenant", name, None, None)
        child = pulumi.ResourceOptions(parent=self)
        database = snowflake.Database(f"{name}-db", name="PLATFORM_EU_CENTRAL", opts=child)
        schema = snowflake.Schema(f"{name}-raw", database=database.name, name="RAW", opts=child)
        role = snowflake.AccountRole(f"{name}-role", name="PLATFORM_EU_CENTRAL_LOADER", opts=child)
        schema_fqn = pulumi.Output.concat(schema.database, ".", schema.name) if BY_OUTPUT else "PLATFORM_EU_CENTRAL.RAW"
        snowflake.GrantPrivilegesToAccountRole(
            f"{name}-raw-usage",
            account_role_name=role.name,
            privileges=["USAGE"],
            on_schema=snowflake.GrantPrivilegesToAccountRoleOnSchemaArgs(schema_name=schema_fqn),
            opts=child,
        )
        table = snowflake.Table(
            f"{name}-events",
            database=database.name,
            schema=schema.name,
            name="EVENTS",
            columns=[snowflake.TableColumnArgs(name="RAW", type="VARCHAR")],
            opts=child,
        )
        snowflake.View(
            f"{name}-view",
            database=database.name,
            schema=schema.name,
            name="EVENT_COUNT",
            statement="SELECT COUNT(*) AS N FROM PLATFORM_EU_CENTRAL.RAW.EVENTS",
            opts=pulumi.ResourceOptions(parent=self, depends_on=[table] if BY_OUTPUT else []),
        )

        namespace = k8s.core.v1.Namespace(
            f"{name}-ns", metadata={"name": "partner-acme", "labels": {"partner_id": "partner-acme"}}, opts=child
        )
        ns = namespace.metadata.name if BY_OUTPUT else "partner-acme"
        account = k8s.core.v1.ServiceAccount(f"{name}-sa", metadata={"name": "worker", "namespace": ns}, opts=child)
        k8s.apps.v1.Deployment(
            f"{name}-worker",
            metadata={"name": "worker", "namespace": ns, "labels": {"app": "worker"}},
            spec={
                "selector": {"matchLabels": {"app": "worker"}},
                "template": {
                    "metadata": {"labels": {"app": "worker", "partner": "partner-acme"}},
                    "spec": {
                        "serviceAccountName": account.metadata.name if BY_OUTPUT else "worker",
                        "containers": [
                            {"name": "worker", "image": "worker:1", "ports": [{"name": "worker", "containerPort": 80}]}
                        ],
                    },
                },
            },
            opts=child,
        )

        bucket = aws.s3.Bucket(f"{name}-bucket", bucket="voiceplat-acme-data", opts=child)
        arn = bucket.arn if BY_OUTPUT else "arn:aws:s3:::voiceplat-acme-data"
        aws.s3.BucketPolicy(
            f"{name}-bucket-policy",
            bucket=bucket.id if BY_OUTPUT else "voiceplat-acme-data",
            policy=pulumi.Output.json_dumps(
                {"Statement": [{"Effect": "Deny", "Resource": [arn, pulumi.Output.concat(arn, "/*")]}]}
            ),
            opts=child,
        )
        self.register_outputs({})


Tenant("tenant")
'''


def plan_program(tmp_path: Path, by_output: bool) -> list[Resource]:
    (tmp_path / "__main__.py").write_text(PROGRAM)
    recording = record_stack(tmp_path, "test", {"test:byOutput": by_output}, lambda _: None)
    return policy_resources(recording.resources)


CONTEXT = StackContext(stack="test", kind="global", catalog=load_catalog())


def findings(resources: list[Resource]) -> dict[str, str]:
    return {urn.rsplit("::", 1)[-1]: message for urn, message in check_named_without_dependency(resources, CONTEXT)}


def test_names_passed_as_strings_are_caught(tmp_path: Path) -> None:
    found = findings(plan_program(tmp_path, by_output=False))
    assert set(found) == {
        "tenant-raw-usage",
        "tenant-view",
        "tenant-sa",
        "tenant-worker",
        "tenant-bucket-policy",
    }
    assert found["tenant-raw-usage"].startswith("input onSchema.schemaName names Schema PLATFORM_EU_CENTRAL.RAW")
    assert "statement names Table PLATFORM_EU_CENTRAL.RAW.EVENTS" in found["tenant-view"]
    assert "metadata.namespace names Namespace 'partner-acme'" in found["tenant-sa"]
    assert found["tenant-bucket-policy"].startswith("input bucket names Bucket 'voiceplat-acme-data'")


def test_outputs_are_not(tmp_path: Path) -> None:
    assert findings(plan_program(tmp_path, by_output=True)) == {}


def test_deployment_by_literal_names_both_namespace_and_service_account(tmp_path: Path) -> None:
    resources = plan_program(tmp_path, by_output=False)
    worker = next(r for r in resources if r.name == "tenant-worker")
    messages = [m for urn, m in check_named_without_dependency(resources, CONTEXT) if urn == worker.urn]
    assert sorted(m.split(" names ")[0] for m in messages) == [
        "input metadata.namespace",
        "input spec.template.spec.serviceAccountName",
    ]
    # Labels, container and port names equal to other objects' names are not references.
    assert not any("labels" in m or "containers" in m for m in messages)


def test_policy_is_mandatory_now_that_the_grants_pass_outputs() -> None:
    policy = next(p for p in POLICIES if p.name == "named-without-dependency")
    assert policy.level == "mandatory"


def test_plan_json_carries_dependencies_like_pulumi_preview(plan_in, tmp_path: Path) -> None:
    """newState.dependencies and newState.propertyDependencies, as apitype.ResourceV3 (omitted when empty)."""
    from tests.conftest import ROOT

    plan: Plan = plan_in(ROOT, "region-eu-central")
    steps = json.loads(plan.preview_json("region-eu-central"))["steps"]
    states = {s["urn"]: s["newState"] for s in steps}
    reads = {
        u
        for s in states.values()
        for u in s.get("dependencies", [])
        if "::pulumi:pulumi:StackReference::" in u
        or (u.endswith(("-cert-meter-secret", "-secret")) and "kubernetes:core/v1:Secret::" in u)
    }
    grants = [s for s in states.values() if s["type"].endswith("GrantPrivilegesToAccountRole")]
    assert grants
    for state in grants:
        role = state["propertyDependencies"]["accountRoleName"]
        assert len(role) == 1 and "snowflake:index/accountRole:AccountRole" in role[0]
    for state in states.values():
        union = {u for urns in state.get("propertyDependencies", {}).values() for u in urns}
        assert union <= set(state.get("dependencies", [])), state["urn"]
        # Every dependency is a planned resource, or a read (a stack reference, an issued certificate's Secret), which
        # the offline plan does not list as a step.
        assert all(u in states or u in reads for u in state.get("dependencies", [])), state["urn"]
        assert state.get("dependencies", None) != [] and state.get("propertyDependencies", None) != {}


@pytest.mark.parametrize("stack", ["global", "region-eu-central", "partner-acme-voice", "partner-sakura-calls"])
def test_the_example_fleet_names_nothing_without_depending_on_it(fleet: Plan, stack: str) -> None:
    from fleet.repo import Repo
    from platformctl.planning import check_policies
    from tests.conftest import ROOT

    found = [v for v in check_policies(Repo(ROOT), fleet.plans[stack]) if v.policy == "named-without-dependency"]
    # The grants, views and the service user's default namespace pass outputs (issue 8, finding 5).
    assert found == [], [(v.urn, v.message) for v in found]
