"""The services distribution and its image: what the Dockerfile installs, and that it runs on its own.

Every test here runs `platform-services` from the image environment (`./dev image-env`, the Dockerfile's own lines),
in an empty folder, with no PYTHONPATH: nothing of the checkout can be imported by accident.
"""

from __future__ import annotations

import subprocess
import tomllib
from pathlib import Path

import pytest

from scripts.image_env import DOCKERFILE, parse_build_stage
from tests.services.image_env import ROOT, ImageEnv
from tests.services.meter_harness import free_port

PROVIDER_SDKS = ("pulumi", "pulumi-aws", "pulumi-kubernetes", "pulumi-kong", "pulumi-snowflake", "pulumi-random")


def _run(image: ImageEnv, cwd: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    if args[:2] == ("meter", "serve") and "--port" not in args:
        # A port of its own: the default (8787) may be held by a meter another test worker runs, and the port is
        # checked before the arguments these tests are about.
        args = (*args, "--port", str(free_port()))
    return subprocess.run(
        [str(image.script), *args], cwd=cwd, env=image.environ(**env), capture_output=True, text=True, timeout=120
    )


def test_the_dockerfile_copies_the_two_distributions_and_no_partner_data() -> None:
    stage = parse_build_stage(DOCKERFILE.read_text(encoding="utf-8"))
    assert stage.copies == (("foundation", "foundation"), ("services", "services"))
    assert stage.pip_args[-2:] == ("./foundation", "./services")
    text = DOCKERFILE.read_text(encoding="utf-8")
    copies = [line.split()[1:] for line in text.splitlines() if line.startswith("COPY")]
    # After the build stage, only the virtualenv is copied: no partners/, regions/, Pulumi.yaml.
    assert copies[2:] == [["--from=build", "/opt/platform-services", "/opt/platform-services"]]
    assert 'ENTRYPOINT ["platform-services"]' in text
    assert "USER 10001" in text


def test_every_services_package_is_in_the_distribution() -> None:
    config = tomllib.loads((ROOT / "services" / "pyproject.toml").read_text(encoding="utf-8"))
    listed = set(config["tool"]["setuptools"]["packages"])
    folders = {
        ".".join(("services", *p.parent.relative_to(ROOT / "services").parts))
        for p in (ROOT / "services").rglob("__init__.py")
        if "build" not in p.parts
    }
    assert listed == folders


def test_the_image_environment_has_no_pulumi_and_no_checkout(image: ImageEnv, tmp_path: Path) -> None:
    installed = (
        subprocess.run(
            [
                str(image.python),
                "-c",
                "import importlib.metadata as m; print('\\n'.join(d.metadata['Name'] for d in m.distributions()))",
            ],
            cwd=tmp_path,
            env=image.environ(),
            capture_output=True,
            text=True,
            check=True,
        )
        .stdout.lower()
        .split()
    )
    assert "platform-services" in installed and "platform-foundation" in installed
    assert not [name for name in installed if name.startswith("pulumi") or name in ("fakesnow", "pyarrow", "duckdb")]
    assert not set(installed) & {p.lower() for p in PROVIDER_SDKS}
    for package in ("components", "partners", "platformctl", "fleet", "regions", "cli", "pulumi"):
        probe = subprocess.run(
            [str(image.python), "-c", f"import {package}"], cwd=tmp_path, env=image.environ(), capture_output=True
        )
        assert probe.returncode != 0, f"`import {package}` works in the image environment"
    # Every module of the services imports there (a missing dependency or a stray import of the tool shows here).
    walk = (
        "import importlib, pkgutil, services; "
        "[importlib.import_module(m.name) for m in pkgutil.walk_packages(services.__path__, 'services.')]"
    )
    subprocess.run([str(image.python), "-c", walk], cwd=tmp_path, env=image.environ(), check=True)


def test_platform_services_help_from_an_empty_folder(image: ImageEnv, tmp_path: Path) -> None:
    result = _run(image, tmp_path, "--help")
    assert result.returncode == 0, result.stderr
    assert "meter serve" in result.stdout and "payouts run --period previous" in result.stdout
    for command in (("meter", "serve", "--help"), ("payouts", "run", "--help")):
        result = _run(image, tmp_path, *command)
        assert result.returncode == 0 and "example:" in result.stdout, result.stderr
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("args", "named"),
    [
        (["--region", "nowhere"], "--region"),
        (["--region", "EU-CENTRAL"], "--region"),
        (["--public-url", "https://x.example:99999"], "--public-url"),
        (["--public-url", "https://x.example:0"], "--public-url"),
        (["--public-url", "https://[::1"], "--public-url"),  # urlsplit's ValueError, not an internal error
        (["--public-url", "https://x.example?"], "--public-url"),  # an empty query still changes the signed URL
        (["--public-url", "https://x.example#"], "--public-url"),
        (["--port", "99999"], "--port"),
        (["--warehouse", "local:wh"], "platform-services[local]"),
        (["--warehouse", "snowflake://A/DB?user=U&role=R&warehouse=W&host=db.example&protocol=http"], "protocol"),
    ],
)
def test_bad_arguments_of_meter_serve_exit_2_naming_them(
    image: ImageEnv, tmp_path: Path, args: list[str], named: str
) -> None:
    warehouse = [] if "--warehouse" in args else ["--warehouse", "snowflake://A/DB?user=U&role=R&warehouse=W"]
    result = _run(
        image,
        tmp_path,
        "meter",
        "serve",
        *warehouse,
        *args,
        TWILIO_ACCOUNT_SID="AC" + "0" * 32,
        TWILIO_AUTH_TOKEN="t",
        METER_KONG_TOKEN="k",
        SNOWFLAKE_PRIVATE_KEY=_pem(),
    )
    assert result.returncode == 2, result.stderr
    assert named in result.stderr
    assert "Traceback" not in result.stderr
    assert list(tmp_path.iterdir()) == [], "nothing is written on bad input"


