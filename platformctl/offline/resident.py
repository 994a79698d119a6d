"""The resident planning worker: a background process per repository (and Python installation) that keeps the
Pulumi SDK, the providers and the program's modules imported between runs, and forks a child to plan each stack
it is sent.

Why: after one spec changed, a plan has one stack to plan, and a fresh worker spends about 3 s importing provider
SDKs (`pulumi_snowflake` alone about 1.2 s) and the provider modules the program loads on first use, before a
0.2 s plan. `platformctl plan` starts the resident worker when it finds none, and sends it the stacks to plan
when they are few (fewer than `planner.SEQUENTIAL_BELOW`).

What it may serve, and whom:
- It serves only the program whose files and package versions it imported: a client compares the worker's
  program fingerprint with its own (the result cache's), and stops a worker that differs. The worker itself exits
  when its installed packages change, its repository or socket goes away, it was idle for
  `PLATFORMCTL_RESIDENT_IDLE_SECONDS` (600), or it is told to (`platformctl plan-worker stop`).
- Each stack is planned in a fresh fork of the worker, which never reads a repository itself: no spec, stack file
  or planned result outlives a request.
- Only its own user reaches it: the socket lives in a folder only that user can enter, the worker checks the
  peer's uid, and each side proves it holds the user's key (HMAC of the other's fresh challenge) before anything
  is unpickled.

`PLATFORMCTL_RESIDENT_WORKER=0` turns it off; under CI (`CI` set) it is off unless turned on with `=1`.
"""

from __future__ import annotations

import ast
import contextlib
import fcntl
import hashlib
import hmac
import importlib
import json
import os
import pickle
import re
import secrets
import select
import signal
import socket
import stat
import struct
import subprocess
import sys
import sysconfig
import tempfile
import threading
import time
import types
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fleet.program import CODE_ROOT
from foundation.errors import EngineError, PlatformError
from platformctl.offline.cache import (
    forget_program,
    program_file_paths,
    program_fingerprint,
    signing_key,
    signing_key_is_kept,
    user_folder,
)
from platformctl.offline.planner import PlanJob, Planned, PlanningPool, import_program, plan_job

SWITCH = "PLATFORMCTL_RESIDENT_WORKER"
IDLE_SWITCH = "PLATFORMCTL_RESIDENT_IDLE_SECONDS"
IDLE_SECONDS = 600.0
MAX_SOCKET_PATH = 100
"""Bytes: a Unix socket's path must fit `sun_path` (108 bytes on Linux, 104 on macOS)."""
HANDSHAKE_SECONDS = 5.0
"""How long either side waits for the other's challenge, proof or request before giving up on the connection."""
MAX_MESSAGE = 256 * 1024 * 1024
LEARNED_PACKAGES = frozenset(
    {
        "pulumi",
        "pulumi_aws",
        "pulumi_kubernetes",
        "pulumi_kong",
        "pulumi_snowflake",
        "pulumi_random",
        "pulumi_tls",
        "kubernetes_validate",
        "jsonschema",
        "jsonschema_specifications",
        "referencing",
    }
)
"""Packages whose modules a child loaded on first use are imported by the worker afterwards, so the next child
starts with them (a provider's API groups load lazily). Only libraries: the program's own modules are imported
at start, under the fingerprint."""
MAX_LEARNED_FILE = 1024 * 1024
_MODULE_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*")
LEARNED_BYTES = 60_000
"""At most this much of a child's list of loaded modules: it must fit the pipe, which is read after the child
exits (a Linux pipe holds 64 KiB)."""
_NONCE = 32
_PROOF = hashlib.sha256().digest_size


class ResidentWorkerLostError(PlatformError):
    """The resident worker stopped answering in the middle of a plan (the caller plans the stacks itself)."""


class _ProtocolError(Exception):
    pass


