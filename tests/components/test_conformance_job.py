"""ConformanceJob, as the integration stack builds it (the real program under the SDK's mocks): per offered region a
Job that checks the seed's bars against the sandbox's health endpoint after the deploy and records its result in
the region's warehouse, reading the ConformanceRecording's Secret, which it waits for; none while suspended."""

from __future__ import annotations

from pathlib import Path

import pytest

from scripts.fleet import copy_repo
from tests.conftest import ROOT, Plan
from tests.integrations.conftest import published_calsync

STACK = "integration-calsync"
REGIONS = ("eu-central", "us-east")


def _plan(root: Path, suspended: bool) -> Plan:
    from fleet.repo import Repo
    from foundation.stacks import parse_stack_name
    from platformctl.offline.planner import plan_stacks

    published_calsync(root, installs=("acme-voice", "sunrise-telecom"), suspended=suspended)
    return Plan(plan_stacks(Repo(root), [parse_stack_name(STACK)]))


@pytest.fixture
def planned(published_calsync_plan: Plan) -> Plan:
    """calsync published and installed by two partners, planned once per session (tests/components/conftest.py):
    what `_plan(copy, suspended=False)` plans."""
    return published_calsync_plan


def _name(urn: str) -> str:
    return urn.rsplit("::", 1)[-1]


def test_conformance_job_checks_the_seed_bars_after_the_deploy(planned: Plan) -> None:
    jobs = planned.resources(STACK, "kubernetes:batch/v1:Job")
    assert len(jobs) == 2
    job = jobs[0]
    assert job.inputs["metadata"]["namespace"] == "integration-calsync-system"
    args = job.inputs["spec"]["template"]["spec"]["containers"][0]["args"]
    assert args[:4] == [
        "conformance",
        "run",
        "--url",
        "http://calsync.integration-calsync.svc.cluster.local:8080/healthz",
    ]
    assert args[args.index("--min-rps") + 1] == "100.0" and args[args.index("--max-p95") + 1] == "1.0"
    assert any(dep.endswith("-workload") for dep in job.dependencies)


def test_each_region_records_its_result_with_the_recordings_secret(planned: Plan) -> None:
    from integrations.spec import load_integration

    image = load_integration(ROOT / "integrations" / "examples" / "calsync.yaml").image
    jobs = {_name(j.urn): j for j in planned.resources(STACK, "kubernetes:batch/v1:Job")}
    secrets = {_name(s.urn): s for s in planned.resources(STACK, "kubernetes:core/v1:Secret")}
    assert set(jobs) == {f"integration-{r}-conformance" for r in REGIONS}
    assert set(secrets) == {f"integration-{r}-recording-secret" for r in REGIONS}
    for region in REGIONS:
        job, secret = jobs[f"integration-{region}-conformance"], secrets[f"integration-{region}-recording-secret"]
        (container,) = job.inputs["spec"]["template"]["spec"]["containers"]
        args = container["args"]
        assert args[-6:] == ["--integration", "calsync", "--region", region, "--image-digest", image.split("@")[1]]
        assert container["envFrom"] == [{"secretRef": {"name": "conformance-warehouse"}}]
        assert secret.inputs["metadata"]["name"] == "conformance-warehouse"
        assert secret.inputs["metadata"]["namespace"] == job.inputs["metadata"]["namespace"]
        # The order a first `up` needs: system namespace -> Secret -> Job (its pod reads the Secret at start).
        assert secret.urn in job.dependencies
        assert any(d.endswith(f"integration-{region}-system-namespace") for d in secret.dependencies)
        assert any(d.endswith(f"integration-{region}-workload") for d in job.dependencies)
        assert not [d for d in job.dependencies if f"-{region}-" not in d]  # never waits on the other region
        # Each region's warehouse through its own provider.
        assert secret.provider.split("::")[-2] == job.provider.split("::")[-2] == f"k8s-{region}"
        (role,) = [
            r
            for r in planned.resources(STACK, "snowflake:index/accountRole:AccountRole")
            if _name(r.urn) == f"integration-{region}-recording-role"
        ]
        assert role.provider.split("::")[-2] == f"snowflake-conformance-{region}"
    assert {j.inputs["spec"]["backoffLimit"] for j in jobs.values()} == {0}


def test_a_suspended_integration_runs_no_job_but_keeps_its_results_access(tmp_path: Path) -> None:
    plan = _plan(copy_repo(ROOT, tmp_path / "repo"), suspended=True)
    assert plan.resources(STACK, "kubernetes:batch/v1:Job") == []
    roles = plan.resources(STACK, "snowflake:index/accountRole:AccountRole")
    assert sorted(r.inputs["name"] for r in roles) == [
        "PLATFORM_EU_CENTRAL_CONFORMANCE_CALSYNC",
        "PLATFORM_US_EAST_CONFORMANCE_CALSYNC",
    ]


def test_the_planned_arguments_record_a_run_through_the_services_cli(
    planned: Plan, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The container's args as planned, run by the image's entry point (`platform-services`), with the Secret's
    CONFORMANCE_WAREHOUSE_URL standing in as a local warehouse (the Secret's Snowflake URL itself is checked in
    test_conformance_recording.py) and the health URL pointed at a loopback server: the result lands in
    CONFORMANCE_RESULTS under the job's region and the spec's image digest."""
    from services.cli import main as services_main
    from tests.services.test_conformance import LOOSE, _recorded, server

    (job,) = [j for j in planned.resources(STACK, "kubernetes:batch/v1:Job") if "-us-east-" in j.urn]
    (container,) = job.inputs["spec"]["template"]["spec"]["containers"]
    args = list(container["args"])
    store = tmp_path / "warehouse"
    monkeypatch.setenv("CONFORMANCE_WAREHOUSE_URL", f"local:{store}")
    with server() as url:
        args[args.index("--url") + 1] = url
        code = services_main([*args, *LOOSE])  # the same flags again, looser: argparse keeps the last
    assert code == 0, capsys.readouterr().err
    ((_, integration, region, *_rest),) = _recorded(store)
    assert (integration, region) == ("calsync", "us-east")
    digest = args[args.index("--image-digest") + 1]
    assert digest.startswith("sha256:") and any(value == digest for value in _rest)
