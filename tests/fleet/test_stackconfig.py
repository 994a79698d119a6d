"""Stack config files and the Pulumi.yaml declarations."""

from __future__ import annotations

from pathlib import Path

import pytest

from fleet.stackconfig import declarations, load_stack_config
from foundation.errors import InputError
from foundation.stacks import parse_stack_name


def test_every_key_the_program_reads_is_declared_with_a_description() -> None:
    from tests.conftest import ROOT

    source = (ROOT / "__main__.py").read_text()
    declared = declarations(ROOT)
    for decl in declared.values():
        assert decl.key.startswith("platform:")
    for key in (
        "stackOrg",
        "namePrefix",
        "dnsZone",
        "kongAdminUrl",
        "kongAdminToken",
        "snowflakeOrganization",
        "kubernetesVersion",
        "launchedCountries",
        "purgeData",
        "offboardedOn",
        "kongClusterEndpoint",
        "kongTelemetryEndpoint",
        "snowflakeAdminEmail",
    ):
        assert f'"{key}"' in source
        assert f"platform:{key}" in declared
    text = (ROOT / "Pulumi.yaml").read_text()
    assert text.count("description:") == len(declared) + 1  # + the project's own


def test_defaults_overlaid_by_the_stack_file(repo_copy: Path) -> None:
    config = load_stack_config(repo_copy, parse_stack_name("region-eu-central"))
    assert config.values["platform:launchedCountries"] == ["DE", "AT"]
    assert config.values["platform:namePrefix"] == "voiceplat"
    assert config.values["aws:region"] == "eu-central-1"
    assert "platform:kongAdminToken" in config.secret_keys


@pytest.mark.parametrize(
    ("text", "field", "message"),
    [
        ("config:\n  platform:launchedCountries: DE\n", "config.platform:launchedCountries", "type array"),
        ("config:\n  platform:purgeData: 'yes'\n", "config.platform:purgeData", "type boolean"),
        ("config:\n  platform:unknownKey: 1\n", "config.platform:unknownKey", "unknown config key"),
        ("config:\n  noNamespace: 1\n", "config.noNamespace", "namespaced"),
        ("config: [1]\n", "config", "must be a mapping"),
        ("other: 1\n", "", "config"),
    ],
)
def test_bad_stack_files(repo_copy: Path, text: str, field: str, message: str) -> None:
    (repo_copy / "stacks" / "Pulumi.region-eu-west.yaml").write_text(text)
    with pytest.raises(InputError) as caught:
        load_stack_config(repo_copy, parse_stack_name("region-eu-west"))
    problem = caught.value.problems[0]
    assert problem.source == "stacks/Pulumi.region-eu-west.yaml"
    assert problem.field == field and message in problem.message


def test_encrypted_values_stay_secret(repo_copy: Path) -> None:
    (repo_copy / "stacks" / "Pulumi.global.yaml").write_text(
        "config:\n  platform:kongAdminToken:\n    secure: v1:abc\n"
    )
    config = load_stack_config(repo_copy, parse_stack_name("global"))
    assert config.values["platform:kongAdminToken"] == "[secret]"
    assert "platform:kongAdminToken" in config.secret_keys


@pytest.mark.parametrize(
    "name", ["", "partner-", "partner-UPPER", "region-../x", "partner-a/b", "staging", "partner-ab"]
)
def test_stack_names_refuse_anything_else(name: str) -> None:
    with pytest.raises(InputError, match="unknown stack name"):
        parse_stack_name(name)


@pytest.mark.parametrize("value", ["{secure: 5}", "{secure: ''}", "{secure: [a]}"])
def test_a_secure_value_is_a_ciphertext_string(repo_copy: Path, value: str) -> None:
    path = repo_copy / "stacks" / "Pulumi.global.yaml"
    path.write_text(f"config:\n  platform:kongAdminToken: {value}\n")
    with pytest.raises(InputError, match=r"config\.platform:kongAdminToken\.secure"):
        load_stack_config(repo_copy, parse_stack_name("global"))
