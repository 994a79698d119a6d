"""Changes: stack files edited in place, validated bytes written, two files as one, offboarded partners, launches."""

from __future__ import annotations

import datetime
from pathlib import Path

import pytest
import yaml

from platformctl import changes, country_launches, partner_changes
from platformctl import journal as journals
from tests.conftest import ROOT, tree_snapshot

EXAMPLE = ROOT / "partners" / "examples" / "pampas-voz.yaml"
HAND_EDITED = """# Reviewed by the platform team. Do not remove the encryption settings.
secretsprovider: awskms://alias/platform-stacks?region=eu-central-1
encryptedkey: AQICAHhQ0lKc2VjcmV0==
encryptionsalt: v1:c2FsdA==:v1:AAAA
config:
  aws:region: eu-central-1  # pinned by ops
  platform:kongAdminToken:
    secure: v1:Zm9vYmFy
  platform:kongAdminUrl: https://kong-admin.internal.example
"""
KEPT = (
    "# Reviewed by the platform team",
    "secretsprovider: awskms://alias/platform-stacks?region=eu-central-1",
    "encryptedkey: AQICAHhQ0lKc2VjcmV0==",
    "encryptionsalt: v1:c2FsdA==:v1:AAAA",
    "# pinned by ops",
    "secure: v1:Zm9vYmFy",
    "platform:kongAdminUrl: https://kong-admin.internal.example",
)


def stack_text(root: Path, stack: str) -> str:
    return (root / "stacks" / f"Pulumi.{stack}.yaml").read_text()


def test_offboarding_edits_the_stack_file_in_place(cli, repo_copy: Path) -> None:
    (repo_copy / "stacks" / "Pulumi.partner-acme-voice.yaml").write_text(HAND_EDITED)
    cli("offboard-partner", "acme-voice", "--no-apply", root=repo_copy)
    text = stack_text(repo_copy, "partner-acme-voice")
    for kept in KEPT:
        assert kept in text, kept
    assert yaml.safe_load(text)["config"]["platform:offboardedOn"] == datetime.date.today().isoformat()


def test_onboarding_update_keeps_what_it_does_not_own(cli, repo_copy: Path) -> None:
    (repo_copy / "stacks" / "Pulumi.partner-acme-voice.yaml").write_text(HAND_EDITED)
    cli("onboard-partner", str(repo_copy / "partners" / "acme-voice.yaml"), "--update", "--no-apply", root=repo_copy)
    text = stack_text(repo_copy, "partner-acme-voice")
    for kept in KEPT:
        assert kept in text, kept


def test_launch_edits_the_region_file_in_place(cli, repo_copy: Path) -> None:
    path = repo_copy / "stacks" / "Pulumi.region-eu-central.yaml"
    path.write_text("# eu-central, owned by team-eu\n" + path.read_text() + "  platform:namePrefix: euplat  # legacy\n")
    cli("launch-country", "CH", "--region", "eu-central", "--no-apply", root=repo_copy)
    text = path.read_text()
    assert "# eu-central, owned by team-eu" in text and "platform:namePrefix: euplat  # legacy" in text
    assert yaml.safe_load(text)["config"]["platform:launchedCountries"] == ["DE", "AT", "CH"]


def test_the_validated_bytes_are_the_bytes_written(cli, repo_copy: Path, tmp_path: Path) -> None:
    spec = tmp_path / "pampas.yaml"
    raw = b"# Pampas Voz, signed off 2026-11-01\n" + EXAMPLE.read_bytes().replace(b"\n", b"   \n", 1)
    spec.write_bytes(raw)
    cli("onboard-partner", str(spec), "--no-apply", root=repo_copy)
    assert (repo_copy / "partners" / "pampas-voz.yaml").read_bytes() == raw


def test_update_refuses_an_offboarded_partner_unless_reactivated(cli, repo_copy: Path) -> None:
    cli("offboard-partner", "acme-voice", "--no-apply", root=repo_copy)
    spec = str(repo_copy / "partners" / "acme-voice.yaml")
    run = cli("onboard-partner", spec, "--update", "--no-apply", code=2, root=repo_copy)
    assert "was offboarded on" in run.err and "--reactivate" in run.err
    cli("onboard-partner", spec, "--update", "--reactivate", "--no-apply", root=repo_copy)
    config = yaml.safe_load(stack_text(repo_copy, "partner-acme-voice"))["config"]
    assert "platform:offboardedOn" not in config


def test_an_offboarding_after_a_reactivation_keeps_the_numbers_unless_asked(cli, repo_copy: Path) -> None:
    spec = str(repo_copy / "partners" / "acme-voice.yaml")
    cli("offboard-partner", "acme-voice", "--release-numbers", "--no-apply", root=repo_copy)
    cli("onboard-partner", spec, "--update", "--reactivate", "--no-apply", root=repo_copy)
    assert "platform:releaseNumbers" not in yaml.safe_load(stack_text(repo_copy, "partner-acme-voice"))["config"]
    path = repo_copy / "stacks" / "Pulumi.partner-acme-voice.yaml"
    path.write_text(path.read_text() + "  platform:releaseNumbers: true\n  platform:purgeData: true\n")
    cli("offboard-partner", "acme-voice", "--no-apply", root=repo_copy)
    config = yaml.safe_load(stack_text(repo_copy, "partner-acme-voice"))["config"]
    assert "platform:releaseNumbers" not in config and "platform:purgeData" not in config


