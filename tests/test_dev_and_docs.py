"""The newcomer's path (issue 18, item 17): `./dev platformctl ...` runs the CLI from .venv, the first run says what
it installs before the long silence, and the README's first screen and its links stand alone in a clone."""

from __future__ import annotations

import os
import re
import shutil
import stat
import subprocess
import sys
from pathlib import Path

from tests.conftest import ROOT


def dev_copy(repo_copy: Path) -> Path:
    shutil.copy2(ROOT / "dev", repo_copy / "dev")
    shutil.copy2(ROOT / "pyproject.toml", repo_copy / "pyproject.toml")
    return repo_copy


def executable(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path


def test_dev_platformctl_runs_the_venvs_cli_on_this_repository(repo_copy: Path, tmp_path: Path) -> None:
    root = dev_copy(repo_copy)
    # A set-up .venv whose platformctl is this installation's (the real set-up takes minutes and the network).
    real = Path(sys.executable).with_name("platformctl")
    executable(root / ".venv" / "bin" / "platformctl", f'#!/bin/sh\nPYTHONPATH="{ROOT}" exec "{real}" "$@"\n')
    (root / ".venv" / ".installed").touch()
    os.utime(root / "pyproject.toml", (1, 1))  # older than the stamp: no reinstall
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {k: v for k, v in os.environ.items() if k != "PLATFORMCTL_ROOT"}
    run = subprocess.run(
        [str(root / "dev"), "platformctl", "partners", "--json"],
        cwd=elsewhere,
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert run.returncode == 0, run.stderr
    assert "acme-voice" in run.stdout and run.stderr == ""
    bad = subprocess.run(
        [str(root / "dev"), "platformctl", "partners", "--no-such-option"],
        cwd=elsewhere,
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert bad.returncode == 2 and "Traceback" not in bad.stderr


def test_the_first_run_says_what_it_installs_before_installing(repo_copy: Path, tmp_path: Path) -> None:
    root = dev_copy(repo_copy)
    # A python3 that records it was called and fails: the line must come before it, and nothing gets installed.
    fake_bin = tmp_path / "bin"
    executable(fake_bin / "python3", f'#!/bin/sh\necho called >> "{tmp_path / "calls"}"\nexit 3\n')
    env = {**os.environ, "PATH": f"{fake_bin}{os.pathsep}{os.environ['PATH']}"}
    run = subprocess.run([str(root / "dev"), "plan"], capture_output=True, text=True, env=env, timeout=60)
    assert run.returncode == 3
    first = run.stderr.splitlines()[0]
    assert first.startswith("./dev: first run: creating .venv")
    assert "Pulumi SDK" in first and "minutes" in first
    assert (tmp_path / "calls").read_text() == "called\n"


def test_the_readme_stands_alone_and_its_first_screen_says_how_to_run_platformctl() -> None:
    readme = (ROOT / "README.md").read_text()
    first_screen = "\n".join(readme.splitlines()[:26])
    assert "./dev platformctl" in first_screen
    assert "source .venv/bin/activate" in first_screen
    assert "first `./dev` run" in first_screen and "minutes" in first_screen
    assert re.search(r"full test suite takes about", first_screen)
    assert "docs/ARCHITECTURE.md" in first_screen
    # Every file the README points to is in the repository: none outside it (`../shared/...`).
    assert "../" not in readme
    for target in re.findall(r"\]\(([^)#]+)\)", readme):
        if "://" not in target:
            assert (ROOT / target).exists(), target
    architecture = (ROOT / "docs" / "ARCHITECTURE.md").read_text()
    for folder in re.findall(r"^(\w+)/\s", architecture, flags=re.M):
        assert (ROOT / folder).is_dir(), f"docs/ARCHITECTURE.md names {folder}/, which the repository lacks"
