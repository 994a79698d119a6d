"""Listings, validate and --help."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest


def every_command(groups: bool = False) -> list[tuple[str, ...]]:
    """Every command of the app, groups' subcommands included, from the app itself (none can be forgotten); with
    `groups`, the command groups too (`meter`, `payouts`, ...)."""
    import typer

    from cli.app import app

    found: list[tuple[str, ...]] = []

    def walk(command: Any, path: tuple[str, ...]) -> None:
        if hasattr(command, "commands"):  # a group (Typer ships its own copy of Click's classes)
            if groups and path:
                found.append(path)
            for name, sub in sorted(command.commands.items()):
                walk(sub, (*path, name))
        else:
            found.append(path)

    walk(typer.main.get_command(app), ())
    return found


COMMANDS = every_command()
COMMANDS_AND_GROUPS = every_command(groups=True)


@pytest.mark.parametrize("command", COMMANDS_AND_GROUPS, ids=" ".join)
def test_every_command_and_group_has_help_with_an_example(cli, command: tuple[str, ...]) -> None:
    assert f"Example: platformctl {' '.join(command)}" in cli(*command, "--help").out


def test_the_command_list_is_the_whole_app() -> None:
    assert len(COMMANDS) >= 30 and ("plan",) in COMMANDS and ("payouts", "run") in COMMANDS
    groups = set(COMMANDS_AND_GROUPS) - set(COMMANDS)
    assert {("meter",), ("payouts",), ("integration",), ("certs",)} <= groups
    assert ("meter", "serve") in COMMANDS and ("meter", "serve") not in groups


def test_every_command_module_is_registered_one_way() -> None:
    """Each command module lists its commands and groups in `COMMANDS`, and `cli.app` registers every such module in
    its one loop: none is left out, and no module adds commands to the app itself."""
    from cli.app import COMMAND_MODULES
    from tests.conftest import ROOT

    sources = {path.stem: path.read_text() for path in (ROOT / "cli").glob("*.py")}
    with_commands = {name for name, text in sources.items() if "\nCOMMANDS: Commands = " in text}
    assert with_commands == {module.__name__.removeprefix("cli.") for module in COMMAND_MODULES}
    assert len(with_commands) >= 15
    for name, text in sources.items():
        if name != "app":
            assert "add_typer(" not in text and "def register(" not in text, name


def test_top_level_help(cli) -> None:
    assert "Example: platformctl plan --all" in cli("--help").out


def test_unknown_command_and_option_exit_2(cli) -> None:
    cli("frobnicate", code=2)
    cli("stacks", "--colour", code=2)


@pytest.mark.parametrize(
    ("command", "key", "value"),
    [
        ("partners", "id", "acme-voice"),
        ("regions", "code", "eu-central"),
        ("countries", "code", "DE"),
        ("stacks", "stack", "global"),
    ],
)
def test_listings_as_json(cli, repo_copy: Path, command: str, key: str, value: str) -> None:
    rows = json.loads(cli(command, "--json", root=repo_copy).out)
    assert value in [row[key] for row in rows]


def test_listings_as_tables(cli, repo_copy: Path) -> None:
    assert "eu-central-1" in cli("regions", root=repo_copy).out
    assert "Sakura Calls K.K." in cli("partners", root=repo_copy).out
    regions = {r["code"]: r for r in json.loads(cli("regions", "--json", root=repo_copy).out)}
    assert regions["eu-central"]["launched"] == ["DE", "AT"] and regions["eu-central"]["retention_days"] == 90
    assert len(json.loads(cli("stacks", "--json", root=repo_copy).out)) == 19


def test_validate_everything_and_single_files(cli, repo_copy: Path, tmp_path: Path) -> None:
    assert "valid" in cli("validate", root=repo_copy).out
    cli("validate", str(repo_copy / "partners" / "examples" / "pampas-voz.yaml"), root=repo_copy)
    bad = tmp_path / "bad.yaml"
    bad.write_text("id: Bad Id\n")
    run = cli("validate", str(bad), code=2, root=repo_copy)
    assert f"{bad}: id: String should match pattern" in run.err
    assert f"{bad}: tier: Field required" in run.err


def test_validate_catches_a_misnamed_spec_and_a_bad_stack_file(cli, repo_copy: Path) -> None:
    (repo_copy / "partners" / "acme-voice.yaml").rename(repo_copy / "partners" / "acme.yaml")
    stack = repo_copy / "stacks" / "Pulumi.region-eu-west.yaml"
    stack.write_text(stack.read_text() + "  platform:launchedCountrys: [IE]\n")
    run = cli("validate", code=2, root=repo_copy)
    assert "partners/acme.yaml: id: is 'acme-voice' but the file is named acme.yaml" in run.err
    assert "stacks/Pulumi.region-eu-west.yaml: config.platform:launchedCountrys: unknown config key" in run.err


def test_hostile_strings_are_printed_escaped(cli, repo_copy: Path, tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text('id: "\\e[31mred\\e[0m"\n')
    run = cli("validate", str(bad), code=2, root=repo_copy)
    assert "\x1b[31m" not in run.err
