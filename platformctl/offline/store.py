"""The per-stack plan result cache under `.platformctl/cache`: reading and writing entries.

An entry holds the stack's preview exactly as the plan JSON shows it (already redacted), the outputs another
stack's StackReference reads (secret ones masked as unknown), its warnings, the hosts it claims and its policy
findings with the fingerprint of the context they were evaluated in. What its key is made of: `keys`; who may have
written it: `signing`.

One file per stack: a header line (JSON: the entry's metadata and its signature over all of it) and then the
preview JSON text, kept as text so a warm plan copies it into the plan document without parsing it. A file that
does not parse, does not match its signature or was written for another key is ignored and the stack planned again.
"""

from __future__ import annotations

import contextlib
import json
import os
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from foundation.stacks import parse_stack_name
from platformctl.offline.keys import FORMAT, input_stamps
from platformctl.offline.signing import replace_file, signature

VIOLATION_FIELDS = ("policy", "level", "stack", "urn", "message")
MAX_ENTRY_BYTES = 64 * 1024 * 1024
"""An entry larger than this is not one of ours (a stack's preview is well under a MiB)."""
REFERENCE_UNKNOWN = "\u2060platformctl-unknown:"
"""Marks a referenced stack's output that is unknown until that stack is applied."""


def mask_unknown(value: Any, path: str) -> Any:
    """`value` with every leaf replaced by an unknown marker (dict and list structure kept for indexing)."""
    if isinstance(value, dict):
        return {key: mask_unknown(item, f"{path}.{key}") for key, item in value.items()}
    if isinstance(value, list):
        return [mask_unknown(item, f"{path}.{index}") for index, item in enumerate(value)]
    return f"{REFERENCE_UNKNOWN}{path}"


@dataclass
class CachedResult:
    """One stack's planned result, as the cache keeps it."""

    stack: str
    """Stack name."""
    key: str
    """The key it was planned under."""
    fragment: str
    """The stack's preview as the plan JSON's text holds it (`preview_text`), secrets already redacted."""
    summary: dict[str, int]
    """The preview's changeSummary."""
    reference_outputs: dict[str, Any]
    """Outputs as a StackReference reads them; secret ones masked as unknown."""
    secret_outputs: list[str]
    """Names of the secret outputs."""
    lossy: bool
    """Masking hid a known secret value: a stack that reads this one must plan it again to see that value."""
    warnings: list[str]
    """The program's warnings."""
    claims: list[str]
    """Hosts the stack routes or certifies (for the fleet-wide unique-hosts check)."""
    policy_context: str = ""
    """Fingerprint of the policy context `violations` were found in ("" when not evaluated)."""
    violations: list[dict[str, Any]] = field(default_factory=list)
    """Policy findings on the stack, as plan JSON shows them."""

    def metadata(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "stack": self.stack,
            "key": self.key,
            "summary": self.summary,
            "reference_outputs": self.reference_outputs,
            "secret_outputs": self.secret_outputs,
            "lossy": self.lossy,
            "warnings": self.warnings,
            "claims": self.claims,
            "policy_context": self.policy_context,
            "violations": self.violations,
        }


def preview_text(preview: dict[str, Any]) -> str:
    """`json.dumps(preview, indent=1)` laid out as it sits in a plan document, two levels deep (`stacks` → name):
    every line after the first indented two more spaces (a JSON text has no raw newline inside a string, so every
    newline in it is layout). A warm plan then copies it into the document as it is."""
    return json.dumps(preview, indent=1).replace("\n", "\n  ")


def masked_references(stack: str, outputs: dict[str, Any], secret: list[str]) -> tuple[dict[str, Any], bool]:
    """Outputs with the secret ones masked (whatever a plan knows of a secret stays off the disk), and whether
    masking hid anything that was known."""
    masked = {
        name: mask_unknown(value, f"{stack}.{name}") if name in secret else value for name, value in outputs.items()
    }
    lossy = any(_has_known_leaf(outputs[name]) for name in secret if name in outputs)
    return masked, lossy


def _has_known_leaf(value: Any) -> bool:
    if isinstance(value, dict):
        return any(_has_known_leaf(item) for item in value.values())
    if isinstance(value, list):
        return any(_has_known_leaf(item) for item in value)
    return not (isinstance(value, str) and value.startswith(REFERENCE_UNKNOWN))


