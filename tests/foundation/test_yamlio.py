"""Bounded YAML reading, round-trip edits and atomic writes."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from foundation.errors import InputError
from foundation.yamlio import (
    MAX_YAML_BYTES,
    check_output_file,
    edit_yaml_text,
    load_yaml_file,
    load_yaml_text,
    read_bounded,
    write_atomic,
)

BOMB = "a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
    f"{chr(98 + i)}: &{chr(98 + i)} [*{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, "
    f"*{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}]\n"
    for i in range(9)
)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (BOMB, "alias"),
        ("a: " + "[" * 40 + "]" * 40 + "\n", "nesting"),
        ("a: 1\na: 2\n", "duplicate key"),
        ("!!python/object/apply:os.system ['true']\n", "not valid YAML"),
        ("a: [1\n", "not valid YAML"),
        ("? [1, 2]\n: x\n", "scalars"),
    ],
)
def test_hostile_documents_are_refused(text: str, message: str) -> None:
    with pytest.raises(InputError, match=message) as caught:
        load_yaml_text(text, "spec.yaml")
    assert caught.value.problems[0].source == "spec.yaml"


def test_huge_files_are_refused_before_parsing(tmp_path: Path) -> None:
    big = tmp_path / "big.yaml"
    big.write_bytes(b"a: " + b"x" * (MAX_YAML_BYTES + 10))
    with pytest.raises(InputError, match="larger than"):
        read_bounded(big)
    with pytest.raises(InputError, match="not a regular file"):
        load_yaml_file(tmp_path)


def test_round_trip_edits_keep_what_they_do_not_touch() -> None:
    text = (
        "# reviewed by ops\n"
        "secretsprovider: awskms://alias/x\n"
        "encryptedkey: abc==\n"
        "config:\n"
        "  aws:region: eu-central-1   # pinned\n"
        "  platform:kongAdminToken:\n"
        "    secure: v1:AAAA\n"
        "  platform:kongAdminUrl: 'https://kong.internal.example'\n"
    )

    def edit(doc):
        doc["config"]["platform:offboardedOn"] = "2026-01-01"

    edited = edit_yaml_text(text, "stack.yaml", edit)
    for kept in (
        "# reviewed by ops",
        "secretsprovider: awskms://alias/x",
        "encryptedkey: abc==",
        "# pinned",
        "secure: v1:AAAA",
        "'https://kong.internal.example'",
    ):
        assert kept in edited
    assert load_yaml_text(edited, "s")["config"]["platform:offboardedOn"] == "2026-01-01"


def test_round_trip_edits_run_the_bounded_checks_first() -> None:
    with pytest.raises(InputError, match="alias"):
        edit_yaml_text(BOMB, "stack.yaml", lambda doc: None)


def test_atomic_write_replaces_whole_and_leaves_no_temporary(tmp_path: Path) -> None:
    target = tmp_path / "f.yaml"
    target.write_text("old")
    write_atomic(target, "new")
    assert target.read_text() == "new"
    write_atomic(target, b"bytes")
    assert target.read_bytes() == b"bytes"
    assert [p.name for p in tmp_path.iterdir()] == ["f.yaml"]


def test_atomic_write_replaces_a_planted_symlink_not_its_target(tmp_path: Path) -> None:
    victim = tmp_path / "victim"
    victim.write_text("keep")
    link = tmp_path / "spec.yaml"
    link.symlink_to(victim)
    write_atomic(link, "written")
    assert victim.read_text() == "keep" and not link.is_symlink()


def test_output_files_must_be_files(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="is a directory"):
        check_output_file(tmp_path, "--json")
    with pytest.raises(InputError, match="does not exist"):
        check_output_file(tmp_path / "no" / "plan.json", "--json")
    check_output_file(tmp_path / "plan.json", "--json")


def test_atomic_write_keeps_the_mode_of_the_file_it_replaces(tmp_path: Path) -> None:
    kept = tmp_path / "kept.yaml"
    kept.write_text("old")
    kept.chmod(0o640)
    write_atomic(kept, "new")
    assert stat.S_IMODE(kept.stat().st_mode) == 0o640
    umask = os.umask(0o022)
    try:
        write_atomic(tmp_path / "new.yaml", "new")
    finally:
        os.umask(umask)
    assert stat.S_IMODE((tmp_path / "new.yaml").stat().st_mode) == 0o644


def test_output_files_must_not_be_devices_or_pipes(tmp_path: Path) -> None:
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    with pytest.raises(InputError, match="not a regular file"):
        check_output_file(fifo, "--json")
    with pytest.raises(InputError, match="not a regular file"):
        check_output_file(Path(os.devnull), "--json")
