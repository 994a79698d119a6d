"""The per-stack plan result cache under `.platformctl/cache`: a stack is planned again only when its key changes.

A stack's key hashes everything its plan depends on: the program and the tool's code and data files (as derived
once by `fleet.program`), the stack's config file, its spec, the keys of the stacks it reads, the SDK, provider and
policy-library versions, and the dated facts the program checks (a Kubernetes version's support window). Any
change is a miss. An entry holds the stack's preview exactly as the plan JSON shows it (already redacted), the
outputs another stack's StackReference reads (secret ones masked as unknown), its warnings, the hosts it claims
and its policy findings with the fingerprint of the context they were evaluated in.

One file per stack: a header line (JSON: the entry's metadata and a digest over all of it) and then the preview
JSON text, kept as text so a warm plan copies it into the plan document without parsing it. A file that does not
parse, does not match its digest or was written for another key is ignored and the stack planned again.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import os
import platform
import secrets
import stat
import sys
import tempfile
from dataclasses import dataclass, field
from functools import cache
from importlib import metadata
from pathlib import Path
from typing import Any

import fleet.program as fleet_program
from fleet.program import CODE_ROOT, PROJECT_FILE, program_paths, using_store
from foundation.stacks import parse_stack_name

FORMAT = 3
"""Bumped when the entry layout changes: entries of another format are ignored."""
PACKAGES = (
    "pulumi",
    "pulumi-aws",
    "pulumi-kubernetes",
    "pulumi-kong",
    "pulumi-snowflake",
    "pulumi-random",
    "pulumi-tls",
    "pydantic",
    "kubernetes-validate",
)
"""Installed packages whose version shapes a plan or its policy findings (kubernetes-validate: the schemas)."""
KEY_BYTES = 32
FACTS_FILE = "program-facts.json"
MAX_FACTS = 4096
"""Module facts kept in the user's facts file (a module's facts are about 1 KiB)."""
MAX_FACTS_BYTES = 32 * 1024 * 1024
VIOLATION_FIELDS = ("policy", "level", "stack", "urn", "message")
MAX_ENTRY_BYTES = 64 * 1024 * 1024
"""An entry larger than this is not one of ours (a stack's preview is well under a MiB)."""
REFERENCE_UNKNOWN = "\u2060platformctl-unknown:"
"""Marks a referenced stack's output that is unknown until that stack is applied."""


@cache
def program_file_paths(root: Path) -> tuple[tuple[tuple[str, Path], ...], ...]:
    """For each of `program_trees(root)`, its program files by repository-relative name. Derived once per process
    (one CLI run): the key's fingerprint and the input stamps taken before and after planning share it. The
    modules' facts (imports, data file names) come from the user's facts file where their bytes are unchanged."""
    base = user_folder()
    store = FactsFile(base / FACTS_FILE if base is not None else None)
    with using_store(store):
        paths = tuple(tuple(program_paths(tree).items()) for tree in program_trees(root))
    store.save()
    return paths


@cache
def _deriver() -> str:
    """The code that derives a module's facts (fleet/program.py, this file's format): facts kept by another version
    of it are not used."""
    return hashlib.sha256(f"{FORMAT}\0".encode() + Path(fleet_program.__file__).read_bytes()).hexdigest()


class FactsFile:
    """`fleet.program`'s module facts kept between runs in one file of the user folder, signed like the entries
    (an edited or foreign file is ignored and rewritten). It keeps what this run used first, then older entries
    (other checkouts, other versions) up to `MAX_FACTS`."""

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
                signature, _, body = handle.read(MAX_FACTS_BYTES).partition(b"\n")
        except OSError:
            return {}
        expected = hmac.new(signing_key(), b"program-facts\0" + body, hashlib.sha256).hexdigest().encode()
        if not hmac.compare_digest(signature, expected):
            return {}
        try:
            document = json.loads(body)
        except ValueError:
            return {}
        current = isinstance(document, dict) and document.get("deriver") == _deriver()
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
        body = json.dumps({"deriver": _deriver(), "facts": kept}, sort_keys=True, separators=(",", ":")).encode()
        signature = hmac.new(signing_key(), b"program-facts\0" + body, hashlib.sha256).hexdigest().encode()
        with contextlib.suppress(OSError):
            self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            replace_file(self.path, signature + b"\n" + body)


@cache
def program_fingerprint(root: Path) -> str:
    """The program files of `root` and, when this installation's code lives elsewhere (`--root` naming another
    checkout), its program files too: the engine, the policies and any module the tool imported before the program
    ran come from the installation, so a change to either is a change. Also any module of the program's packages
    this process imported from elsewhere (a folder on `PYTHONPATH` shadowing one of them)."""
    digest = hashlib.sha256()
    for tree_files in program_file_paths(root):
        for name, path in tree_files:
            if path.is_file():
                digest.update(name.encode() + b"\0" + path.read_bytes() + b"\0")
        digest.update(b"\1")
    for name, path in foreign_program_modules(root):
        with contextlib.suppress(OSError):
            digest.update(b"\2" + name.encode() + b"\0" + str(path).encode() + b"\0" + path.read_bytes())
    digest.update(versions_fingerprint().encode())
    return digest.hexdigest()


def input_stamps(root: Path) -> dict[str, tuple[int, int]]:
    """(mtime in ns, size) of every file a plan can read: the program's files (the installation's too, when it is
    elsewhere), every stack file and every spec."""
    paths = [path for tree_files in program_file_paths(root) for _, path in tree_files]
    paths += [*root.joinpath("stacks").glob("*.yaml"), *root.joinpath("partners").glob("*.yaml")]
    stamps = {}
    for path in paths:
        try:
            info = path.stat()
        except OSError:
            continue
        stamps[str(path)] = (info.st_mtime_ns, info.st_size)
    return stamps


def program_packages(root: Path) -> set[str]:
    """The top-level packages and modules the program's files belong to (`components`, `gateway`, ...)."""
    tops = {name.partition("/")[0] for tree_files in program_file_paths(root) for name, _ in tree_files}
    return {top.removesuffix(".py") for top in tops} - {"__main__", PROJECT_FILE}


def foreign_program_modules(root: Path) -> list[tuple[str, Path]]:
    """Modules of the program's packages this process imported from neither `root` nor this installation."""
    packages = program_packages(root)
    trees = tuple(str(tree.resolve()) + os.sep for tree in (root, CODE_ROOT))
    found = []
    for name, module in list(sys.modules.items()):
        file = getattr(module, "__file__", None)
        if name.partition(".")[0] in packages and isinstance(file, str) and not file.startswith(trees):
            found.append((name, Path(file)))
    return sorted(found)


def forget_program() -> None:
    """Derive the program files and their fingerprint afresh (a long-lived process whose program files changed)."""
    program_file_paths.cache_clear()
    program_fingerprint.cache_clear()


def program_trees(root: Path) -> list[Path]:
    """Where the code a plan of `root` runs comes from: `root`, and this installation when it is elsewhere."""
    return [root] if root.resolve() == CODE_ROOT else [root, CODE_ROOT]


@cache
def versions_fingerprint() -> str:
    """The Python, SDK, provider and policy-library versions a plan was made with."""
    digest = hashlib.sha256(f"python=={platform.python_version()}\0".encode())
    for package in PACKAGES:
        try:
            digest.update(f"{package}=={metadata.version(package)}\0".encode())
        except metadata.PackageNotFoundError:
            digest.update(f"{package}==none\0".encode())
    return digest.hexdigest()


def stack_key(root: Path, config: bytes, spec: bytes | None, dependency_keys: list[str], facts: str = "") -> str:
    """The key of one stack: `config` is the config the program is given (canonical JSON of the values and the
    secret keys, so a comment in a stack file is not a change), `spec` the spec's bytes as parsed."""
    digest = hashlib.sha256(f"{FORMAT}\0{program_fingerprint(root)}\0{facts}\0".encode())
    digest.update(config + b"\0")
    digest.update(b"-\0" if spec is None else spec + b"\0")
    for key in dependency_keys:
        digest.update(key.encode())
    return digest.hexdigest()


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
            if not isinstance(meta, dict) or envelope.get("digest") != _digest(meta, body):
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
        header = json.dumps({"digest": _digest(meta, body), "meta": meta}, separators=(",", ":"))
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


def replace_file(path: Path, data: bytes) -> None:
    """Write through a temporary file (mode 0600) and a rename, without fsync: a cache entry, facts file, learned
    list or signing key lost or torn by a crash fails its check and is made again, so none is worth a disk flush."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _digest(meta: dict[str, Any], body: bytes) -> str:
    """The entry's signature: an HMAC under this user's signing key, so an entry that did not come from this user's
    own runs (edited, or committed to a branch and checked out) is ignored, whatever digest it carries."""
    mac = hmac.new(signing_key(), json.dumps(meta, sort_keys=True).encode() + b"\0", hashlib.sha256)
    mac.update(body)
    return mac.hexdigest()


SIGNING_KEY_FILE = "cache-signing.key"


def user_folder() -> Path | None:
    """This user's platformctl folder outside every repository: `$XDG_CACHE_HOME/platformctl`, by default
    `~/.cache/platformctl`. None without a home folder that exists (it is not created: `HOME=/nonexistent` is a
    convention). A relative `XDG_CACHE_HOME` is ignored, as the XDG base directory specification requires: it
    would put the user's key into whichever folder the process runs in, a repository perhaps."""
    configured = os.environ.get("XDG_CACHE_HOME", "")
    if os.path.isabs(configured):
        return Path(configured) / "platformctl"
    try:
        home = Path.home()
    except RuntimeError:
        return None
    return home / ".cache" / "platformctl" if home.is_absolute() and home.is_dir() else None


def _read_key(path: Path) -> bytes | None:
    with contextlib.suppress(OSError), open(os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOFOLLOW), "rb") as handle:
        info = os.fstat(handle.fileno())
        key = handle.read(KEY_BYTES + 1)
        # Only a private regular file of the right length: not a link, a device, or a key others could read.
        if stat.S_ISREG(info.st_mode) and info.st_mode & 0o077 == 0 and len(key) == KEY_BYTES:
            return key
    return None


def signing_key_is_kept() -> bool:
    """Whether `signing_key()` is the kept one (another process of this user gets the same key)."""
    base = user_folder()
    return base is not None and signing_key() == _read_key(base / SIGNING_KEY_FILE)


@cache
def signing_key() -> bytes:
    """32 random bytes kept in the user's cache folder, outside every repository (`$XDG_CACHE_HOME/platformctl`, by
    default `~/.cache/platformctl`), created on first use with mode 0600. Without a writable home, a key of this
    process alone: nothing cached is trusted by a later run, which only costs it time."""
    base = user_folder()
    if base is None:
        return secrets.token_bytes(32)
    path = base / SIGNING_KEY_FILE
    kept = _read_key(path)
    if kept is not None:
        return kept
    key = secrets.token_bytes(KEY_BYTES)
    with contextlib.suppress(OSError):
        base.mkdir(parents=True, exist_ok=True, mode=0o700)
        replace_file(path, key)  # mode 0600, as mkstemp makes it
    return key
