"""The first-deploy dry run: the engine's order from the plan's dependency graph, each step's wait, the critical
path and the expected duration, for a region and a partner stack."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest

from fleet.repo import Repo
from platformctl.first_deploy import Schedule, first_deploy, schedule
from policies.rules import Resource
from tests.conftest import ROOT


@pytest.fixture(scope="module")
def region() -> tuple[Schedule, list[str]]:
    return first_deploy(Repo(ROOT), "region-eu-central")


def _step(plan: Schedule, name: str):
    (found,) = [s for s in plan.steps if s.resource.name == name]
    return found


def test_a_region_is_created_in_dependency_order_with_its_waits(region: tuple[Schedule, list[str]]) -> None:
    plan, findings = region
    assert findings == []
    cluster, nodes = _step(plan, "region-cluster"), _step(plan, "region-nodes")
    assert nodes.start >= cluster.finish
    for release in ("region-cert-manager", "region-kong-data-plane"):
        assert _step(plan, release).start >= nodes.finish
        assert "Helm --wait" in _step(plan, release).wait.what
    meter = _step(plan, "region-meter-workload")
    assert meter.start >= _step(plan, "region-addons-default-storage-class").finish
    assert meter.start >= _step(plan, "region-addons-ebs-csi").finish
    assert "Ready" in meter.wait.what
    certificate = _step(plan, "region-cert-meter")
    assert certificate.start >= _step(plan, "region-acme-issuer").finish >= _step(plan, "region-cert-manager").finish
    assert certificate.wait.most == 900  # the Certificate's own waitFor timeout
    assert _step(plan, "region-meter-twilio").start >= certificate.finish
    assert [s.start for s in plan.steps] == sorted(s.start for s in plan.steps)


def test_the_critical_path_ends_when_the_update_ends(region: tuple[Schedule, list[str]]) -> None:
    plan, _ = region
    path = plan.critical_path
    assert path[-1].finish == plan.typical_seconds
    assert "region-cluster" in [s.resource.name for s in path]
    for before, after in itertools.pairwise(path):
        assert after.start == before.finish  # each step waited for the one before it
    assert plan.typical_seconds < plan.worst_seconds


def test_a_chain_of_waits_adds_up() -> None:
    resources = [
        Resource("urn:a", "aws:eks/cluster:Cluster", "a", {}),
        Resource("urn:b", "aws:eks/nodeGroup:NodeGroup", "b", {}, dependencies=("urn:a",)),
        Resource("urn:c", "kubernetes:helm.sh/v3:Release", "c", {}, dependencies=("urn:b",)),
        Resource("urn:d", "kong:index/consumer:Consumer", "d", {}),
    ]
    plan = schedule("region-x", resources)
    assert [s.resource.name for s in plan.critical_path] == ["a", "b", "c"]
    assert plan.typical_seconds == 600 + 300 + 90
    assert _step(plan, "d").start == 0


def test_up_dry_run_order_prints_the_order_and_runs_nothing(cli, monkeypatch: pytest.MonkeyPatch) -> None:
    from platformctl import engine

    monkeypatch.setattr(engine, "run_locked", lambda *a, **k: pytest.fail("the engine must not run"))
    run = cli("up", "partner-acme-voice", "--dry-run-order", root=ROOT)
    lines = run.out.splitlines()
    assert lines[0].startswith("first `pulumi up` of partner-acme-voice:")
    certificate = next(i for i, line in enumerate(lines) if "tenant-cert-platform-hosts " in line)
    route = next(i for i, line in enumerate(lines) if "tenant-rest-v2 " in line)
    assert certificate < route and "ACME DNS-01" in lines[certificate]
    assert "critical path" in run.out and "expected duration" in run.out


def test_a_seeded_ordering_mistake_fails_the_dry_run(cli, repo_copy: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The copy's own program: its components are imported afresh (this process has the checkout's imported)."""
    import sys

    program = repo_copy / "components" / "regional_deployment" / "gateway.py"
    text = program.read_text()
    seeded = text.replace("opts=pulumi.ResourceOptions.merge(opts, cluster.on_nodes),", "opts=opts,")
    assert seeded != text
    program.write_text(seeded)
    for module in [m for m in sys.modules if m == "components" or m.startswith("components.")]:
        monkeypatch.delitem(sys.modules, module)
    run = cli("up", "region-eu-central", "--dry-run-order", code=1, root=repo_copy)
    assert "deploy-order: region-kong-data-plane: Helm release region-kong-data-plane does not wait" in run.out
    assert "the first `up` of region-eu-central would stall" in run.err
