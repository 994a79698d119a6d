"""platformctl/offline/planner.py: what a stack needs planned first, the preview document's order, planning under the
mocks. (The result cache on top of it: test_cache.py.)"""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from fleet.repo import Repo
from foundation.errors import InputError
from foundation.stacks import parse_stack_name
from platformctl.offline.planner import StackPlan, plan_stacks, with_dependencies
from platformctl.offline.recorder import RecordedResource, StackRecording
from tests.conftest import ROOT

STACK = "partner-x"
ROOT_URN = f"urn:pulumi:{STACK}::platform::pulumi:pulumi:Stack::platform-{STACK}"


def _resource(name: str, parent: str = ROOT_URN, read_id: str = "") -> RecordedResource:
    return RecordedResource(
        urn=f"urn:pulumi:{STACK}::platform::aws:s3/bucket:Bucket::{name}",
        type="aws:s3/bucket:Bucket",
        name=name,
        custom=True,
        parent=parent,
        provider="",
        inputs={"bucket": name},
        read_id=read_id,
    )


def _plan(resources: list[RecordedResource]) -> StackPlan:
    return StackPlan(STACK, StackRecording(STACK, resources, {"out": 1}, {"out": 1}, [], ["a warning"]), {})


def test_a_partner_stack_is_planned_after_the_global_stack_and_its_home_region() -> None:
    partner = parse_stack_name("partner-acme-voice")
    ordered, deps = with_dependencies(Repo(ROOT), [partner])
    assert [str(s) for s in ordered] == ["global", "region-eu-central", "partner-acme-voice"]
    assert [str(s) for s in deps[partner]] == ["global", "region-eu-central"]
    assert deps[parse_stack_name("global")] == []


def test_a_stack_read_without_a_stack_file_is_bad_input_naming_the_file_and_its_reader(repo_copy: Path) -> None:
    (repo_copy / "stacks" / "Pulumi.region-eu-central.yaml").unlink()
    with pytest.raises(InputError) as raised:
        with_dependencies(Repo(repo_copy), [parse_stack_name("partner-acme-voice")])
    message = str(raised.value)
    assert "stacks/Pulumi.region-eu-central.yaml" in message and "partner-acme-voice" in message


def test_the_preview_lists_parents_first_and_siblings_by_urn_whatever_the_registration_order() -> None:
    stack = RecordedResource(ROOT_URN, "pulumi:pulumi:Stack", f"platform-{STACK}", False, "", "", {})
    parent = _resource("b-parent")
    child = _resource("a-child", parent=parent.urn)
    sibling = _resource("a-sibling")
    orphan = _resource("z-orphan", parent="urn:pulumi:partner-x::platform::gone::never-recorded")
    read = _resource("c-read", read_id="existing-bucket")
    resources = [stack, parent, child, sibling, orphan, read]
    previews = set()
    for seed in range(5):
        shuffled = resources[:]
        random.Random(seed).shuffle(shuffled)
        previews.add(repr(_plan(shuffled).preview()))
    assert len(previews) == 1  # one document, whatever order the SDK's registrations completed in
    preview = _plan(resources).preview()
    names = [step["urn"].rsplit("::", 1)[-1] for step in preview["steps"]]
    assert names == [f"platform-{STACK}", "a-sibling", "b-parent", "a-child", "c-read", "z-orphan"]
    assert [step["op"] for step in preview["steps"]].count("read") == 1
    assert preview["changeSummary"] == {"create": 5, "read": 1}
    assert preview["outputs"] == {"out": 1}
    assert preview["diagnostics"] == [{"severity": "warning", "message": "a warning"}]


def test_plan_stacks_returns_the_requested_stack_and_what_it_reads_in_planning_order() -> None:
    plans = plan_stacks(Repo(ROOT), [parse_stack_name("region-eu-central")], workers=1)
    assert list(plans) == ["global", "region-eu-central"]
    region = plans["region-eu-central"]
    assert region.stack == "region-eu-central" and region.root == ROOT
    assert region.recording.resources[0].type == "pulumi:pulumi:Stack"
    assert region.preview()["changeSummary"]["create"] == len(region.recording.resources) - sum(
        1 for r in region.recording.resources if r.read_id
    )


HEAP_PROBE = """
import gc, sys, weakref
from pathlib import Path
from fleet.repo import Repo
from foundation.stacks import parse_stack_name
from platformctl.offline import planner

class Node:
    pass

root = Path(sys.argv[1])
sys.path.insert(0, str(root))
gc.disable()  # so that only the freeze's own collection can free what follows
garbage = Node()
garbage.self = garbage  # a cycle dropped before the first plan: collected before the heap is frozen
dropped_before = weakref.ref(garbage)
del garbage
planner.plan_stacks(Repo(root), [parse_stack_name("global")], workers=1)
gc.enable()
frozen = gc.get_freeze_count()
held = Node()
held.self = held  # a cycle (only the collector frees it), alive while the next plan runs
dropped_later = weakref.ref(held)
planner.plan_stacks(Repo(root), [parse_stack_name("global")], workers=1)
del held
gc.collect()
print(frozen, dropped_before() is None, dropped_later() is None)
"""


def test_the_first_plan_in_a_process_freezes_its_imports_and_later_garbage_is_still_collected(
    repo_copy: Path,
) -> None:
    """The heap a plan needs (SDK, providers, program: hundreds of thousands of objects) is frozen once, after the
    process's first plan, so full collections stop traversing it; what the caller holds during later plans is not
    frozen with it (it would never be freed)."""
    import subprocess
    import sys

    done = subprocess.run(
        [sys.executable, "-c", HEAP_PROBE, str(repo_copy)], cwd=repo_copy, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    frozen, collected_first, collected_later = done.stdout.split()
    assert int(frozen) > 100_000  # the SDK and the provider SDKs
    assert collected_first == "True"  # not frozen with the heap: it would never be freed
    assert collected_later == "True"


def test_a_planning_worker_freezes_its_imports_before_it_plans(repo_copy: Path) -> None:
    import gc
    import multiprocessing
    import os
    import select

    # The worker's initializer, in a forked child (as the pool runs it) so this process's heap is left as it is.
    read, write = os.pipe()
    child = multiprocessing.get_context("fork").Process(
        target=_report_frozen_after_warm_up, args=(repo_copy, write), daemon=True
    )
    child.start()
    os.close(write)
    with os.fdopen(read) as pipe:
        ready, _, _ = select.select([pipe], [], [], 120)
        assert ready, "the worker's warm-up did not finish in 120 s"
        frozen_in_worker = int(pipe.read())
    child.join(60)
    assert child.exitcode == 0
    assert frozen_in_worker > gc.get_freeze_count()  # more than it inherited: its own imports


def _report_frozen_after_warm_up(root: Path, write: int) -> None:
    import gc
    import os

    from platformctl.offline.planner import _warm_worker

    _warm_worker(root)
    os.write(write, str(gc.get_freeze_count()).encode())