def enabled() -> bool:
    value = os.environ.get(SWITCH, "").strip().lower()
    if value in ("0", "false", "no", "off"):
        return False
    if value in ("1", "true", "yes", "on"):
        return True
    return not os.environ.get("CI")


@dataclass(frozen=True)
class Address:
    """Where the resident worker of one repository listens."""

    socket: Path
    """Its Unix socket."""
    lock: Path
    """The file it holds locked while it runs (one worker per address)."""
    learned: Path
    """The provider modules its children loaded on first use, which a worker of this installation loads when idle
    (shared by every repository: loading a module a program does not use costs only memory)."""


def address(root: Path) -> Address | None:
    """The worker's address for `root` run by this Python: None when there is no private folder for it or its
    path would be too long for a Unix socket."""
    folder = _socket_folder()
    if folder is None:
        return None
    ident = hashlib.sha256(f"{root.resolve()}\0{CODE_ROOT}\0{sys.executable}".encode()).hexdigest()[:24]
    path = folder / f"plan-{ident}.sock"
    if len(os.fsencode(path)) > MAX_SOCKET_PATH:
        return None
    installation = hashlib.sha256(f"{CODE_ROOT}\0{sys.executable}".encode()).hexdigest()[:24]
    return Address(path, folder / f"plan-{ident}.lock", folder / f"learned-{installation}.modules")


def _socket_folder() -> Path | None:
    """`$XDG_RUNTIME_DIR/platformctl`, else the user folder's `run`: a folder this user owns and only they can
    enter (created so), or None."""
    candidates = []
    runtime = os.environ.get("XDG_RUNTIME_DIR", "")
    if os.path.isabs(runtime) and os.path.isdir(runtime):
        candidates.append(Path(runtime) / "platformctl")
    base = user_folder()
    if base is not None:
        candidates.append(base / "run")
    for folder in candidates:
        with contextlib.suppress(OSError):
            folder.mkdir(mode=0o700, parents=True, exist_ok=True)
            info = os.lstat(folder)
            if stat.S_ISDIR(info.st_mode) and info.st_uid == os.getuid() and info.st_mode & 0o077 == 0:
                return folder
    return None


def _key() -> bytes:
    return hmac.new(signing_key(), b"platformctl resident planning worker", hashlib.sha256).digest()


# ---------------------------------------------------------------------------------------------------- wire


def _send(sock: socket.socket, message: Any) -> None:
    data = pickle.dumps(message, pickle.HIGHEST_PROTOCOL)
    sock.sendall(struct.pack("!Q", len(data)) + data)


def _receive(sock: socket.socket) -> Any:
    """One message; called only after the peer proved it holds the user's key."""
    (size,) = struct.unpack("!Q", _exactly(sock, 8))
    if size > MAX_MESSAGE:
        raise _ProtocolError(f"a message of {size} bytes")
    return pickle.loads(_exactly(sock, size))


def _exactly(sock: socket.socket, size: int) -> bytes:
    data = bytearray()
    while len(data) < size:
        chunk = sock.recv(min(size - len(data), 1 << 20))
        if not chunk:
            raise EOFError("the connection closed")
        data += chunk
    return bytes(data)


def _authenticate(sock: socket.socket, key: bytes, role: bytes) -> None:
    """Mutual proof of the key: each side sends a fresh challenge and answers the other's with an HMAC bound to
    its role (a proof cannot be reflected back)."""
    other_role = b"server" if role == b"client" else b"client"
    mine = secrets.token_bytes(_NONCE)
    sock.sendall(mine)
    theirs = _exactly(sock, _NONCE)
    sock.sendall(hmac.new(key, role + theirs + mine, hashlib.sha256).digest())
    expected = hmac.new(key, other_role + mine + theirs, hashlib.sha256).digest()
    if not hmac.compare_digest(_exactly(sock, _PROOF), expected):
        raise _ProtocolError("the peer does not hold this user's key")