class ResultCache:
    """Entries under `directory`; `None` keeps nothing. `read=False` plans everything but still refreshes the
    entries (`plan --no-cache`); `write=False` uses entries without adding any (a dry run's scratch plan).

    Writing has one path, guarded: `watch(root)` stamps every file a plan of `root` reads (before anything is read
    for the keys), `put` only stages an entry, and `commit()` writes the staged entries if and only if no stamp
    changed since `watch`. A file edited at any point of a run (while keys are computed, while workers plan, while
    the policies are checked), even one put back since, keeps everything that run found out of the cache: its
    entries could pair one version's key with another's preview or findings. A run that fails or is interrupted
    never reaches `commit` and writes nothing."""

    def __init__(self, directory: Path | None, read: bool = True, write: bool = True) -> None:
        if directory is not None and (directory.is_symlink() or directory.parent.is_symlink()):
            # A link could point the cache (and the pruning of stale entries) anywhere: no cache then.
            directory = None
        self.directory = directory
        self.read = read
        self.write = write
        self._watched: tuple[Path, dict[str, tuple[int, int]]] | None = None
        self._staged: dict[str, CachedResult] = {}

    def watch(self, root: Path) -> None:
        """Stamp the inputs of a plan of `root` now: what is put from here on is kept only if they stay as they are.
        A second call in the same run keeps the first stamps (the earliest reads are the ones to guard)."""
        if self._watched is None:
            self._watched = (root, input_stamps(root))

    def inputs_unchanged(self) -> bool:
        """Whether every file stamped by `watch` is as it was (False when nothing was watched)."""
        return self._watched is not None and input_stamps(self._watched[0]) == self._watched[1]

    def _path(self, stack: str) -> Path | None:
        if self.directory is None:
            return None
        parse_stack_name(stack)  # a stack name is a safe file name; anything else never reaches the filesystem
        return self.directory / f"{stack}.plan"

    def get(self, stack: str, key: str) -> CachedResult | None:
        path = self._path(stack)
        if path is None or not self.read:
            return None
        try:
            # Only a regular file of sane size is read: a fifo would block (even opening it, without O_NONBLOCK)
            # and a device might never end.
            with open(os.open(path, os.O_RDONLY | os.O_NONBLOCK), "rb") as handle:
                if not stat.S_ISREG(os.fstat(handle.fileno()).st_mode):
                    return None
                raw = handle.read(MAX_ENTRY_BYTES + 1)
        except OSError:
            return None
        if len(raw) > MAX_ENTRY_BYTES:
            return None
        header, _, body = raw.partition(b"\n")
        try:
            envelope = json.loads(header)
            meta = envelope["meta"]
            if not isinstance(meta, dict) or envelope.get("digest") != entry_signature(meta, body):
                return None  # edited or damaged since it was written: plan again
            if meta.get("format") != FORMAT or meta.get("stack") != stack or meta.get("key") != key:
                return None  # a foreign, older or stale entry: plan again
            if not _well_formed(meta):
                return None  # signed but not what this version writes: plan again
            return CachedResult(
                stack=stack,
                key=key,
                fragment=body.decode("utf-8"),
                summary=dict(meta["summary"]),
                reference_outputs=dict(meta["reference_outputs"]),
                secret_outputs=list(meta["secret_outputs"]),
                lossy=bool(meta["lossy"]),
                warnings=list(meta["warnings"]),
                claims=list(meta["claims"]),
                policy_context=str(meta["policy_context"]),
                violations=list(meta["violations"]),
            )
        except (ValueError, KeyError, TypeError, AttributeError, UnicodeDecodeError, RecursionError):
            return None  # corrupted: plan again

    def put(self, result: CachedResult) -> None:
        """Stage `result` (the latest one per stack wins); `commit` writes it, if the inputs stayed unchanged."""
        self._path(result.stack)  # a bad stack name fails here, where it was put, not at commit
        self._staged[result.stack] = result

    def commit(self) -> bool:
        """Write the staged entries if no input changed since `watch`, else drop them; True if they were written.
        Stamps are compared once, after the last read of the run (the policy check's), before the first write."""
        staged, self._staged = self._staged, {}
        if not staged or self.directory is None or not self.write:
            return False
        if not self.inputs_unchanged():
            return False
        for result in staged.values():
            self._write(result)
        return True

    def discard(self) -> None:
        """End the run: drop what is still staged (a run that stopped before `commit` keeps nothing) and the
        stamps (the next run watches afresh)."""
        self._staged = {}
        self._watched = None

    def _write(self, result: CachedResult) -> None:
        path = self._path(result.stack)
        if path is None:
            return
        meta = result.metadata()
        body = result.fragment.encode("utf-8")
        header = json.dumps({"digest": entry_signature(meta, body), "meta": meta}, separators=(",", ":"))
        with contextlib.suppress(OSError):  # a cache that cannot be written only costs the next run time
            replace_file(path, header.encode() + b"\n" + body)

    def populated(self) -> bool:
        """Whether a read could find anything (a warm run), as opposed to a first or `--no-cache` run."""
        return self.read and self.directory is not None and any(self.directory.glob("*.plan"))

    def prune(self, keep: set[str]) -> None:
        """Remove entries of stacks that no longer exist (their stack file is gone)."""
        if self.directory is None or not self.write or not self.directory.is_dir():
            return
        for path in self.directory.glob("*.plan"):
            if path.stem not in keep:
                with contextlib.suppress(OSError):
                    path.unlink()


def _well_formed(meta: dict[str, Any]) -> bool:
    strings = (str,)
    return (
        isinstance(meta.get("summary"), dict)
        and all(isinstance(k, str) and type(v) is int for k, v in meta["summary"].items())
        and isinstance(meta.get("reference_outputs"), dict)
        and all(isinstance(meta.get(name), list) for name in ("secret_outputs", "warnings", "claims", "violations"))
        and all(isinstance(item, strings) for name in ("secret_outputs", "warnings", "claims") for item in meta[name])
        and all(
            isinstance(v, dict) and set(v) == set(VIOLATION_FIELDS) and all(isinstance(x, str) for x in v.values())
            for v in meta["violations"]
        )
        and isinstance(meta.get("lossy"), bool)
        and isinstance(meta.get("policy_context"), str)
    )


def entry_signature(meta: dict[str, Any], body: bytes) -> str:
    """The entry's signature (its header's "digest" field): an HMAC under this user's signing secret, so an entry
    that did not come from this user's own runs (edited, or committed to a branch and checked out) is ignored,
    whatever digest it carries."""
    return signature(json.dumps(meta, sort_keys=True).encode() + b"\0", body)
