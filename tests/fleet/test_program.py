"""The program's files, derived once from its imports, feed the cache key, ci-preview and repository copies."""

from __future__ import annotations

from pathlib import Path

from fleet.program import data_owners, program_files, top_level_entries
from platformctl.offline.cache import program_fingerprint
from tests.conftest import ROOT


def test_every_module_the_program_imports_is_a_program_file() -> None:
    files = set(program_files(ROOT))
    for expected in (
        "__main__.py",
        "Pulumi.yaml",
        "partners/spec.py",  # missing from the cache key before this list was derived
        "partners/tiers.py",
        "partners/tiers.yaml",
        "regions/catalog.py",
        "regions/regions.yaml",
        "regions/countries.yaml",
        "gateway/apis.yaml",
        "components/partner_tenant.py",
        "fleet/repo.py",
        "foundation/naming.py",
        "policies/rules.py",
        "platformctl/offline/recorder.py",
    ):
        assert expected in files, expected
    assert not [f for f in files if f.startswith(("tests/", "cli/", "scripts/"))]


def test_a_new_module_is_covered_the_day_it_is_imported(tmp_path: Path) -> None:
    tree = tmp_path / "tree"
    (tree / "components").mkdir(parents=True)
    (tree / "components" / "__init__.py").write_text("")
    (tree / "components" / "fresh.py").write_text("X = 'data.yaml'\n")
    (tree / "components" / "data.yaml").write_text("a: 1\n")
    (tree / "__main__.py").write_text("def build_global(repo, key):\n    from components.fresh import X\n")
    files = program_files(tree)
    assert "components/fresh.py" in files and "components/data.yaml" in files
    assert data_owners(tree, "components/data.yaml") == {"components.fresh"}


def test_the_cache_key_follows_a_change_to_the_spec_model(tmp_path: Path) -> None:
    from scripts.fleet import copy_repo

    copy = copy_repo(ROOT, tmp_path / "copy")
    before = program_fingerprint(copy)
    spec = copy / "partners" / "spec.py"
    spec.write_text(spec.read_text() + "\n# changed\n")
    program_fingerprint.cache_clear()
    assert program_fingerprint(copy) != before


def test_a_copy_holds_what_the_program_needs() -> None:
    entries = top_level_entries(ROOT)
    assert {"__main__.py", "Pulumi.yaml", "components", "fleet", "foundation", "stacks", "partners"} <= set(entries)
    assert "tests" not in entries and "cli" not in entries
