"""`plan --shard`, `ci-preview --shard`/`--list-affected` and `merge-plans` on the example fleet."""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest

from cli.app import main
from fleet.repo import STATE_DIR
from tests.cli.test_ci_preview import change, git, project_repo  # noqa: F401  (the module's git fixture)
from tests.conftest import PlannedFleet


@dataclass
class Fleet:
    root: Path
    """A copy of the repository (the example fleet in stacks/) with every stack in its result cache."""
    whole: Path
    """`plan --all --json`, every stack planned (nothing cached)."""
    shards: dict[int, list[Path]]
    """Shard count → `plan --all --shard K/N --json` of each K, read from the cache."""
    cold: Path
    """Shard 2/3 planned with `--no-cache` (every stack it plans planned, none read from the cache) before the
    others."""


def platformctl(*args: str, code: int = 0) -> None:
    """For module fixtures (the `cli` fixture is per test); the tests assert the output they care about."""
    assert main(list(args)) == code, args


@pytest.fixture(scope="module")
def fleet_plans(planned_fleet: PlannedFleet, tmp_path_factory: pytest.TempPathFactory) -> Fleet:
    """The example fleet planned whole (the session's cold `plan --all`, shared with test_plan: read, never
    written) and, in a copy of that plan's repository (with its cache), shard 2/3 planned with `--no-cache` (every
    stack it needs planned, none read), then every shard of 2 and of 3 read from the cache. The cold and the warm
    shard 2/3 come from one repository: their `shard` blocks carry its stacks' cache keys."""
    out = tmp_path_factory.mktemp("shards")
    root = Path(shutil.copytree(planned_fleet.root, out / "repo", symlinks=True))
    cold = out / "cold.json"
    platformctl("--root", str(root), "plan", "--all", "--shard", "2/3", "--no-cache", "--json", str(cold))
    shards = {}
    for count in (2, 3):
        shards[count] = [out / f"shard-{index}-of-{count}.json" for index in range(1, count + 1)]
        for index, path in enumerate(shards[count], 1):
            platformctl("--root", str(root), "plan", "--all", "--shard", f"{index}/{count}", "--json", str(path))
    return Fleet(root, planned_fleet.json, shards, cold)


@pytest.mark.parametrize("count", [2, 3])
def test_shards_merge_to_the_unsharded_plan_byte_for_byte(cli, fleet_plans: Fleet, tmp_path: Path, count: int) -> None:
    everything = list(json.loads(fleet_plans.whole.read_text())["stacks"])
    paths = fleet_plans.shards[count]
    docs = [json.loads(p.read_text()) for p in paths]
    for index, doc in enumerate(docs, 1):
        assert list(doc) == ["stacks", "violations", "shard"]
        assert doc["shard"]["index"] == index and doc["shard"]["count"] == count
        assert list(doc["stacks"]) == doc["shard"]["stacks"] and doc["stacks"]  # only its own stacks
    assert sorted(n for d in docs for n in d["stacks"]) == sorted(everything)
    assert len({d["shard"]["fleet"] for d in docs}) == 1
    merged = tmp_path / "merged.json"
    run = cli("merge-plans", *map(str, reversed(paths)), "--json", str(merged))
    assert f"merged {count} plan shard(s): 19 stack(s)" in run.out
    assert merged.read_bytes() == fleet_plans.whole.read_bytes()


def test_a_shard_is_the_same_cold_or_warm(fleet_plans: Fleet) -> None:
    assert fleet_plans.cold.read_bytes() == fleet_plans.shards[3][1].read_bytes()


def test_more_shards_than_stacks_gives_an_empty_shard(cli, repo_copy: Path, tmp_path: Path) -> None:
    first, second = tmp_path / "1.json", tmp_path / "2.json"
    cli("plan", "global", "--shard", "1/2", "--json", str(first), root=repo_copy)
    run = cli("plan", "global", "--shard", "2/2", "--json", str(second), root=repo_copy)
    assert "0 stack(s)" in run.out
    doc = json.loads(second.read_text())
    assert doc["stacks"] == {} and doc["violations"] == [] and doc["shard"]["stacks"] == []
    whole = tmp_path / "whole.json"
    cli("plan", "global", "--json", str(whole), root=repo_copy)
    cli("merge-plans", str(first), str(second), "--json", str(tmp_path / "merged.json"), root=repo_copy)
    assert (tmp_path / "merged.json").read_bytes() == whole.read_bytes()


