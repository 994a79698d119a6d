"""Dry runs: plan a change on a scratch view of the repository with the change applied (nothing is written).

A `changes.Change` is read only for its files, stacks and whether those stacks exist already (`Planned`), so this
module needs nothing of the change path.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Protocol

from fleet.program import top_level_entries
from fleet.repo import Repo
from foundation.errors import InputError
from foundation.stacks import StackName


class Planned(Protocol):
    """What a dry run reads of a change."""

    @property
    def files(self) -> Mapping[Path, bytes | None]:
        """New bytes per file; None deletes the file."""

    @property
    def stacks(self) -> list[StackName]:
        """Stacks whose plan the change alters."""

    @property
    def compare(self) -> bool:
        """The stacks exist already: show what changes against their current plan."""


def dry_run_plan(repo: Repo, change: Planned) -> Any:
    """Plan the changed stacks on a scratch view with the change applied; when the stacks exist, diff the result
    against their plan from the current files (so a region move shows its deletes and creates)."""
    from platformctl.offline.store import ResultCache
    from platformctl.planning import run_plan

    if not change.stacks:
        return None
    with overlay(repo, change) as scratch:
        # The repository's plan cache, read-only: unchanged stacks the changed ones read (global, a region) come
        # from it when their keys match; the scratch view's results are not kept.
        cached = ResultCache(repo.state_dir / "cache", write=False)
        after = run_plan(Repo(scratch), change.stacks, workers=1, cache=cached)
    if not change.compare:
        return after
    existing = [s for s in change.stacks if repo.has_stack(s) and _plannable(repo, s)]
    if not existing:
        return after
    before = run_plan(repo, existing, workers=1)
    return after.against(before.document)


def _plannable(repo: Repo, stack: StackName) -> bool:
    try:
        repo.dependencies(stack)
        return True
    except InputError:
        return False


@contextmanager
def overlay(repo: Repo, change: Planned) -> Iterator[Path]:
    """A scratch view of the repository with the change applied, for --dry-run plans; the repo is untouched."""
    with tempfile.TemporaryDirectory(prefix="platformctl-dry-run-") as tmp:
        root = Path(tmp)
        for name in top_level_entries(repo.root):
            if name in ("partners", "stacks", "integrations"):
                continue
            if (repo.root / name).exists():
                (root / name).symlink_to(repo.root / name)
        for folder in ("partners", "stacks", "integrations"):
            (root / folder).mkdir()
            if not (repo.root / folder).is_dir():
                continue
            for item in (repo.root / folder).iterdir():
                if item.is_file() and not item.is_symlink():
                    # Copies, not links: a spec must be a regular file where it is read.
                    shutil.copy2(item, root / folder / item.name)
        for path, content in change.files.items():
            target = root / path.relative_to(repo.root)
            target.unlink(missing_ok=True)
            if content is not None:
                target.write_bytes(content)
        yield root
