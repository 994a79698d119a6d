"""platformctl/offline/results.py: what the policies see of a planned stack, whether it was planned in this run
(its recording) or read back from the plan JSON (the cache's steps), and the date-dependent part of a key. (Keys and
cache hits through `run_plan`: test_cache.py.)"""

from __future__ import annotations

import datetime
import json

from fleet.repo import Repo
from foundation.stacks import parse_stack_name
from platformctl.offline.planner import StackPlan
from platformctl.offline.recorder import RecordedResource, StackRecording
from platformctl.offline.results import dated_facts, policy_resources, step_resources
from tests.conftest import ROOT

STACK = "partner-x"
STACK_URN = f"urn:pulumi:{STACK}::platform::pulumi:pulumi:Stack::platform-{STACK}"
BUCKET_URN = f"urn:pulumi:{STACK}::platform::aws:s3/bucket:Bucket::statements"


def _recorded() -> list[RecordedResource]:
    return [
        RecordedResource(STACK_URN, "pulumi:pulumi:Stack", f"platform-{STACK}", False, "", "", {}),
        RecordedResource(
            BUCKET_URN,
            "aws:s3/bucket:Bucket",
            "statements",
            True,
            STACK_URN,
            "urn:pulumi:partner-x::platform::pulumi:providers:aws::eu::id-1",
            {"bucket": "statements", "tags": {"partner": "x"}},
            retain_on_delete=True,
            dependencies=[STACK_URN],
            property_dependencies={"bucket": [STACK_URN]},
        ),
        RecordedResource(
            f"urn:pulumi:{STACK}::platform::aws:route53/zone:Zone::zone",
            "aws:route53/zone:Zone",
            "zone",
            True,
            STACK_URN,
            "",
            {"name": "x.example"},
            read_id="Z123",
        ),
    ]


def test_resources_read_back_from_the_plan_json_are_the_recorded_ones() -> None:
    recorded = _recorded()
    plan = StackPlan(STACK, StackRecording(STACK, recorded, {}, {}, [], []), {})
    steps = json.loads(json.dumps(plan.preview()))["steps"]  # as the cache stores them
    by_urn = {r.urn: r for r in step_resources(steps)}
    assert by_urn == {r.urn: r for r in policy_resources(recorded)}
    bucket = by_urn[BUCKET_URN]
    assert bucket.retain_on_delete and bucket.provider.endswith("::eu::id-1")
    assert bucket.dependencies == (STACK_URN,) and bucket.property_dependencies == {"bucket": (STACK_URN,)}
    assert by_urn[f"urn:pulumi:{STACK}::platform::aws:route53/zone:Zone::zone"].read_id == "Z123"


def test_a_step_without_state_is_read_with_empty_fields() -> None:
    (resource,) = step_resources([{"urn": BUCKET_URN}])
    assert (resource.urn, resource.name, resource.type, resource.parent) == (BUCKET_URN, "statements", "", "")
    assert resource.inputs == {} and not resource.retain_on_delete and resource.read_id == ""


def test_only_a_region_stack_has_dated_facts() -> None:
    repo = Repo(ROOT)
    today = datetime.date(2026, 12, 6)
    assert dated_facts(repo, parse_stack_name("partner-acme-voice"), today) == ""
    assert dated_facts(repo, parse_stack_name("global"), today) == ""
    assert dated_facts(repo, parse_stack_name("region-eu-central"), today).startswith("kubernetes-support:")
