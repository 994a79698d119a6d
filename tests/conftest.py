"""Shared fixtures: the one place that runs the Pulumi program under the SDK's mocks, and the one CLI runner."""

from __future__ import annotations

import gc
import json
from collections.abc import Callable, ItemsView, Iterable, Iterator, Mapping, ValuesView
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from cli.app import main
from fleet.repo import Repo
from foundation.stacks import parse_stack_name
from platformctl.offline.planner import StackPlan, plan_stacks
from platformctl.offline.recorder import RecordedResource
from scripts.fleet import copy_repo

ROOT = Path(__file__).resolve().parents[1]


class LazyPlans(Mapping[str, StackPlan]):
    """Every stack of a repository by name; a stack is planned (with the stacks it reads that are not planned yet)
    the first time it is looked up, and kept. Iterating the names plans nothing; `values()`/`items()` plan every
    stack not planned yet in one run (in parallel where plan_stacks does)."""

    def __init__(self, repo: Repo) -> None:
        self.repo = repo
        self.names = {str(stack): stack for stack in repo.stack_names()}  # planning order
        self.planned: dict[str, StackPlan] = {}

    def __getitem__(self, stack: str) -> StackPlan:
        if stack not in self.names:
            raise KeyError(stack)
        self.plan([stack])
        return self.planned[stack]

    def __contains__(self, stack: object) -> bool:
        return stack in self.names  # a name check, no plan

    def __iter__(self) -> Iterator[str]:
        return iter(self.names)

    def __len__(self) -> int:
        return len(self.names)

    def plan(self, stacks: Iterable[str]) -> None:
        """Plan those of `stacks` not planned yet; the planned stacks they read are read, not planned again."""
        missing = [self.names[stack] for stack in stacks if stack not in self.planned]
        if missing:
            known = {name: plan.recording for name, plan in self.planned.items()}
            self.planned.update(plan_stacks(self.repo, missing, known=known))

    def values(self) -> ValuesView[StackPlan]:
        self.plan(self.names)
        return super().values()

    def items(self) -> ItemsView[str, StackPlan]:
        self.plan(self.names)
        return super().items()


class Plan:
    """Planned stacks with lookups that keep tests short."""

    def __init__(self, plans: Mapping[str, StackPlan]) -> None:
        self.plans = plans

    def resources(self, stack: str, type_: str | None = None) -> list[RecordedResource]:
        return [r for r in self.plans[stack].recording.resources if type_ is None or r.type == type_]

    def one(self, stack: str, type_: str, name: str) -> RecordedResource:
        matches = [r for r in self.resources(stack, type_) if r.name == name]
        assert len(matches) == 1, f"{stack}: expected one {type_} named {name}, found {len(matches)}"
        return matches[0]

    def outputs(self, stack: str) -> dict[str, Any]:
        return self.plans[stack].recording.outputs

    def preview_json(self, stack: str) -> str:
        return json.dumps(self.plans[stack].preview())


@pytest.fixture(scope="session")
def fleet() -> Plan:
    """The repository's example fleet under the mocks: each stack is planned when a test first asks for it (with the
    stacks it reads), once per session, so a test plans only the stacks it asserts on."""
    return Plan(LazyPlans(Repo(ROOT)))


@pytest.fixture
def repo_copy(tmp_path: Path) -> Path:
    """A scratch copy of the platform repository's program and data, to plan edited specs and stacks."""
    return copy_repo(ROOT, tmp_path / "repo")


@pytest.fixture
def plan_in() -> Callable[..., Plan]:
    """Plan the given stacks of a repository (usually `repo_copy`)."""

    def run(root: Path, *stacks: str) -> Plan:
        return Plan(plan_stacks(Repo(root), [parse_stack_name(s) for s in stacks]))

    return run


@dataclass
class Run:
    code: int
    """Exit code."""
    out: str
    """Standard output."""
    err: str
    """Standard error."""


