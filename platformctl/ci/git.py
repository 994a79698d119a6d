"""Git for ci-preview: resolve refs, list changed files, export a commit's tree without a checkout."""

from __future__ import annotations

import shutil
import subprocess
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path

from fleet.repo import STATE_DIR
from foundation.errors import EngineError, InputError


def git(root: Path, *args: str) -> str:
    try:
        done = subprocess.run(["git", *args], cwd=root, capture_output=True, text=True, check=False)
    except FileNotFoundError:
        raise EngineError("git is not installed") from None
    if done.returncode != 0:
        raise EngineError(f"git {' '.join(args)}: {done.stderr.strip()}")
    return done.stdout


def resolve_ref(root: Path, ref: str) -> str:
    if ref.startswith("-"):
        raise InputError.single("arguments", "REF", f"{ref!r} is not a git ref")
    try:
        return git(root, "rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}").strip()
    except EngineError:
        raise InputError.single("arguments", "REF", f"unknown git ref {ref!r}") from None


@dataclass(frozen=True)
class FileChange:
    status: str
    """A, M, D or R (git's letters)."""
    path: str
    """Path at head (at base for a deletion)."""
    old_path: str | None = None
    """Path at base, for renames."""


def changed_files(root: Path, base: str, head: str) -> list[FileChange]:
    changes = []
    for line in git(root, "diff", "--name-status", "-M", base, head).splitlines():
        parts = line.split("\t")
        status = parts[0][0]
        if status == "R":
            changes.append(FileChange("R", parts[2], parts[1]))
        else:
            changes.append(FileChange(status, parts[1]))
    return changes


def export_tree(root: Path, sha: str, destination: Path) -> Path:
    """The commit's files in `destination`, through `git archive` (no worktree, no checkout)."""
    archive = subprocess.run(["git", "archive", "--format=tar", sha], cwd=root, capture_output=True, check=False)
    if archive.returncode != 0:
        raise EngineError(f"git archive {sha}: {archive.stderr.decode(errors='replace').strip()}")
    destination.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryFile() as buffer:
        buffer.write(archive.stdout)
        buffer.seek(0)
        with tarfile.open(fileobj=buffer) as tar:
            try:
                tar.extractall(destination, filter="data")
            except tarfile.FilterError as exc:
                # A link out of the tree (or an absolute one) in the commit: untrusted input, refused.
                what = "is a symbolic link out of the tree" if exc.tarinfo.issym() else f"refused: {exc}"
                raise InputError.single(f"{sha[:10]}:{exc.tarinfo.name}", "", what) from None
    # Tool state committed to a branch (plan caches, journals, locks) is not the commit's to give: a cached plan
    # would stand in for planning the commit's own files.
    state = destination / STATE_DIR
    if state.is_symlink() or state.is_file():
        state.unlink()
    else:
        shutil.rmtree(state, ignore_errors=True)
    return destination


DATA_FOLDERS = ("partners", "stacks", "regions", "gateway")
"""Folders whose files platformctl reads as data: in a pull request they must be regular files."""


def refuse_links(tree: Path, sha: str) -> None:
    """A symbolic link among the data files of a commit is bad input: it could make a spec read another file."""
    for folder in DATA_FOLDERS:
        if (tree / folder).is_symlink():
            raise InputError.single(
                f"{sha[:10]}:{folder}", "", "is a symbolic link; the data folders must be real folders of the commit"
            )
        for path in sorted((tree / folder).rglob("*")) if (tree / folder).is_dir() else []:
            if path.is_symlink():
                raise InputError.single(
                    f"{sha[:10]}:{path.relative_to(tree)}",
                    "",
                    "is a symbolic link; specs and stack files must be regular files",
                )


def working_tree_dirty(root: Path) -> bool:
    try:
        return bool(git(root, "status", "--porcelain", "--untracked-files=no").strip())
    except EngineError:
        return False
