"""The resident planning worker, as real background processes on a Unix socket in a private test folder."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from fleet.repo import Repo
from foundation.errors import EngineError
from foundation.stacks import parse_stack_name
from platformctl.offline import cache, resident
from platformctl.offline.planner import PlanJob, WorkerPool, _keep
from platformctl.offline.resident import ResidentWorker, ResidentWorkerLostError
from platformctl.offline.results import _plan_results
from platformctl.planning import PlanResult, run_plan
from tests.conftest import ROOT

PARTNER = [parse_stack_name("partner-acme-voice")]


@pytest.fixture
def worker_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """The resident worker turned on, with its socket folder, user key and learned-modules file private to the
    test; every worker the test started is stopped afterwards (and would exit after 30 s idle anyway)."""
    runtime = Path(tempfile.mkdtemp(prefix="pc-"))  # short: a socket path must fit in 108 bytes
    runtime.chmod(0o700)
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(runtime))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "user-cache"))
    monkeypatch.setenv(resident.SWITCH, "1")
    monkeypatch.setenv(resident.IDLE_SWITCH, "30")
    monkeypatch.delenv("CI", raising=False)
    cache.signing_key.cache_clear()
    try:
        yield runtime
    finally:
        for sock in (runtime / "platformctl").glob("plan-*.sock"):
            _stop_socket(sock)
        cache.signing_key.cache_clear()
        shutil.rmtree(runtime, ignore_errors=True)


def _stop_socket(sock: Path) -> None:
    where = resident.Address(sock, sock.with_suffix(".lock"), sock.parent / "unused.modules")
    try:
        reply = resident._ask(where, ("hello",))
    except resident._WIRE_ERRORS:
        return
    resident._ask(where, ("stop",))
    _wait_gone(reply["pid"])


def _wait_gone(pid: int, seconds: float = 20) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.05)
    raise AssertionError(f"process {pid} still runs")


def wait_for_worker(root: Path, seconds: float = 60, loaded: bool = False) -> ResidentWorker:
    """The worker of `root` once it answers (`loaded`: once it has loaded every module it meant to)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        worker = ResidentWorker.find(root)
        if worker is not None and (worker.loading == 0 or not loaded):
            return worker
        time.sleep(0.1)
    raise AssertionError("no resident worker answered" + (" with everything loaded" if loaded else ""))


def plan(root: Path, resident_worker: bool = True, use_cache: bool = True) -> tuple[PlanResult, list[str]]:
    names: list[str] = []
    result = run_plan(
        Repo(root), PARTNER, workers=1, progress=names.append, use_cache=use_cache, resident=resident_worker
    )
    return result, names


def cold_json(root: Path) -> str:
    return plan(root, resident_worker=False, use_cache=False)[0].json_text()


def edit_spec(root: Path, greeting: str) -> None:
    spec = root / "partners" / "acme-voice.yaml"
    spec.write_text(spec.read_text().replace("voice_greeting: ", f"voice_greeting: {greeting} ", 1))


def test_a_changed_partner_is_planned_by_the_resident_worker_and_equals_a_cold_plan(
    worker_env: Path, repo_copy: Path
) -> None:
    _, names = plan(repo_copy)  # no worker yet: planned here, and one is started for the next run
    assert names == ["global", "region-eu-central", "partner-acme-voice"]
    worker = wait_for_worker(repo_copy)
    assert worker.served == 0 and worker.serves(repo_copy, cache.program_fingerprint(repo_copy))
    socket_file = worker.address.socket
    assert stat.S_IMODE(socket_file.stat().st_mode) == 0o600
    assert stat.S_IMODE(socket_file.parent.stat().st_mode) == 0o700

    # The worker loads, while idle, the provider modules the program's code names: once it has, a child loads
    # none of them itself. What children still load on first use is learned (and kept for the next worker).
    worker = wait_for_worker(repo_copy, loaded=True)
    edit_spec(repo_copy, "Hello again.")
    warm, names = plan(repo_copy)
    assert names == ["partner-acme-voice"]
    assert wait_for_worker(repo_copy).served == 1
    assert warm.json_text() == cold_json(repo_copy)
    learned = worker.address.learned.read_text().split() if worker.address.learned.exists() else []
    assert not [name for name in learned if name.startswith(("pulumi_kubernetes.core", "pulumi_snowflake"))]
    assert all(name.partition(".")[0] in resident.LEARNED_PACKAGES for name in learned)

    edit_spec(repo_copy, "Welcome.")
    warm, names = plan(repo_copy)
    assert names == ["partner-acme-voice"]
    assert wait_for_worker(repo_copy).served == 2
    assert warm.json_text() == cold_json(repo_copy)


