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
import threading
import time
import types
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fleet.program import CODE_ROOT
from foundation.errors import EngineError, PlatformError
from platformctl.offline.cache import (
    forget_program,
    program_file_paths,
    program_fingerprint,
    program_packages,
    replace_file,
    signing_key,
    signing_key_is_kept,
    user_folder,
)
from platformctl.offline.planner import PROVIDER_MODULES, PlanJob, Planned, PlanningPool, import_program, plan_job

SWITCH = "PLATFORMCTL_RESIDENT_WORKER"
IDLE_SWITCH = "PLATFORMCTL_RESIDENT_IDLE_SECONDS"
IDLE_SECONDS = 600.0
MAX_SOCKET_PATH = 100
"""Bytes: a Unix socket's path must fit `sun_path` (108 bytes on Linux, 104 on macOS)."""
HANDSHAKE_SECONDS = 5.0
"""How long the whole handshake and request may take (then the connection is dropped): a peer that says nothing,
or trickles, holds the worker no longer."""
MAX_MESSAGE = 256 * 1024 * 1024
LEARNED_PACKAGES = frozenset(
    {*PROVIDER_MODULES, "kubernetes_validate", "jsonschema", "jsonschema_specifications", "referencing"}
)
"""Packages whose modules a child loaded on first use are imported by the worker afterwards, so the next child
starts with them (a provider's API groups load lazily). Only these libraries, and none of their `__main__` or
command-line modules (some start servers): the SDK core is imported at start, the program's modules too (under
the fingerprint)."""
UNLEARNED_PARTS = frozenset({"__main__", "cli", "tests", "benchmarks"})
LOAD_SECONDS = 20
"""A module that takes longer than this to load is abandoned (a provider's largest takes about a second)."""
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


class _Channel:
    """One connection after a mutual proof of the user's key: each side sends a fresh challenge and answers the
    other's with an HMAC bound to its role (a proof cannot be reflected back). Every message then carries an HMAC
    under a key of this connection alone (both challenges) and of its sender's role, checked before the message
    is unpickled: a relayed handshake gains nothing, a forged or altered message is refused."""

    def __init__(self, sock: socket.socket, key: bytes, role: bytes, deadline: float | None) -> None:
        self.sock = sock
        self.role = role
        self.other = b"server" if role == b"client" else b"client"
        self.deadline = deadline
        mine = secrets.token_bytes(_NONCE)
        sock.sendall(mine)
        theirs = self._exactly(_NONCE)
        sock.sendall(hmac.new(key, role + theirs + mine, hashlib.sha256).digest())
        expected = hmac.new(key, self.other + mine + theirs, hashlib.sha256).digest()
        if not hmac.compare_digest(self._exactly(_PROOF), expected):
            raise _ProtocolError("the peer does not hold this user's key")
        client, server = (mine, theirs) if role == b"client" else (theirs, mine)
        self.session = hmac.new(key, b"session" + client + server, hashlib.sha256).digest()

    def send(self, message: Any) -> None:
        data = pickle.dumps(message, pickle.HIGHEST_PROTOCOL)
        size = struct.pack("!Q", len(data))
        mac = hmac.new(self.session, self.role + size + data, hashlib.sha256).digest()
        self.sock.sendall(size + mac + data)

    def receive(self) -> Any:
        size = self._exactly(8)
        (length,) = struct.unpack("!Q", size)
        if length > MAX_MESSAGE:
            raise _ProtocolError(f"a message of {length} bytes")
        mac = self._exactly(_PROOF)
        data = self._exactly(length)
        if not hmac.compare_digest(mac, hmac.new(self.session, self.other + size + data, hashlib.sha256).digest()):
            raise _ProtocolError("a message that its sender did not sign")
        return pickle.loads(data)

    def _exactly(self, size: int) -> bytes:
        data = bytearray()
        while len(data) < size:
            if self.deadline is not None:
                left = self.deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError("the peer took too long")
                self.sock.settimeout(left)
            chunk = self.sock.recv(min(size - len(data), 1 << 20))
            if not chunk:
                raise EOFError("the connection closed")
            data += chunk
        return bytes(data)


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


