"""The files that make up the Pulumi program, derived once from its imports.

Used by the plan cache key (a change to any of them replans), by ci-preview's affected-stack analysis (which
kinds of stack a changed module reaches) and by the tools that lay out a copy of the repository (dry-run
overlays, generated fleets). The derivation follows `import` statements in the AST, so a new module is covered
the day it is imported, with no list to keep up to date.
"""

from __future__ import annotations

import ast
import re
from functools import cache
from pathlib import Path

from foundation.stacks import StackKind

PROGRAM = "__main__.py"
PROJECT_FILE = "Pulumi.yaml"
ENGINE_MODULES = ("platformctl.planning",)
"""The offline engine and the policies it runs: their code shapes a plan as much as the program does."""
_DATA_LITERAL = re.compile(r"^[\w.-]+\.(?:ya?ml|json)$")
CODE_ROOT = Path(__file__).resolve().parent.parent
"""Where this code is installed: a repository copy without code (a generated fleet) runs the program with it."""


def module_file(tree: Path, module: str, fallback: bool = False) -> Path | None:
    """The module's source in `tree` (or, with `fallback`, in the installed code when `tree` lacks it)."""
    for root in (tree, CODE_ROOT) if fallback else (tree,):
        base = root / module.replace(".", "/")
        for candidate in (base.with_suffix(".py"), base / "__init__.py"):
            if candidate.is_file():
                return candidate
    return None


def _executed_at_import(node: ast.AST) -> list[ast.AST]:
    """The nodes of a module that run when it is imported: not function bodies, not `if TYPE_CHECKING:` blocks."""
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


def imports_of(tree: Path, node: ast.AST, package: str, fallback: bool = False, nested: bool = True) -> set[str]:
    """This repository's modules (and their parent packages) that `node` imports: at any depth of the code, or
    (`nested=False`) only what runs at import time."""
    found: set[str] = set()
    for item in ast.walk(node) if nested else _executed_at_import(node):
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
    local = set()
    for name in found:
        parts = name.split(".")
        for end in range(1, len(parts) + 1):
            prefix = ".".join(parts[:end])
            if module_file(tree, prefix, fallback):
                local.add(prefix)
    return local


def closure(tree: Path, modules: set[str], fallback: bool = False, nested: bool = True) -> set[str]:
    """`modules` and every repository module they import, transitively (with `nested=False`, only the imports
    that run when a module is imported: a reader's lazy imports do not tie every kind of stack to every loader)."""
    pending, seen = set(modules), set()
    while pending:
        module = pending.pop()
        if module in seen:
            continue
        seen.add(module)
        path = module_file(tree, module, fallback)
        if path is not None:
            package = module if path.name == "__init__.py" else module.rpartition(".")[0]
            pending |= imports_of(tree, _parse(path), package, fallback, nested)
    return seen


def kind_modules(tree: Path, fallback: bool = False, nested: bool = False) -> dict[StackKind, set[str]]:
    """Every repository module the program imports when it builds each kind of stack (transitively): the builder's
    own imports at any depth, then what those modules import when imported."""
    program = tree / PROGRAM
    if not program.is_file():
        return {kind: set() for kind in StackKind}
    syntax = _parse(program)
    common: set[str] = set()
    for node in syntax.body:
        if isinstance(node, ast.Import | ast.ImportFrom):
            common |= imports_of(tree, node, "", fallback)
    result = {}
    for kind in StackKind:
        builder = next(
            (n for n in syntax.body if isinstance(n, ast.FunctionDef) and n.name == f"build_{kind.value}"), None
        )
        modules = common | (imports_of(tree, builder, "", fallback) if builder else set())
        result[kind] = closure(tree, modules, fallback, nested)
    return result


def data_owners(tree: Path, data_file: str) -> set[str]:
    """Modules that name the data file (by its file name, as a string literal): its loaders."""
    name = Path(data_file).name
    owners = set()
    for module in _all_program_modules(tree):
        path = module_file(tree, module)
        if path is not None and name in _data_literals(path):
            owners.add(module)
    return owners


def program_paths(tree: Path) -> dict[str, Path]:
    """Every file a plan depends on besides the stack's own config and spec, by repository-relative path: the
    program, the modules it and the offline engine import, the data files those modules name, Pulumi.yaml.
    A module missing from `tree` is taken from the installed code (as the program would import it)."""
    paths = {name: tree / name for name in (PROGRAM, PROJECT_FILE)}
    folders: dict[Path, Path] = {}
    literals: set[str] = set()
    for module in sorted(_all_program_modules(tree, fallback=True)):
        path = module_file(tree, module, fallback=True)
        if path is None:
            continue
        root = tree if path.is_relative_to(tree) else CODE_ROOT
        paths[str(path.relative_to(root))] = path
        folders[path.parent] = root
        literals |= _data_literals(path)
    for folder, root in folders.items():
        for literal in literals:
            data = folder / literal
            relative = str(data.relative_to(root))
            if (tree / relative).is_file():
                paths[relative] = tree / relative
            elif data.is_file():
                paths[relative] = data
    return dict(sorted(paths.items()))


def program_files(tree: Path) -> list[str]:
    return list(program_paths(tree))


def top_level_entries(tree: Path) -> list[str]:
    """The top-level files and folders a copy of the repository needs for the program to run from it."""
    return sorted({path.split("/", 1)[0] for path in program_files(tree)} | {"stacks", "partners"})


def _all_program_modules(tree: Path, fallback: bool = False) -> set[str]:
    modules = set().union(*kind_modules(tree, fallback, nested=True).values())
    engine = {m for m in ENGINE_MODULES if module_file(tree, m, fallback)}
    return modules | closure(tree, engine, fallback)


@cache
def _parse_cached(path: Path, mtime_ns: int, size: int) -> ast.Module:
    return ast.parse(path.read_text(encoding="utf-8"))


def _parse(path: Path) -> ast.Module:
    stat = path.stat()
    return _parse_cached(path, stat.st_mtime_ns, stat.st_size)


def _data_literals(path: Path) -> set[str]:
    return {
        node.value
        for node in ast.walk(_parse(path))
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and _DATA_LITERAL.match(node.value)
    }