def test_loading_a_providers_modules_leaves_its_classes_in_place() -> None:
    """Importing `pulumi_kubernetes.apiextensions.CustomResource` the plain way binds the module over the class of
    that name (a plan then fails with "'module' object is not callable"); the worker's loader reaches modules as
    the program does. In a fresh interpreter, in both orders a learned list can give."""
    script = (
        "import pulumi_kubernetes, pulumi_snowflake\n"
        "from platformctl.offline.resident import _load\n"
        "names = ['pulumi_kubernetes.apiextensions.CustomResource', 'pulumi_kubernetes.apiextensions',\n"
        "         'pulumi_kubernetes.core.v1.Namespace', 'pulumi_snowflake.schema', 'pulumi_snowflake.Schema']\n"
        "for name in (names if ORDER else list(reversed(names))):\n"
        "    _load(name)\n"
        "assert isinstance(pulumi_kubernetes.apiextensions.CustomResource, type)\n"
        "assert isinstance(pulumi_kubernetes.core.v1.Namespace, type)\n"
        "assert isinstance(pulumi_snowflake.Schema, type)\n"
    )
    for order in (True, False):
        done = subprocess.run(
            [sys.executable, "-c", f"ORDER = {order}\n" + script], capture_output=True, text=True, cwd=ROOT
        )
        assert done.returncode == 0, done.stderr


def test_the_provider_modules_the_program_names_are_found_in_its_code() -> None:
    names = set(resident.referenced_modules(ROOT))
    assert {"pulumi_kubernetes.core.v1.Namespace", "pulumi_aws.iam", "pulumi_snowflake.Schema"} <= names
    assert all(name.partition(".")[0] in resident.LEARNED_PACKAGES for name in names)


def test_a_worker_that_imported_other_program_files_is_stopped_and_replaced(worker_env: Path, repo_copy: Path) -> None:
    plan(repo_copy)
    old = wait_for_worker(repo_copy)
    module = repo_copy / "components" / "partner_tenant.py"
    module.write_text(module.read_text() + "\n# an edit the old worker did not import\n")
    cache.forget_program()
    try:
        result, names = plan(repo_copy)
        assert names == ["global", "region-eu-central", "partner-acme-voice"]
        _wait_gone(old.pid)
        new = wait_for_worker(repo_copy)
        assert new.pid != old.pid and new.served == 0
        assert new.serves(repo_copy, cache.program_fingerprint(repo_copy))
        assert result.json_text() == cold_json(repo_copy)
    finally:
        cache.forget_program()


def test_a_killed_worker_is_replanned_around_and_replaced(worker_env: Path, repo_copy: Path) -> None:
    plan(repo_copy)
    worker = wait_for_worker(repo_copy)
    os.kill(worker.pid, signal.SIGKILL)
    _wait_gone(worker.pid)
    assert worker.address.socket.exists()  # a dead worker's socket stays behind
    edit_spec(repo_copy, "Hello again.")

    # Found alive, dead by the time the stack is sent: the stack is planned here instead.
    repo = Repo(repo_copy)
    results, served = _plan_results(repo, PARTNER, cache.ResultCache(repo.state_dir / "cache"), 1, None, None, worker)
    assert not served and list(results) == ["partner-acme-voice"]
    with pytest.raises(ResidentWorkerLostError):
        list(worker.pool().schedule(PARTNER, {PARTNER[0]: []}, lambda s: _job(repo_copy, str(s))))

    # The next plan finds no worker behind the stale socket and starts a new one there.
    assert ResidentWorker.find(repo_copy) is None
    edit_spec(repo_copy, "Welcome.")
    result, names = plan(repo_copy)
    assert names == ["partner-acme-voice"]
    assert wait_for_worker(repo_copy).pid != worker.pid
    assert result.json_text() == cold_json(repo_copy)


def _job(root: Path, stack: str) -> PlanJob[object]:
    config = Repo(root).stack_config(parse_stack_name(stack))
    return PlanJob(root, stack, config, {}, _keep)


def test_a_planning_error_comes_back_as_it_would_from_a_local_worker(worker_env: Path, repo_copy: Path) -> None:
    plan(repo_copy)
    worker = wait_for_worker(repo_copy)
    job = _job(repo_copy, "partner-acme-voice")  # without the region's outputs it reads: the engine refuses
    local_pool = WorkerPool[object](repo_copy, 1)
    try:
        with pytest.raises(EngineError, match="has no plan") as local:
            list(local_pool.schedule(PARTNER, {PARTNER[0]: []}, lambda _: job))
    finally:
        local_pool.close()
    with pytest.raises(EngineError) as remote:
        list(worker.pool().schedule(PARTNER, {PARTNER[0]: []}, lambda _: job))
    assert str(remote.value) == str(local.value)
    assert wait_for_worker(repo_copy).served == 1  # and the worker is still there


