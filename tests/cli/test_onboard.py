"""`platformctl onboard-partner`: validation, writes, modes, hostile specs, concurrency."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.conftest import ROOT, tree_snapshot

EXAMPLE = ROOT / "partners" / "examples" / "pampas-voz.yaml"


def spec_file(tmp_path: Path, name: str = "new.yaml", **changes) -> Path:
    doc = yaml.safe_load(EXAMPLE.read_text())
    doc.pop("telephony")  # these specs change countries and regions; tests/cli/test_telephony.py covers numbers
    doc.update(changes)
    path = tmp_path / name
    path.write_text(yaml.safe_dump(doc))
    return path


def test_dry_run_prints_the_plan_and_writes_nothing(cli, repo_copy: Path) -> None:
    before = tree_snapshot(repo_copy)
    run = cli("onboard-partner", str(EXAMPLE), "--dry-run", root=repo_copy)
    assert "partner-pampas-voz" in run.out and "tenant-namespace" in run.out
    assert "dry run: nothing written" in run.out
    assert tree_snapshot(repo_copy) == before
    assert not list((repo_copy / ".platformctl").glob("*.lock"))


def test_no_apply_writes_spec_and_stack_then_refuses_a_second_time(cli, repo_copy: Path) -> None:
    run = cli("onboard-partner", str(EXAMPLE), "--no-apply", root=repo_copy)
    assert "wrote partners/pampas-voz.yaml" in run.out
    assert (repo_copy / "partners" / "pampas-voz.yaml").read_text() == EXAMPLE.read_text()
    stack = yaml.safe_load((repo_copy / "stacks" / "Pulumi.partner-pampas-voz.yaml").read_text())
    assert stack == {"config": {"aws:region": "sa-east-1"}}
    again = cli("onboard-partner", str(EXAMPLE), "--no-apply", code=2, root=repo_copy)
    assert "already exists" in again.err and "--update" in again.err
    cli("onboard-partner", str(EXAMPLE), "--no-apply", "--update", root=repo_copy)
    assert "partner-pampas-voz" in cli("plan", "partner-pampas-voz", root=repo_copy).out
    assert not list((repo_copy / ".platformctl").glob("*.lock"))


def test_many_specs_one_bad_nothing_written(cli, repo_copy: Path, tmp_path: Path) -> None:
    good = spec_file(tmp_path, "good.yaml", id="good-one")
    bad = spec_file(tmp_path, "bad.yaml", id="bad-one", tier="gold")
    before = tree_snapshot(repo_copy)
    run = cli("onboard-partner", str(good), str(bad), "--no-apply", code=2, root=repo_copy)
    assert f"{bad}: tier:" in run.err
    assert tree_snapshot(repo_copy) == before


def test_two_specs_with_one_id_are_refused(cli, repo_copy: Path, tmp_path: Path) -> None:
    first, second = spec_file(tmp_path, "a.yaml"), spec_file(tmp_path, "b.yaml")
    run = cli("onboard-partner", str(first), str(second), "--no-apply", code=2, root=repo_copy)
    assert "is also the id in" in run.err


def test_residency_is_checked_against_the_catalog(cli, repo_copy: Path, tmp_path: Path) -> None:
    spec = spec_file(tmp_path, home_region="us-east")
    run = cli("onboard-partner", str(spec), "--dry-run", code=2, root=repo_copy)
    assert "countries.0: BR requires data residency" in run.err
    jp = spec_file(
        tmp_path,
        "jp.yaml",
        id="nihon-calls",
        home_region="ap-singapore",
        countries=["JP"],
        billing={"currency": "JPY", "payout_method": "stripe_connect"},
    )
    run = cli("onboard-partner", str(jp), "--no-apply", root=repo_copy)
    assert "JP prefers data residency in ap-tokyo" in run.err


HOSTILE = {
    # Nine levels of eight aliases each: 8**9 nodes if expanded.
    "yaml-bomb": "a: &a [x, x, x, x, x, x, x, x]\n"
    + "".join(f"{chr(98 + i)}: &{chr(98 + i)} [{', '.join([f'*{chr(97 + i)}'] * 8)}]\n" for i in range(8)),
    "python-tag": "id: !!python/object/apply:os.system ['touch platformctl-pwned']\n",
    "path-trick-id": EXAMPLE.read_text().replace("id: pampas-voz", "id: ../../stacks/evil"),
    "absolute-id": EXAMPLE.read_text().replace("id: pampas-voz", "id: /etc/passwd"),
    "wrong-types": EXAMPLE.read_text()
    .replace("countries: [BR, AR]", "countries: {BR: 1}")
    .replace("tier: starter", "tier: [starter]"),
    "custom-js": EXAMPLE.read_text().replace("branding:\n", "branding:\n  custom_js: document.cookie\n"),
    "huge": "id: pampas-voz\ncompany_name: " + "A" * (400 * 1024) + "\n",
    "binary": "\x00\x01\x02",
    "not-yaml": "{{{{",
}


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_hostile_specs_exit_2_with_a_message_and_write_nothing(cli, repo_copy: Path, tmp_path: Path, name: str) -> None:
    path = tmp_path / f"{name}.yaml"
    path.write_text(HOSTILE[name])
    before = tree_snapshot(repo_copy)
    run = cli("onboard-partner", str(path), "--no-apply", code=2, root=repo_copy)
    assert str(path) in run.err
    assert tree_snapshot(repo_copy) == before
    assert not Path("platformctl-pwned").exists() and not (repo_copy / "platformctl-pwned").exists()
    if name == "custom-js":
        assert "custom JavaScript is not accepted" in run.err


def test_missing_spec_file(cli, repo_copy: Path, tmp_path: Path) -> None:
    run = cli("onboard-partner", str(tmp_path / "nope.yaml"), "--no-apply", code=2, root=repo_copy)
    assert "no such file" in run.err


def test_dry_run_and_no_apply_exclude_each_other(cli, repo_copy: Path) -> None:
    run = cli("onboard-partner", str(EXAMPLE), "--dry-run", "--no-apply", code=2, root=repo_copy)
    assert "choose one of" in run.err


def test_two_runs_at_once_one_wins_the_other_exits_2(repo_copy: Path) -> None:
    command = [
        sys.executable,
        "-c",
        "from cli.app import entry; entry()",
        "--root",
        str(repo_copy),
        "onboard-partner",
        str(EXAMPLE),
        "--no-apply",
    ]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    runs = [
        subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)
    ]
    results = [(p.wait(timeout=120), p.stdout.read(), p.stderr.read()) for p in runs]  # type: ignore[union-attr]
    codes = sorted(code for code, _, _ in results)
    assert codes == [0, 2], results
    loser = next(err for code, _, err in results if code == 2)
    assert "already exists" in loser or "another platformctl run" in loser or "onboarded by another run" in loser
    assert "Traceback" not in loser
    assert (repo_copy / "partners" / "pampas-voz.yaml").read_text() == EXAMPLE.read_text()
    assert yaml.safe_load((repo_copy / "stacks" / "Pulumi.partner-pampas-voz.yaml").read_text())["config"]
    assert not [p for p in (repo_copy / "partners").iterdir() if p.name.startswith(".")]


def test_apply_without_the_pulumi_cli_restores_the_files_and_points_to_plan(cli, repo_copy: Path, monkeypatch) -> None:
    monkeypatch.setenv("PATH", "/nonexistent")
    before = tree_snapshot(repo_copy)
    run = cli("onboard-partner", str(EXAMPLE), "--yes", code=1, root=repo_copy)
    assert "wrote partners/pampas-voz.yaml" in run.out
    assert "Pulumi CLI is not on PATH" in run.err and "platformctl plan" in run.err
    assert "files were restored" in run.err
    assert tree_snapshot(repo_copy) == before


@pytest.mark.parametrize(
    "domain", ["voice.acme.example", "VOICE.ACME.EXAMPLE.", "acme.example", "x.voice.acme.example"]
)
def test_a_domain_another_partner_owns_is_refused(cli, repo_copy: Path, tmp_path: Path, domain: str) -> None:
    before = tree_snapshot(repo_copy)
    run = cli("onboard-partner", str(spec_file(tmp_path, domain=domain)), "--no-apply", code=2, root=repo_copy)
    assert ": domain: " in run.err and "partner 'acme-voice'" in run.err
    assert tree_snapshot(repo_copy) == before


def test_two_specs_of_one_batch_cannot_share_a_domain(cli, repo_copy: Path, tmp_path: Path) -> None:
    first = spec_file(tmp_path, "a.yaml", id="pampas-a", domain="voz.pampas.example")
    second = spec_file(tmp_path, "b.yaml", id="pampas-b", domain="voz.pampas.example")
    run = cli("onboard-partner", str(first), str(second), "--no-apply", code=2, root=repo_copy)
    assert "domain" in run.err and "is the same as" in run.err


def test_the_platform_zone_is_not_a_partner_domain(cli, repo_copy: Path, tmp_path: Path) -> None:
    run = cli(
        "onboard-partner",
        str(spec_file(tmp_path, domain="evil.voice-platform.example")),
        "--dry-run",
        code=2,
        root=repo_copy,
    )
    assert "platform's own zone" in run.err


def test_a_residency_warning_prints_once(cli, repo_copy: Path, tmp_path: Path) -> None:
    # JP prefers residency in ap-tokyo: served from sa-east it warns, once, though the spec is read twice.
    doc = yaml.safe_load(EXAMPLE.read_text())
    path = spec_file(tmp_path, countries=[*doc["countries"], "JP"])
    run = cli("onboard-partner", str(path), "--dry-run", root=repo_copy)
    assert (run.out + run.err).count("needs a documented transfer basis") == 1