def test_a_region_move_says_so_and_shows_deletes_and_creates(cli, repo_copy: Path, tmp_path: Path) -> None:
    doc = yaml.safe_load((repo_copy / "partners" / "sunrise-telecom.yaml").read_text())
    assert doc["home_region"] == "us-east"
    doc["home_region"] = "us-west"
    moved = tmp_path / "moved.yaml"
    moved.write_text(yaml.safe_dump(doc))
    run = cli("onboard-partner", str(moved), "--update", "--dry-run", root=repo_copy)
    assert "moves from us-east to us-west" in run.err
    assert "to replace (delete, then create)" in run.out
    # The tenant's Kubernetes objects move cluster too: they are replaced, not shown as unchanged.
    from fleet.repo import Repo
    from platformctl.dry_run import dry_run_plan
    from platformctl.partner_changes import onboarding_change, read_spec_inputs

    repo = Repo(repo_copy)
    result = dry_run_plan(repo, onboarding_change(repo, read_spec_inputs([moved]), update=True))
    ops = {s["urn"].rsplit("::", 1)[1]: s["op"] for s in result.document["stacks"]["partner-sunrise-telecom"]["steps"]}
    assert ops["tenant-namespace"] == "replace" and ops["tenant-default-deny"] == "replace"


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


def test_a_crash_between_the_two_files_is_rolled_back_by_the_next_run(
    cli, repo_copy: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = tree_snapshot(repo_copy)
    real_write = changes.write_atomic
    written: list[Path] = []

    def crash_on_second(path, content):
        if written:
            raise KeyboardInterrupt  # the process dies between the two renames
        written.append(path)
        real_write(path, content)

    monkeypatch.setattr(changes, "write_atomic", crash_on_second)
    hooks = changes.Hooks(say=lambda _: None, warn=lambda _: None, confirm=lambda _: True)
    inputs = partner_changes.read_spec_inputs([EXAMPLE])
    with pytest.raises(KeyboardInterrupt):
        changes.carry_out(
            repo_copy,
            partner_changes.onboarding_locks(inputs),
            lambda repo: partner_changes.onboarding_change(repo, inputs, update=False),
            changes.Mode.NO_APPLY,
            hooks,
        )
    monkeypatch.setattr(changes, "write_atomic", real_write)
    assert tree_snapshot(repo_copy) != before  # half written: one file of two
    assert len(journals.pending(repo_copy, repo_copy / ".platformctl")) == 1
    run = cli("validate", code=2, root=repo_copy)
    assert "interrupted change" in run.err
    run = cli("onboard-partner", str(EXAMPLE), "--no-apply", root=repo_copy)
    assert "rolled back" in run.err
    assert (repo_copy / "partners" / "pampas-voz.yaml").read_bytes() == EXAMPLE.read_bytes()
    assert (repo_copy / "stacks" / "Pulumi.partner-pampas-voz.yaml").is_file()
    assert journals.pending(repo_copy, repo_copy / ".platformctl") == []


def test_declining_the_apply_restores_the_files(repo_copy: Path) -> None:
    before = tree_snapshot(repo_copy)
    calls = []

    class Engine:
        @staticmethod
        def run(repo, stack, operation, on_output=None):
            calls.append(operation)
            return {}

    hooks = changes.Hooks(say=lambda _: None, warn=lambda _: None, confirm=lambda _: False)
    with pytest.raises(changes.AbortedError, match="files were restored"):
        changes.carry_out(
            repo_copy,
            ["region-eu-central"],
            lambda repo: country_launches.country_launch_change(repo, "CH", "eu-central"),
            changes.Mode.APPLY,
            hooks,
            engine=Engine,
        )
    assert calls == ["preview"]
    assert tree_snapshot(repo_copy) == before


def test_a_failed_update_keeps_the_files_and_says_how_to_finish(repo_copy: Path) -> None:
    from foundation.errors import EngineError

    class Engine:
        @staticmethod
        def run(repo, stack, operation, on_output=None):
            if operation == "up":
                raise EngineError("pulumi up region-eu-central failed: quota")
            return {}

    hooks = changes.Hooks(say=lambda _: None, warn=lambda _: None, confirm=lambda _: True)
    with pytest.raises(EngineError, match="platformctl up region-eu-central"):
        changes.carry_out(
            repo_copy,
            ["region-eu-central"],
            lambda repo: country_launches.country_launch_change(repo, "CH", "eu-central"),
            changes.Mode.APPLY,
            hooks,
            engine=Engine,
        )
    assert "CH" in stack_text(repo_copy, "region-eu-central")
    assert journals.pending(repo_copy, repo_copy / ".platformctl") == []


def test_a_comment_under_a_removed_key_stays(cli, repo_copy: Path) -> None:
    path = repo_copy / "stacks" / "Pulumi.partner-acme-voice.yaml"
    path.write_text(
        "config:\n"
        "  aws:region: eu-central-1\n"
        "  platform:offboardedOn: '2026-01-10'\n"
        "  # Staging control plane for this tenant: do not remove\n"
        "  platform:kongAdminUrl: https://kong-admin.staging.example\n"
    )
    spec = str(repo_copy / "partners" / "acme-voice.yaml")
    cli("onboard-partner", spec, "--update", "--reactivate", "--no-apply", root=repo_copy)
    text = path.read_text()
    assert "# Staging control plane for this tenant: do not remove" in text
    assert "platform:offboardedOn" not in text and "kong-admin.staging.example" in text


def test_windows_line_endings_are_kept(cli, repo_copy: Path) -> None:
    path = repo_copy / "stacks" / "Pulumi.region-eu-central.yaml"
    path.write_bytes(path.read_bytes().replace(b"\n", b"\r\n"))
    cli("launch-country", "CH", "--region", "eu-central", "--no-apply", root=repo_copy)
    raw = path.read_bytes()
    assert b"CH" in raw and raw.count(b"\r\n") == raw.count(b"\n")


@pytest.mark.parametrize("country", ["\u0131e", "\uff29\uff25", "I E", "IRL"])
def test_country_codes_are_two_ascii_letters(cli, repo_copy: Path, country: str) -> None:
    run = cli("launch-country", country, "--region", "eu-west", "--no-apply", code=2, root=repo_copy)
    assert "CC" in run.err


def test_reserved_ids_are_no_partner(cli, repo_copy: Path) -> None:
    run = cli("offboard-partner", "tiers", "--no-apply", code=2, root=repo_copy)
    assert "ID" in run.err


def test_a_dry_run_reads_the_plan_cache_and_adds_nothing_to_it(repo_copy: Path, monkeypatch) -> None:
    """Onboarding's dry run plans only the new partner when global and its region are cached, and leaves the cache
    as it was (the scratch view's results are not the repository's)."""
    from fleet.repo import Repo
    from foundation.stacks import parse_stack_name
    from platformctl.dry_run import dry_run_plan
    from platformctl.offline import results
    from platformctl.partner_changes import onboarding_change, read_spec_inputs
    from platformctl.planning import run_plan

    run_plan(Repo(repo_copy), [parse_stack_name("global"), parse_stack_name("region-sa-east")], workers=1)
    cache = repo_copy / ".platformctl" / "cache"
    before = {p.name: p.read_bytes() for p in cache.iterdir()}
    planned: list[str] = []
    real = results.plan_and_finish

    def spy(repo, stacks, *args, **kwargs):
        planned.extend(str(s) for s in stacks)
        return real(repo, stacks, *args, **kwargs)

    monkeypatch.setattr(results, "plan_and_finish", spy)
    repo = Repo(repo_copy)
    spec = repo_copy / "partners" / "examples" / "pampas-voz.yaml"
    result = dry_run_plan(repo, onboarding_change(repo, read_spec_inputs([spec]), update=False))
    assert planned == ["partner-pampas-voz"]
    assert result.summaries()["partner-pampas-voz"]["create"] > 20
    assert {p.name: p.read_bytes() for p in cache.iterdir()} == before


def test_a_config_change_is_written_under_the_journal_and_only_when_it_changes_something(repo_copy: Path) -> None:
    from foundation.stacks import partner_stack

    stack = partner_stack("acme-voice")
    path = repo_copy / "stacks" / "Pulumi.partner-acme-voice.yaml"
    path.write_text("# owned by team-eu\n" + path.read_text())
    warnings: list[str] = []
    decide = lambda repo: changes.config_change(repo, stack, {"platform:domainVerified": "voice.acme.example"})  # noqa: E731
    result = changes.write_change(repo_copy, [str(stack)], decide, warnings.append)
    assert list(result.change.files) == [path] and result.change.stacks == [stack]
    assert path.read_text().startswith("# owned by team-eu\n")
    assert yaml.safe_load(path.read_text())["config"]["platform:domainVerified"] == "voice.acme.example"
    assert journals.pending(repo_copy, repo_copy / ".platformctl") == []
    before = path.read_bytes()
    again = changes.write_change(repo_copy, [str(stack)], decide, warnings.append)
    assert again.change.files == {} and path.read_bytes() == before
    removed = changes.write_change(
        repo_copy,
        [str(stack)],
        lambda repo: changes.config_change(repo, stack, {}, delete=["platform:domainVerified"]),
        warnings.append,
    )
    assert removed.change.files and "platform:domainVerified" not in yaml.safe_load(path.read_text())["config"]


def test_a_config_change_needs_the_stack_file(repo_copy: Path) -> None:
    from foundation.errors import InputError
    from foundation.stacks import partner_stack

    stack = partner_stack("nobody-here")
    before = tree_snapshot(repo_copy)
    with pytest.raises(InputError, match="partner-nobody-here has no stack file"):
        changes.write_change(
            repo_copy, [str(stack)], lambda repo: changes.config_change(repo, stack, {"k:v": 1}), print
        )
    assert tree_snapshot(repo_copy) == before
