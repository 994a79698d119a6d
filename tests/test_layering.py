"""The layers of ARCHITECTURE.md: each package imports only from the layers below it (or its own layer)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from tests.conftest import ROOT

LAYERS = {
    "foundation": 0,
    "regions": 1,
    "partners": 1,
    "gateway": 1,
    "integrations": 1,
    "fleet": 2,
    "components": 3,
    "policies": 3,
    "__main__": 4,
    "services": 4,
    "platformctl": 5,
    "cli": 6,
}
"""Layer of each top-level package; an import may stay in its layer or go down, never up."""


def local_imports(path: Path) -> set[str]:
    """Top-level repository packages `path` imports, at any depth of its code (function-level imports too)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        names = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        found |= {name.split(".")[0] for name in names if name.split(".")[0] in LAYERS}
    return found


def sources() -> list[Path]:
    files = [ROOT / "__main__.py"]
    for package in LAYERS:
        if (ROOT / package).is_dir():
            files += sorted((ROOT / package).rglob("*.py"))
    return files


@pytest.mark.parametrize("path", sources(), ids=lambda p: str(p.relative_to(ROOT)))
def test_no_import_runs_up_a_layer(path: Path) -> None:
    package = path.relative_to(ROOT).parts[0].removesuffix(".py")
    upward = {name for name in local_imports(path) if LAYERS[name] > LAYERS[package]}
    assert not upward, f"{path.relative_to(ROOT)} ({package}) imports from higher layers: {sorted(upward)}"


SERVICES_MAY_IMPORT = {"foundation", "services"}
"""The services distribution holds services/ and depends on platform-foundation only: an import of any other
package of the repository (even a lazy one inside a function) is an import the image cannot satisfy."""
DISTRIBUTION_IMPORTS = {
    "PyYAML": {"yaml"},
    "ruamel.yaml": {"ruamel"},
    "platform-foundation": {"foundation"},
    "starlette": {"starlette"},
    "uvicorn": {"uvicorn"},
    "orjson": {"orjson"},
    "twilio": {"twilio"},
    "stripe": {"stripe"},
    "boto3": {"boto3", "botocore"},
    "snowflake-connector-python": {"snowflake"},
    "cryptography": {"cryptography"},
    "pydantic": {"pydantic"},
    "fakesnow": {"fakesnow", "duckdb"},
    "aiohttp": {"aiohttp"},
    "yarl": {"yarl"},
    "jsonschema": {"jsonschema"},
    "rfc3339-validator": set(),  # imported by jsonschema only (its date-time format check)
}
"""Top-level import names of each distribution the services and foundation may depend on."""


@pytest.mark.parametrize("path", sorted((ROOT / "services").rglob("*.py")), ids=lambda p: str(p.relative_to(ROOT)))
def test_services_import_only_foundation(path: Path) -> None:
    others = local_imports(path) - SERVICES_MAY_IMPORT
    assert not others, f"{path.relative_to(ROOT)} imports {sorted(others)}: the services image has only foundation"


def _top_level_imports(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module.split(".")[0])
    return found


@pytest.mark.parametrize("package", ["services", "foundation"])
def test_the_distributions_declare_what_they_import(package: str) -> None:
    """Every third-party import of services/ and foundation/ comes from a distribution their pyproject.toml lists
    (an extra counts): the image has nothing else installed."""
    import re
    import sys
    import tomllib

    declared = {"services", "foundation"}
    for folder in {"services": ("services", "foundation"), "foundation": ("foundation",)}[package]:
        project = tomllib.loads((ROOT / folder / "pyproject.toml").read_text(encoding="utf-8"))["project"]
        requirements = list(project["dependencies"])
        for extra in project.get("optional-dependencies", {}).values():
            requirements += extra
        for requirement in requirements:
            name = re.split(r"[<>=!~\[ ;]", requirement, maxsplit=1)[0]
            assert name in DISTRIBUTION_IMPORTS, f"{folder}/pyproject.toml: {name}: add its import names here"
            declared |= DISTRIBUTION_IMPORTS[name]
    for path in sorted((ROOT / package).rglob("*.py")):
        undeclared = _top_level_imports(path) - declared - set(sys.stdlib_module_names) - {"__future__"}
        assert not undeclared, f"{path.relative_to(ROOT)} imports {sorted(undeclared)}, not a declared dependency"


