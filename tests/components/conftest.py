"""Plans that several component test modules read."""

from __future__ import annotations

import pytest

from scripts.fleet import copy_repo
from tests.conftest import ROOT, Plan
from tests.integrations.conftest import published_calsync


@pytest.fixture(scope="session")
def published_calsync_plan(tmp_path_factory: pytest.TempPathFactory) -> Plan:
    """integration-calsync (and the stacks it reads) planned once per session in a copy of the repository where
    calsync is published and installed by acme-voice and sunrise-telecom. The sandbox's and the conformance job's
    tests read it (read only); under pytest-xdist they run on one worker (tests/conftest.py, SHARED_PLANS)."""
    from fleet.repo import Repo
    from foundation.stacks import parse_stack_name
    from platformctl.offline.planner import plan_stacks

    root = copy_repo(ROOT, tmp_path_factory.mktemp("marketplace") / "repo")
    published_calsync(root, installs=("acme-voice", "sunrise-telecom"))
    return Plan(plan_stacks(Repo(root), [parse_stack_name("integration-calsync")]))
