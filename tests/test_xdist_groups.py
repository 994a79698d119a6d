"""The grouping hook in tests/conftest.py takes effect: under pytest-xdist's `--dist loadgroup` a module that reads
`fleet` runs with the other such modules on one worker, so each stack of the fleet is planned once."""

from __future__ import annotations

import pytest

from tests.conftest import SHARED_PLAN_GROUP, Plan


def test_a_module_reading_the_fleet_is_in_the_fleet_group(request: pytest.FixtureRequest, fleet: Plan) -> None:
    marker = request.node.get_closest_marker("xdist_group")
    if not request.config.pluginmanager.hasplugin("xdist"):
        assert marker is None  # nothing to group for
        return
    assert marker is not None and marker.args == (SHARED_PLAN_GROUP,)
    if hasattr(request.config, "workerinput") and request.config.getvalue("loadgroup"):
        # What the scheduler groups by: xdist suffixes the node id in its collection hook, if the marker was there.
        assert request.node.nodeid.endswith(f"@{SHARED_PLAN_GROUP}")
