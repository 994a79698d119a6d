"""A change's write-ahead journal: several files change as one, or not at all.

Before a change writes, `.platformctl/journal/<id>.json` records each file's previous bytes (or that it did not
exist) and the locks the change holds. The files are then written one by one (each atomically), and the journal
moves to `written`. A run that dies in between leaves a `writing` journal: the next change that takes the same
locks rolls the files back to what they were and says so. A journal left in `applying` (the engine was running)
is closed without touching the files, with a note to rerun the engine: the files are what was applied.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from foundation.errors import InputError
from foundation.naming import PARTNER_ID
from foundation.yamlio import write_atomic

Phase = Literal["writing", "written", "applying"]
_LOCK = re.compile(r"^[a-z][a-z0-9-]{0,80}$")
_CHANGED_FILE = re.compile(rf"(partners/{PARTNER_ID}|stacks/Pulumi\.[a-z][a-z0-9-]{{0,80}})\.yaml")


@dataclass
class Journal:
    path: Path
    """The journal file."""
    root: Path
    """Repository the recorded paths are relative to."""
    locks: list[str]
    """Locks the change held."""
    before: dict[str, bytes | None]
    """Each file's bytes before the change (None: it did not exist), by repository-relative path."""
    after: dict[str, str | None]
    """SHA-256 of each file's new bytes (None: the change deletes it): a rollback touches only files that still
    hold exactly what the interrupted run wrote."""
    phase: Phase
    """How far the change got."""

    def save(self) -> None:
        document = {
            "locks": self.locks,
            "phase": self.phase,
            "before": {k: None if v is None else base64.b64encode(v).decode() for k, v in self.before.items()},
            "after": self.after,
        }
        write_atomic(self.path, json.dumps(document, indent=1) + "\n")

    def move_to(self, phase: Phase) -> None:
        self.phase = phase
        self.save()

    def rollback(self) -> list[str]:
        """Put every file back as it was; returns the paths restored. A file that holds neither its old bytes nor
        what the interrupted run wrote was edited since: nothing is touched, and the files are named (exit 2)."""
        edited = [relative for relative in self.before if _state(self.root / relative) not in self._known(relative)]
        if edited:
            raise InputError.single(
                f".platformctl/journal/{self.path.name}",
                "",
                f"an interrupted change to {', '.join(self.locks)} left {', '.join(edited)} changed since: nothing was "
                "rolled back; check those files, then remove this journal to keep them as they are",
            )
        restored = []
        for relative, content in self.before.items():
            target = self.root / relative
            if content is None:
                if target.exists() or target.is_symlink():
                    target.unlink()
                    restored.append(relative)
            elif not target.is_file() or target.read_bytes() != content:
                write_atomic(target, content)
                restored.append(relative)
        self.close()
        return restored

    def close(self) -> None:
        self.path.unlink(missing_ok=True)

    def _known(self, relative: str) -> set[str | None]:
        before = self.before[relative]
        return {None if before is None else _digest(before), self.after.get(relative)}


def _digest(content: bytes) -> str:
    return hashlib.sha256(content).hexdigest()


def _state(path: Path) -> str | None:
    """A file's SHA-256, or None when it does not exist."""
    if not path.exists() and not path.is_symlink():
        return None
    try:
        return _digest(path.read_bytes())
    except OSError:
        return "unreadable"


def journal_dir(state_dir: Path) -> Path:
    return state_dir / "journal"


def begin(root: Path, state_dir: Path, locks: list[str], files: Mapping[Path, bytes | None]) -> Journal:
    before: dict[str, bytes | None] = {}
    after: dict[str, str | None] = {}
    for path, content in files.items():
        relative = str(path.relative_to(root))
        before[relative] = path.read_bytes() if path.is_file() and not path.is_symlink() else None
        after[relative] = None if content is None else _digest(content)
    name = f"{uuid.uuid4().hex}.json"
    journal = Journal(journal_dir(state_dir) / name, root, sorted(locks), before, after, "writing")
    journal.save()
    return journal


def unreadable(state_dir: Path, root: Path) -> list[Path]:
    """Journal files that cannot be read as one (damaged by hand or by a disk): `validate` names them."""
    directory = journal_dir(state_dir)
    if not directory.is_dir():
        return []
    return [path for path in sorted(directory.glob("*.json")) if load(root, path) is None]


def pending(root: Path, state_dir: Path) -> list[Journal]:
    """Journals left by runs that did not finish (unreadable ones are skipped here; see `unreadable`)."""
    directory = journal_dir(state_dir)
    if not directory.is_dir():
        return []
    return [journal for path in sorted(directory.glob("*.json")) if (journal := load(root, path)) is not None]


def load(root: Path, path: Path) -> Journal | None:
    try:
        document: Any = json.loads(path.read_text(encoding="utf-8"))
        locks = document["locks"]
        if not isinstance(locks, list) or not all(isinstance(lock, str) and _LOCK.fullmatch(lock) for lock in locks):
            return None  # a lock name that is not one would stop every later change with an internal error
        phase = document["phase"]
        after = document["after"]
        if not isinstance(after, dict) or not all(v is None or isinstance(v, str) for v in after.values()):
            return None
        before = {}
        for relative, content in document["before"].items():
            if not _CHANGED_FILE.fullmatch(relative):
                return None  # a change only ever writes specs and stack files: restore nothing else
            before[relative] = None if content is None else base64.b64decode(content, validate=True)
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None
    if phase not in ("writing", "written", "applying"):
        return None
    if set(after) != set(before):
        return None
    return Journal(path, root, locks, before, after, phase)


def recover(journals: list[Journal]) -> list[str]:
    """Finish what crashed runs left (the caller holds their locks); returns what was done, for the user."""
    notes = []
    for journal in journals:
        names = ", ".join(journal.locks)
        if journal.phase == "writing":
            restored = journal.rollback()
            notes.append(
                f"an interrupted change to {names} was rolled back"
                + (f" (restored {', '.join(restored)})" if restored else " (no file had changed)")
            )
        elif journal.phase == "applying":
            journal.close()
            notes.append(
                f"an earlier run was interrupted while applying {names}: its files stand as written; "
                "run `platformctl up` for those stacks to finish"
            )
        else:
            journal.close()
    return notes
