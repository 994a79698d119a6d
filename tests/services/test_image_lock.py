"""The services image installs the tested versions: services/constraints.txt pins every distribution it holds."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

from scripts.image_env import DOCKERFILE, parse_build_stage
from tests.services.image_env import ImageEnv

CONSTRAINTS = Path(__file__).resolve().parents[2] / "services" / "constraints.txt"
OWN = {"platform-foundation", "platform-services"}


def _canonical(name: str) -> str:
    """PEP 503 normalised project name."""
    return re.sub(r"[-_.]+", "-", name).lower()


def _pins() -> dict[str, str]:
    pins: dict[str, str] = {}
    for number, line in enumerate(CONSTRAINTS.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip() or line.startswith("#"):
            continue
        name, sep, version = line.partition("==")
        well_formed = re.fullmatch(r"[A-Za-z0-9][\w.-]*", name) and re.fullmatch(r"[0-9][\w.+!-]*", version)
        assert sep and well_formed, f"services/constraints.txt:{number}: expected NAME==VERSION, got {line!r}"
        pins[_canonical(name)] = version
    return pins


def test_the_dockerfile_installs_with_the_constraints_file() -> None:
    stage = parse_build_stage(DOCKERFILE.read_text(encoding="utf-8"))
    assert stage.pip_args[-4:-2] == ("-c", "services/constraints.txt")


def test_the_image_holds_exactly_the_pinned_versions(image: ImageEnv, tmp_path: Path) -> None:
    listing = subprocess.run(
        [
            str(image.python),
            "-c",
            "import importlib.metadata as m, json; "
            "print(json.dumps({d.metadata['Name']: d.version for d in m.distributions()}))",
        ],
        cwd=tmp_path,
        env=image.environ(),
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    installed = {_canonical(name): version for name, version in json.loads(listing.stdout).items()}
    third_party = {name: version for name, version in installed.items() if name not in OWN}
    assert third_party == _pins()
    assert set(installed) >= OWN