@contextlib.contextmanager
def _connect(where: Address) -> Iterator[_Channel]:
    info = os.lstat(where.socket)
    if not stat.S_ISSOCK(info.st_mode) or info.st_uid != os.getuid():
        raise _ProtocolError(f"{where.socket} is not this user's socket")
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(HANDSHAKE_SECONDS)
        sock.connect(str(where.socket))
        if not _peer_is_this_user(sock):
            raise _ProtocolError("the worker runs as another user")
        yield _Channel(sock, _key(), b"client", time.monotonic() + HANDSHAKE_SECONDS)


def _ask(where: Address, request: tuple[Any, ...]) -> Any:
    with _connect(where) as channel:
        channel.send(request)
        return channel.receive()


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
    idle_seconds: float
    """How long it waits for work before it exits."""
    origins: dict[str, str]
    """Where each module of the repository's packages it imported came from, its import path, and the interpreter
    options that change what code does (`-O`, `-X dev`, `-X utf8`)."""

    @classmethod
    def find(cls, root: Path, even_if_off: bool = False) -> ResidentWorker | None:
        """The worker for `root`, if one is running and answers (a few milliseconds when none is); only when the
        worker is turned on, unless `even_if_off` (to see or stop one)."""
        where = address(root) if enabled() or even_if_off else None
        if where is None:
            return None
        try:
            reply = _ask(where, ("hello",))
        except _WIRE_ERRORS:
            return None
        match reply:
            case {
                "fingerprint": str(fingerprint),
                "pid": int(pid),
                "served": int(served),
                "loading": int(loading),
                "idle_seconds": float(idle),
                "origins": dict(origins),
            }:
                return cls(where, fingerprint, pid, served, loading, idle, origins)
        return None

    def serves(self, root: Path, fingerprint: str) -> bool:
        """Whether it runs the code a plan of `root` here would: the same program fingerprint, the same import
        path, each module both this process and it have imported from the same file (the engine's modules come
        from the installation even when `root` holds copies), the same interpreter options."""
        if not hmac.compare_digest(self.fingerprint, fingerprint):
            return False
        mine = program_origins(root)
        return all(self.origins.get(name, origin) == origin for name, origin in mine.items())

    def stop(self) -> None:
        with contextlib.suppress(*_WIRE_ERRORS):
            _ask(self.address, ("stop",))

    def pool(self) -> ResidentPool:
        return ResidentPool(self.address)


def program_origins(root: Path, path: list[str] | None = None) -> dict[str, str]:
    """The files this process imported the modules of the program's packages from (wherever they were found), its
    import path (`path`, else `sys.path`), and its interpreter flags, warning options and `-X` options (which
    change what code does: `-O` drops asserts, `-W error` turns a provider's deprecation warning into a failure)."""
    packages = program_packages(root)
    origins = {
        name: str(getattr(module, "__file__", None))
        for name, module in list(sys.modules.items())
        if name.partition(".")[0] in packages
    }
    origins[" path"] = json.dumps([p for p in (sys.path if path is None else path) if p])
    flags = [(name, getattr(sys.flags, name)) for name in dir(sys.flags) if name[0] != "_" and name != "safe_path"]
    origins[" interpreter"] = repr((sorted((n, v) for n, v in flags if isinstance(v, int)), sys.warnoptions))
    origins[" x-options"] = repr(sorted(sys._xoptions.items()))
    return origins


