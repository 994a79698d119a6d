"""The files that make up the Pulumi program, derived once from its imports.

Used by the plan cache key (a change to any of them replans), by ci-preview's affected-stack analysis (which
kinds of stack a changed module reaches) and by the tools that lay out a copy of the repository (dry-run
overlays, generated fleets). The derivation follows `import` statements in the AST, so a new module is covered
the day it is imported, with no list to keep up to date.
"""

from __future__ import annotations

import ast
import hashlib
import re
from collections.abc import Iterable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any, Protocol, cast

from foundation.project import PROJECT_FILE
from foundation.stacks import StackKind

PROGRAM = "__main__.py"
ENGINE_MODULES = ("platformctl.planning",)
"""The offline engine and the policies it runs: their code shapes a plan as much as the program does."""
_DATA_LITERAL = re.compile(r"^[\w.-]+\.(?:ya?ml|json)$")


def module_file(tree: Path, module: str) -> Path | None:
    """The module's source in `tree` (the project's folder, which the program imports its modules from)."""
    base = tree / module.replace(".", "/")
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


@dataclass(frozen=True)
class _Import:
    """One `import` or `from ... import` statement, as written (resolved against a package when used)."""

    level: int
    module: str | None
    names: tuple[str, ...]
    is_from: bool

    def targets(self, package: str) -> list[str]:
        if not self.is_from:
            return list(self.names)
        if self.level:
            parts = package.split(".")[: len(package.split(".")) - self.level + 1]
            base = ".".join([*parts, self.module] if self.module else parts)
        else:
            base = self.module or ""
        return [base, *(f"{base}.{name}" for name in self.names)]


@dataclass(frozen=True)
class _Facts:
    """What every caller needs from one module file, gathered in one walk of its syntax tree."""

    imports: tuple[_Import, ...]
    """Every import, at any depth of the code."""
    import_time: tuple[_Import, ...]
    """The imports that run when the module is imported: not in function bodies, not under `if TYPE_CHECKING:`."""
    top_level: tuple[_Import, ...]
    """The import statements of the module's body itself."""
    functions: dict[str, tuple[_Import, ...]]
    """The imports, at any depth, of each function defined in the module's body."""
    calls: dict[str, tuple[str, ...]]
    """The plain names each function defined in the module's body calls (`f(...)`), at any depth."""
    literals: frozenset[str]
    """String constants that name a data file (`x.yaml`, `x.json`)."""


def _import_of(node: ast.Import | ast.ImportFrom) -> _Import:
    names = tuple(alias.name for alias in node.names)
    if isinstance(node, ast.Import):
        return _Import(0, None, names, False)
    return _Import(node.level, node.module, names, True)


def _facts_of(syntax: ast.Module) -> _Facts:
    imports: list[_Import] = []
    import_time: list[_Import] = []
    top_level = [_import_of(node) for node in syntax.body if isinstance(node, ast.Import | ast.ImportFrom)]
    functions: dict[str, list[_Import]] = {}
    calls: dict[str, tuple[str, ...]] = {}
    # Imports are statements: only statement lists are walked for them, which is most of what makes this fast.
    # (statements, run at import time, the imports of the body-level function they are in)
    pending: list[tuple[list[ast.stmt], bool, list[_Import] | None]] = []
    for node in syntax.body:
        function: list[_Import] | None = None
        if isinstance(node, ast.FunctionDef):
            function = [] if node.name in functions else functions.setdefault(node.name, [])  # the first one's
            calls.setdefault(node.name, _called_names(node))
        pending.append(([node], True, function))
    while pending:
        statements, at_import, function = pending.pop()
        for node in statements:
            if isinstance(node, ast.Import | ast.ImportFrom):
                record = _import_of(node)
                imports.append(record)
                if at_import:
                    import_time.append(record)
                if function is not None:
                    function.append(record)
                continue
            inner = at_import and not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
            if inner and isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
                pending.append((node.body, False, function))
                pending.append((node.orelse, True, function))
                continue
            for field in ("body", "orelse", "finalbody"):
                block = getattr(node, field, None)
                if isinstance(block, list):
                    pending.append((block, inner, function))
            for clause in [*getattr(node, "handlers", ()), *getattr(node, "cases", ())]:
                pending.append((clause.body, inner, function))
    return _Facts(
        tuple(imports),
        tuple(import_time),
        tuple(top_level),
        {name: tuple(found) for name, found in functions.items()},
        calls,
        _data_literals(syntax),
    )


def _called_names(function: ast.FunctionDef) -> tuple[str, ...]:
    return tuple(
        sorted(
            {
                node.func.id
                for node in ast.walk(function)
                if isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
            }
        )
    )