@pytest.mark.parametrize(
    "value", ["0/2", "3/2", "a/b", "1/0", "1/2/3", " 1/2", "99999999999999999999/2", "1/65", "", "1/2;rm"]
)
def test_a_bad_shard_is_bad_input(cli, repo_copy: Path, tmp_path: Path, value: str) -> None:
    out = tmp_path / "plan.json"
    run = cli("plan", "--all", "--shard", value, "--json", str(out), code=2, root=repo_copy)
    assert "--shard" in run.err and not out.exists()


def test_shard_with_against_is_bad_input(cli, repo_copy: Path, tmp_path: Path) -> None:
    earlier = tmp_path / "earlier.json"
    earlier.write_text('{"stacks": {}}')
    out = tmp_path / "plan.json"
    run = cli("plan", "--all", "--shard", "1/2", "--against", str(earlier), "--json", str(out), code=2, root=repo_copy)
    assert "--shard" in run.err and "--against" in run.err and not out.exists()


def test_merge_plans_refuses_bad_input_and_writes_nothing(cli, fleet_plans: Fleet, tmp_path: Path) -> None:
    one, two = fleet_plans.shards[2]
    repo_copy = fleet_plans.root
    merged, report = tmp_path / "merged.json", tmp_path / "merged.md"
    run = cli("merge-plans", str(one), "--json", str(merged), code=2, root=repo_copy)
    assert "shard(s) 2 of 2 missing" in run.err
    run = cli("merge-plans", str(one), str(one), str(two), "--json", str(merged), code=2, root=repo_copy)
    assert str(one) in run.err and "shard 1 is also" in run.err
    run = cli("merge-plans", str(one), str(two), "--json", str(merged), "--markdown", str(report), code=2)
    assert "--markdown" in run.err
    plain = fleet_plans.whole
    run = cli("merge-plans", str(one), str(plain), "--json", str(merged), code=2)
    assert str(plain) in run.err and "not a shard document" in run.err
    cli("merge-plans", str(one), str(tmp_path / "nope.json"), "--json", str(merged), code=2)
    cli("merge-plans", str(one), str(two), "--json", str(tmp_path), code=2)
    assert not merged.exists() and not report.exists()


def test_a_host_claimed_by_partners_in_two_shards_is_found_by_the_merge(cli, repo_copy: Path, tmp_path: Path) -> None:
    spec = repo_copy / "partners" / "sakura-calls.yaml"
    spec.write_text(spec.read_text().replace("domain: ai.sakura-calls.example", "domain: voice.acme.example"))
    for partner in ("acme-voice", "sakura-calls"):
        stack = repo_copy / "stacks" / f"Pulumi.partner-{partner}.yaml"
        stack.write_text(stack.read_text() + "  platform:domainVerified: voice.acme.example\n")
    stacks = ["global", "region-ap-tokyo", "region-eu-central", "partner-acme-voice", "partner-sakura-calls"]
    whole = tmp_path / "whole.json"
    cli("plan", *stacks, "--json", str(whole), code=1, root=repo_copy)
    expected = [v for v in json.loads(whole.read_text())["violations"] if v["policy"] == "unique-hosts"]
    assert {v["stack"] for v in expected} == {"partner-acme-voice", "partner-sakura-calls"}
    paths = [tmp_path / f"shard-{index}.json" for index in (1, 2, 3)]
    for index, path in enumerate(paths, 1):
        code = main(["--root", str(repo_copy), "plan", *stacks, "--shard", f"{index}/3", "--json", str(path)])
        doc = json.loads(path.read_text())
        assert code == (1 if any(v["level"] == "mandatory" for v in doc["violations"]) else 0)
    docs = [json.loads(p.read_text()) for p in paths]
    homes = {n: d["shard"]["index"] for d in docs for n in d["stacks"]}
    assert homes["partner-acme-voice"] != homes["partner-sakura-calls"]  # the conflict spans two shards
    assert not any(v["policy"] == "unique-hosts" for d in docs for v in d["violations"])  # no shard sees it
    merged = tmp_path / "merged.json"
    run = cli("merge-plans", *map(str, paths), "--json", str(merged), code=1, root=repo_copy)
    assert "mandatory policy violation" in run.err
    assert merged.read_bytes() == whole.read_bytes()


