"""Plan diffs (`--against`)."""

from __future__ import annotations

from platformctl.planjson import changed_paths, diff_plans, diff_stack


def step(urn: str, **inputs) -> dict:
    return {"op": "create", "urn": urn, "newState": {"type": "t", "urn": urn, "inputs": inputs}}


def test_changed_paths_are_dotted_with_list_indexes() -> None:
    old = {"a": {"b": 1, "c": [1, 2]}, "d": "x", "gone": 1}
    new = {"a": {"b": 2, "c": [1, 3]}, "d": "x", "added": 1}
    assert changed_paths(old, new) == ["a.b", "a.c[1]", "added", "gone"]
    assert changed_paths([1], [1, 2], "list") == ["list"]


def test_ops() -> None:
    old = {"steps": [step("u1", a=1), step("u2", a=1), step("u3", a=1)]}
    new = {"steps": [step("u1", a=1), step("u2", a=2), step("u4", a=1)], "outputs": {"x": 1}}
    result = diff_stack(old, new)
    assert [(s["op"], s["urn"]) for s in result["steps"]] == [
        ("same", "u1"),
        ("update", "u2"),
        ("create", "u4"),
        ("delete", "u3"),
    ]
    assert result["steps"][1]["diffs"] == ["a"]
    assert result["changeSummary"] == {"create": 1, "update": 1, "delete": 1, "same": 1}
    assert result["outputs"] == {"x": 1}


def test_options_count_as_changes() -> None:
    old = {"steps": [step("u1")]}
    new_step = step("u1")
    new_step["newState"]["retainOnDelete"] = True
    assert diff_stack(old, {"steps": [new_step]})["steps"][0]["diffs"] == ["(retainOnDelete)"]


def test_removed_stacks_only_when_everything_was_planned() -> None:
    old = {"stacks": {"a": {"steps": [step("u1")]}, "b": {"steps": [step("u2")]}}}
    new = {"stacks": {"a": {"steps": [step("u1")]}}}
    assert list(diff_plans(old, new, include_removed=False)["stacks"]) == ["a"]
    removed = diff_plans(old, new, include_removed=True)["stacks"]["b"]
    assert removed["changeSummary"] == {"delete": 1}
