"""The program's files, derived once from its imports, feed the cache key, ci-preview and repository copies."""

from __future__ import annotations

import ast
import json
import os
from pathlib import Path

from fleet.program import (
    _DATA_LITERAL,
    ENGINE_MODULES,
    data_owners,
    kind_modules,
    module_file,
    program_files,
    program_paths,
    top_level_entries,
)
from foundation.stacks import StackKind
from platformctl.offline.keys import forget_program, program_fingerprint
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


def test_a_builders_helper_ties_its_lazy_imports_to_the_builders_kind(tmp_path: Path) -> None:
    """`build_integration` calls `developer_terms`, which imports components.integration_terms in its body: that
    module was missing from the program's files (an edit to it kept cached integration plans) until the derivation
    followed the builder's calls."""
    tree = tmp_path / "tree"
    (tree / "components").mkdir(parents=True)
    (tree / "components" / "__init__.py").write_text("")
    for name in ("terms", "deeper", "unused"):
        (tree / "components" / f"{name}.py").write_text("")
    (tree / "__main__.py").write_text(
        "def build_integration(repo, key):\n    if key:\n        helper(repo)\n\n\n"
        "def helper(repo):\n    from components.terms import X\n    return [deeper() for _ in X]\n\n\n"
        "def deeper():\n    import components.deeper\n\n\n"
        "def never_called():\n    import components.unused\n"
    )
    kinds = kind_modules(tree)
    assert {"components.terms", "components.deeper"} <= kinds[StackKind.INTEGRATION]
    assert "components.unused" not in set().union(*kinds.values())
    assert not kinds[StackKind.PARTNER] & {"components.terms", "components.deeper"}
    assert {"components/terms.py", "components/deeper.py"} <= set(program_files(tree))
    assert "components/integration_terms.py" in program_files(ROOT)
    assert "components.integration_terms" in kind_modules(ROOT)[StackKind.INTEGRATION]


def test_the_cache_key_follows_a_change_to_the_spec_model(tmp_path: Path) -> None:
    from scripts.fleet import copy_repo

    copy = copy_repo(ROOT, tmp_path / "copy")
    before = program_fingerprint(copy)
    spec = copy / "partners" / "spec.py"
    spec.write_text(spec.read_text() + "\n# changed\n")
    forget_program()
    assert program_fingerprint(copy) != before


def test_a_copy_holds_what_the_program_needs() -> None:
    entries = top_level_entries(ROOT)
    assert {"__main__.py", "Pulumi.yaml", "components", "fleet", "foundation", "stacks", "partners"} <= set(entries)
    assert "tests" not in entries and "cli" not in entries


# ---------------------------------------------------------------- the one-walk derivation against the plain one


def _reference_import_time(node: ast.AST) -> list[ast.AST]:
    nodes: list[ast.AST] = []
    pending = [node]
    while pending:
        item = pending.pop()
        if isinstance(item, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda):
            continue
        if isinstance(item, ast.If) and "TYPE_CHECKING" in ast.unparse(item.test):
            pending.extend(item.orelse)
            continue
        nodes.append(item)
        pending.extend(ast.iter_child_nodes(item))
    return nodes


def _reference_imports(tree: Path, node: ast.AST, package: str, nested: bool) -> set[str]:
    found: set[str] = set()
    for item in ast.walk(node) if nested else _reference_import_time(node):
        if isinstance(item, ast.Import):
            found.update(alias.name for alias in item.names)
        elif isinstance(item, ast.ImportFrom):
            if item.level:
                parts = package.split(".")[: len(package.split(".")) - item.level + 1]
                base = ".".join([*parts, item.module] if item.module else parts)
            else:
                base = item.module or ""
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in item.names)
    return {
        ".".join(name.split(".")[:end])
        for name in found
        for end in range(1, len(name.split(".")) + 1)
        if module_file(tree, ".".join(name.split(".")[:end]))
    }


def _reference_closure(tree: Path, modules: set[str], nested: bool) -> set[str]:
    pending, seen = set(modules), set()
    while pending:
        module = pending.pop()
        if module in seen:
            continue
        seen.add(module)
        path = module_file(tree, module)
        if path is not None:
            package = module if path.name == "__init__.py" else module.rpartition(".")[0]
            pending |= _reference_imports(tree, ast.parse(path.read_text()), package, nested)
    return seen


def _reference_kinds(tree: Path, nested: bool) -> dict[StackKind, set[str]]:
    syntax = ast.parse((tree / "__main__.py").read_text())
    common: set[str] = set()
    for node in syntax.body:
        if isinstance(node, ast.Import | ast.ImportFrom):
            common |= _reference_imports(tree, node, "", True)
    functions: dict[str, ast.FunctionDef] = {}
    for node in syntax.body:
        if isinstance(node, ast.FunctionDef):
            functions.setdefault(node.name, node)
    result = {}
    for kind in StackKind:
        modules, reached, pending = set(common), set(), [f"build_{kind.value}"]
        while pending:  # the builder and the program's functions it calls by name, at any depth
            name = pending.pop()
            if name in reached or name not in functions:
                continue
            reached.add(name)
            modules |= _reference_imports(tree, functions[name], "", True)
            pending += [
                n.func.id for n in ast.walk(functions[name]) if isinstance(n, ast.Call) and isinstance(n.func, ast.Name)
            ]
        result[kind] = _reference_closure(tree, modules, nested)
    return result


