"""The real-engine path, tested at its seam: the Automation API calls made, with stack, work dir, env and options."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

import platformctl.engine as engine
from tests.conftest import ROOT, tree_snapshot


class FakeAutomation:
    """Stands in for `pulumi.automation`; records every call."""

    def __init__(self, fail: str | None = None) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.fail = fail

    def LocalWorkspaceOptions(self, **kwargs: Any) -> SimpleNamespace:  # noqa: N802 - mirrors the API
        return SimpleNamespace(**kwargs)

    def create_or_select_stack(self, **kwargs: Any) -> Any:
        self.calls.append(("select", kwargs))
        automation = self

        class Stack:
            def _op(self, name: str, kwargs: dict[str, Any]) -> Any:
                automation.calls.append((name, kwargs))
                if automation.fail == name:
                    raise RuntimeError("code: 255\nstderr: error: could not load plugin")
                return SimpleNamespace(
                    change_summary={"create": 2}, summary=SimpleNamespace(resource_changes={"create": 2})
                )

            def preview(self, **kw: Any) -> Any:
                return self._op("preview", kw)

            def up(self, **kw: Any) -> Any:
                return self._op("up", kw)

            def destroy(self, **kw: Any) -> Any:
                return self._op("destroy", kw)

            def refresh(self, **kw: Any) -> Any:
                return self._op("refresh", kw)

        return Stack()


@pytest.fixture
def automation(monkeypatch: pytest.MonkeyPatch) -> FakeAutomation:
    fake = FakeAutomation()
    monkeypatch.setattr(engine, "_automation", lambda: fake)
    monkeypatch.setattr(engine.shutil, "which", lambda name: "/opt/pulumi/bin/pulumi" if name == "pulumi" else None)
    monkeypatch.setenv("PULUMI_CONFIG_PASSPHRASE", "test-passphrase")
    monkeypatch.delenv("PULUMI_BACKEND_URL", raising=False)
    return fake


def test_preview_uses_a_local_workspace_over_the_repo_with_the_file_backend(cli, repo_copy: Path, automation) -> None:
    run = cli("preview", "partner-acme-voice", root=repo_copy)
    assert "preview partner-acme-voice: create 2" in run.out
    (select, options), (operation, kwargs) = automation.calls
    assert select == "select" and operation == "preview"
    assert options["stack_name"] == "partner-acme-voice"
    assert options["work_dir"] == str(repo_copy.resolve())
    opts = options["opts"]
    assert opts.env_vars == {"PULUMI_BACKEND_URL": (repo_copy.resolve() / ".platformctl" / "state").as_uri()}
    assert opts.secrets_provider == "passphrase"
    assert kwargs["diff"] is True and kwargs["policy_packs"] == []
    assert "test-passphrase" not in run.out + run.err


def test_backend_url_from_the_environment_overrides(cli, repo_copy: Path, automation, monkeypatch) -> None:
    monkeypatch.setenv("PULUMI_BACKEND_URL", "s3://platform-state?region=eu-central-1")
    monkeypatch.delenv("PULUMI_CONFIG_PASSPHRASE")
    cli("refresh", "global", root=repo_copy)
    opts = automation.calls[0][1]["opts"]
    assert opts.env_vars["PULUMI_BACKEND_URL"] == "s3://platform-state?region=eu-central-1"
    assert opts.secrets_provider is None
    assert automation.calls[1][0] == "refresh"


def test_the_local_backend_needs_a_passphrase(cli, repo_copy: Path, automation, monkeypatch) -> None:
    monkeypatch.delenv("PULUMI_CONFIG_PASSPHRASE")
    run = cli("preview", "global", code=1, root=repo_copy)
    assert "PULUMI_CONFIG_PASSPHRASE" in run.err
    assert automation.calls == []


def test_up_and_destroy_ask_unless_yes(cli, repo_copy: Path, automation) -> None:
    run = cli("up", "region-eu-central", code=2, root=repo_copy)  # no terminal under pytest
    assert "pass --yes" in run.err and automation.calls == []
    cli("up", "region-eu-central", "--yes", root=repo_copy)
    cli("destroy", "partner-acme-voice", "--yes", root=repo_copy)
    assert [name for name, _ in automation.calls] == ["select", "up", "select", "destroy"]


def test_engine_failures_exit_1_with_the_cli_message(cli, repo_copy: Path, automation) -> None:
    automation.fail = "up"
    run = cli("up", "global", "--yes", code=1, root=repo_copy)
    assert "pulumi up global failed" in run.err and "could not load plugin" in run.err


def test_no_pulumi_cli_says_how_to_install_and_points_to_plan(cli, repo_copy: Path, monkeypatch) -> None:
    monkeypatch.setattr(engine.shutil, "which", lambda name: None)
    run = cli("preview", "global", code=1, root=repo_copy)
    assert "install it" in run.err and "platformctl plan" in run.err


def test_unknown_stack_is_bad_input(cli, repo_copy: Path, automation) -> None:
    cli("preview", "partner-ghost", code=2, root=repo_copy)
    assert automation.calls == []


def test_onboarding_applies_through_preview_then_up(cli, repo_copy: Path, automation) -> None:
    example = ROOT / "partners" / "examples" / "pampas-voz.yaml"
    cli("onboard-partner", str(example), "--yes", root=repo_copy)
    ops = [(name, kw.get("stack_name")) for name, kw in automation.calls]
    assert ops == [("select", "partner-pampas-voz"), ("preview", None), ("select", "partner-pampas-voz"), ("up", None)]


def test_purge_applies_then_destroys_then_removes_the_files(cli, repo_copy: Path, automation) -> None:
    stack_file = repo_copy / "stacks" / "Pulumi.partner-sunrise-telecom.yaml"
    stack_file.write_text(stack_file.read_text() + "  platform:offboardedOn: '2020-01-01'\n")
    run = cli("offboard-partner", "sunrise-telecom", "--purge", "--yes", root=repo_copy)
    assert [name for name, _ in automation.calls if name != "select"] == ["preview", "up", "destroy"]
    assert "removed partners/sunrise-telecom.yaml" in run.out
    assert "partners/sunrise-telecom.yaml" not in tree_snapshot(repo_copy)
    assert not stack_file.exists()


def test_previews_and_updates_run_the_policy_pack(cli, repo_copy: Path, automation) -> None:
    import shutil

    shutil.copytree(
        ROOT / "policies", repo_copy / "policies", ignore=shutil.ignore_patterns("__pycache__"), dirs_exist_ok=True
    )
    cli("preview", "global", root=repo_copy)
    cli("up", "global", "--yes", root=repo_copy)
    packs = [kw["policy_packs"] for name, kw in automation.calls if name in ("preview", "up")]
    assert packs == [[str(repo_copy.resolve() / "policies")]] * 2
