"""Locks: an OS lock (flock) that dies with its holder, covers read-modify-write and is held through an apply."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from foundation.errors import InputError
from platformctl.locking import exclusive, holding
from tests.conftest import ROOT, tree_snapshot

EXAMPLE = ROOT / "partners" / "examples" / "pampas-voz.yaml"
HOLDER = """
import fcntl, os, sys, time
os.makedirs(os.path.dirname(sys.argv[1]), exist_ok=True)
fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT)
fcntl.flock(fd, fcntl.LOCK_EX)
print("locked", flush=True)
time.sleep(60)
"""


@pytest.fixture
def hold_lock():
    """Hold `.platformctl/locks/<name>.lock` from another process; yields a function that starts the holder."""
    holders: list[subprocess.Popen] = []

    def start(root: Path, name: str) -> subprocess.Popen:
        path = root / ".platformctl" / "locks" / f"{name}.lock"
        holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(path)], stdout=subprocess.PIPE, text=True)
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        holders.append(holder)
        return holder

    yield start
    for holder in holders:
        holder.kill()
        holder.wait(timeout=10)


def test_a_held_lock_refuses_at_once_with_exit_2_and_writes_nothing(cli, repo_copy: Path, hold_lock) -> None:
    hold_lock(repo_copy, "partner-pampas-voz")
    before = tree_snapshot(repo_copy)
    run = cli("onboard-partner", str(EXAMPLE), "--no-apply", code=2, root=repo_copy)
    assert "another platformctl run" in run.err and "partner-pampas-voz" in run.err
    assert tree_snapshot(repo_copy) == before


def test_a_crashed_holder_never_blocks(cli, repo_copy: Path, hold_lock) -> None:
    holder = hold_lock(repo_copy, "partner-pampas-voz")
    os.kill(holder.pid, signal.SIGKILL)  # dies holding the lock: the kernel releases it
    holder.wait(timeout=10)
    cli("onboard-partner", str(EXAMPLE), "--no-apply", root=repo_copy)


@pytest.mark.parametrize(
    "content",
    [b"", b"garbage\x00\xff", str(os.getpid()).encode(), b"1"],
    ids=["empty", "garbage", "live-pid", "pid-1"],  # stable ids: pytest-xdist's workers must collect the same tests
)
def test_leftover_lock_files_never_block(cli, repo_copy: Path, content: bytes) -> None:
    # Empty, garbage, a live pid that is not a holder (pid reuse), pid 1: only a real flock counts.
    locks = repo_copy / ".platformctl" / "locks"
    locks.mkdir(parents=True)
    (locks / "partner-pampas-voz.lock").write_bytes(content)
    cli("onboard-partner", str(EXAMPLE), "--no-apply", root=repo_copy)


def test_two_holders_are_impossible(tmp_path: Path) -> None:
    with (
        exclusive(tmp_path, "region-sa-east"),
        pytest.raises(InputError, match="another platformctl run"),
        exclusive(tmp_path, "region-sa-east"),
    ):
        pass
    with holding(tmp_path, ["region-sa-east", "fleet"]):
        pass  # released: taken again at once


def test_offboarding_waits_for_no_one_while_an_update_holds_the_partner(cli, repo_copy: Path, hold_lock) -> None:
    hold_lock(repo_copy, "partner-acme-voice")
    before = tree_snapshot(repo_copy)
    cli("offboard-partner", "acme-voice", "--no-apply", code=2, root=repo_copy)
    assert tree_snapshot(repo_copy) == before


def _launch(root: Path, country: str, region: str) -> subprocess.Popen:
    command = [sys.executable, "-c", "from cli.app import entry; entry()", "--root", str(root)]
    command += ["launch-country", country, "--region", region, "--no-apply"]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_two_launches_on_one_region_never_lose_an_update(repo_copy: Path) -> None:
    from regions.catalog import load_catalog

    catalog = load_catalog(repo_copy / "regions")
    # A region that serves two countries not launched yet (the example fleet decides which).
    for region in catalog.regions.values():
        stack = repo_copy / "stacks" / f"Pulumi.region-{region.code}.yaml"
        launched = (yaml.safe_load(stack.read_text()).get("config") or {}).get("platform:launchedCountries") or []
        free = [cc for cc in region.serves if cc not in launched]
        if len(free) >= 2:
            break
    first, second = free[:2]
    runs = [_launch(repo_copy, first, region.code), _launch(repo_copy, second, region.code)]
    results = [(p.wait(timeout=120), p.stderr.read()) for p in runs]  # type: ignore[union-attr]
    final = yaml.safe_load(stack.read_text())["config"]["platform:launchedCountries"]
    for (code, err), country in zip(results, (first, second), strict=True):
        assert code in (0, 2), err
        assert "Traceback" not in err
        assert (country in final) == (code == 0), (country, code, final, err)
    assert final[: len(launched)] == launched and len(final) == len(set(final))


def test_the_lock_is_held_through_the_apply(repo_copy: Path) -> None:
    from platformctl import changes, partner_changes

    seen = []

    class Engine:
        @staticmethod
        def run(repo, stack, operation, on_output=None):
            try:
                with exclusive(repo.state_dir, str(stack)):
                    seen.append((operation, "free"))
            except InputError:
                seen.append((operation, "held"))
            return {}

    hooks = changes.Hooks(say=lambda _: None, warn=lambda _: None, confirm=lambda _: True)
    inputs = partner_changes.read_spec_inputs([EXAMPLE])
    changes.carry_out(
        repo_copy,
        partner_changes.onboarding_locks(inputs),
        lambda repo: partner_changes.onboarding_change(repo, inputs, update=False),
        changes.Mode.APPLY,
        hooks,
        engine=Engine,
    )
    assert seen == [("preview", "held"), ("up", "held")]


def test_a_lock_path_that_cannot_be_a_lock_is_bad_input(cli, repo_copy: Path) -> None:
    (repo_copy / ".platformctl").mkdir()
    (repo_copy / ".platformctl" / "locks").write_text("a file where the lock folder goes")
    run = cli("offboard-partner", "acme-voice", "--no-apply", code=2, root=repo_copy)
    assert ".platformctl/locks/partner-acme-voice.lock" in run.err and "cannot open the lock file" in run.err
