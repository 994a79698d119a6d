"""Text from specs, catalogs and the engine is shown as written, never read as rich markup (issue 18, item 15):
`Bracket [red]Labs[/red] [/x]` used to pass validation and then kill `platformctl partners` with a MarkupError,
and `numbers` showed `[unknown] until applied` as ` until applied`."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml

from tests.conftest import ROOT

COMPANY = "Bracket [red]Labs[/red] [/x]"
"""Valid as a company name (plain text, no control characters); closes a tag it never opened."""
COUNTRY = "Germany [bold]Federal[/bold] [link=https://evil.example]Republic[/link] [/]"
PAMPAS = ROOT / "partners" / "examples" / "pampas-voz.yaml"


def hostile_repo(root: Path) -> Path:
    """acme-voice's company name and Germany's catalog name carry markup."""
    spec = root / "partners" / "acme-voice.yaml"
    spec.write_text(spec.read_text().replace("company_name: Acme Voice GmbH", f'company_name: "{COMPANY}"'))
    countries = root / "regions" / "countries.yaml"
    countries.write_text(countries.read_text().replace("name: Germany\n", f'name: "{COUNTRY}"\n', 1))
    return root


def shown(text: str) -> str:
    """The output with table borders and padding collapsed, so a value reads as one string whatever the width."""
    return re.sub(r"\s+", " ", re.sub(r"[│┃║|]", " ", text))


def test_partners_shows_a_company_name_with_markup_as_written(cli, repo_copy: Path) -> None:
    root = hostile_repo(repo_copy)
    cli("validate", root=root)
    assert COMPANY in shown(cli("partners", root=root).out)
    assert {row["company_name"] for row in json.loads(cli("partners", "--json", root=root).out)} >= {COMPANY}


def test_countries_and_regions_show_catalog_text_as_written(cli, repo_copy: Path) -> None:
    root = hostile_repo(repo_copy)
    assert COUNTRY in shown(cli("countries", root=root).out)
    regions = cli("regions", root=root).out
    assert "eu-central" in regions and "DE" in regions
    assert "stacks/Pulumi.partner-acme-voice.yaml" in shown(cli("stacks", root=root).out)


def test_numbers_shows_unknown_until_applied(cli, repo_copy: Path, tmp_path: Path) -> None:
    doc = yaml.safe_load(PAMPAS.read_text())
    doc["company_name"] = COMPANY
    spec = tmp_path / "pampas-voz.yaml"
    spec.write_text(yaml.safe_dump(doc))
    dry = cli("onboard-partner", str(spec), "--dry-run", root=repo_copy)
    assert "tenant-telephony-number-br-toll-free-0" in dry.out
    cli("onboard-partner", str(spec), "--no-apply", root=repo_copy)
    assert "[unknown] until applied" in shown(cli("numbers", root=repo_copy).out)
    assert COMPANY in shown(cli("partners", root=repo_copy).out)


def test_the_plan_tree_and_its_diffs_show_text_as_written(cli, repo_copy: Path, tmp_path: Path) -> None:
    root = hostile_repo(repo_copy)
    before = tmp_path / "before.json"
    cli("plan", "partner-acme-voice", "--json", str(before), root=root)
    spec = root / "partners" / "acme-voice.yaml"
    spec.write_text(spec.read_text().replace(f'company_name: "{COMPANY}"', 'company_name: "[/] [b]New[/b]"'))
    run = cli("plan", "partner-acme-voice", "--against", str(before), root=root)
    assert "partner-acme-voice" in run.out and "to update" in run.out


@pytest.mark.parametrize(
    ("key", "where"),
    [("[/x]", "[/x]: unknown field"), ("[red]tier[/red]", "[red]tier[/red]: unknown field")],
)
def test_validate_messages_show_field_names_as_written(cli, repo_copy: Path, tmp_path: Path, key: str, where: str):
    doc = yaml.safe_load(PAMPAS.read_text())
    doc[key] = 1
    spec = tmp_path / "bad [b] spec.yaml"
    spec.write_text(yaml.safe_dump(doc))
    run = cli("validate", str(spec), code=2, root=repo_copy)
    assert f"bad [b] spec.yaml: {where}" in run.err


def test_a_stack_file_with_markup_in_its_name_is_named_as_written(cli, repo_copy: Path) -> None:
    (repo_copy / "stacks" / "Pulumi.partner-[red]x[bold].yaml").write_text("config: {}\n")
    run = cli("stacks", code=2, root=repo_copy)
    assert "[red]x[bold]" in run.err