def test_ci_preview_shards_merge_to_the_unsharded_preview(cli, project_repo: Path, tmp_path: Path) -> None:  # noqa: F811
    def edit(repo: Path) -> None:
        # Every partner is affected, and one is removed while active: a finding about the change as a whole.
        component = repo / "components" / "partner_tenant.py"
        component.write_text(component.read_text().replace('meta("tenant-limits")', 'meta("tenant-limit-range")'))
        (repo / "partners" / "sunrise-telecom.yaml").unlink()
        (repo / "stacks" / "Pulumi.partner-sunrise-telecom.yaml").unlink()

    change(project_repo, "shard-me", edit)
    listed = cli("ci-preview", "--base", "base", "--list-affected", root=project_repo)
    stacks = ["partner-acme-voice", "partner-sakura-calls", "partner-sunrise-telecom"]
    assert json.loads(listed.out) == {"count": 3, "stacks": stacks}
    cli("ci-preview", "--base", "base", "--list-affected", "--shard", "1/2", code=2, root=project_repo)

    cache = project_repo / STATE_DIR / "ci-cache"
    shutil.rmtree(cache, ignore_errors=True)
    whole_json, whole_md = tmp_path / "whole.json", tmp_path / "whole.md"
    args = ["ci-preview", "--base", "base", "--head", "HEAD"]
    cli(*args, "--json", str(whole_json), "--markdown", str(whole_md), code=1, root=project_repo)
    paths = []
    for index in (1, 2):
        shutil.rmtree(cache, ignore_errors=True)  # each CI runner starts cold
        path = tmp_path / f"shard-{index}.json"
        code = 1 if index == 1 else 0  # offboard-first is shard 1's to report
        cli(*args, "--shard", f"{index}/2", "--json", str(path), code=code, root=project_repo)
        paths.append(path)
    docs = [json.loads(p.read_text()) for p in paths]
    assert [len(d["stacks"]) for d in docs] in ([1, 2], [2, 1])
    merged_json, merged_md = tmp_path / "merged.json", tmp_path / "merged.md"
    cli("merge-plans", *map(str, paths), "--json", str(merged_json), "--markdown", str(merged_md), code=1)
    assert merged_json.read_bytes() == whole_json.read_bytes()
    assert merged_md.read_text() == whole_md.read_text()
    assert [v["policy"] for v in json.loads(merged_json.read_text())["violations"]] == ["offboard-first"]
    assert git(project_repo, "status", "--porcelain") == ""


def test_shards_planned_from_different_files_are_not_merged(cli, repo_copy: Path, tmp_path: Path) -> None:
    """Shards made before and after an edit would merge into a plan of no commit: the `source` digest (every
    stack's plan key) tells them apart."""
    stacks = ["global", "region-eu-central", "partner-acme-voice"]
    first, second = tmp_path / "1.json", tmp_path / "2.json"
    cli("plan", *stacks, "--shard", "1/2", "--json", str(first), root=repo_copy)
    spec = repo_copy / "partners" / "acme-voice.yaml"
    spec.write_text(spec.read_text().replace("voice_greeting: ", "voice_greeting: Edited. "))
    cli("plan", *stacks, "--shard", "2/2", "--json", str(second), root=repo_copy)
    merged = tmp_path / "merged.json"
    run = cli("merge-plans", str(first), str(second), "--json", str(merged), code=2, root=repo_copy)
    assert "shard.source" in run.err and "different splits" in run.err
    assert not merged.exists()
