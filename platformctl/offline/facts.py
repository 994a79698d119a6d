"""`fleet.program`'s module facts (imports, data file names) kept between runs in one signed file of the user
folder, by the SHA-256 of each module's bytes: a warm run parses no unchanged module."""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import os
import stat
from functools import cache
from pathlib import Path
from typing import Any

import fleet.program as fleet_program
from platformctl.offline.signing import replace_file, signature

FACTS_FILE = "program-facts.json"
MAX_FACTS = 4096
"""Module facts kept in the user's facts file (a module's facts are about 1 KiB)."""
MAX_FACTS_BYTES = 32 * 1024 * 1024
DERIVER_FORMAT = 4
"""Bumped when the facts' layout changes (it was the cache's format when both lived in one module)."""
_PURPOSE = b"program-facts\0"
"""What a facts file's signature is over, besides its body: never mistaken for another signed thing."""


@cache
def deriver() -> str:
    """The code that derives a module's facts (fleet/program.py, this file's format): facts kept by another version
    of it are not used."""
    return hashlib.sha256(f"{DERIVER_FORMAT}\0".encode() + Path(fleet_program.__file__).read_bytes()).hexdigest()


class FactsFile:
    """The facts file at `path` (None: nothing kept), signed with the user's signing secret (an edited or foreign
    file is ignored and rewritten). It keeps what this run used first, then older entries (other checkouts, other
    versions) up to `MAX_FACTS`."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self.known: dict[str, Any] = self._read() if path is not None else {}
        self.used: dict[str, Any] = {}
        self.changed = False

    def get(self, digest: str) -> Any:
        facts = self.known[digest]
        self.used[digest] = facts
        return facts

    def put(self, digest: str, facts: Any) -> None:
        self.used[digest] = facts
        self.changed = True

    def _read(self) -> dict[str, Any]:
        assert self.path is not None
        try:
            with open(os.open(self.path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOFOLLOW), "rb") as handle:
                info = os.fstat(handle.fileno())
                if not stat.S_ISREG(info.st_mode) or info.st_size > MAX_FACTS_BYTES:
                    return {}
                signed, _, body = handle.read(MAX_FACTS_BYTES).partition(b"\n")
        except OSError:
            return {}
        if not hmac.compare_digest(signed, signature(_PURPOSE, body).encode()):
            return {}
        try:
            document = json.loads(body)
        except ValueError:
            return {}
        current = isinstance(document, dict) and document.get("deriver") == deriver()
        facts = document.get("facts") if current else None
        return facts if isinstance(facts, dict) else {}

    def save(self) -> None:
        if self.path is None or not self.changed:
            return
        kept = dict(self.used)
        for digest, facts in self.known.items():
            if len(kept) >= MAX_FACTS:
                break
            kept.setdefault(digest, facts)
        body = json.dumps({"deriver": deriver(), "facts": kept}, sort_keys=True, separators=(",", ":")).encode()
        with contextlib.suppress(OSError):
            self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            replace_file(self.path, signature(_PURPOSE, body).encode() + b"\n" + body)
