"""Planned outputs of stacks that were only planned to be read (a partner's region and global), kept between runs.

A stack's key hashes everything its plan depends on: the program and the tool's code, the catalogs, the stack's
config file, its spec, the keys of the stacks it reads, and the SDK and provider versions. Any change is a miss."""

from __future__ import annotations

import contextlib
import hashlib
import json
from functools import cache
from importlib import metadata
from pathlib import Path
from typing import Any

from fleet.program import program_paths
from foundation.yamlio import write_atomic
from platformctl.offline.recorder import mask_unknown

PACKAGES = (
    "pulumi",
    "pulumi-aws",
    "pulumi-kubernetes",
    "pulumi-kong",
    "pulumi-snowflake",
    "pulumi-random",
    "pulumi-tls",
)


@cache
def program_fingerprint(root: Path) -> str:
    digest = hashlib.sha256()
    for name, path in program_paths(root).items():
        if path.is_file():
            digest.update(name.encode() + b"\0" + path.read_bytes() + b"\0")
    digest.update(versions_fingerprint().encode())
    return digest.hexdigest()


@cache
def versions_fingerprint() -> str:
    """The SDK and provider versions a plan was made with."""
    digest = hashlib.sha256()
    for package in PACKAGES:
        try:
            digest.update(f"{package}=={metadata.version(package)}\0".encode())
        except metadata.PackageNotFoundError:
            digest.update(f"{package}==none\0".encode())
    return digest.hexdigest()


def stack_key(root: Path, config_file: Path, spec_file: Path | None, dependency_keys: list[str]) -> str:
    digest = hashlib.sha256(program_fingerprint(root).encode())
    for path in (config_file, spec_file):
        if path is not None and path.is_file():
            digest.update(path.read_bytes() + b"\0")
    for key in dependency_keys:
        digest.update(key.encode())
    return digest.hexdigest()


class ReferenceCache:
    def __init__(self, directory: Path | None) -> None:
        self.directory = directory

    def _path(self, stack: str, key: str) -> Path | None:
        return self.directory / f"{stack}.{key[:32]}.json" if self.directory else None

    def get(self, stack: str, key: str) -> dict[str, Any] | None:
        path = self._path(stack, key)
        if path is None or not path.is_file():
            return None
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        if not isinstance(data, dict) or data.get("key") != key:
            return None  # a foreign or stale entry: plan again
        if not isinstance(data.get("outputs"), dict) or not isinstance(data.get("secret"), list):
            return None  # corrupted: plan again
        if data.get("digest") != _digest(data["outputs"], data["secret"]):
            return None  # edited or damaged since it was written: plan again
        return data

    def put(self, stack: str, key: str, reference_outputs: dict[str, Any], secret_outputs: list[str]) -> None:
        path = self._path(stack, key)
        if path is None:
            return
        for stale in path.parent.glob(f"{stack}.*.json"):
            stale.unlink(missing_ok=True)
        # Secret outputs are kept as unknowns: whatever a plan knows of a secret stays off the disk.
        outputs = {
            name: mask_unknown(value, f"{stack}.{name}") if name in secret_outputs else value
            for name, value in reference_outputs.items()
        }
        with contextlib.suppress(OSError):
            document = {"key": key, "outputs": outputs, "secret": secret_outputs}
            write_atomic(path, json.dumps({**document, "digest": _digest(outputs, secret_outputs)}))


def _digest(outputs: Any, secret: Any) -> str:
    return hashlib.sha256(json.dumps([outputs, secret], sort_keys=True).encode()).hexdigest()
