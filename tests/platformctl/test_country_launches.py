"""Country launches: a malformed region file is named, never added to; a country is launched once; codes are two
ASCII letters."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.mark.parametrize(
    ("config", "field", "message"),
    [
        ("config: [1, 2]\n", "config", "must be a mapping"),
        ("config:\n  platform:launchedCountries: BR\n", "config.platform:launchedCountries", "type array"),
        ("config:\n  platform:launchedCountries: [BR, ZZ]\n", "config.platform:launchedCountries.1", "unknown country"),
        ("config:\n  platform:launchedCountries: [BR, BR]\n", "config.platform:launchedCountries.1", "more than once"),
        ("config:\n  platform:launchedCountries: [BR, DE]\n", "config.platform:launchedCountries.1", "residency"),
        ("config:\n  platform:launchedCountries: [BR, [AR]]\n", "config.platform:launchedCountries.1", "unknown"),
        ("config:\n  platform:launchedCountries: [BR, NO]\n", "config.platform:launchedCountries.1", "boolean"),
        ("- just a list\n", "", "config"),
    ],
)
def test_launch_on_a_malformed_region_file_names_the_field(
    cli, repo_copy: Path, config: str, field: str, message: str
) -> None:
    path = repo_copy / "stacks" / "Pulumi.region-sa-east.yaml"
    path.write_text(config)
    run = cli("launch-country", "CO", "--region", "sa-east", "--no-apply", code=2, root=repo_copy)
    assert f"stacks/Pulumi.region-sa-east.yaml: {field}".rstrip(": ") in run.err and message in run.err
    assert path.read_text() == config


def test_launching_twice_never_repeats_a_country(cli, repo_copy: Path) -> None:
    path = repo_copy / "stacks" / "Pulumi.region-eu-central.yaml"
    before = path.read_bytes()
    run = cli("launch-country", "DE", "--region", "eu-central", "--no-apply", root=repo_copy)
    assert "already launched" in run.out and path.read_bytes() == before


@pytest.mark.parametrize("country", ["\u0131e", "\uff29\uff25", "I E", "IRL"])
def test_country_codes_are_two_ascii_letters(cli, repo_copy: Path, country: str) -> None:
    run = cli("launch-country", country, "--region", "eu-west", "--no-apply", code=2, root=repo_copy)
    assert "CC" in run.err
