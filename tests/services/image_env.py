"""The services image's Python environment (services/Dockerfile, built by `./dev image-env`), for tests that run
what the image runs: from an empty folder, with no checkout on sys.path.

CI builds it once (.ci/run) and names it in PLATFORM_IMAGE_ENV; without that, the first test that needs it builds
it under .platformctl/image-env/<hash of the files the Dockerfile copies> and later runs reuse it. It is never
skipped: a build that fails fails the tests.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from scripts.image_env import DOCKERFILE, parse_build_stage

ROOT = Path(__file__).resolve().parents[2]
ENV_VAR = "PLATFORM_IMAGE_ENV"


def _fingerprint() -> str:
    digest = hashlib.sha256(DOCKERFILE.read_bytes())
    stage = parse_build_stage(DOCKERFILE.read_text(encoding="utf-8"))
    for source, _ in stage.copies:
        for path in sorted((ROOT / source).rglob("*")):
            if path.is_file() and "__pycache__" not in path.parts and ".egg-info" not in str(path):
                digest.update(str(path.relative_to(ROOT)).encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:16]


@dataclass(frozen=True)
class ImageEnv:
    path: Path
    """The virtualenv."""

    @property
    def python(self) -> Path:
        return self.path / "bin" / "python"

    @property
    def script(self) -> Path:
        return self.path / "bin" / "platform-services"

    def environ(self, **extra: str) -> dict[str, str]:
        """The environment of a process from the image: no PYTHONPATH, no virtualenv of the tests."""
        drop = {"PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME", "PYTHONSTARTUP", "PYTHONSAFEPATH"}
        env = {k: v for k, v in os.environ.items() if k not in drop and not k.startswith("PLATFORMCTL_")}
        env["PATH"] = f"{self.path / 'bin'}:/usr/bin:/bin"
        return {**env, **extra}


def image_env() -> ImageEnv:
    given = os.environ.get(ENV_VAR)
    if given:
        env = ImageEnv(Path(given))
        if not env.script.is_file():
            raise AssertionError(f"{ENV_VAR}={given} has no bin/platform-services: build it with ./dev image-env")
        return env
    target = ROOT / ".platformctl" / "image-env" / _fingerprint()
    env = ImageEnv(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    # One build at a time: pytest-xdist's workers (and two checkouts' runs) ask at once; the others wait for it.
    with open(target.parent.with_name("image-env.lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (target / ".complete").is_file():
            _build(target)
    return env


def _build(target: Path) -> None:
    """Build the environment at target, after removing those of other sources (200+ MB each) and a broken one."""
    for stale in target.parent.iterdir():
        shutil.rmtree(stale, ignore_errors=True)
    build = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "image_env.py"), str(target)], capture_output=True, text=True
    )
    if build.returncode != 0:
        raise AssertionError(f"./dev image-env failed:\n{build.stdout[-5000:]}\n{build.stderr[-5000:]}")
    (target / ".complete").write_text("")
