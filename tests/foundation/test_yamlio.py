"""Bounded YAML reading, round-trip edits and atomic writes."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import yaml

from foundation import yamlio
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
from tests.conftest import ROOT

LOADERS = [yamlio._BoundedLoader] + ([yamlio._FastBoundedLoader] if yaml.__with_libyaml__ else [])
"""The pure-Python loader and, where PyYAML has libyaml, the fast one: every bound holds in both."""


@pytest.fixture(params=LOADERS, ids=lambda cls: cls.__name__)
def loader(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> type:
    monkeypatch.setattr(yamlio, "_LOADER", request.param)
    return request.param


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
        ("? {a: 1}\n: x\n", "scalars"),
        ("? !!set {a}\n: x\n", "scalars"),  # was a TypeError (unhashable set) escaping as a traceback
        ("a: !!python/name:os.system\n", "not valid YAML"),
        ("a: *nowhere\n", "undefined alias"),
        # Deep documents at the size bound, block and flow: refused by the depth count, never by the C stack.
        ("- " * (MAX_YAML_BYTES // 2 - 8) + "x\n", "nesting"),
        ("".join("  " * i + "k:\n" for i in range(400)), "nesting"),
        ("[" * (MAX_YAML_BYTES - 16), "not valid YAML"),
        ("a: x\x00y\n", "not valid YAML"),
        ("a: x\ud800y\n", "not valid YAML"),
        ("a: 1\n---\nb: 2\n", "single document"),
        ("<<: {a: 1}\na: 2\n", "not valid YAML"),  # merge keys could hide a duplicate: refused, as before
    ],
)
def test_hostile_documents_are_refused(text: str, message: str, loader: type) -> None:
    with pytest.raises(InputError, match=message) as caught:
        load_yaml_text(text, "spec.yaml")
    assert caught.value.problems[0].source == "spec.yaml"


def test_the_fast_loader_is_used_where_libyaml_is() -> None:
    assert yamlio._LOADER is (yamlio._FastBoundedLoader if yaml.__with_libyaml__ else yamlio._BoundedLoader)


def test_both_loaders_read_every_file_of_the_repository_the_same() -> None:
    files = [
        p
        for folder in ("partners", "regions", "gateway", "stacks")
        for p in sorted((ROOT / folder).rglob("*.yaml"))
        if "__pycache__" not in p.parts
    ] + [ROOT / "Pulumi.yaml"]
    assert len(files) > 20
    for path in files:
        text = path.read_text(encoding="utf-8")
        results = []
        for cls in LOADERS:
            loaded = cls(text)
            try:
                results.append(loaded.get_single_data())
            finally:
                loaded.dispose()
        assert all(result == results[0] for result in results), path


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("\ufeffa: 1\n", {"a": 1}),
        ("a: 1\r\nb: [1,\r\n  2]\r\nc: |\r\n  x\r\n  y\r\n", {"a": 1, "b": [1, 2], "c": "x\ny\n"}),
        ("\ufeffa: &x [1]\r\nb: *x\r\n", {"a": [1], "b": [1]}),
        ("a: 'NO'\nb: NO\nc: 2026-01-02\n", {"a": "NO", "b": False, "c": __import__("datetime").date(2026, 1, 2)}),
        ("", None),
    ],
)
def test_byte_order_marks_line_endings_and_yaml_1_1_types_read_alike(text: str, expected: object, loader: type) -> None:
    assert load_yaml_text(text, "spec.yaml") == expected


def test_bounds_at_their_limits_are_accepted(loader: type) -> None:
    deep = "a: " + "[" * (yamlio.MAX_DEPTH - 1) + "]" * (yamlio.MAX_DEPTH - 1) + "\n"
    assert load_yaml_text(deep, "s") is not None
    aliases = "a: &a 1\nb: [" + ", ".join(["*a"] * yamlio.MAX_ALIASES) + "]\n"
    assert load_yaml_text(aliases, "s")["b"] == [1] * yamlio.MAX_ALIASES
    with pytest.raises(InputError, match="alias"):
        load_yaml_text(aliases.replace("]", ", *a]"), "s")
    with pytest.raises(InputError, match="nesting"):
        load_yaml_text("a: " + "[" * yamlio.MAX_DEPTH + "]" * yamlio.MAX_DEPTH + "\n", "s")


def test_without_libyaml_the_pure_python_loader_keeps_every_bound() -> None:
    script = textwrap.dedent(
        """
        import sys
        sys.modules["yaml._yaml"] = None  # PyYAML as built without libyaml
        import yaml
        from foundation import yamlio
        from foundation.errors import InputError
        assert not yaml.__with_libyaml__ and yamlio._LOADER is yamlio._BoundedLoader
        assert yamlio.load_yaml_text("\\ufeffa: [1, 2]\\r\\n", "s") == {"a": [1, 2]}
        for text, message in [
            ("- " * 60000 + "x", "nesting"),
            ("a: &a [1]\\nb: [" + ", ".join(["*a"] * 65) + "]", "alias"),
            ("a: 1\\na: 2", "duplicate key"),
            ("a: !!python/object/apply:os.system ['true']", "not valid YAML"),
        ]:
            try:
                yamlio.load_yaml_text(text, "spec.yaml")
            except InputError as exc:
                assert exc.problems[0].source == "spec.yaml" and message in exc.problems[0].message, exc
            else:
                raise AssertionError(text[:40])
        print("pure")
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0 and done.stdout.strip() == "pure", done.stderr


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
