"""The reference cache: stacks that are only read are planned once, until anything they depend on changes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from fleet.repo import Repo
from foundation.stacks import parse_stack_name
from platformctl.offline.planner import plan_stacks

PARTNER = [parse_stack_name("partner-acme-voice")]


def test_dependencies_come_from_the_cache_until_their_inputs_change(repo_copy: Path) -> None:
    cache = repo_copy / ".platformctl" / "cache"
    first = plan_stacks(Repo(repo_copy), PARTNER, workers=1, cache_dir=cache)
    assert list(first) == ["global", "region-eu-central", "partner-acme-voice"]
    second = plan_stacks(Repo(repo_copy), PARTNER, workers=1, cache_dir=cache)
    assert list(second) == ["partner-acme-voice"]

    def inputs(plans):
        return {r.urn: r.inputs for r in plans["partner-acme-voice"].recording.resources}

    assert inputs(second) == inputs(first)

    stack_file = repo_copy / "stacks" / "Pulumi.region-eu-central.yaml"
    stack_file.write_text(stack_file.read_text().replace("  - AT\n", ""))
    third = plan_stacks(Repo(repo_copy), PARTNER, workers=1, cache_dir=cache)
    assert list(third) == ["region-eu-central", "partner-acme-voice"]
    assert len(list(cache.glob("region-eu-central.*.json"))) == 1


def test_the_cache_holds_no_secret_values(repo_copy: Path) -> None:
    cache = repo_copy / ".platformctl" / "cache"
    plan_stacks(Repo(repo_copy), PARTNER, workers=1, cache_dir=cache)
    text = "".join(p.read_text() for p in cache.glob("*.json"))
    assert "PRIVATE KEY" not in text and "BEGIN" not in text


def test_secret_outputs_are_cached_as_unknowns(tmp_path: Path) -> None:
    from platformctl.offline.cache import ReferenceCache

    cache = ReferenceCache(tmp_path)
    cache.put("global", "k" * 64, {"keys": {"eu": "hunter2"}, "name": "x"}, ["keys"])
    cached = cache.get("global", "k" * 64)
    assert cached is not None and cached["outputs"]["name"] == "x"
    assert "hunter2" not in (tmp_path / f"global.{'k' * 32}.json").read_text()
    assert set(cached["outputs"]["keys"]) == {"eu"}


def test_plans_are_ordered_the_same_way_every_time(repo_copy: Path) -> None:
    first = plan_stacks(Repo(repo_copy), PARTNER, workers=1)["partner-acme-voice"].preview()
    second = plan_stacks(Repo(repo_copy), PARTNER, workers=1, cache_dir=repo_copy / ".platformctl" / "cache")
    assert first == second["partner-acme-voice"].preview()
    urns = [step["urn"] for step in first["steps"]]
    seen: set[str] = set()
    for step in first["steps"]:
        parent = step["newState"]["parent"]
        assert not parent or parent in seen  # parents first
        seen.add(step["urn"])
    assert urns[0].endswith("pulumi:pulumi:Stack::platform-partner-acme-voice")


@pytest.mark.parametrize(
    "content",
    ["not json", "[]", '{"key": "K", "outputs": [], "secret": []}', '{"key": "K", "outputs": {}, "secret": "x"}'],
)
def test_a_corrupted_or_foreign_entry_is_ignored(tmp_path: Path, content: str) -> None:
    from platformctl.offline.cache import ReferenceCache

    key = "K" * 64
    (tmp_path / f"global.{key[:32]}.json").write_text(content.replace('"K"', f'"{key}"'))
    assert ReferenceCache(tmp_path).get("global", key) is None


def test_a_corrupted_cache_is_replanned(repo_copy: Path) -> None:
    cache = repo_copy / ".platformctl" / "cache"
    plan_stacks(Repo(repo_copy), PARTNER, workers=1, cache_dir=cache)
    for entry in cache.glob("*.json"):
        data = json.loads(entry.read_text())
        entry.write_text(json.dumps({"key": data["key"], "outputs": 3, "secret": []}))  # right key, broken body
    replanned = plan_stacks(Repo(repo_copy), PARTNER, workers=1, cache_dir=cache)
    assert list(replanned) == ["global", "region-eu-central", "partner-acme-voice"]


def test_an_entry_edited_behind_the_caches_back_is_replanned(repo_copy: Path) -> None:
    cache = repo_copy / ".platformctl" / "cache"
    plan_stacks(Repo(repo_copy), PARTNER, workers=1, cache_dir=cache)
    for entry in cache.glob("*.json"):
        data = json.loads(entry.read_text())
        data["outputs"] = {name: 7 for name in data["outputs"]}  # right key, right shape, wrong values
        entry.write_text(json.dumps(data))
    replanned = plan_stacks(Repo(repo_copy), PARTNER, workers=1, cache_dir=cache)
    assert list(replanned) == ["global", "region-eu-central", "partner-acme-voice"]