def run_captured(*args: str, code: int = 0, root: Path | None = None) -> Run:
    """`cli` for module- and session-scoped fixtures (`capsys` is per test): the same environment and checks, the
    output captured with `contextlib.redirect_stdout`/`redirect_stderr` (the consoles print to the current streams)."""
    import contextlib
    import io

    argv = (["--root", str(root)] if root is not None else []) + list(args)
    stdout, stderr = io.StringIO(), io.StringIO()
    with pytest.MonkeyPatch.context() as monkeypatch:
        monkeypatch.setenv("COLUMNS", "200")
        monkeypatch.delenv("PLATFORMCTL_ROOT", raising=False)
        with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
            exit_code = main(argv)
    result = Run(exit_code, stdout.getvalue(), stderr.getvalue())
    assert exit_code == code, f"exit {exit_code} (wanted {code})\nstdout:\n{result.out}\nstderr:\n{result.err}"
    if "--debug" not in args:
        assert "Traceback" not in result.out + result.err, result.err
    return result


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> Callable[..., Run]:
    """`cli(*args, code=0, root=None)`: run platformctl, assert its exit code and that no traceback leaked."""
    monkeypatch.setenv("COLUMNS", "200")
    monkeypatch.delenv("PLATFORMCTL_ROOT", raising=False)

    def run(*args: str, code: int = 0, root: Path | None = None) -> Run:
        argv = (["--root", str(root)] if root is not None else []) + list(args)
        capsys.readouterr()
        exit_code = main(argv)
        captured = capsys.readouterr()
        result = Run(exit_code, captured.out, captured.err)
        assert exit_code == code, f"exit {exit_code} (wanted {code})\nstdout:\n{result.out}\nstderr:\n{result.err}"
        if "--debug" not in args:
            assert "Traceback" not in result.out + result.err, result.err
        return result

    return run


def import_program(root: Path) -> None:
    """Import every module of the program's packages (`platformctl.offline.keys.program_packages`: the program's
    and the engine's) from this checkout, except `__main__` scripts.

    A plan's cache keys hash the modules of those packages that the planning process imported from outside the
    project planned (platformctl.offline.keys): a test process imports them from this checkout, so a key depends on
    which of them the process had imported when it planned the project. A fixture whose cache tests reuse in copies
    of its project calls this before planning: the set is complete from then on, the copies' keys equal the
    fixture's, and a copy's plan reads the cache instead of planning every stack again."""
    import importlib
    import pkgutil

    from platformctl.offline.keys import program_packages

    for top in sorted(program_packages(root)):
        package = importlib.import_module(top)
        for module in pkgutil.walk_packages(getattr(package, "__path__", []), f"{top}."):
            if module.name.rpartition(".")[2] != "__main__":
                importlib.import_module(module.name)


@dataclass
class PlannedFleet:
    root: Path
    """The repository copy after the plan (its result cache holds every stack): read only, copied by a test that
    plans in it or edits it."""
    json: Path
    """The plan's `--json` document."""
    run: Run
    """The command's exit code and output."""


@pytest.fixture(scope="session")
def planned_fleet(tmp_path_factory: pytest.TempPathFactory) -> PlannedFleet:
    """`platformctl plan --all --json --workers 2` of a fresh copy of the example fleet (nothing cached: every stack
    planned, in two worker processes), once per session: the tests that need a cold plan of every stack read it.
    Nothing writes to it: a test that plans in the repository or edits it works on a copy, whose plans read the
    cache this plan left (`import_program`)."""
    import_program(ROOT)
    base = tmp_path_factory.mktemp("planned-fleet")
    root = copy_repo(ROOT, base / "repo")
    out = base / "plan.json"
    run = run_captured("plan", "--all", "--json", str(out), "--workers", "2", root=root)
    return PlannedFleet(root, out, run)


def tree_snapshot(root: Path) -> dict[str, bytes]:
    """Every file under the repository's partners/ and stacks/ (to prove nothing was written), but Python's own
    bytecode caches: partners/ is also a package, and where PYTHONDONTWRITEBYTECODE is not set (most machines)
    importing it writes partners/__pycache__/."""
    return {
        str(p.relative_to(root)): p.read_bytes()
        for folder in ("partners", "stacks")
        for p in sorted((root / folder).rglob("*"))
        if p.is_file() and "__pycache__" not in p.relative_to(root).parts
    }