def _peer_is_this_user(sock: socket.socket) -> bool:
    option = getattr(socket, "SO_PEERCRED", None)
    if option is None:  # not Linux: the private folder is the check
        return True
    _, uid, _ = struct.unpack("3i", sock.getsockopt(socket.SOL_SOCKET, option, struct.calcsize("3i")))
    return bool(uid == os.getuid())


_WIRE_ERRORS = (
    OSError,
    EOFError,
    _ProtocolError,
    pickle.PickleError,
    struct.error,
    AttributeError,
    ImportError,
    IndexError,
    KeyError,
    TypeError,
    ValueError,
)
"""What a broken or dying peer can cause on the wire (a truncated or mangled pickle raises any of the last six)."""


# ---------------------------------------------------------------------------------------------------- client


def _connect(where: Address) -> socket.socket:
    info = os.lstat(where.socket)
    if not stat.S_ISSOCK(info.st_mode) or info.st_uid != os.getuid():
        raise _ProtocolError(f"{where.socket} is not this user's socket")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.settimeout(HANDSHAKE_SECONDS)
        sock.connect(str(where.socket))
        if not _peer_is_this_user(sock):
            raise _ProtocolError("the worker runs as another user")
        _authenticate(sock, _key(), b"client")
    except BaseException:
        sock.close()
        raise
    return sock


def _ask(where: Address, request: tuple[Any, ...]) -> Any:
    with _connect(where) as sock:
        _send(sock, request)
        return _receive(sock)


@dataclass(frozen=True)
class ResidentWorker:
    """A running resident worker, as its greeting describes it."""

    address: Address
    """Where it listens."""
    fingerprint: str
    """The program fingerprint of the code it imported."""
    pid: int
    """Its process id."""
    served: int
    """Stacks it has been sent to plan."""
    loading: int
    """Modules it has still to load (it loads them while no request waits)."""

    @classmethod
    def find(cls, root: Path) -> ResidentWorker | None:
        """The worker for `root`, if one is running and answers (a few milliseconds when none is)."""
        where = address(root) if enabled() else None
        if where is None:
            return None
        try:
            reply = _ask(where, ("hello",))
        except _WIRE_ERRORS:
            return None
        match reply:
            case ("hello", str(fingerprint), int(pid), int(served), int(loading)):
                return cls(where, fingerprint, pid, served, loading)
        return None

    def serves(self, fingerprint: str) -> bool:
        return hmac.compare_digest(self.fingerprint, fingerprint)

    def stop(self) -> None:
        with contextlib.suppress(*_WIRE_ERRORS):
            _ask(self.address, ("stop",))

    def pool(self) -> ResidentPool:
        return ResidentPool(self.address)


class ResidentPool(PlanningPool[Any]):
    """Stacks planned by the resident worker: one connection (and one forked child there) per stack."""

    def __init__(self, where: Address) -> None:
        self.address = where
        self._slots = threading.BoundedSemaphore(os.cpu_count() or 1)  # children planning at once: one per core

    def submit(self, job: PlanJob[Any], done: Callable[[Planned[Any] | BaseException], None]) -> None:
        threading.Thread(target=self._round_trip, args=(job, done), daemon=True).start()

    def _round_trip(self, job: PlanJob[Any], done: Callable[[Planned[Any] | BaseException], None]) -> None:
        try:
            with self._slots, _connect(self.address) as sock:
                _send(sock, ("plan", job, dict(os.environ), os.getcwd()))
                sock.settimeout(None)  # a plan takes what it takes; a dead worker closes the connection
                reply = _receive(sock)
        except _WIRE_ERRORS as error:
            done(ResidentWorkerLostError(f"the resident planning worker stopped answering ({type(error).__name__})"))
            return
        match reply:
            case ("planned", Planned() as planned) if planned.stack == job.stack:
                done(planned)
            case ("error", BaseException() as failure):
                done(failure)
            case _:
                done(ResidentWorkerLostError("the resident planning worker sent an unexpected reply"))