def _reference_literals(path: Path) -> set[str]:
    return {
        node.value
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and _DATA_LITERAL.match(node.value)
    }


def _assert_same_as_reference(tree: Path) -> None:
    for nested in (True, False):
        assert kind_modules(tree, nested=nested) == _reference_kinds(tree, nested), nested
    modules = set().union(*_reference_kinds(tree, True).values()) | _reference_closure(
        tree, {m for m in ENGINE_MODULES if module_file(tree, m)}, True
    )
    literals: dict[str, set[str]] = {}
    for module in modules:
        path = module_file(tree, module)
        if path is not None:
            for literal in _reference_literals(path):
                literals.setdefault(literal, set()).add(module)
    assert literals
    for literal, owners in literals.items():
        assert data_owners(tree, literal) == owners, literal
    files = {str(module_file(tree, m).relative_to(tree)) for m in modules if module_file(tree, m)}  # type: ignore[union-attr]
    assert files <= set(program_files(tree))


def test_the_derivation_matches_a_plain_walk_of_this_repository() -> None:
    _assert_same_as_reference(ROOT)


def test_the_derivation_matches_a_plain_walk_of_every_construct(tmp_path: Path) -> None:
    tree = tmp_path / "tree"
    pkg = tree / "pkg"
    (pkg / "sub").mkdir(parents=True)
    for name in ("a", "b", "c", "d", "e", "f", "g", "h", "i", "j", "k"):
        (pkg / f"{name}.py").write_text("")
    (pkg / "__init__.py").write_text("from . import a\n")
    (pkg / "sub" / "__init__.py").write_text("from .. import b\nfrom ..c import thing\n")
    (pkg / "a.py").write_text(
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n    from pkg import d\nelse:\n    from pkg import e\n"
        "try:\n    import pkg.f\nexcept ImportError:\n    import pkg.g\nfinally:\n    X = 'final.yaml'\n"
        "class C:\n    import pkg.h\n    def m(self):\n        import pkg.i\n"
        "async def run():\n    import pkg.j\n"
        "match X:\n    case 'x':\n        import pkg.k\n"
        "F = lambda: 'lambda.json'\n"
        "G = f'{X}format.yml'\n"
        "H = {**{}, 'key.yaml': 1}\n"
        "'''doc.yaml'''\n"
        "'not a file.yaml'\n"
    )
    (tree / "__main__.py").write_text(
        "import pkg.sub\n"
        "def build_global(repo, key):\n    from pkg import b\n"
        "def build_region(repo, key):\n    import pkg.a\n    def inner():\n        import pkg.c\n"
        "def build_region(repo, key):\n    import pkg.k  # a second definition: the first is the builder read\n"
        "def build_partner(repo, key):\n    pass\n"
    )
    _assert_same_as_reference(tree)
    for data in ("final.yaml", "lambda.json", "format.yml", "key.yaml", "doc.yaml"):
        (pkg / data).write_text("a: 1\n")
    assert {f"pkg/{data}" for data in ("final.yaml", "lambda.json", "format.yml", "key.yaml", "doc.yaml")} <= set(
        program_files(tree)
    )
    assert kind_modules(tree, nested=False)[StackKind.REGION] >= {"pkg.a", "pkg.e", "pkg.f", "pkg.g", "pkg.h"}
    assert not {"pkg.d", "pkg.i", "pkg.j"} & kind_modules(tree, nested=False)[StackKind.REGION]


def test_a_changed_module_is_read_again(tmp_path: Path) -> None:
    tree = tmp_path / "tree"
    (tree / "pkg").mkdir(parents=True)
    (tree / "pkg" / "__init__.py").write_text("")
    (tree / "pkg" / "late.py").write_text("")
    main = tree / "__main__.py"
    main.write_text("def build_global(repo, key):\n    pass\n")
    assert "pkg/late.py" not in program_files(tree)
    stat = main.stat()
    main.write_text("def build_global(repo, key):\n    import pkg.late\n")
    os.utime(main, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000))
    assert "pkg/late.py" in program_files(tree)


def test_module_facts_survive_their_json_form_for_every_program_module() -> None:
    from fleet.program import _facts_of, facts_from_json, facts_json

    for name, path in program_paths(ROOT).items():
        if name.endswith(".py"):
            facts = _facts_of(ast.parse(path.read_text(encoding="utf-8")))
            assert facts_from_json(json.loads(json.dumps(facts_json(facts)))) == facts, name


def test_a_stored_entry_of_another_shape_is_parsed_again(tmp_path: Path) -> None:
    """The store is asked by content digest; what it gives back is checked, and a bad entry is replaced."""
    from fleet.program import _facts_cached, facts_from_json, using_store

    module = tmp_path / "m.py"
    module.write_text("import components.a\n\ndef build_partner():\n    from partners import spec\n")

    class Store:
        def __init__(self) -> None:
            self.entries: dict[str, object] = {}

        def get(self, digest: str) -> object:
            return self.entries.setdefault(digest, {"imports": [[0, None, ["os"], "yes"]]})  # a bad record

        def put(self, digest: str, facts: object) -> None:
            self.entries[digest] = facts

    store = Store()
    with using_store(store):
        facts = _facts_cached(module, 1, 2)
    assert facts.functions["build_partner"][0].module == "partners"
    assert [facts_from_json(e) for e in store.entries.values()] == [facts]
