"""`./dev image-env DIR`: the Python environment of services/Dockerfile, built at DIR as a virtualenv.

The file list and the install command are read from the Dockerfile's build stage, not retyped: every `COPY SRC DST`
before the first `RUN`, and the `pip install ARGS` of that `RUN` (the Dockerfile's venv path replaced by DIR). The
sources are staged in a temporary folder, as `docker build` would send them (the .dockerignore patterns applied),
so the build sees nothing of the checkout but those files, and the checkout gets no build/ or egg-info litter.

    ./dev image-env /tmp/platform-services-env
    python scripts/image_env.py DIR [--python PYTHON]
"""

from __future__ import annotations

import argparse
import fnmatch
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DOCKERFILE = ROOT / "services" / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"


@dataclass(frozen=True)
class BuildStage:
    copies: tuple[tuple[str, str], ...]
    """(source in the context, destination under WORKDIR) of each COPY, in order."""
    venv: str
    """The virtualenv path the Dockerfile creates (`python -m venv PATH`)."""
    pip_args: tuple[str, ...]
    """The arguments after `pip --python V/bin/python install`, paths relative to WORKDIR."""


def _instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    joined: list[str] = []
    pending = ""
    for line in text.splitlines():
        stripped = line.strip()
        if not pending and (not stripped or stripped.startswith("#")):
            continue
        if stripped.endswith("\\"):
            pending += stripped[:-1] + " "
            continue
        joined.append(pending + stripped)
        pending = ""
    return [(line.split(None, 1)[0].upper(), line.split(None, 1)[1] if " " in line else "") for line in joined]


_RUN_SHAPE = "python -m venv --without-pip V && pip --python V/bin/python install ARGS"


def parse_build_stage(text: str) -> BuildStage:
    """The first stage's COPY lines and its RUN line (of the shape _RUN_SHAPE)."""
    copies: list[tuple[str, str]] = []
    for instruction, args in _instructions(text)[1:]:
        if instruction == "FROM":
            break
        if instruction == "COPY":
            parts = shlex.split(args)
            if len(parts) != 2 or parts[0].startswith("--"):
                raise ValueError(f"services/Dockerfile: COPY {args}: expected COPY SRC DST")
            copies.append((parts[0], parts[1]))
        elif instruction == "RUN":
            steps = [shlex.split(step) for step in args.split("&&")]
            if len(steps) != 2 or steps[0][:4] != ["python", "-m", "venv", "--without-pip"] or len(steps[0]) != 5:
                raise ValueError(f"services/Dockerfile: RUN: expected `{_RUN_SHAPE}`")
            venv = steps[0][4]
            if steps[1][:4] != ["pip", "--python", f"{venv}/bin/python", "install"]:
                raise ValueError(f"services/Dockerfile: RUN: expected `{_RUN_SHAPE}`")
            return BuildStage(tuple(copies), venv, tuple(steps[1][4:]))
    raise ValueError("services/Dockerfile: the build stage has no RUN pip install line")


def _ignore(patterns: list[str]) -> object:
    names = [p.removeprefix("**/") for p in patterns]

    def ignore(_directory: str, entries: list[str]) -> set[str]:
        return {e for e in entries if any(fnmatch.fnmatch(e, n) for n in names)}

    return ignore


def build(target: Path, python: str = sys.executable, quiet: bool = False) -> BuildStage:
    """Create the virtualenv at `target` (which must not exist or be empty) exactly as the Dockerfile does."""
    stage = parse_build_stage(DOCKERFILE.read_text(encoding="utf-8"))
    if target.exists() and any(target.iterdir()):
        raise SystemExit(f"image-env: {target} exists and is not empty")
    patterns = [
        line.strip()
        for line in DOCKERIGNORE.read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.startswith("#")
    ]
    with tempfile.TemporaryDirectory(prefix="image-context-") as context:
        for source, destination in stage.copies:
            shutil.copytree(ROOT / source, Path(context) / destination, ignore=_ignore(patterns))  # type: ignore[arg-type]
        subprocess.run([python, "-m", "venv", "--without-pip", str(target)], check=True)
        env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PIP_USER", "VIRTUAL_ENV")}
        pip = [python, "-m", "pip", "--python", str(target / "bin" / "python"), "install"]
        command = [*pip, *stage.pip_args, *(["--quiet"] if quiet else [])]
        subprocess.run(command, cwd=context, env=env, check=True)
    return stage


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="./dev image-env", description=__doc__.split("\n\n")[0])
    parser.add_argument("dir", type=Path, help="where to create the virtualenv (absent or empty)")
    parser.add_argument("--python", default=sys.executable, help="interpreter for the venv (default: this one)")
    args = parser.parse_args(argv)
    build(args.dir.resolve(), args.python)
    print(f"image environment at {args.dir}: {args.dir}/bin/platform-services")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