def start_worker(root: Path) -> None:
    """Start the resident worker for `root` in the background; it detaches at once (a few tens of milliseconds
    here). Nothing happens when it is turned off or could not be reached by a later run."""
    if not enabled() or address(root) is None or not signing_key_is_kept():
        return
    arguments = json.dumps({"path": [p for p in sys.path if p], "root": str(root.resolve())})
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        subprocess.run(
            [sys.executable, "-c", _BOOTSTRAP, arguments],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            cwd=root,
            start_new_session=True,
            timeout=30,
            check=False,
        )


_BOOTSTRAP = """\
import os, sys
if os.fork():
    os._exit(0)
import json
from pathlib import Path
arguments = json.loads(sys.argv[1])
sys.path[:] = arguments["path"]  # the caller's, without "-c"'s current folder (the repository)
from platformctl.offline.resident import serve
sys.exit(serve(Path(arguments["root"])))
"""
"""Forks before importing anything, so the caller waits only for the interpreter to start."""


# ---------------------------------------------------------------------------------------------------- worker


def idle_seconds() -> float:
    try:
        return max(1.0, float(os.environ.get(IDLE_SWITCH, IDLE_SECONDS)))
    except ValueError:
        return IDLE_SECONDS


def serve(root: Path) -> int:
    """Run the resident worker for `root` until it is idle, stale or stopped (the exit code is for logs only)."""
    where = address(root)
    if where is None:
        return 1
    lock = os.open(where.lock, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o600)
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return 0  # another worker for this address is running or starting
    before = program_fingerprint(root)
    import_program(root)
    importlib.import_module("platformctl.offline.results")  # the finishing step (entries, policies)
    forget_program()
    fingerprint = program_fingerprint(root)
    if fingerprint != before:  # the files changed while they were imported
        return 1
    return _Worker(root, where, fingerprint).run()


def _packages_stamp() -> tuple[tuple[str, int], ...]:
    """The installation's package folders and their modification times: installing, upgrading or removing a
    package changes them, and the worker's imported modules would no longer be the installed ones."""
    folders = dict.fromkeys(sysconfig.get_paths()[name] for name in ("purelib", "platlib"))
    stamp = []
    for folder in folders:
        with contextlib.suppress(OSError):
            stamp.append((folder, os.stat(folder).st_mtime_ns))
    return tuple(stamp)