def test_the_checker_sees_an_upward_import(tmp_path: Path) -> None:
    module = tmp_path / "m.py"
    module.write_text("def f():\n    from platformctl.changes import Mode\n")
    assert local_imports(module) == {"platformctl"}


def test_naming_is_imported_not_retyped() -> None:
    """Conventions live in foundation.naming: no component or policy spells out a tenant namespace or role."""
    for folder in ("components", "policies"):
        for path in (ROOT / folder).rglob("*.py"):
            text = path.read_text(encoding="utf-8")
            for literal in ('f"partner-{', 'f"PARTNER_{', 'f"tier-{', 'f"PLATFORM_{'):
                assert literal not in text, f"{path.relative_to(ROOT)} retypes a naming convention ({literal})"


INSTALLED = {"platformctl", "cli"}
"""The packages of the `platformctl` distribution (pyproject.toml): the tool."""
OWN_DISTRIBUTIONS = {"foundation", "services"}
NOT_SHIPPED = {"tests", "scripts"}


def _top_level_entries() -> tuple[set[str], set[str]]:
    """The repository's top-level (folders, files) as git tracks them."""
    import subprocess

    listed = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    folders: set[str] = set()
    files: set[str] = set()
    for line in listed.splitlines():
        head, sep, _ = line.partition("/")
        (folders if sep else files).add(head)
    return folders, files


def test_the_distribution_installs_the_tool_and_no_program_package() -> None:
    """pyproject.toml's package list is the tool's; every top-level package of the tree is the tool's, its own
    distribution's, the program's (loaded from the project, cli/launch.py) or not shipped."""
    import tomllib

    from cli.launch import PROGRAM_PACKAGES

    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["setuptools"]
    assert {pattern.removesuffix("*") for pattern in config["packages"]["find"]["include"]} == INSTALLED
    folders, _ = _top_level_entries()
    packages = {name for name in folders if any((ROOT / name).glob("*.py"))}
    assert packages == INSTALLED | OWN_DISTRIBUTIONS | PROGRAM_PACKAGES | NOT_SHIPPED


def test_outside_a_checkout_the_installed_tool_cannot_import_the_program(tmp_path: Path) -> None:
    """The environment's Python (the one running these tests, with this project installed as ./dev installs it),
    from an empty folder, with no PYTHONPATH: the tool imports, the program's packages do not (they come from the
    project being planned, never from an installed copy)."""
    import os
    import subprocess
    import sys

    from cli.launch import PROGRAM_PACKAGES

    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PLATFORMCTL_ROOT")}

    def imports(module: str) -> bool:
        command = [sys.executable, "-c", f"import {module}"]
        return subprocess.run(command, cwd=tmp_path, env=env, capture_output=True).returncode == 0

    assert imports("platformctl") and imports("cli.launch") and imports("foundation.project")
    importable = {package for package in sorted(PROGRAM_PACKAGES) if imports(package)}
    assert not importable, f"installed, so found outside a checkout: {sorted(importable)}"


def _readme_layout() -> set[str]:
    """The paths the README's layout table names (first column, each `path` in backticks)."""
    import re

    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("| path | what |", 1)[1].split("\n\n", 1)[0]
    names: set[str] = set()
    for row in section.splitlines()[2:]:
        first = row.split("|")[1]
        names |= {name.rstrip("/") for name in re.findall(r"`([^`]+)`", first)}
    return names


def test_the_readme_layout_lists_exactly_the_top_level_folders() -> None:
    folders, files = _top_level_entries()
    listed = _readme_layout()
    assert folders - listed == set(), f"top-level folders the README's layout does not list: {sorted(folders - listed)}"
    assert listed - folders - files == set(), f"the README's layout names what is not there: {sorted(listed - folders)}"
