"""platformctl.shards: the split's properties, and the merge's refusals and cross-stack findings."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from foundation.errors import InputError
from platformctl.ci.merge import merge
from platformctl.shards import (
    MAX_SHARDS,
    WEIGHTS,
    fleet_digest,
    kind_of,
    parse_shard,
    planning_key,
    split,
)
from tests.conftest import ROOT

REGIONS = [f"r{n:02d}" for n in range(15)]
PARTNERS = {f"partner-p{n:03d}": REGIONS[(n * 7) % 15] for n in range(500)}
FLEET = ["global"] + [f"region-{code}" for code in REGIONS] + list(PARTNERS)


def home(name: str) -> str | None:
    return PARTNERS.get(name)


def weight(names: list[str]) -> int:
    return sum(WEIGHTS[kind_of(name)] for name in names)


@pytest.mark.parametrize("text", ["1/1", "1/2", "2/2", "3/8", "64/64", "07/09"])
def test_good_shards_parse(text: str) -> None:
    shard = parse_shard(text)
    index, count = (int(part) for part in text.split("/"))
    assert (shard.index, shard.count) == (index, count)


@pytest.mark.parametrize(
    "text",
    ["0/2", "3/2", "a/b", "1/0", "1/2/3", " 1/2", "1/2 ", "1/2\n", "", "/", "1/", "/2", "-1/2", "+1/2", "1/65",
     "65/65", "99999999999999999999/99999999999999999999", "\uff11/2", "1\u00a0/2", "1.0/2"],
)  # fmt: skip
def test_bad_shards_are_bad_input_naming_the_option(text: str) -> None:
    with pytest.raises(InputError) as caught:
        parse_shard(text)
    (problem,) = caught.value.problems
    assert problem.field == "--shard" and "K/N" in problem.message


@pytest.mark.parametrize("count", [1, 2, 3, 5, 8, 16, 64])
def test_the_split_is_a_partition_within_one_stack_of_the_mean(count: int) -> None:
    parts = split(FLEET, count, home)
    assert len(parts) == count
    flat = [name for part in parts for name in part]
    assert sorted(flat) == sorted(FLEET)  # every stack in exactly one shard
    for part in parts:
        assert part == sorted(part, key=planning_key)
        assert weight(part) <= weight(FLEET) / count + max(WEIGHTS.values())
        assert weight(part) >= weight(FLEET) / count - max(WEIGHTS.values())


def test_the_split_keeps_partners_with_their_region() -> None:
    for count in (2, 4, 8):
        for part in split(FLEET, count, home):
            regions_read = {PARTNERS[n] for n in part if n in PARTNERS}
            own_regions = {n.removeprefix("region-") for n in part if n.startswith("region-")}
            # Only the region cut at the shard's start is planned as someone else's dependency.
            assert len(regions_read - own_regions) <= 1, (count, regions_read - own_regions)
            assert len(regions_read) <= len(REGIONS) // count + 2


def test_the_split_ignores_input_order_and_duplicates() -> None:
    shuffled = FLEET + FLEET[:40]
    random.Random(7).shuffle(shuffled)
    assert split(shuffled, 6, home) == split(FLEET, 6, home)


def test_the_split_is_the_same_under_any_hash_seed() -> None:
    script = (
        "import json, sys\n"
        "from tests.platformctl.test_shards import FLEET, home\n"
        "from platformctl.shards import split\n"
        "print(json.dumps(split(list(reversed(FLEET)), 7, home)))\n"
    )
    results = set()
    for seed in ("0", "1", "4242"):
        env = {**os.environ, "PYTHONHASHSEED": seed}
        done = subprocess.run([sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True, text=True)
        assert done.returncode == 0, done.stderr
        results.add(done.stdout)
    assert results == {json.dumps(split(FLEET, 7, home)) + "\n"}


def test_more_shards_than_stacks_leaves_some_empty() -> None:
    parts = split(["partner-b", "global", "region-x"], 5, lambda _: "x")
    assert sorted(n for p in parts for n in p) == ["global", "partner-b", "region-x"]
    assert sum(1 for p in parts if not p) == 2
    assert split([], 3, home) == [[], [], []]


def test_the_fleet_digest_names_the_set() -> None:
    assert fleet_digest(["b", "a", "a"]) == fleet_digest(["a", "b"]) != fleet_digest(["a"])


# ---------------------------------------------------------------- merging

ROUTE = "kong:index/route:Route"


def _stack(*hosts: str) -> dict[str, Any]:
    steps = [
        {
            "op": "create",
            "urn": f"urn:pulumi:s::platform::{ROUTE}::route-{n}",
            "newState": {"type": ROUTE, "urn": "u", "custom": True, "parent": "", "inputs": {"hosts": [host]}},
        }
        for n, host in enumerate(hosts)
    ]
    return {"steps": steps, "changeSummary": {"create": len(steps)} if steps else {}}


def _violation(stack: str, policy: str = "tags", level: str = "advisory") -> dict[str, str]:
    return {"policy": policy, "level": level, "stack": stack, "urn": f"stack:{stack}", "message": "m"}


def _shard_docs(tmp_path: Path, parts: list[dict[str, dict[str, Any]]], **extra: Any) -> list[Path]:
    fleet = [name for part in parts for name in part]
    paths = []
    for index, part in enumerate(parts, 1):
        doc: dict[str, Any] = {
            "stacks": part,
            "violations": [],
            "shard": {
                "index": index,
                "count": len(parts),
                "fleet": fleet_digest(fleet),
                "stacks": list(part),
                "source": "0" * 64,
            },
        }
        doc.update(extra.get(str(index), {}))
        if "base" in doc:
            del doc["shard"]["source"]  # a ci-preview shard names its commits instead
        path = tmp_path / f"shard-{index}.json"
        path.write_text(json.dumps(doc))
        paths.append(path)
    return paths


def _refused(paths: list[Path]) -> Any:
    with pytest.raises(InputError) as caught:
        merge(paths)
    (problem,) = caught.value.problems
    return problem


PARTS = [{"partner-b": _stack("b.example"), "global": _stack()}, {"region-x": _stack(), "partner-a": _stack()}]


def test_merge_orders_stacks_and_findings_as_the_planner_does(tmp_path: Path) -> None:
    paths = _shard_docs(
        tmp_path,
        PARTS,
        **{
            "1": {"violations": [_violation("partner-b"), _violation("global")]},
            "2": {"violations": [_violation("partner-a"), _violation("region-x", "x", "mandatory")]},
        },
    )
    merged = merge(list(reversed(paths)))
    assert merged.kind == "plan" and merged.markdown is None
    assert list(merged.document) == ["stacks", "violations"]
    assert list(merged.document["stacks"]) == ["global", "region-x", "partner-a", "partner-b"]
    assert [(v["stack"], v["policy"]) for v in merged.document["violations"]] == [
        ("global", "tags"),
        ("region-x", "x"),
        ("partner-a", "tags"),
        ("partner-b", "tags"),
    ]
    assert merged.mandatory == 1


def test_merge_finds_a_host_claimed_by_partners_in_two_shards(tmp_path: Path) -> None:
    parts = [
        {"partner-b": _stack("shared.example", "b.example"), "partner-c": _stack("c.example")},
        {"partner-a": _stack("shared.example"), "global": _stack("shared.example")},
    ]
    # A shard's own unique-hosts findings are dropped and recomputed over all shards: none is doubled.
    stale = _violation("partner-b", "unique-hosts", "mandatory")
    merged = merge(_shard_docs(tmp_path, parts, **{"1": {"violations": [stale]}}))
    assert merged.document["violations"] == [
        {
            "policy": "unique-hosts",
            "level": "mandatory",
            "stack": stack,
            "urn": f"stack:{stack}",
            "message": f"host 'shared.example' is also claimed by {other}",
        }
        for stack, other in (("partner-a", "partner-b"), ("partner-b", "partner-a"))
    ]
    assert merged.mandatory == 2


def test_merge_refuses_a_plain_plan(tmp_path: Path) -> None:
    plain = tmp_path / "plan.json"
    plain.write_text(json.dumps({"stacks": {}, "violations": []}))
    problem = _refused([plain])
    assert problem.source == str(plain) and "not a shard document" in problem.message


def test_merge_refuses_a_missing_or_doubled_shard(tmp_path: Path) -> None:
    one, two = _shard_docs(tmp_path, PARTS)
    assert "shard(s) 2 of 2 missing" in _refused([one]).message
    problem = _refused([one, two, one])
    assert problem.source == str(one) and problem.field == "shard.index"


def test_merge_refuses_shards_of_different_splits(tmp_path: Path) -> None:
    one, _ = _shard_docs(tmp_path, PARTS)
    (tmp_path / "other").mkdir()
    _, two, _ = _shard_docs(tmp_path / "other", [{"global": _stack()}, {"partner-a": _stack()}, {}])
    problem = _refused([one, two])
    assert problem.source == str(two) and problem.field == "shard.count"
    (tmp_path / "third").mkdir()
    _, two = _shard_docs(tmp_path / "third", [{"global": _stack()}, {"partner-a": _stack()}])
    problem = _refused([one, two])
    assert problem.source == str(two) and problem.field == "shard.fleet"


def test_merge_refuses_a_stack_in_two_shards(tmp_path: Path) -> None:
    one, two = _shard_docs(tmp_path, [{"global": _stack()}, {"partner-a": _stack()}])
    doc = json.loads(two.read_text())
    doc["stacks"]["global"] = _stack()
    doc["shard"]["stacks"].append("global")
    two.write_text(json.dumps(doc))
    problem = _refused([one, two])
    assert problem.source == str(two) and "'global' is also in" in problem.message


def test_merge_refuses_stacks_that_are_not_the_split_fleet(tmp_path: Path) -> None:
    one, two = _shard_docs(tmp_path, PARTS)
    doc = json.loads(two.read_text())
    del doc["stacks"]["partner-a"]
    doc["shard"]["stacks"].remove("partner-a")
    two.write_text(json.dumps(doc))
    assert "do not make up" in _refused([one, two]).message


def test_merge_refuses_mixed_kinds(tmp_path: Path) -> None:
    one, two = _shard_docs(tmp_path, PARTS)
    doc = json.loads(two.read_text())
    doc.update({"base": "a" * 40, "head": "b" * 40, "notes": []})
    doc["shard"]["affected"] = {name: ["x.yaml"] for name in doc["stacks"]}
    del doc["shard"]["source"]  # a ci-preview shard names its commits instead
    two.write_text(json.dumps(doc))
    problem = _refused([one, two])
    assert problem.source == str(two) and "ci-preview shard" in problem.message


@pytest.mark.parametrize(
    ("edit", "field"),
    [
        (lambda d: d["shard"].update(index=True), "shard"),
        (lambda d: d["shard"].update(index=3), "shard"),
        (lambda d: d["shard"].update(count=65, index=1), "shard"),
        (lambda d: d["shard"].update(fleet="../../etc"), "shard.fleet"),
        (lambda d: d["shard"].update(stacks=["global"]), "shard.stacks"),
        (lambda d: d["shard"].update(extra=1), "shard"),
        (lambda d: d.update(extra=1), ""),
        (lambda d: d.update(violations={}), "violations"),
        (lambda d: d.update(violations=[_violation("partner-zzz")]), "violations.0.stack"),
        (lambda d: d.update(violations=[{**_violation("global"), "level": "fatal"}]), "violations.0.level"),
        (lambda d: d.update(violations=[{**_violation("global"), "message": 3}]), "violations.0"),
        (lambda d: d["stacks"]["global"].update(steps="x"), "stacks.global.steps"),
    ],
)
def test_merge_refuses_a_malformed_shard_naming_the_file(tmp_path: Path, edit: Any, field: str) -> None:
    one, two = _shard_docs(tmp_path, PARTS)
    doc = json.loads(one.read_text())
    edit(doc)
    one.write_text(json.dumps(doc))
    problem = _refused([one, two])
    assert (problem.source, problem.field) == (str(one), field)


@pytest.mark.parametrize("content", [b"", b"{", b"[]", b"\xff\xfe", b"[" * 100_000 + b"]" * 100_000, b'{"stacks": 1}'])
def test_merge_refuses_broken_json_naming_the_file(tmp_path: Path, content: bytes) -> None:
    one, two = _shard_docs(tmp_path, PARTS)
    one.write_bytes(content)
    assert _refused([one, two]).source == str(one)


def test_merge_refuses_an_oversized_file_without_reading_it(tmp_path: Path) -> None:
    one, two = _shard_docs(tmp_path, PARTS)
    with one.open("r+b") as handle:
        handle.truncate(65 * 1024 * 1024)  # sparse: nothing is read if the size is checked first
    problem = _refused([two, one])
    assert problem.source == str(one) and "larger than" in problem.message


def test_merge_refuses_no_files_and_too_many(tmp_path: Path) -> None:
    assert _refused([]).field == "FILES"
    assert "at most" in _refused([tmp_path / "x.json"] * (MAX_SHARDS + 1)).message


def test_only_shard_one_reports_findings_about_the_whole_change(tmp_path: Path) -> None:
    preview = {"base": "a" * 40, "head": "b" * 40, "notes": []}
    paths = _shard_docs(tmp_path, PARTS, **{"1": preview, "2": preview})
    for path in paths:
        doc = json.loads(path.read_text())
        doc["shard"]["affected"] = {name: ["stacks/x.yaml"] for name in doc["stacks"]}
        path.write_text(json.dumps(doc))
    removed = _violation("partner-gone", "offboard-first", "mandatory")
    two = json.loads(paths[1].read_text())
    two["violations"] = [removed]
    paths[1].write_text(json.dumps(two))
    problem = _refused(paths)
    assert problem.source == str(paths[1]) and "only shard 1" in problem.message
    two["violations"] = []
    paths[1].write_text(json.dumps(two))
    one = json.loads(paths[0].read_text())
    one["violations"] = [removed]  # about a stack no shard plans: the partner's files are gone
    paths[0].write_text(json.dumps(one))
    merged = merge(paths)
    assert merged.kind == "ci-preview" and merged.document["violations"] == [removed]
    assert merged.markdown is not None and merged.markdown.count("offboard-first") == 1


def test_a_preview_merge_writes_cross_stack_findings_as_ci_preview_does(tmp_path: Path) -> None:
    preview = {"base": "a" * 40, "head": "b" * 40, "notes": []}
    parts = [{"partner-b": _stack("shared.example")}, {"partner-a": _stack("shared.example")}]
    paths = _shard_docs(tmp_path, parts, **{"1": preview, "2": preview})
    for path in paths:
        doc = json.loads(path.read_text())
        doc["shard"]["affected"] = {name: ["components/x.py"] for name in doc["stacks"]}
        path.write_text(json.dumps(doc))
    merged = merge(paths)
    assert [list(v) for v in merged.document["violations"]] == [["stack", "urn", "policy", "level", "message"]] * 2
    assert merged.markdown is not None and "2 mandatory policy violation(s)" in merged.markdown
    assert list(merged.document) == ["base", "head", "stacks", "violations", "notes"]


@pytest.mark.parametrize("hosts", [5, "shared.example", None, {"a": 1}, [3, None, ["x"]]])
def test_hosts_that_are_not_a_list_of_names_claim_nothing(tmp_path: Path, hosts: Any) -> None:
    parts = [{"partner-b": _stack("shared.example")}, {"partner-a": _stack("x")}]
    one, two = _shard_docs(tmp_path, parts)
    doc = json.loads(two.read_text())
    doc["stacks"]["partner-a"]["steps"][0]["newState"]["inputs"]["hosts"] = hosts
    two.write_text(json.dumps(doc))
    assert merge([one, two]).document["violations"] == []


def test_merge_refuses_devices_and_pipes_without_reading_them(tmp_path: Path) -> None:
    one, _ = _shard_docs(tmp_path, PARTS)
    pipe = tmp_path / "pipe.json"
    os.mkfifo(pipe)  # nothing ever writes to it: reading would block forever
    for hostile in (Path("/dev/zero"), pipe):
        problem = _refused([one, hostile])
        assert problem.source == str(hostile) and "not a regular file" in problem.message
    assert _refused([one, tmp_path]).source == str(tmp_path)  # a directory


def test_integration_stacks_come_after_every_region_in_planning_order() -> None:
    fleet = [*FLEET, "integration-calsync", "integration-ledgerlink-crm"]
    for count in (1, 3):
        parts = split(fleet, count, home)
        assert sorted(name for part in parts for name in part) == sorted(fleet)
        for part in parts:
            assert part == sorted(part, key=planning_key)
    assert split(fleet, 1, home)[0][-2:] == ["integration-calsync", "integration-ledgerlink-crm"]
