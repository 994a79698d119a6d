"""Changes: stack files edited in place, two files as one (journal, recovery), failed applies, config edits."""

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
