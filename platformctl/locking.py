"""A lock file in `.platformctl/` so two runs never write the same partner or region at once."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from platformctl.errors import InputError


@contextmanager
def exclusive(state_dir: Path, name: str) -> Iterator[None]:
    """Hold `.platformctl/<name>.lock` for the duration; a second holder is refused at once (exit 2)."""
    state_dir.mkdir(parents=True, exist_ok=True)
    lock = state_dir / f"{name}.lock"
    try:
        fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
    except FileExistsError:
        holder = _holder(lock)
        if holder is not None and not _alive(holder):
            # A run that crashed left its lock: take it over.
            lock.unlink(missing_ok=True)
            fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        else:
            raise InputError.single(
                str(lock), "", f"another platformctl run (pid {holder}) is changing {name}; try again when it ends"
            ) from None
    try:
        os.write(fd, str(os.getpid()).encode())
        os.close(fd)
        yield
    finally:
        lock.unlink(missing_ok=True)


def _holder(lock: Path) -> int | None:
    try:
        return int(lock.read_text().strip() or "0") or None
    except (OSError, ValueError):
        return None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