class _Worker:
    def __init__(self, root: Path, where: Address, fingerprint: str) -> None:
        self.root = root
        self.address = where
        self.fingerprint = fingerprint
        self.key = _key()
        self.packages = _packages_stamp()
        self.children: dict[int, int] = {}
        """Running children: pid -> the read end of the pipe they report newly loaded modules on."""
        self.learned = set(_read_learned(where.learned))
        """What children of this installation's workers loaded on first use (kept in `where.learned`)."""
        self.to_learn = sorted(self.learned | set(referenced_modules(root)), key=_packages_first)
        """Modules to load while no request waits (packages first)."""
        self.served = 0
        self.stopping = False

    def run(self) -> int:
        with contextlib.suppress(FileNotFoundError):
            self.address.socket.unlink()  # we hold the lock: a socket there is a dead worker's
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        umask = os.umask(0o177)
        try:
            listener.bind(str(self.address.socket))
        finally:
            os.umask(umask)
        listener.listen(64)
        inode = os.lstat(self.address.socket).st_ino
        signal.signal(signal.SIGTERM, self._stop)
        signal.signal(signal.SIGINT, self._stop)
        idle = idle_seconds()
        last_work = time.monotonic()
        try:
            while not self.stopping:
                with contextlib.suppress(InterruptedError):
                    # One module at a time, and only while nobody waits: a request is answered within one import.
                    readable, _, _ = select.select([listener], [], [], 0 if self.to_learn else 1.0)
                    if readable:
                        self._accept(listener)
                        last_work = time.monotonic()
                    elif self.to_learn:
                        with contextlib.suppress(Exception):  # a module that fails to load is the child's to report
                            _load(self.to_learn.pop(0))
                self._reap()
                if self.children or self.to_learn:
                    last_work = time.monotonic()
                elif time.monotonic() - last_work > idle or not self._still_current(inode):
                    break
        finally:
            listener.close()
            with contextlib.suppress(OSError):
                if os.lstat(self.address.socket).st_ino == inode:
                    self.address.socket.unlink()
        return 0

    def _stop(self, *_: object) -> None:
        self.stopping = True

    def _still_current(self, inode: int) -> bool:
        try:
            return (
                os.lstat(self.address.socket).st_ino == inode
                and self.root.is_dir()
                and _packages_stamp() == self.packages
            )
        except OSError:
            return False

    def _accept(self, listener: socket.socket) -> None:
        sock, _ = listener.accept()
        try:
            sock.settimeout(HANDSHAKE_SECONDS)
            if not _peer_is_this_user(sock):
                return
            _authenticate(sock, self.key, b"server")
            request = _receive(sock)
            match request:
                case ("hello",):
                    _send(sock, ("hello", self.fingerprint, os.getpid(), self.served, len(self.to_learn)))
                case ("stop",):
                    _send(sock, ("stopping",))
                    self.stopping = True
                case ("plan", PlanJob() as job, dict() as environment, str() as cwd) if job.root.resolve() == self.root:
                    self.served += 1
                    self._fork(sock, job, environment, cwd)
        except _WIRE_ERRORS:
            pass  # a client that went away, or one without the key: nothing to answer
        finally:
            sock.close()

    def _fork(self, sock: socket.socket, job: PlanJob[Any], environment: dict[str, str], cwd: str) -> None:
        learned_read, learned_write = os.pipe()
        pid = os.fork()
        if pid == 0:  # the child: plan, answer, report what it loaded, exit without running the worker's cleanup
            code = 1
            try:
                os.close(learned_read)
                signal.signal(signal.SIGTERM, signal.SIG_DFL)
                signal.signal(signal.SIGINT, signal.SIG_DFL)
                _plan_in_child(sock, job, environment, cwd, learned_write)
                code = 0
            finally:
                os._exit(code)
        os.close(learned_write)
        self.children[pid] = learned_read

    def _reap(self) -> None:
        for pid, learned in list(self.children.items()):
            with contextlib.suppress(ChildProcessError):
                done, _ = os.waitpid(pid, os.WNOHANG)
                if done == 0:
                    continue
            del self.children[pid]
            with os.fdopen(learned, "rb") as pipe:
                names = pipe.read(LEARNED_BYTES).decode(errors="replace").split()
            self._learn(names)

    def _learn(self, names: list[str]) -> None:
        new = {name for name in names if _learnable(name)} - self.learned
        if new:
            self.learned |= new
            self.to_learn = sorted({*self.to_learn, *new}, key=_packages_first)
            _write_learned(self.address.learned, self.learned)


def referenced_modules(root: Path) -> list[str]:
    """What the program's code names in the provider, SDK and policy-library packages (`k8s.core.v1.Namespace`
    after `import pulumi_kubernetes as k8s`): the modules its stacks load on first use, which a new worker loads
    before any child needs them. Names that turn out not to be modules cost one attribute lookup each."""
    found: set[str] = set()
    for tree_files in program_file_paths(root):
        for name, path in tree_files:
            if name.endswith(".py"):
                with contextlib.suppress(OSError, SyntaxError, ValueError):
                    found |= _names_reached(ast.parse(path.read_bytes()))
    return sorted(found, key=_packages_first)