_NO_CONSTANTS = frozenset({"ctx", "op", "ops", "names", "id", "attr", "arg", "name", "module", "level", "kind"})
"""Node fields that never hold a string constant: contexts, operators, identifiers, import names."""
_CHILD_FIELDS: dict[type, tuple[str, ...]] = {}


def _data_literals(syntax: ast.AST) -> frozenset[str]:
    """String constants anywhere in the tree that name a data file (a plain walk of the fields that can hold
    one: ast.walk's generators and the operator and context nodes cost as much again)."""
    literals = set()
    pending: list[Any] = [syntax]
    while pending:
        node = pending.pop()
        kind = node.__class__
        if kind is ast.Constant:
            if isinstance(node.value, str) and _DATA_LITERAL.match(node.value):
                literals.add(node.value)
            continue
        fields = _CHILD_FIELDS.get(kind)
        if fields is None:
            fields = _CHILD_FIELDS[kind] = tuple(f for f in kind._fields if f not in _NO_CONSTANTS)
        for field in fields:
            value = getattr(node, field, None)
            if value.__class__ is list:
                pending.extend(item for item in value if isinstance(item, ast.AST))
            elif isinstance(value, ast.AST):
                pending.append(value)
    return frozenset(literals)


class FactsStore(Protocol):
    """Module facts kept between runs, by the SHA-256 of the module's bytes (so a derivation parses only the files
    that changed since); `facts_json`/`facts_from_json` convert."""

    def get(self, digest: str) -> Any: ...

    def put(self, digest: str, facts: Any) -> None: ...


_STORE: list[FactsStore] = []
"""The store in use (at most one): set by `using_store` around a derivation."""


@contextmanager
def using_store(store: FactsStore) -> Iterator[None]:
    _STORE.append(store)
    try:
        yield
    finally:
        _STORE.remove(store)


@cache
def _facts_cached(path: Path, mtime_ns: int, size: int) -> _Facts:
    data = path.read_bytes()
    if not _STORE:
        return _facts_of(ast.parse(data.decode("utf-8")))
    digest = hashlib.sha256(data).hexdigest()
    with suppress(KeyError, TypeError, ValueError):  # an entry of another shape: parsed again and replaced
        return facts_from_json(_STORE[0].get(digest))
    facts = _facts_of(ast.parse(data.decode("utf-8")))
    _STORE[0].put(digest, facts_json(facts))
    return facts


def facts_json(facts: _Facts) -> dict[str, Any]:
    def records(imports: tuple[_Import, ...]) -> list[list[Any]]:
        return [[i.level, i.module, list(i.names), i.is_from] for i in imports]

    return {
        "imports": records(facts.imports),
        "import_time": records(facts.import_time),
        "top_level": records(facts.top_level),
        "functions": {name: records(found) for name, found in facts.functions.items()},
        "calls": {name: list(called) for name, called in facts.calls.items()},
        "literals": sorted(facts.literals),
    }


def facts_from_json(data: Any) -> _Facts:
    """The facts `facts_json` gave; KeyError, TypeError or ValueError for anything else."""

    def records(items: Any) -> tuple[_Import, ...]:
        found = []
        for level, module, names, is_from in items:
            if not (
                type(level) is int
                and (module is None or isinstance(module, str))
                and isinstance(names, list)
                and all(isinstance(n, str) for n in names)
                and isinstance(is_from, bool)
            ):
                raise ValueError("not an import record")
            found.append(_Import(level, module, tuple(names), is_from))
        return tuple(found)

    literals = data["literals"]
    if not isinstance(literals, list) or not all(isinstance(x, str) for x in literals):
        raise ValueError("not a list of literals")
    calls = {str(name): tuple(called) for name, called in dict(data["calls"]).items()}
    if not all(isinstance(name, str) for called in calls.values() for name in called):
        raise ValueError("not a list of called names")
    return _Facts(
        records(data["imports"]),
        records(data["import_time"]),
        records(data["top_level"]),
        {str(name): records(found) for name, found in dict(data["functions"]).items()},
        calls,
        frozenset(literals),
    )


def _facts(path: Path) -> _Facts:
    """The file's facts, parsed and walked once while it is unchanged (same modification time and size)."""
    stat = path.stat()
    return _facts_cached(path, stat.st_mtime_ns, stat.st_size)


