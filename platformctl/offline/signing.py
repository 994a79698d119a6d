"""This user's signing secret and the signatures made with it: what the result cache, the facts file and
ci-preview's side cache trust is what this user's own runs wrote.

The secret is 32 random bytes in the user's cache folder, outside every repository (`$XDG_CACHE_HOME/platformctl`,
by default `~/.cache/platformctl`), mode 0600. An entry edited by hand, or committed to a branch and checked out,
does not carry a signature made with it, whatever digest it claims.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import os
import secrets
import stat
import tempfile
from functools import cache
from pathlib import Path

SIGNING_SECRET_FILE = "cache-signing.key"
"""The secret's file name in the user folder (named before this module was: kept, so existing entries stay valid)."""
SECRET_BYTES = 32


def signature(*parts: bytes) -> str:
    """HMAC-SHA256 of `parts`, concatenated, under this user's signing secret (hex)."""
    mac = hmac.new(signing_secret(), digestmod=hashlib.sha256)
    for part in parts:
        mac.update(part)
    return mac.hexdigest()


def user_folder() -> Path | None:
    """This user's platformctl folder outside every repository: `$XDG_CACHE_HOME/platformctl`, by default
    `~/.cache/platformctl`. None without a home folder that exists (it is not created: `HOME=/nonexistent` is a
    convention). A relative `XDG_CACHE_HOME` is ignored, as the XDG base directory specification requires: it
    would put the user's secret into whichever folder the process runs in, a repository perhaps."""
    configured = os.environ.get("XDG_CACHE_HOME", "")
    if os.path.isabs(configured):
        return Path(configured) / "platformctl"
    try:
        home = Path.home()
    except RuntimeError:
        return None
    return home / ".cache" / "platformctl" if home.is_absolute() and home.is_dir() else None


def _read_secret(path: Path) -> bytes | None:
    with contextlib.suppress(OSError), open(os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOFOLLOW), "rb") as handle:
        info = os.fstat(handle.fileno())
        secret = handle.read(SECRET_BYTES + 1)
        # Only a private regular file of the right length: not a link, a device, or a secret others could read.
        if stat.S_ISREG(info.st_mode) and info.st_mode & 0o077 == 0 and len(secret) == SECRET_BYTES:
            return secret
    return None


@cache
def signing_secret() -> bytes:
    """The kept secret, created on first use with mode 0600. Without a writable home, a secret of this process
    alone: nothing cached is trusted by a later run, which only costs it time."""
    base = user_folder()
    if base is None:
        return secrets.token_bytes(SECRET_BYTES)
    path = base / SIGNING_SECRET_FILE
    kept = _read_secret(path)
    if kept is not None:
        return kept
    secret = secrets.token_bytes(SECRET_BYTES)
    with contextlib.suppress(OSError):
        base.mkdir(parents=True, exist_ok=True, mode=0o700)
        replace_file(path, secret)  # mode 0600, as mkstemp makes it
    return secret


def replace_file(path: Path, data: bytes) -> None:
    """Write through a temporary file (mode 0600) and a rename, without fsync: a cache entry, facts file or
    signing secret lost or torn by a crash fails its check and is made again, so none is worth a disk flush."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
