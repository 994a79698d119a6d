"""No command leaves a process running after it returns (ARCHITECTURE.md: no daemons).

Each command runs under a small reaper that makes itself the child subreaper (prctl PR_SET_CHILD_SUBREAPER), so a
process the command detached (double fork, setsid) is reparented to the reaper instead of init when its parent
exits: whatever is still alive under the reaper once the command returned was left behind.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

from tests.conftest import ROOT

REAPER = r"""
import ctypes, json, os, signal, subprocess, sys, time

PR_SET_CHILD_SUBREAPER = 36
if ctypes.CDLL(None, use_errno=True).prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
    raise SystemExit("prctl(PR_SET_CHILD_SUBREAPER) failed")
stop_after = os.environ.pop("REAPER_STOP_AFTER", "")
command = sys.argv[1:]
if stop_after:
    # A server: SIGTERM once it says it is serving, as Kubernetes stops a pod.
    process = subprocess.Popen(command, stderr=subprocess.PIPE, text=True)
    seen = []
    for line in process.stderr:
        seen.append(line)
        if stop_after in line:
            process.send_signal(signal.SIGTERM)
            break
    process.stderr.read()
    code = process.wait(timeout=60)
else:
    code = subprocess.call(command)
deadline = time.monotonic() + 2
left = []
while True:
    while True:  # reap what exited (reparented orphans included): only the living count
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            break
        if pid == 0:
            break
    left = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as stat:
                fields = stat.read().rsplit(")", 1)[1].split()
            with open(f"/proc/{entry}/cmdline", "rb") as cmdline:
                argv = cmdline.read().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if int(fields[1]) == os.getpid() and fields[0] != "Z":
            left.append([int(entry), argv])
    if not left or time.monotonic() > deadline:
        break
    time.sleep(0.1)
print(json.dumps({"code": code, "left": left}))
"""


def _run_reaped(tmp_path: Path, *argv: str, stop_after: str = "") -> dict[str, object]:
    # As on a developer's machine: no CI variable (anything that would run only there runs here).
    env = {**{k: v for k, v in os.environ.items() if k != "CI"}, "PYTHONPATH": str(ROOT), "COLUMNS": "200"}
    if stop_after:
        env["REAPER_STOP_AFTER"] = stop_after
    done = subprocess.run(
        [sys.executable, "-c", REAPER, *argv],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    result: dict[str, object] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def _platformctl() -> str:
    return str(Path(sys.executable).parent / "platformctl")


def test_the_reaper_sees_a_detached_process(tmp_path: Path) -> None:
    """The check can fail: a command that leaves a daemon behind (double fork + setsid) is caught."""
    daemon = (
        "import os, time\n"
        "if os.fork() == 0:\n"
        "    os.setsid()\n"
        "    if os.fork() == 0:\n"
        "        null = os.open(os.devnull, os.O_RDWR)\n"  # a daemon lets go of its caller's output: the
        "        for fd in (0, 1, 2):\n"  # test's pipe ends when the reaper does, not 30 s later
        "            os.dup2(null, fd)\n"
        "        time.sleep(30)\n"
        "    os._exit(0)\n"
    )
    result = _run_reaped(tmp_path, sys.executable, "-c", daemon)
    left = result["left"]
    assert isinstance(left, list) and len(left) == 1, left
    ((pid, argv),) = left
    assert "time.sleep(30)" in argv
    os.kill(pid, signal.SIGKILL)  # the daemon was reparented to the reaper, which has exited: end it now


POOL_STACKS = (
    "partner-acme-voice",
    "partner-sunrise-telecom",
    "region-eu-central",
    "region-us-east",
    "region-ap-sydney",
    "region-eu-milan",
    "region-eu-west",
    "region-ca-central",
)
"""Enough stacks for a cold plan to start a worker pool (as `plan --all` does), the cheapest to plan: the partners'
home regions and the smallest regions. Planning all 19 would run the same pool on more stacks for ~5 s more CPU
(tests/cli/test_plan.py plans them all)."""


def test_plan_leaves_no_process(repo_copy: Path, tmp_path: Path) -> None:
    """A cold plan of many stacks (a worker pool), then a warm one after an edit (a prewarmed worker)."""
    from platformctl.offline.planner import SEQUENTIAL_BELOW

    assert len(POOL_STACKS) >= SEQUENTIAL_BELOW  # fewer would be planned in-process, with no pool to leave behind
    cold = _run_reaped(tmp_path, _platformctl(), "--root", str(repo_copy), "plan", *POOL_STACKS, "--workers", "2")
    assert cold == {"code": 0, "left": []}
    spec = repo_copy / "partners" / "acme-voice.yaml"
    spec.write_text(spec.read_text().replace("voice_greeting: ", "voice_greeting: Hello again. ", 1))
    warm = _run_reaped(tmp_path, _platformctl(), "--root", str(repo_copy), "plan", *POOL_STACKS)
    assert warm == {"code": 0, "left": []}


def test_dry_run_and_failures_leave_no_process(repo_copy: Path, tmp_path: Path) -> None:
    example = ROOT / "partners" / "examples" / "pampas-voz.yaml"
    dry = _run_reaped(tmp_path, _platformctl(), "--root", str(repo_copy), "onboard-partner", str(example), "--dry-run")
    assert dry == {"code": 0, "left": []}
    bad = _run_reaped(tmp_path, _platformctl(), "--root", str(repo_copy), "plan", "partner-no-such-partner")
    assert bad == {"code": 2, "left": []}