class ResidentPool(PlanningPool[Any]):
    """Stacks planned by the resident worker: one connection (and one forked child there) per stack."""

    def __init__(self, where: Address) -> None:
        self.address = where
        self._slots = threading.BoundedSemaphore(os.cpu_count() or 1)  # children planning at once: one per core

    def submit(self, job: PlanJob[Any], done: Callable[[Planned[Any] | BaseException], None]) -> None:
        threading.Thread(target=self._round_trip, args=(job, done), daemon=True).start()

    def _round_trip(self, job: PlanJob[Any], done: Callable[[Planned[Any] | BaseException], None]) -> None:
        try:
            with self._slots, _connect(self.address) as channel:
                channel.send(("plan", job, dict(os.environ), os.getcwd()))
                channel.deadline = None  # a plan takes what it takes; a dead worker closes the connection
                channel.sock.settimeout(None)
                reply = channel.receive()
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
    here). It imports what this process has imported of the repository and installation first, from the same
    files, then the program. Nothing happens when it is turned off or could not be reached by a later run."""
    where = address(root) if enabled() else None
    if where is None or not signing_key_is_kept():
        return
    # Not the modules this process imported from the repository itself (when it planned in-process, with the
    # repository on its path for a while): the worker imports those after it has put the repository on its path.
    repository = str(root.resolve()) + os.sep
    elsewhere = root.resolve() != CODE_ROOT
    imported = [
        name
        for name, origin in program_origins(root).items()
        if not name.startswith(" ") and not (elsewhere and origin.startswith(repository))
    ]
    arguments = json.dumps({"path": [p for p in sys.path if p], "root": str(root.resolve()), "modules": imported})
    command = [sys.executable, *_interpreter_options(), "-P", "-c", _BOOTSTRAP, arguments]
    environment = {name: value for name, value in os.environ.items() if name != "PYTHONWARNINGS"}
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        subprocess.run(
            command,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            cwd=where.socket.parent,  # not the repository: nothing of it may shadow what the worker imports
            env=environment,
            start_new_session=True,
            timeout=30,
            check=False,
        )


def _interpreter_options() -> list[str]:
    """This interpreter's flags, `-W` and `-X` options, as the worker's command line (what `program_origins`
    compares); `PYTHONWARNINGS` is not passed on as well, or the worker would hold each warning option twice."""
    return list(subprocess._args_from_interpreter_flags())  # type: ignore[attr-defined]


_BOOTSTRAP = """\
import os, sys
if os.fork():
    os._exit(0)
