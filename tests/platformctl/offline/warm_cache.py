"""Repositories whose result cache a cold plan filled, planned once per test module and copied per test: most tests
of the cache start from a warm cache, and that cold plan was most of what each of them cost.

A copy is used only if its cache serves it as a plan of the copy would find it: every entry under the key this
process computes for the copy, and the requested stacks' findings under the copy's policy context. The key holds
the program fingerprint, which counts every module of the program's packages this process imported from outside
the planned folder (platformctl/offline/keys.py): a template therefore imports them all first (`import_program`,
as `planned_fleet` does), so that its copies' keys are its own; should a copy's entries still not be valid there
(a test imported a program module from another folder meanwhile), the copy's cache is filled by a cold plan of its
own, as the tests did before they shared one.
"""

from __future__ import annotations

import datetime
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from fleet.repo import Repo, active
from foundation.stacks import StackName
from platformctl.offline.planner import with_dependencies
from platformctl.offline.results import stack_keys
from platformctl.offline.store import ResultCache
from platformctl.planning import run_plan
from policies.context import context_for
from policies.model import Violation
from policies.rules import context_fingerprint
from scripts.fleet import copy_repo
from tests.conftest import ROOT, import_program


def cache_serves(root: Path, stacks: list[StackName]) -> bool:
    """Whether a plan of `stacks` in `root` would find each of them and every stack they read in the cache, and the
    findings of `stacks` under their current policy context (nothing planned, nothing evaluated again)."""
    repo = Repo(root)
    with active(repo):
        ordered, deps = with_dependencies(repo, stacks)
        keys = stack_keys(repo, ordered, deps, datetime.date.today())
        cache = ResultCache(repo.state_dir / "cache")
        for stack in ordered:
            entry = cache.get(str(stack), keys[str(stack)])
            if entry is None:
                return False
            if stack in stacks:
                context = context_for(repo, stack, repo.stack_config(stack).values)
                if entry.policy_context != context_fingerprint(context, entry.claims):
                    return False
    return True


@dataclass(frozen=True)
class WarmRepo:
    """A repository copy after a cold plan of `stacks` through its (empty) cache, and what that plan gave."""

    root: Path
    """The template: never planned in or edited after that plan (tests plan in copies of it)."""
    stacks: tuple[StackName, ...]
    """The stacks planned."""
    planned: tuple[str, ...]
    """The stacks the cold plan planned, in order (each requested stack and what it reads)."""
    json_text: str
    """The plan's `--json` document."""
    violations: tuple[Violation, ...]
    """Its policy findings."""

    def copy(self, target: Path) -> Path:
        """A copy of the template at `target` (file times kept) whose cache serves the stacks as the template's
        did; the copy's root."""
        shutil.copytree(self.root, target, symlinks=True, ignore=shutil.ignore_patterns("__pycache__"))
        if not cache_serves(target, list(self.stacks)):
            shutil.rmtree(target / ".platformctl" / "cache")
            run_plan(Repo(target), list(self.stacks), workers=1)
            assert cache_serves(target, list(self.stacks)), "a cold plan fills the cache for a warm one"
        return target


def warm_repo(directory: Path, stacks: list[StackName], edit: Callable[[Path], None] | None = None) -> WarmRepo:
    """Copy the repository under `directory`, apply `edit`, plan `stacks` cold through the copy's cache."""
    import_program(ROOT)
    root = copy_repo(ROOT, directory / "template")
    if edit is not None:
        edit(root)
    names: list[str] = []
    result = run_plan(Repo(root), stacks, workers=1, progress=names.append)
    assert cache_serves(root, stacks)
    return WarmRepo(root, tuple(stacks), tuple(names), result.json_text(), tuple(result.violations))