@pytest.mark.parametrize("kind", ["folder", "garbage", "parent-is-a-file"])
def test_a_spool_that_is_not_a_spool_exits_2(image: ImageEnv, tmp_path: Path, kind: str) -> None:
    spool = tmp_path / "spool.db"
    if kind == "folder":
        spool.mkdir()
    elif kind == "garbage":
        spool.write_bytes(b"\x00not a database at all" * 10)
    else:
        spool.write_text("a file")
        spool = spool / "spool.db"
    before = sorted(p.name for p in tmp_path.iterdir())
    result = _run(
        image,
        tmp_path,
        "meter",
        "serve",
        "--spool",
        str(spool),
        "--warehouse",
        "snowflake://A/DB?user=U&role=R&warehouse=W",
        TWILIO_ACCOUNT_SID="AC" + "0" * 32,
        TWILIO_AUTH_TOKEN="t",
        METER_KONG_TOKEN="k",
        SNOWFLAKE_PRIVATE_KEY=_pem(),
    )
    assert result.returncode == 2, result.stderr
    assert "--spool" in result.stderr and "Traceback" not in result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == before


def test_usage_errors_exit_2(image: ImageEnv, tmp_path: Path) -> None:
    assert _run(image, tmp_path, "meter", "fly").returncode == 2
    assert _run(image, tmp_path, "payouts", "run").returncode == 2  # --period is required
    assert _run(image, tmp_path).returncode == 2


def _pem() -> str:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()


@pytest.mark.parametrize(
    ("args", "named"),
    [
        (["--period", "2026-13"], "--period"),
        (["--period", "2999-01"], "--period"),  # not closed yet
        (["--period", "previous", "--region", "nowhere"], "--region"),
        (["--period", "previous", "--statements", "ftp://x/y"], "--statements"),
    ],
)
def test_bad_arguments_of_payouts_run_exit_2_naming_them(
    image: ImageEnv, tmp_path: Path, args: list[str], named: str
) -> None:
    result = _run(image, tmp_path, "payouts", "run", *args)
    assert result.returncode == 2, result.stderr
    assert named in result.stderr and "Traceback" not in result.stderr
    assert list(tmp_path.iterdir()) == [], "nothing is written on bad input"