import json
arguments = json.loads(sys.argv[1])
sys.path[:] = arguments["path"]
from pathlib import Path
from platformctl.offline.resident import serve
sys.exit(serve(Path(arguments["root"]), arguments["modules"]))
"""
"""Forks before importing anything, so the caller waits only for the interpreter to start (`-P`: the current
folder is not on the path)."""


# ---------------------------------------------------------------------------------------------------- worker


def idle_seconds() -> float:
    try:
        return max(1.0, float(os.environ.get(IDLE_SWITCH, IDLE_SECONDS)))
    except ValueError:
        return IDLE_SECONDS


def serve(root: Path, modules: list[str]) -> int:
    """Run the resident worker for `root` until it is idle, stale or stopped (the exit code is for logs only).
    `modules`: what the client had imported of the repository and installation, imported here first, before the
    repository goes onto the path, so each comes from where the client's came from."""
    where = address(root)
    if where is None:
        return 1
    lock = os.open(where.lock, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o600)
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return 0  # another worker for this address is running or starting
    path = list(sys.path)
    before = program_fingerprint(root)
    for name in modules:
        if _MODULE_NAME.fullmatch(name):
            with contextlib.suppress(Exception):
                importlib.import_module(name)
    importlib.import_module("platformctl.offline.results")  # the finishing step (entries, policies)
    import_program(root)
    forget_program()
    fingerprint = program_fingerprint(root)
    if fingerprint != before:  # the files changed while they were imported
        return 1
    return _Worker(root, where, fingerprint, program_origins(root, path)).run()


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
    def __init__(self, root: Path, where: Address, fingerprint: str, origins: dict[str, str]) -> None:
        self.root = root
        self.address = where
        self.fingerprint = fingerprint
        self.origins = origins
        self.key = _key()
        self.packages = _packages_stamp()
        self.children: dict[int, int] = {}
        """Running children: pid -> the read end of the pipe they report newly loaded modules on."""
        self.learned = set(_read_learned(where.learned))
        """What children of this installation's workers loaded on first use (kept in `where.learned`)."""
        self.to_learn = sorted(self.learned | set(referenced_modules(root)), key=_packages_first)
        """Modules to load while no request waits (packages first)."""
        self.served = 0
        self.inode = 0

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
        self.inode = os.lstat(self.address.socket).st_ino
        # Stop at once, whatever the worker is doing (even a module load that never returns).
        signal.signal(signal.SIGTERM, self._exit)
        signal.signal(signal.SIGINT, self._exit)
        signal.signal(signal.SIGALRM, _too_slow)
        idle = idle_seconds()
        last_work = time.monotonic()
        try:
            while self._still_current():
                with contextlib.suppress(InterruptedError):
                    # One module at a time, and only while nobody waits: a request is answered within one import.
                    readable, _, _ = select.select([listener], [], [], 0 if self.to_learn else 1.0)
                    if readable:
                        if not self._accept(listener):
                            break
                        last_work = time.monotonic()
                    elif self.to_learn:
                        _load_bounded(self.to_learn.pop(0))
                self._reap()
                if self.children or self.to_learn:
                    last_work = time.monotonic()
                elif time.monotonic() - last_work > idle:
                    break
        finally:
            listener.close()
            self._remove_socket()
        return 0

    def _exit(self, *_: object) -> None:
        self._remove_socket()
        os._exit(0)

    def _remove_socket(self) -> None:
        with contextlib.suppress(OSError):
            if self.inode and os.lstat(self.address.socket).st_ino == self.inode:
                self.address.socket.unlink()

    def _still_current(self) -> bool:
        """Its socket is still the one it listens on, its repository is there, its packages are the installed
        ones (checked every second, and before each stack it plans)."""
        try:
            return (
                os.lstat(self.address.socket).st_ino == self.inode
                and self.root.is_dir()
                and _packages_stamp() == self.packages
            )
        except OSError:
            return False

    def _accept(self, listener: socket.socket) -> bool:
        """Answer one connection; False when the worker is to stop."""
        sock, _ = listener.accept()
        with sock:
            try:
                if not _peer_is_this_user(sock):
                    return True
                channel = _Channel(sock, self.key, b"server", time.monotonic() + HANDSHAKE_SECONDS)
                request = channel.receive()
                match request:
                    case ("hello",):
                        channel.send(
                            {
                                "fingerprint": self.fingerprint,
                                "pid": os.getpid(),
                                "served": self.served,
                                "loading": len(self.to_learn),
                                "idle_seconds": idle_seconds(),
                                "origins": self.origins,
                            }
                        )
                    case ("stop",):
                        channel.send(("stopping",))
                        return False
                    case ("plan", PlanJob() as job, dict() as environment, str() as cwd) if (
                        job.root.resolve() == self.root
                    ):
                        if not self._still_current():
                            return False  # the client sees the connection close, and plans the stack itself
                        self.served += 1
                        self._fork(channel, job, environment, cwd)
            except _WIRE_ERRORS:
                pass  # a client that went away, took too long, or has not the key: nothing to answer
        return True

    def _fork(self, channel: _Channel, job: PlanJob[Any], environment: dict[str, str], cwd: str) -> None:
        learned_read, learned_write = os.pipe()
        pid = os.fork()
        if pid == 0:  # the child: plan, answer, report what it loaded, exit without running the worker's cleanup
            code = 1
            try:
                os.close(learned_read)
                for number in (signal.SIGTERM, signal.SIGINT, signal.SIGALRM):
                    signal.signal(number, signal.SIG_DFL)
                _plan_in_child(channel, job, environment, cwd, learned_write)
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
    """What the program's code names in the provider and policy-library packages (`k8s.core.v1.Namespace`
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
    return {name for name in found if _learnable(name)}


def _packages_first(name: str) -> tuple[int, str]:
    return name.count("."), name


def _learnable(name: str) -> bool:
    parts = name.split(".")
    return (
        parts[0] in LEARNED_PACKAGES
        and _MODULE_NAME.fullmatch(name) is not None
        and not any(part in UNLEARNED_PARTS or part.startswith("__") for part in parts)
    )


def _loaded_from_its_package(name: str) -> bool:
    """Whether module `name` was loaded from a file inside its top-level package's folder (not a name some code
    put into `sys.modules`)."""
    module = sys.modules.get(name)
    package = sys.modules.get(name.partition(".")[0])
    origin = getattr(getattr(module, "__spec__", None), "origin", None)
    folder = getattr(package, "__file__", None)
    return isinstance(origin, str) and isinstance(folder, str) and origin.startswith(os.path.dirname(folder) + os.sep)


def _read_learned(path: Path) -> list[str]:
    """The modules earlier workers of this installation learned: a file of this user's that others cannot write
    (anything odd in it is skipped)."""
    try:
        with open(os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK), "rb") as handle:
            info = os.fstat(handle.fileno())
            if not stat.S_ISREG(info.st_mode) or info.st_uid != os.getuid() or info.st_mode & 0o022:
                return []
            names = handle.read(MAX_LEARNED_FILE).decode(errors="replace").split()
    except OSError:
        return []
    return sorted({name for name in names if _learnable(name)}, key=_packages_first)


def _write_learned(path: Path, names: set[str]) -> None:
    with contextlib.suppress(OSError):
        replace_file(path, ("\n".join(sorted(names)) + "\n").encode())


class _TooSlowError(Exception):
    pass


def _too_slow(*_: object) -> None:
    raise _TooSlowError


def _load_bounded(name: str) -> None:
    """`_load`, abandoned after `LOAD_SECONDS`; whatever it raises (even SystemExit) is the child's to report."""
    signal.alarm(LOAD_SECONDS)
    try:
        _load(name)
    except BaseException:
        pass
    finally:
        signal.alarm(0)


