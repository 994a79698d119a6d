"""One reader, one writer: the tool's modules (platformctl/, cli/) read the repository's specs, stack files and
catalogs only through `fleet.Repo`, and write files only through the change path (platformctl/changes.py and its
journal).

The scan reads each module's syntax tree (nothing is imported) and finds file reads (`open`, `read_text`,
`read_bytes`, `yaml.safe_load`, the bounded YAML reader, any `load_*` of the catalogs' and specs' packages) and file
writes (`write_atomic`, `write_text`, `write_bytes`, `unlink`). What is not repository data (lock files, the plan
cache, plan JSON a user passes) is allowed by name below, each with its reason; an allowance nothing uses any more
fails too, so the list never outlives what it excuses.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

from tests.conftest import ROOT

SCANNED = ("platformctl", "cli")

READS = {"open", "fdopen", "read_text", "read_bytes", "safe_load", "read_bounded", "load_yaml_file", "declarations"}
"""Calls that read a file (by their last name: `path.read_text()`, `os.open(...)`, `yaml.safe_load(...)`)."""
READ_PREFIX = "load_"
"""`load_spec`, `load_catalog`, `load_stack_config`, `load_prices`... imported from the data packages: the models'
own file loaders."""
WRITES = {"write_atomic", "write_text", "write_bytes", "unlink"}
"""Calls that write or remove a file."""
WRITERS = {"platformctl/changes.py", "platformctl/journal.py"}
"""The one change path: its locks, journal, writes and recovery."""

ALLOWED: dict[tuple[str, str], str] = {
    # -- reads of files that are not the repository's specs, stack files or catalogs
    ("platformctl/locking.py", "open"): "lock files under .platformctl/locks (os.open + flock), not data",
    ("platformctl/journal.py", "read_text"): "the change path's own journal files",
    ("platformctl/journal.py", "read_bytes"): "the journal records and restores the bytes of the files it changes",
    ("platformctl/changes.py", "read_bounded"): "the writer reads the stack file it edits in place, under its lock",
    ("platformctl/partner_changes.py", "read_bounded"): (
        "spec files given to onboard-partner: read once as bytes, and exactly those bytes are validated and written"
    ),
    ("platformctl/integrations.py", "read_bounded"): "an integration spec given to `integrations submit` (as above)",
    ("platformctl/marketplace_figures.py", "read_bounded"): "a conformance result (JSON) from a folder the user names",
    ("platformctl/planjson.py", "read_text"): "plan JSON files the user passes (`plan --against`, `diff`)",
    ("platformctl/deploy_readiness.py", "read_text"): "the program's source (__main__.py), parsed as code, not data",
    ("platformctl/ci/affected.py", "load_yaml_file"): (
        "ci-preview maps both sides' changed files to stacks; a pull request's spec may be invalid and must still "
        "map, so it is read tolerantly (None when unreadable) where Repo would refuse it"
    ),
    ("platformctl/ci/sides.py", "read_text"): "signed plan results of one CI side (JSON under the CI work folder)",
    ("platformctl/ci/git.py", "open"): "a `git archive` tarball of the base side",
    ("platformctl/offline/store.py", "open"): "the plan cache's own entries",
    ("platformctl/offline/store.py", "unlink"): "the plan cache's own entries",
    ("platformctl/offline/signing.py", "open"): "the cache's signing secret, in the user's own folder",
    ("platformctl/offline/signing.py", "fdopen"): "the cache's signing secret, written once with mode 0600",
    ("platformctl/offline/signing.py", "unlink"): "a half-written signing secret's temporary file",
    ("platformctl/offline/facts.py", "open"): "the derived-facts file next to the plan cache",
    (
        "platformctl/offline/facts.py",
        "read_bytes",
    ): "the fact deriver's source, hashed into its version (code)",
    ("platformctl/offline/keys.py", "read_bytes"): "program sources hashed into the cache's keys (code, not data)",
    # -- writes outside the change path
    ("platformctl/dry_run.py", "unlink"): "the dry run's scratch copy in a temporary folder, never the repository",
    ("platformctl/dry_run.py", "write_bytes"): "the dry run's scratch copy in a temporary folder, never the repository",
    ("platformctl/marketplace.py", "write_atomic"): "the marketplace export, into a folder the user names",
    ("platformctl/ci/sides.py", "write_atomic"): "signed plan results of one CI side",
    ("platformctl/ci/sides.py", "write_text"): "ci-preview's JSON result file the user names",
    ("platformctl/ci/git.py", "unlink"): "git's own state file in the scratch checkout",
    (
        "platformctl/billing.py",
        "load_yaml_file",
    ): "the tool's own Stripe Connect facts (platformctl/stripe_connect.yaml), "
    "shipped with the tool like the tier table, not the fleet's data",
}


DATA_PACKAGES = ("partners", "regions", "gateway", "integrations", "fleet", "foundation")
"""Where the specs' and catalogs' models and their loaders live: a `load_*` imported from one of them reads data."""


def _data_imports(tree: ast.Module) -> tuple[set[str], set[str]]:
    """Names imported from the data packages (functions or modules), and aliases of modules imported from them."""
    names: set[str] = set()
    modules: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] in DATA_PACKAGES:
            names |= {alias.asname or alias.name for alias in node.names}
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] in DATA_PACKAGES:
                    modules.add(alias.asname or alias.name.split(".")[0])
    return names, modules


def _through_repo(function: ast.Attribute) -> bool:
    """`repo.declarations()`, `self.repo.spec(...)`: a call on the fleet reader itself."""
    receiver = function.value
    name = (
        receiver.id if isinstance(receiver, ast.Name) else receiver.attr if isinstance(receiver, ast.Attribute) else ""
    )
    return name.endswith("repo")


def findings(source: str) -> Iterator[tuple[str, int]]:
    """(call name, line) of every file read or write in a module's source."""
    tree = ast.parse(source)
    imported, modules = _data_imports(tree)
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        function = node.func
        if isinstance(function, ast.Name):
            name = function.id
            data_loader = name in imported and name.startswith(READ_PREFIX)
        elif isinstance(function, ast.Attribute):
            if _through_repo(function):
                continue
            name = function.attr
            owner = function.value
            from_data = isinstance(owner, ast.Name) and (owner.id in modules or owner.id in imported)
            data_loader = from_data and name.startswith(READ_PREFIX)
        else:
            continue
        if name in READS or name in WRITES or data_loader:
            yield name, node.lineno