def _names_reached(tree: ast.Module) -> set[str]:
    bound: dict[str, str] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.partition(".")[0] in LEARNED_PACKAGES:
                    bound[alias.asname or alias.name.partition(".")[0]] = (
                        alias.name if alias.asname else alias.name.partition(".")[0]
                    )
        elif (
            isinstance(node, ast.ImportFrom)
            and not node.level
            and node.module
            and node.module.partition(".")[0] in LEARNED_PACKAGES
        ):
            for alias in node.names:
                bound[alias.asname or alias.name] = f"{node.module}.{alias.name}"
    found = set(bound.values())
    for node in ast.walk(tree):
        chain: list[str] = []
        current: ast.expr = node if isinstance(node, ast.Attribute) else ast.Constant(None)
        while isinstance(current, ast.Attribute):
            chain.append(current.attr)
            current = current.value
        if isinstance(current, ast.Name) and current.id in bound:
            found.add(".".join([bound[current.id], *reversed(chain)]))
    return {name for name in found if _MODULE_NAME.fullmatch(name)}


def _packages_first(name: str) -> tuple[int, str]:
    return name.count("."), name


def _learnable(name: str) -> bool:
    return name.partition(".")[0] in LEARNED_PACKAGES and _MODULE_NAME.fullmatch(name) is not None


def _read_learned(path: Path) -> list[str]:
    """The modules earlier workers of this installation learned (a private file; anything odd in it is skipped)."""
    try:
        with open(os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK), "rb") as handle:
            if not stat.S_ISREG(os.fstat(handle.fileno()).st_mode):
                return []
            names = handle.read(MAX_LEARNED_FILE).decode(errors="replace").split()
    except OSError:
        return []
    return sorted({name for name in names if _learnable(name)}, key=_packages_first)


def _write_learned(path: Path, names: set[str]) -> None:
    with contextlib.suppress(OSError):
        fd, tmp = tempfile.mkstemp(prefix=".learned.", dir=path.parent)
        with os.fdopen(fd, "w") as handle:
            handle.write("\n".join(sorted(names)) + "\n")
        os.replace(tmp, path)


def _load(name: str) -> None:
    """Load `name` the way the program reaches it: by attribute from its package (which loads a provider's lazy
    modules and lets each package bind its own names). `importlib.import_module` is used only for a module its
    package does not bind, since importing `pkg.Thing` binds the module over the class `pkg.Thing` when the class
    is exported under its module's name, as the providers' resources are."""
    parts = name.split(".")
    module: Any = importlib.import_module(parts[0])
    for depth in range(2, len(parts) + 1):
        found = getattr(module, parts[depth - 1], None)  # loads `module` if it is still lazy
        if found is None:
            found = importlib.import_module(".".join(parts[:depth]))
        if not isinstance(found, types.ModuleType):
            return  # a name the package binds to something else: its module was loaded with the package
        module = found
    _ = module.__name__  # a lazy module loads on its first attribute access


def _plan_in_child(sock: socket.socket, job: PlanJob[Any], environment: dict[str, str], cwd: str, learned: int) -> None:
    os.environ.clear()
    os.environ.update({str(k): str(v) for k, v in environment.items()})
    time.tzset()
    with contextlib.suppress(OSError):
        os.chdir(cwd)
    sock.settimeout(None)
    loaded = set(sys.modules)
    reply: tuple[str, Any]
    try:
        reply = ("planned", plan_job(job))
    except BaseException as error:  # sent back: the client raises it, as a worker pool's caller would
        reply = ("error", error)
    try:
        _send(sock, reply)
    except (pickle.PickleError, TypeError, AttributeError):
        _send(sock, ("error", EngineError(f"stack {job.stack}: the plan failed: {reply[1]!r}")))
    new = sorted(name for name in set(sys.modules) - loaded if name.partition(".")[0] in LEARNED_PACKAGES)
    with contextlib.suppress(OSError):
        os.write(learned, "\n".join(new).encode()[:LEARNED_BYTES])
