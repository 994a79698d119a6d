"""`platformctl validate --for-deploy STACK`: placeholders a real deploy would use, exit 1; ready stacks exit 0."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path

import pytest

from foundation.yamlio import dump_yaml
from tests.conftest import Run, tree_snapshot

SNOWFLAKE_ENV = ("SNOWFLAKE_ORGANIZATION_NAME", "SNOWFLAKE_ACCOUNT_NAME", "SNOWFLAKE_USER", "SNOWFLAKE_PRIVATE_KEY",
                 "SNOWFLAKE_PASSWORD", "SNOWFLAKE_TOKEN", "SNOWFLAKE_PROFILE", "PULUMI_BACKEND_URL")  # fmt: skip
SECURE = {"secure": "v1:AAAAAAAAAAAAAAAA:BBBBBBBBBBBBBBBBBBBBBBBB"}


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in SNOWFLAKE_ENV:
        monkeypatch.delenv(name, raising=False)


def write_stack(root: Path, stack: str, config: Mapping[str, object]) -> None:
    (root / "stacks" / f"Pulumi.{stack}.yaml").write_text(dump_yaml({"config": config}))


READY_GLOBAL: dict[str, object] = {
    "platform:dnsZone": "voice.corp-platform.io",
    "platform:kongAdminUrl": "https://kong-admin.voice.corp-platform.io",
    "platform:kongAdminToken": SECURE,
    "platform:kongClusterEndpoint": "kong-cp.voice.corp-platform.io:8005",
    "platform:kongTelemetryEndpoint": "kong-cp.voice.corp-platform.io:8006",
    "platform:snowflakeAdminEmail": "data@corp-platform.io",
    "snowflake:organizationName": "CORPORG",
    "snowflake:accountName": "ADMIN",
    "snowflake:user": "PLATFORMCTL",
    "snowflake:privateKey": SECURE,
}


def lines(result: Run) -> list[str]:
    return [line for line in result.out.splitlines() if line.strip()]


def test_example_global_lists_every_placeholder(cli: Callable[..., Run]) -> None:
    result = cli("validate", "--for-deploy", "global", code=1)
    found = lines(result)
    for key in ("platform:dnsZone", "platform:kongAdminUrl", "platform:kongClusterEndpoint",
                "platform:kongTelemetryEndpoint", "platform:snowflakeAdminEmail"):  # fmt: skip
        assert any(line.startswith(f"stacks/Pulumi.global.yaml: {key}: ") and ".example" in line for line in found), key
    assert "stacks/Pulumi.global.yaml: platform:kongAdminToken: is empty" in result.out
    for key in ("snowflake:organizationName", "snowflake:accountName", "snowflake:user", "snowflake:privateKey"):
        assert f"stacks/Pulumi.global.yaml: {key}: is missing" in result.out
    assert "not ready for a real deploy" in result.err
    # A region's config is none of the global stack's business.
    assert "snowflakeOrganization" not in result.out


def test_region_stack_reports_what_it_reads_from_global(cli: Callable[..., Run]) -> None:
    result = cli("validate", "--for-deploy", "region-eu-central", code=1)
    assert "stacks/Pulumi.region-eu-central.yaml: platform:snowflakeOrganization: is Pulumi.yaml's stand-in" in (
        result.out
    )
    endpoint = next(line for line in lines(result) if "platform:kongClusterEndpoint" in line)
    assert endpoint.startswith("stacks/Pulumi.global.yaml: ")
    assert "region-eu-central reads it as global's output 'kong_cluster_endpoint'" in endpoint
    # The region routes its meter through the control plane: its own admin URL and token are listed; global config
    # it does not read (the Snowflake admin email, the global stack's own admin token) is not.
    assert "stacks/Pulumi.region-eu-central.yaml: platform:kongAdminToken: is empty" in result.out
    # The voice host's upstream is Pulumi.yaml's placeholder until the region names its voice service.
    assert (
        "stacks/Pulumi.region-eu-central.yaml: platform:voiceUpstream: 'voice-service.invalid:8080' names "
        "voice-service.invalid, a reserved example domain that cannot be deployed (the declared default in "
        "Pulumi.yaml, not set in this file)"
    ) in result.out
    assert (
        "snowflakeAdminEmail" not in result.out
        and "stacks/Pulumi.global.yaml: platform:kongAdminToken" not in result.out
    )


def test_partner_stack_reports_its_spec_and_kong_settings(cli: Callable[..., Run]) -> None:
    result = cli("validate", "--for-deploy", "partner-acme-voice", code=1)
    out = result.out
    assert "stacks/Pulumi.partner-acme-voice.yaml: platform:kongAdminToken: is empty" in out
    assert "stacks/Pulumi.partner-acme-voice.yaml: platform:kongAdminUrl: " in out
    assert "partners/acme-voice.yaml: domain: 'voice.acme.example'" in out
    assert "partners/acme-voice.yaml: contact.email: 'ops@acme.example'" in out
    assert "partners/acme-voice.yaml: branding.logo_url: " in out


def test_ready_stacks_pass(cli: Callable[..., Run], repo_copy: Path) -> None:
    write_stack(repo_copy, "global", READY_GLOBAL)
    apis = repo_copy / "gateway" / "apis.yaml"
    apis.write_text(apis.read_text().replace("voice-platform.example", "voice.corp-platform.io"))
    result = cli("validate", "--for-deploy", "global", root=repo_copy)
    assert "global: ready for a real deploy" in result.out
    write_stack(
        repo_copy,
        "region-eu-central",
        {
            "aws:region": "eu-central-1",
            "platform:snowflakeOrganization": "CORPORG",
            "platform:acmeEmail": "tls@corp-platform.io",
            "platform:kongAdminUrl": "https://kong-admin.voice.corp-platform.io",
            "platform:kongAdminToken": SECURE,
            "platform:twilioAccountSid": SECURE,
            "platform:twilioAuthToken": SECURE,
            "platform:stripeApiKey": SECURE,
            "platform:voiceUpstream": "voice.platform.svc.cluster.local:8080",
            "platform:launchedCountries": ["DE"],
        },
    )
    cli("validate", "--for-deploy", "region-eu-central", root=repo_copy)


def test_snowflake_login_from_the_environment_counts(
    cli: Callable[..., Run], repo_copy: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = {k: v for k, v in READY_GLOBAL.items() if not k.startswith("snowflake:")}
    write_stack(repo_copy, "global", config)
    apis = repo_copy / "gateway" / "apis.yaml"
    apis.write_text(apis.read_text().replace("voice-platform.example", "voice.corp-platform.io"))
    result = cli("validate", "--for-deploy", "global", root=repo_copy, code=1)
    assert len(lines(result)) == 4  # organization, account, user, credential
    for name, value in (("SNOWFLAKE_ORGANIZATION_NAME", "O"), ("SNOWFLAKE_ACCOUNT_NAME", "A"),
                        ("SNOWFLAKE_USER", "U"), ("SNOWFLAKE_PRIVATE_KEY", "K")):  # fmt: skip
        monkeypatch.setenv(name, value)
    cli("validate", "--for-deploy", "global", root=repo_copy)


def test_secret_in_clear_is_reported_without_its_value(cli: Callable[..., Run], repo_copy: Path) -> None:
    write_stack(repo_copy, "global", {**READY_GLOBAL, "platform:kongAdminToken": "hunter2-admin-token"})
    # validate's own check comes first: a secret in clear is a bad stack file (exit 2), named, its value not shown.
    result = cli("validate", "--for-deploy", "global", root=repo_copy, code=2)
    assert "config.platform:kongAdminToken: is a secret and must be stored encrypted" in result.err
    assert "hunter2" not in result.out + result.err


def test_stack_org_default_only_matters_on_pulumi_cloud(
    cli: Callable[..., Run], repo_copy: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_stack(
        repo_copy,
        "region-eu-central",
        {
            "platform:snowflakeOrganization": "CORPORG",
            "platform:acmeEmail": "tls@corp-platform.io",
            "platform:kongAdminUrl": "https://kong-admin.voice.corp-platform.io",
            "platform:kongAdminToken": SECURE,
            "platform:twilioAccountSid": SECURE,
            "platform:twilioAuthToken": SECURE,
            "platform:stripeApiKey": SECURE,
            "platform:voiceUpstream": "voice.platform.svc.cluster.local:8080",
        },
    )
    write_stack(repo_copy, "global", READY_GLOBAL)
    cli("validate", "--for-deploy", "region-eu-central", root=repo_copy)
    monkeypatch.setenv("PULUMI_BACKEND_URL", "https://api.pulumi.com")
    result = cli("validate", "--for-deploy", "region-eu-central", root=repo_copy, code=1)
    assert "stacks/Pulumi.region-eu-central.yaml: platform:stackOrg: is Pulumi.yaml's default 'organization'" in (
        result.out
    )
    monkeypatch.setenv("PULUMI_BACKEND_URL", "s3://state-bucket")
    cli("validate", "--for-deploy", "region-eu-central", root=repo_copy)


def test_value_set_in_the_file_is_named_as_such(cli: Callable[..., Run], repo_copy: Path) -> None:
    write_stack(repo_copy, "global", {**READY_GLOBAL, "platform:dnsZone": "voice.platform.test"})
    result = cli("validate", "--for-deploy", "global", root=repo_copy, code=1)
    assert "stacks/Pulumi.global.yaml: platform:dnsZone: 'voice.platform.test' names voice.platform.test" in result.out
    assert "set in this file" in result.out


@pytest.mark.parametrize(
    "name", ["nowhere", "region-../../etc", "partner-no-such-partner", "region-xx-nowhere", "global/../x", "a" * 5000]
)
def test_bad_or_unknown_stack_exits_2(cli: Callable[..., Run], repo_copy: Path, name: str) -> None:
    before = tree_snapshot(repo_copy)
    result = cli("validate", "--for-deploy", name, root=repo_copy, code=2)
    assert "stack" in result.err
    assert tree_snapshot(repo_copy) == before


def test_malformed_stack_file_exits_2(cli: Callable[..., Run], repo_copy: Path) -> None:
    (repo_copy / "stacks" / "Pulumi.global.yaml").write_text("config:\n  platform:dnsZone: [unclosed\n")
    result = cli("validate", "--for-deploy", "global", root=repo_copy, code=2)
    assert "Pulumi.global.yaml" in result.err


def test_a_regions_voice_upstream_placeholder_is_the_only_thing_left(cli: Callable[..., Run], repo_copy: Path) -> None:
    write_stack(repo_copy, "global", READY_GLOBAL)
    ready = {
        "platform:snowflakeOrganization": "CORPORG",
        "platform:acmeEmail": "tls@corp-platform.io",
        "platform:kongAdminUrl": "https://kong-admin.voice.corp-platform.io",
        "platform:kongAdminToken": SECURE,
        "platform:twilioAccountSid": SECURE,
        "platform:twilioAuthToken": SECURE,
        "platform:stripeApiKey": SECURE,
    }
    write_stack(repo_copy, "region-sa-east", ready)
    result = cli("validate", "--for-deploy", "region-sa-east", root=repo_copy, code=1)
    assert lines(result) == [
        "stacks/Pulumi.region-sa-east.yaml: platform:voiceUpstream: 'voice-service.invalid:8080' names "
        "voice-service.invalid, a reserved example domain that cannot be deployed (the declared default in "
        "Pulumi.yaml, not set in this file)"
    ]
    write_stack(repo_copy, "region-sa-east", {**ready, "platform:voiceUpstream": "voice.test:8080"})
    result = cli("validate", "--for-deploy", "region-sa-east", root=repo_copy, code=1)
    assert "platform:voiceUpstream: 'voice.test:8080' names voice.test" in result.out and "set in this file" in (
        result.out
    )
    write_stack(
        repo_copy, "region-sa-east", {**ready, "platform:voiceUpstream": "voice.platform.svc.cluster.local:8080"}
    )
    cli("validate", "--for-deploy", "region-sa-east", root=repo_copy)
