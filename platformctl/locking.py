"""Locks that keep two platformctl runs from changing the same partner, region or fleet index at once.

Each lock is an `fcntl.flock` on `.platformctl/locks/<name>.lock`. The kernel drops it when the holder's
process ends, however it ends, so a crash, a garbage or empty lock file, or a reused pid never blocks anyone;
and two runs can never both hold it. The file itself is never deleted (deleting a flock'ed file lets a third
run lock a new inode while the second still holds the old one). A run that finds a lock held stops at once
with exit code 2: changes are short and a waiting run would plan against files about to change.
"""

from __future__ import annotations

import fcntl
import os
import re
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

from foundation.errors import InputError

FLEET = "fleet"
"""Taken while a change checks the whole fleet (domain ownership) and writes: short, never across an apply."""
_NAME = re.compile(r"^[a-z][a-z0-9-]{0,80}$")


def lock_dir(state_dir: Path) -> Path:
    return state_dir / "locks"


@contextmanager
def exclusive(state_dir: Path, name: str) -> Iterator[None]:
    """Hold the lock `name` for the duration; a second holder is refused at once (InputError, exit 2)."""
    if not _NAME.fullmatch(name):
        raise ValueError(f"bad lock name {name!r}")
    directory = lock_dir(state_dir)
    path = directory / f"{name}.lock"
    try:
        directory.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW, 0o644)
    except OSError as exc:
        raise InputError.single(
            f".platformctl/locks/{name}.lock", "", f"cannot open the lock file: {exc.strerror or exc}"
        ) from None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise InputError.single(
                f".platformctl/locks/{name}.lock",
                "",
                f"another platformctl run{_holder(fd)} is changing {name}; try again when it ends",
            ) from None
        # The pid is for people reading the file; the lock never trusts it.
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        yield
    finally:
        os.close(fd)  # closing the descriptor releases the lock


@contextmanager
def holding(state_dir: Path, names: list[str]) -> Iterator[None]:
    """Hold every lock in `names` (taken in sorted order)."""
    with ExitStack() as stack:
        for name in sorted(set(names)):
            stack.enter_context(exclusive(state_dir, name))
        yield


def _holder(fd: int) -> str:
    try:
        text = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
    except OSError:
        return ""
    return f" (pid {text})" if text.isdigit() else ""
