"""Ctrl-C: exit 130, one line on stderr, no traceback, nothing half-written (issue 18, item 14).

`plan && deploy` must stop at an interrupted plan: Typer, run not standalone, turns KeyboardInterrupt into an
exit code it returns instead of raising, which `main` used to drop (exit 0)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

import platformctl.planning
from foundation.errors import INTERRUPTED_LINE
from tests.conftest import tree_snapshot

PLATFORMCTL = Path(sys.executable).with_name("platformctl")
MESSAGE = INTERRUPTED_LINE


def test_an_interrupted_command_exits_130_with_one_line(cli, repo_copy: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def interrupted(*args: object, **kwargs: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(platformctl.planning, "run_plan", interrupted)
    run = cli("plan", "global", code=130, root=repo_copy)
    assert run.out == "" and run.err.strip().splitlines() == [MESSAGE]


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime


def _children(pid: int) -> list[str]:
    try:
        return Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:
        return []


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="watches the process through /proc (Linux)")
@pytest.mark.parametrize(
    "moment",
    # In-process planning at several points: an interrupt can land in code that swallows it (a weakref callback,
    # a task of the program's event loop), which once left the loop waiting forever or the plan running on.
    ["while-importing", "while-workers-plan", *(f"while-planning-in-process-{cpu}" for cpu in (3, 3.5, 4, 6))],
)
def test_ctrl_c_during_plan_exits_130_and_writes_nothing(repo_copy: Path, tmp_path: Path, moment: str) -> None:
    """A real SIGINT to the command's process group (what a terminal's Ctrl-C sends), at three moments."""
    before = tree_snapshot(repo_copy)
    out = tmp_path / "plan.json"
    in_process = moment.startswith("while-planning-in-process")
    workers = ["--workers", "1"] if in_process else ["--workers", "2"]
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    env.pop("PLATFORMCTL_ROOT", None)
    process = subprocess.Popen(
        [str(PLATFORMCTL), "--root", str(repo_copy), "plan", "--all", "--no-cache", "--json", str(out), *workers],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        start_new_session=True,  # its own process group, as a shell job has
    )
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and process.poll() is None:
            # The command forks its planning workers after about 0.3 s of its own CPU (less with warm bytecode
            # caches) and then waits on them: its CPU no longer grows until the plan is written, so a higher
            # threshold would interrupt it after the cache was committed.
            if moment == "while-importing" and (_cpu_seconds(process.pid) > 0.15 or _children(process.pid)):
                break
            if moment == "while-workers-plan" and len(_children(process.pid)) >= 2:
                time.sleep(1.5)  # the workers have imported and are planning
                break
            if in_process and _cpu_seconds(process.pid) > float(moment.rpartition("-")[2]):
                break
            time.sleep(0.02)
        assert process.poll() is None, "the plan finished before it could be interrupted"
        os.killpg(process.pid, signal.SIGINT)
        stdout, stderr = process.communicate(timeout=60)  # a hang fails here
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
    assert process.returncode == 130, stderr
    assert "Traceback" not in stdout + stderr
    assert stderr.strip().splitlines() == [MESSAGE], stderr
    assert not out.exists() and list(tmp_path.iterdir()) == [tmp_path / "repo"]  # no plan JSON, no temporary file
    assert tree_snapshot(repo_copy) == before  # no spec or stack file touched
    cache = repo_copy / ".platformctl" / "cache"
    assert not cache.exists() or list(cache.iterdir()) == []  # an interrupted run commits no cache entry
    assert not any(name.endswith(".tmp") for name in _files(repo_copy))  # no temporary file left
    time.sleep(0.5)
    with pytest.raises(ProcessLookupError):
        os.killpg(process.pid, 0)  # no planning worker of its process group outlived it


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_ctrl_c_stops_the_meter_with_130_and_one_line_after_its_own_shutdown(repo_copy: Path, tmp_path: Path) -> None:
    """A server is stopped with Ctrl-C: it shuts down cleanly (its own log lines), then exits 130 with the one line
    and nothing after it (no warning about semaphores left behind)."""
    port = _free_port()
    env = {
        **os.environ,
        "PYTHONPATH": str(Path(__file__).resolve().parents[2]),
        "TWILIO_ACCOUNT_SID": "AC" + "0" * 32,
        "TWILIO_AUTH_TOKEN": "t" * 32,
        "METER_KONG_TOKEN": "k" * 32,
    }
    env.pop("PLATFORMCTL_ROOT", None)
    command = [str(PLATFORMCTL), "--root", str(repo_copy), "meter", "serve", "--port", str(port)]
    command += ["--warehouse", f"local:{tmp_path / 'warehouse'}", "--spool", str(tmp_path / "spool.db")]
    process = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, start_new_session=True
    )
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and process.poll() is None:
            with socket.socket() as client:
                if client.connect_ex(("127.0.0.1", port)) == 0:
                    break
            time.sleep(0.1)
        assert process.poll() is None, process.communicate()[1]
        os.killpg(process.pid, signal.SIGINT)
        stdout, stderr = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
    assert process.returncode == 130, stderr
    assert "Traceback" not in stdout + stderr
    assert stderr.strip().splitlines()[-1] == MESSAGE, stderr