AMBIENT_AWS = (
    "AWS_PROFILE",
    "AWS_SESSION_TOKEN",
    "AWS_SECURITY_TOKEN",
    "AWS_ROLE_ARN",
    "AWS_WEB_IDENTITY_TOKEN_FILE",
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
    "AWS_CONTAINER_CREDENTIALS_FULL_URI",
)
"""Environment that would lead boto3 to the developer's own AWS identity."""


@pytest.fixture(scope="session")
def moto_server() -> Iterator[str]:
    """A moto server (every AWS service boto3 calls) on a free loopback port; stopped when the session ends."""
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()


@pytest.fixture
def aws(moto_server: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> str:
    """boto3 pointed at a freshly reset moto server with test credentials and no user AWS config; its URL."""
    import urllib.request

    urllib.request.urlopen(urllib.request.Request(f"{moto_server}/moto-api/reset", method="POST"), timeout=10).close()
    for name in AMBIENT_AWS:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")  # never ask 169.254.169.254
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_server)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    return moto_server


SHARED_PLAN_GROUP = "fleet"
"""pytest-xdist group of every module that reads the session's `fleet`: one worker plans each stack once."""
SHARED_PLANS = (SHARED_PLAN_GROUP, "planned_fleet", "published_calsync_plan")
"""Session-scoped plans that several modules read: the modules reading one of them run on one worker, in a group
named after it (a module reading two goes with the first)."""


@pytest.hookimpl(wrapper=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> Iterator[None]:
    """Under pytest-xdist (`./dev test` runs `-n CORES+2 --dist loadgroup`) a module whose tests share expensive setup
    runs on one worker: the modules that read `fleet` (or another of SHARED_PLANS) together, and each module with a
    module-scoped fixture (a server, a planned fleet copy) by itself; every other test goes wherever a worker is free.

    A wrapper, so that the markers are there before any plugin's hook runs: a worker's xdist plugin reads them in
    its own `pytest_collection_modifyitems`, where it appends `@group` to each node id (what the scheduler groups
    by). Since pytest 9.2 a node id is structured and xdist 3.8 writes its suffix where pytest no longer reads it
    (pytest-dev/pytest-xdist#1386, open): after the hooks, the suffixed id xdist wrote is made the item's id, as
    the proposed fix does (pytest-dev/pytest-xdist#1388). Without it no test was grouped: each worker planned the
    fleet's stacks and built a module's fixtures for its share of the module's tests."""
    if config.pluginmanager.hasplugin("xdist"):
        _mark_groups(items)
    result = yield
    for item in items:
        grouped = getattr(item, "_nodeid", None)  # xdist 3.8's suffixed id (what an older pytest's nodeid reads)
        parse = getattr(type(getattr(item, "_id", None)), "parse", None)  # pytest >= 9.2: NodeId.parse
        if isinstance(grouped, str) and grouped != item.nodeid and parse is not None:
            item._id = parse(grouped)
    return result


def _mark_groups(items: list[pytest.Item]) -> None:
    groups: dict[str, str] = {}
    for item in items:
        info = getattr(item, "_fixtureinfo", None)
        if info is None:
            continue
        module = item.nodeid.split("::", 1)[0]
        shared = [name for name in SHARED_PLANS if name in info.names_closure]
        if shared:
            groups[module] = shared[0]
        elif getattr(getattr(item, "module", None), "SPREAD_OVER_WORKERS", False):
            continue  # its module fixture is cheap and its tests independent: each worker makes its own
        elif any(defs[-1].scope == "module" for defs in info.name2fixturedefs.values() if defs):
            groups.setdefault(module, module)
    for item in items:
        group = groups.get(item.nodeid.split("::", 1)[0])
        if group is not None:
            item.add_marker(pytest.mark.xdist_group(group))


def pytest_collection_finish(session: pytest.Session) -> None:
    """The collected test modules and what they import (about 400,000 objects) live as long as the test process:
    frozen, as a planning process freezes its imports (platformctl/offline/planner.py, `_settle_heap`), so that
    full collections during the tests stop traversing them."""
    gc.collect()
    gc.freeze()
