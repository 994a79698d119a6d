"""What a stack's cache key is made of: a stack is planned again only when its key changes.

A stack's key hashes everything its plan depends on: the program's files in the project being planned (as derived
once by `fleet.program`: the program, components, policies, engine modules, the data files they name), the stack's
config, its spec, the keys of the stacks it reads, the SDK, provider and policy-library versions, and the dated
facts the program checks (a Kubernetes version's support window). Any change is a miss.

The program runs from the project's folder (cli/launch.py puts it first on sys.path), so the project's files are
the program. A module of the program's packages that this process imported from anywhere else (the installed tool's
engine when `--root` names another checkout, a folder on PYTHONPATH shadowing a package, a test that imported the
program from its own checkout) is hashed too: whatever ran is in the key.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import platform
import sys
from functools import cache
from importlib import metadata
from pathlib import Path

from fleet.program import program_paths, using_store
from foundation.project import PROJECT_FILE
from platformctl.offline.facts import FACTS_FILE, FactsFile
from platformctl.offline.signing import user_folder

FORMAT = 3
"""Bumped when the entry layout or what a key hashes changes: entries of another format are ignored."""
PACKAGES = (
    "pulumi",
    "pulumi-aws",
    "pulumi-kubernetes",
    "pulumi-kong",
    "pulumi-snowflake",
    "pulumi-random",
    "pulumi-tls",
    "pydantic",
    "kubernetes-validate",
)
"""Installed packages whose version shapes a plan or its policy findings (kubernetes-validate: the schemas)."""


@cache
def program_file_paths(root: Path) -> tuple[tuple[str, Path], ...]:
    """The program files of the project at `root`, by project-relative name. Derived once per process (one CLI
    run): the key's fingerprint and the input stamps taken before and after planning share it. The modules' facts
    (imports, data file names) come from the user's facts file where their bytes are unchanged."""
    base = user_folder()
    store = FactsFile(base / FACTS_FILE if base is not None else None)
    with using_store(store):
        paths = tuple(program_paths(root).items())
    store.save()
    return paths


@cache
def program_fingerprint(root: Path) -> str:
    """The program files of `root`, then every module of the program's packages this process imported from
    elsewhere (see the module's docstring), then the versions."""
    digest = hashlib.sha256()
    for name, path in program_file_paths(root):
        if path.is_file():
            digest.update(name.encode() + b"\0" + path.read_bytes() + b"\0")
    digest.update(b"\1")
    for name, path in foreign_program_modules(root):
        with contextlib.suppress(OSError):
            digest.update(b"\2" + name.encode() + b"\0" + str(path).encode() + b"\0" + path.read_bytes())
    digest.update(versions_fingerprint().encode())
    return digest.hexdigest()


def input_stamps(root: Path) -> dict[str, tuple[int, int]]:
    """(mtime in ns, size) of every file a plan of `root` can read: the program's files, every stack file and
    every spec."""
    paths = [path for _, path in program_file_paths(root)]
    paths += [*root.joinpath("stacks").glob("*.yaml"), *root.joinpath("partners").glob("*.yaml")]
    stamps = {}
    for path in paths:
        try:
            info = path.stat()
        except OSError:
            continue
        stamps[str(path)] = (info.st_mtime_ns, info.st_size)
    return stamps


def program_packages(root: Path) -> set[str]:
    """The top-level packages and modules the program's files belong to (`components`, `gateway`, ...)."""
    tops = {name.partition("/")[0] for name, _ in program_file_paths(root)}
    return {top.removesuffix(".py") for top in tops} - {"__main__", PROJECT_FILE}


def foreign_program_modules(root: Path) -> list[tuple[str, Path]]:
    """Modules of the program's packages this process imported from outside `root`."""
    packages = program_packages(root)
    tree = str(root.resolve()) + os.sep
    found = []
    for name, module in list(sys.modules.items()):
        file = getattr(module, "__file__", None)
        if name.partition(".")[0] in packages and isinstance(file, str) and not file.startswith(tree):
            found.append((name, Path(file)))
    return sorted(found)


def forget_program() -> None:
    """Derive the program files and their fingerprint afresh (a long-lived process whose program files changed)."""
    program_file_paths.cache_clear()
    program_fingerprint.cache_clear()


@cache
def versions_fingerprint() -> str:
    """The Python, SDK, provider and policy-library versions a plan was made with."""
    digest = hashlib.sha256(f"python=={platform.python_version()}\0".encode())
    for package in PACKAGES:
        try:
            digest.update(f"{package}=={metadata.version(package)}\0".encode())
        except metadata.PackageNotFoundError:
            digest.update(f"{package}==none\0".encode())
    return digest.hexdigest()


def stack_key(root: Path, config: bytes, spec: bytes | None, dependency_keys: list[str], facts: str = "") -> str:
    """The cache key of one stack: `config` is the config the program is given (canonical JSON of the values and
    the secret keys, so a comment in a stack file is not a change), `spec` the spec's bytes as parsed."""
    digest = hashlib.sha256(f"{FORMAT}\0{program_fingerprint(root)}\0{facts}\0".encode())
    digest.update(config + b"\0")
    digest.update(b"-\0" if spec is None else spec + b"\0")
    for key in dependency_keys:
        digest.update(key.encode())
    return digest.hexdigest()