def test_only_a_peer_with_the_users_key_is_answered(worker_env: Path, repo_copy: Path) -> None:
    resident.start_worker(repo_copy)
    worker = wait_for_worker(repo_copy)
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(5)
        sock.connect(str(worker.address.socket))
        with pytest.raises((resident._ProtocolError, EOFError, ConnectionError)):
            channel = resident._Channel(sock, b"\0" * 32, b"client", time.monotonic() + 5)
            channel.send(("hello",))
            channel.receive()
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:  # says nothing: dropped after the timeout
        sock.connect(str(worker.address.socket))
        sock.settimeout(resident.HANDSHAKE_SECONDS + 5)
        sock.recv(32)  # the worker's challenge
        assert sock.recv(1) == b""
    assert ResidentWorker.find(repo_copy) is not None


def test_an_idle_worker_exits_and_removes_its_socket(
    worker_env: Path, repo_copy: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(resident.IDLE_SWITCH, "1")
    resident.start_worker(repo_copy)
    worker = wait_for_worker(repo_copy)
    _wait_gone(worker.pid, seconds=30)
    assert not worker.address.socket.exists()


def test_the_worker_is_off_under_ci_unless_turned_on(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(resident.SWITCH, raising=False)
    monkeypatch.setenv("CI", "true")
    assert not resident.enabled()
    monkeypatch.setenv(resident.SWITCH, "1")
    assert resident.enabled()
    monkeypatch.delenv("CI")
    monkeypatch.setenv(resident.SWITCH, "0")
    assert not resident.enabled()
    monkeypatch.delenv(resident.SWITCH)
    assert resident.enabled()


def test_no_address_without_a_private_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    runtime = Path(tempfile.mkdtemp(prefix="pc-"))
    try:
        (runtime / "platformctl").mkdir(mode=0o755)
        (runtime / "platformctl").chmod(0o755)
        shared = runtime / "cache"
        (shared / "platformctl" / "run").mkdir(parents=True)
        (shared / "platformctl" / "run").chmod(0o777)
        monkeypatch.setenv("XDG_RUNTIME_DIR", str(runtime))
        monkeypatch.setenv("XDG_CACHE_HOME", str(shared))
        assert resident.address(tmp_path) is None
        (shared / "platformctl" / "run").chmod(0o700)  # the user folder's `run` is the fallback
        where = resident.address(tmp_path)
        assert where is not None and where.socket.parent == shared / "platformctl" / "run"
        monkeypatch.delenv("XDG_RUNTIME_DIR")
        monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / ("long-" * 20)))  # the socket's path would not fit
        assert resident.address(tmp_path) is None
    finally:
        shutil.rmtree(runtime, ignore_errors=True)


def test_learned_modules_are_read_only_as_library_module_names(tmp_path: Path) -> None:
    learned = tmp_path / "learned.modules"
    learned.write_text("pulumi_kubernetes.core.v1\nos\n../etc\nsubprocess;rm\npulumi_aws.iam\npulumi_aws\n")
    assert resident._read_learned(learned) == ["pulumi_aws", "pulumi_aws.iam", "pulumi_kubernetes.core.v1"]
    (tmp_path / "link.modules").symlink_to(learned)
    assert resident._read_learned(tmp_path / "link.modules") == []