class _Modules:
    """One derivation's lookups of module files in `tree`: a name is looked up once per derivation, not once per
    module that imports it (and never across derivations: a module may appear between two of them)."""

    def __init__(self, tree: Path) -> None:
        self.tree = tree
        self._files: dict[str, Path | None] = {}

    def file(self, module: str) -> Path | None:
        if module not in self._files:
            self._files[module] = module_file(self.tree, module)
        return self._files[module]

    def local(self, records: Iterable[_Import], package: str) -> set[str]:
        """This repository's modules (and their parent packages) that `records` import."""
        local: set[str] = set()
        for record in records:
            for name in record.targets(package):
                parts = name.split(".")
                for end in range(1, len(parts) + 1):
                    prefix = ".".join(parts[:end])
                    if prefix not in local and self.file(prefix):
                        local.add(prefix)
        return local

    def closure(self, modules: set[str], nested: bool = True) -> set[str]:
        pending, seen = set(modules), set()
        while pending:
            module = pending.pop()
            if module in seen:
                continue
            seen.add(module)
            path = self.file(module)
            if path is not None:
                package = module if path.name == "__init__.py" else module.rpartition(".")[0]
                facts = _facts(path)
                pending |= self.local(facts.imports if nested else facts.import_time, package)
        return seen

    def kinds(self, nested: bool) -> dict[StackKind, set[str]]:
        program = self.tree / PROGRAM
        if not program.is_file():
            return {kind: set() for kind in StackKind}
        facts = _facts(program)
        common = self.local(facts.top_level, "")
        return {
            kind: self.closure(common | self.local(_builder_imports(facts, f"build_{kind.value}"), ""), nested)
            for kind in StackKind
        }

    def program_modules(self) -> set[str]:
        modules = set().union(*self.kinds(nested=True).values())
        engine = {m for m in ENGINE_MODULES if self.file(m)}
        return modules | self.closure(engine)


def _builder_imports(facts: _Facts, builder: str) -> list[_Import]:
    """The imports of the program's `builder` function and of the program's functions it calls, transitively (a
    builder's helper that imports a component lazily ties that component to the builder's kind of stack)."""
    found: list[_Import] = []
    pending, seen = [builder], set()
    while pending:
        name = pending.pop()
        if name in seen or name not in facts.functions:
            continue
        seen.add(name)
        found.extend(facts.functions[name])
        pending.extend(facts.calls.get(name, ()))
    return found


def imports_of(tree: Path, node: ast.AST, package: str, nested: bool = True) -> set[str]:
    """This repository's modules (and their parent packages) that `node` imports: at any depth of the code, or
    (`nested=False`) only what runs when it is run (not function bodies, not `if TYPE_CHECKING:` blocks)."""
    body = node.body if isinstance(node, ast.Module) else [node]
    facts = _facts_of(ast.Module(body=cast(list[ast.stmt], body), type_ignores=[]))
    return _Modules(tree).local(facts.imports if nested else facts.import_time, package)


def closure(tree: Path, modules: set[str], nested: bool = True) -> set[str]:
    """`modules` and every repository module they import, transitively (with `nested=False`, only the imports
    that run when a module is imported: a reader's lazy imports do not tie every kind of stack to every loader)."""
    return _Modules(tree).closure(modules, nested)


def kind_modules(tree: Path, nested: bool = False) -> dict[StackKind, set[str]]:
    """Every repository module the program imports when it builds each kind of stack (transitively): the builder's
    own imports at any depth, then what those modules import when imported."""
    return _Modules(tree).kinds(nested)


def data_owners(tree: Path, data_file: str) -> set[str]:
    """Modules that name the data file (by its file name, as a string literal): its loaders."""
    name = Path(data_file).name
    modules = _Modules(tree)
    owners = set()
    for module in modules.program_modules():
        path = modules.file(module)
        if path is not None and name in _facts(path).literals:
            owners.add(module)
    return owners


def program_paths(tree: Path) -> dict[str, Path]:
    """Every file a plan depends on besides the stack's own config and spec, by repository-relative path: the
    program, the modules it and the offline engine import, the data files those modules name, Pulumi.yaml, all
    in `tree`: the program is loaded from the project's folder, never from an installed copy (cli/launch.py)."""
    paths = {name: tree / name for name in (PROGRAM, PROJECT_FILE)}
    folders: set[Path] = set()
    literals: set[str] = set()
    modules = _Modules(tree)
    for module in sorted(modules.program_modules()):
        path = modules.file(module)
        if path is None:
            continue
        paths[str(path.relative_to(tree))] = path
        folders.add(path.parent)
        literals |= _facts(path).literals
    for folder in folders:
        for literal in literals:
            data = folder / literal
            if data.is_file():
                paths[str(data.relative_to(tree))] = data
    return dict(sorted(paths.items()))


def program_files(tree: Path) -> list[str]:
    return list(program_paths(tree))


def top_level_entries(tree: Path) -> list[str]:
    """The top-level files and folders a copy of the repository needs for the program to run from it."""
    return sorted({path.split("/", 1)[0] for path in program_files(tree)} | {"stacks", "partners", "integrations"})