def scanned_modules() -> Iterator[tuple[str, Path]]:
    for package in SCANNED:
        for path in sorted((ROOT / package).rglob("*.py")):
            yield path.relative_to(ROOT).as_posix(), path


def _violations() -> tuple[list[str], set[tuple[str, str]]]:
    found: list[str] = []
    used: set[tuple[str, str]] = set()
    for relative, path in scanned_modules():
        for name, line in findings(path.read_text(encoding="utf-8")):
            if name in WRITES and relative in WRITERS:
                continue
            if (relative, name) in ALLOWED:
                used.add((relative, name))
                continue
            kind = "writes" if name in WRITES else "reads"
            found.append(f"{relative}:{line}: {kind} a file with {name}()")
    return found, used


def test_files_are_read_through_repo_and_written_through_the_change_path() -> None:
    found, _ = _violations()
    assert not found, (
        "read specs, stack files and catalogs through fleet.Repo and write through platformctl.changes "
        "(or allow the call in ALLOWED with its reason):\n" + "\n".join(found)
    )


def test_every_allowance_is_still_needed() -> None:
    _, used = _violations()
    stale = sorted(set(ALLOWED) - used)
    assert not stale, "remove these allowances, nothing needs them any more: " + ", ".join(map(str, stale))


def test_the_scan_finds_each_kind_of_read_and_write() -> None:
    source = """
import yaml
from fleet.stackconfig import load_stack_config
from partners import spec as specs

def f(root, path):
    yaml.safe_load(path.read_text())
    load_stack_config(root, "global")
    specs.load_spec(path)
    with open(path) as handle:
        handle.read()
    path.write_text("x")
    repo.spec("acme")  # through Repo: not a finding
    repo.declarations()  # nor this
    load_plan(path)  # not a data package's loader
"""
    assert sorted(name for name, _ in findings(source)) == [
        "load_spec",
        "load_stack_config",
        "open",
        "read_text",
        "safe_load",
        "write_text",
    ]