def _load(name: str) -> None:
    """Load `name` the way the program reaches it: by attribute from its package (which loads a provider's lazy
    modules and lets each package bind its own names). `importlib.import_module` is used only for a module its
    package does not bind, since importing `pkg.Thing` binds the module over the class `pkg.Thing` when the class
    is exported under its module's name, as some of the providers' resources are."""
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


def _plan_in_child(channel: _Channel, job: PlanJob[Any], environment: dict[str, str], cwd: str, learned: int) -> None:
    os.environ.clear()
    os.environ.update({str(k): str(v) for k, v in environment.items()})
    time.tzset()
    with contextlib.suppress(OSError):
        os.chdir(cwd)
    channel.deadline = None
    loaded = set(sys.modules)
    reply: tuple[str, Any]
    try:
        reply = ("planned", plan_job(job))
    except BaseException as error:  # sent back: the client raises it, as a worker pool's caller would
        reply = ("error", error)
    channel.sock.settimeout(min(idle_seconds(), IDLE_SECONDS))  # a client that stopped reading does not keep it
    try:
        channel.send(reply)
    except (pickle.PickleError, TypeError, AttributeError):
        channel.send(("error", EngineError(f"stack {job.stack}: the plan failed: {reply[1]!r}")))
    new = sorted(name for name in set(sys.modules) - loaded if _learnable(name) and _loaded_from_its_package(name))
    os.set_blocking(learned, False)  # read after this child exits: a full pipe drops the list, never blocks
    with contextlib.suppress(OSError):
        os.write(learned, "\n".join(new).encode()[:LEARNED_BYTES])