def test_another_checkouts_engine_modules_plan_as_a_cold_plan_does(
    worker_env: Path, repo_copy: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With `--root` naming another checkout, a cold plan runs the installation's engine, policies and the modules
    they import (`gateway`, ...), imported before the checkout is on the path; the worker runs the same files.
    A client whose import path differs from the worker's does not use it."""
    model = repo_copy / "gateway" / "model.py"
    model.write_text(model.read_text().replace('else f"/{version}/{api}"', 'else f"/{version}/{api}-fromroot"', 1))
    cache.forget_program()
    try:
        plan(repo_copy)
        worker = wait_for_worker(repo_copy)
        assert worker.origins["gateway.model"] == str(ROOT / "gateway" / "model.py")
        edit_spec(repo_copy, "Hello again.")
        warm, names = plan(repo_copy)
        assert names == ["partner-acme-voice"]
        assert wait_for_worker(repo_copy).served == 1  # planned by the worker
        assert "-fromroot" not in warm.json_text()
        assert warm.json_text() == cold_json(repo_copy)
        assert worker.serves(repo_copy, cache.program_fingerprint(repo_copy))
        monkeypatch.syspath_prepend(str(repo_copy / "partners"))
        assert not worker.serves(repo_copy, cache.program_fingerprint(repo_copy))
    finally:
        cache.forget_program()


@pytest.mark.parametrize(
    "name",
    [
        "pulumi.dynamic.__main__",  # starts a gRPC dynamic-provider server on loopback and blocks forever
        "pulumi.policy.__main__",
        "pulumi.automation",  # the SDK core is not learned: it is imported at start
        "jsonschema.__main__",  # argparse: SystemExit
        "jsonschema.cli",
        "kubernetes_validate.__main__",
        "pulumi_aws.__main__",
        "pulumi_aws.iam.__init__",
    ],
)
def test_modules_with_import_side_effects_are_never_learned(name: str, tmp_path: Path) -> None:
    assert not resident._learnable(name)
    learned = tmp_path / "learned.modules"
    learned.write_text(f"pulumi_aws\n{name}\n")
    learned.chmod(0o600)
    assert resident._read_learned(learned) == ["pulumi_aws"]
    learned.chmod(0o622)  # others may write it: nothing in it is trusted
    assert resident._read_learned(learned) == []


def test_a_module_that_exits_while_loading_does_not_stop_the_worker() -> None:
    resident._load_bounded("jsonschema.__main__")  # its argparse raises SystemExit: swallowed, and nothing else


def test_sigterm_stops_the_worker_whatever_it_does(worker_env: Path, repo_copy: Path) -> None:
    resident.start_worker(repo_copy)
    worker = wait_for_worker(repo_copy)
    os.kill(worker.pid, signal.SIGTERM)
    _wait_gone(worker.pid)
    assert not worker.address.socket.exists()


def test_a_trickling_peer_is_dropped_after_the_handshake_time(worker_env: Path, repo_copy: Path) -> None:
    resident.start_worker(repo_copy)
    worker = wait_for_worker(repo_copy)
    started = time.monotonic()
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.connect(str(worker.address.socket))
        sock.settimeout(1)
        sock.recv(32)  # the worker's challenge
        closed = False
        while not closed and time.monotonic() - started < 30:
            try:
                sock.send(b"x")  # one byte of our challenge at a time
                closed = sock.recv(1) == b""
            except TimeoutError:
                continue
            except OSError:
                closed = True
    assert closed and time.monotonic() - started < resident.HANDSHAKE_SECONDS + 3
    assert ResidentWorker.find(repo_copy) is not None


def test_a_message_its_sender_did_not_sign_is_refused(worker_env: Path, repo_copy: Path) -> None:
    resident.start_worker(repo_copy)
    worker = wait_for_worker(repo_copy)
    with resident._connect(worker.address) as channel:
        channel.session = b"\0" * 32  # as a relay that saw the handshake but not the key would have to
        channel.send(("hello",))
        with pytest.raises((EOFError, ConnectionError, resident._ProtocolError)):
            channel.receive()
    assert ResidentWorker.find(repo_copy) is not None


def test_status_and_stop_see_a_worker_even_where_plans_do_not_use_it(
    worker_env: Path, repo_copy: Path, monkeypatch: pytest.MonkeyPatch, cli
) -> None:
    resident.start_worker(repo_copy)
    worker = wait_for_worker(repo_copy)
    monkeypatch.setenv(resident.SWITCH, "0")
    assert "turned off here" in cli("plan-worker", "status", root=repo_copy).out
    assert f"pid {worker.pid}" in cli("plan-worker", "stop", root=repo_copy).out
    _wait_gone(worker.pid)


def test_a_worker_started_by_a_run_that_planned_in_process_serves_the_next_run(
    worker_env: Path, repo_copy: Path
) -> None:
    """`--workers 1` plans in the CLI's own process (the checkout on its path for a while): the worker that run
    starts imports what the next run's client has, from the same files, so the next run uses it."""
    run = [sys.executable, "-c", "from cli.app import entry; entry()", "--root", str(repo_copy), "plan"]
    run += ["partner-acme-voice", "--workers", "1"]
    done = subprocess.run(run, capture_output=True, text=True, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    worker = wait_for_worker(repo_copy)
    edit_spec(repo_copy, "Hello again.")
    done = subprocess.run(run, capture_output=True, text=True, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    again = wait_for_worker(repo_copy)
    assert again.pid == worker.pid and again.served == 1


def test_a_worker_started_with_other_warning_options_does_not_serve(
    repo_copy: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`-W error` (or PYTHONWARNINGS) turns a provider's deprecation warning into a failed plan: a worker started
    without it would plan what this run refuses."""
    where = resident.Address(repo_copy / "s", repo_copy / "l", repo_copy / "m")
    fingerprint = cache.program_fingerprint(repo_copy)
    worker = ResidentWorker(where, fingerprint, 1, 0, 0, 600.0, resident.program_origins(repo_copy))
    assert worker.serves(repo_copy, fingerprint)
    monkeypatch.setattr(sys, "warnoptions", [*sys.warnoptions, "error"])
    assert not worker.serves(repo_copy, fingerprint)
    assert "-Werror" in resident._interpreter_options()
