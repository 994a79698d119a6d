"""`platformctl ci-preview` on a temporary git repository built from the project."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from fleet.program import top_level_entries
from tests.conftest import ROOT

PROJECT = tuple(top_level_entries(ROOT))
"""The program and its data, as derived from its imports, with the specs and stack files."""


def git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True, text=True).stdout.strip()


@pytest.fixture(scope="module")
def project_repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A git repository holding the project at a `base` commit; each test branches from it. Module-scoped, so the
    module runs on one pytest-xdist worker (tests/conftest.py): the base side's plans, kept in the repository's
    `.platformctl/ci-cache/<sha>`, are then made once instead of once per worker."""
    repo = tmp_path_factory.mktemp("ci") / "platform"
    repo.mkdir()
    for item in PROJECT:
        source = ROOT / item
        if source.is_dir():
            shutil.copytree(source, repo / item, ignore=shutil.ignore_patterns("__pycache__", "*.lock", "cache"))
        else:
            shutil.copy2(source, repo / item)
    (repo / "README.md").write_text("platform\n")
    shutil.copy2(ROOT / ".gitignore", repo / ".gitignore")
    git(repo, "init", "-q", "-b", "main")
    git(repo, "-c", "user.name=ci", "-c", "user.email=ci@example.invalid", "add", "-A")
    git(repo, "-c", "user.name=ci", "-c", "user.email=ci@example.invalid", "commit", "-qm", "base")
    git(repo, "tag", "base")
    return repo


def change(repo: Path, branch: str, edit) -> None:
    git(repo, "checkout", "-q", "-B", branch, "base")
    edit(repo)
    git(repo, "add", "-A")
    git(repo, "-c", "user.name=ci", "-c", "user.email=ci@example.invalid", "commit", "-qm", branch)


def preview(cli, repo: Path, tmp_path: Path, code: int = 0) -> tuple[dict, str, str]:
    out_json, out_md = tmp_path / "preview.json", tmp_path / "preview.md"
    status_before = git(repo, "status", "--porcelain")
    run = cli(
        "ci-preview",
        "--base",
        "base",
        "--head",
        "HEAD",
        "--json",
        str(out_json),
        "--markdown",
        str(out_md),
        code=code,
        root=repo,
    )
    assert git(repo, "status", "--porcelain") == status_before  # the working tree is never touched
    return json.loads(out_json.read_text()), out_md.read_text(), run.err


def ops(doc: dict, stack: str) -> set[str]:
    return {step["op"] for step in doc["stacks"][stack]["steps"]}


def test_adding_a_partner(cli, project_repo: Path, tmp_path: Path) -> None:
    def add(repo: Path) -> None:
        shutil.copy2(repo / "partners" / "examples" / "pampas-voz.yaml", repo / "partners" / "pampas-voz.yaml")
        (repo / "stacks" / "Pulumi.partner-pampas-voz.yaml").write_text("config:\n  aws:region: sa-east-1\n")

    change(project_repo, "add-partner", add)
    doc, md, _ = preview(cli, project_repo, tmp_path)
    assert list(doc["stacks"]) == ["partner-pampas-voz"]
    assert ops(doc, "partner-pampas-voz") == {"create"}
    assert doc["violations"] == [] and doc["head"] == git(project_repo, "rev-parse", "HEAD")
    # 55 before issues 17/19/22: + the terms row (provider, component, two Executes); no Kong certificate now, a sync
    # Role and RoleBinding, a cors plugin per route; the webhooks API's partner route and its cors plugin.
    assert "### `partner-pampas-voz`" in md and "create 67" in md


def test_launching_a_country_touches_the_region_and_its_partners(cli, project_repo: Path, tmp_path: Path) -> None:
    def launch(repo: Path) -> None:
        stack = repo / "stacks" / "Pulumi.region-eu-central.yaml"
        stack.write_text(stack.read_text().replace("  - AT\n", "  - AT\n  - CH\n"))

    change(project_repo, "launch-ch", launch)
    doc, _, _ = preview(cli, project_repo, tmp_path)
    assert set(doc["stacks"]) == {"region-eu-central", "partner-acme-voice"}
    region = {s["urn"].rsplit("::", 1)[1]: s["op"] for s in doc["stacks"]["region-eu-central"]["steps"]}
    assert region["region-country-ch"] == "create" and region["region-country-ch-settings"] == "create"
    assert ops(doc, "region-eu-central") == {"create", "same"}
    assert ops(doc, "partner-acme-voice") == {"same"}


def test_editing_a_component_touches_every_stack_that_imports_it(cli, project_repo: Path, tmp_path: Path) -> None:
    def edit(repo: Path) -> None:
        component = repo / "components" / "partner_tenant.py"
        component.write_text(component.read_text().replace('meta("tenant-limits")', 'meta("tenant-limit-range")'))

    change(project_repo, "edit-component", edit)
    doc, md, _ = preview(cli, project_repo, tmp_path)
    assert set(doc["stacks"]) == {"partner-acme-voice", "partner-sakura-calls", "partner-sunrise-telecom"}
    for stack in doc["stacks"].values():
        updates = [s for s in stack["steps"] if s["op"] == "update"]
        assert [s["urn"].rsplit("::", 1)[1] for s in updates] == ["tenant-limits"]
        assert updates[0]["diffs"] == ["metadata.name"]
    assert "`metadata.name`" in md and "<details>" in md


def test_deleting_a_partner_plans_its_deletes(cli, project_repo: Path, tmp_path: Path) -> None:
    def delete(repo: Path) -> None:
        (repo / "partners" / "sunrise-telecom.yaml").unlink()
        (repo / "stacks" / "Pulumi.partner-sunrise-telecom.yaml").unlink()

    change(project_repo, "delete-partner", delete)
    doc, md, err = preview(cli, project_repo, tmp_path, code=1)
    assert list(doc["stacks"]) == ["partner-sunrise-telecom"]
    assert ops(doc, "partner-sunrise-telecom") == {"delete"}
    (violation,) = doc["violations"]
    assert (violation["policy"], violation["level"]) == ("offboard-first", "mandatory")
    assert "offboard-first" in err and "offboard-first" in md


def test_deleting_an_offboarded_partner_is_allowed(cli, project_repo: Path, tmp_path: Path) -> None:
    def offboard(repo: Path) -> None:
        stack = repo / "stacks" / "Pulumi.partner-sunrise-telecom.yaml"
        stack.write_text(stack.read_text() + "  platform:offboardedOn: '2020-01-01'\n")

    change(project_repo, "offboarded", offboard)

    def delete(repo: Path) -> None:
        (repo / "partners" / "sunrise-telecom.yaml").unlink()
        (repo / "stacks" / "Pulumi.partner-sunrise-telecom.yaml").unlink()

    git(project_repo, "checkout", "-q", "-B", "purge", "offboarded")
    delete(project_repo)
    git(project_repo, "add", "-A")
    git(project_repo, "-c", "user.name=ci", "-c", "user.email=ci@example.invalid", "commit", "-qm", "purge")
    run = cli("ci-preview", "--base", "offboarded", "--head", "HEAD", root=project_repo)
    assert "partner-sunrise-telecom: delete" in run.out


def test_a_symlinked_spec_is_bad_input(cli, project_repo: Path) -> None:
    def link(repo: Path) -> None:
        (repo / "partners" / "evil.yaml").symlink_to(repo / "partners" / "acme-voice.yaml")

    change(project_repo, "symlink", link)
    run = cli("ci-preview", "--base", "base", "--head", "HEAD", code=2, root=project_repo)
    assert "partners/evil.yaml" in run.err and "symbolic link" in run.err


def test_a_dirty_working_tree_is_said(cli, project_repo: Path) -> None:
    change(project_repo, "dirty", lambda repo: (repo / "README.md").write_text("platform, documented\n"))
    (project_repo / "README.md").write_text("uncommitted\n")
    try:
        run = cli("ci-preview", "--base", "base", "--head", "HEAD", root=project_repo)
    finally:
        git(project_repo, "checkout", "-q", "--", "README.md")
    assert "uncommitted changes" in run.err


def test_breaking_residency_fails(cli, project_repo: Path, tmp_path: Path) -> None:
    def move(repo: Path) -> None:
        spec = repo / "partners" / "acme-voice.yaml"
        spec.write_text(spec.read_text().replace("home_region: eu-central", "home_region: us-east"))

    change(project_repo, "break-residency", move)
    doc, md, err = preview(cli, project_repo, tmp_path, code=1)
    assert list(doc["stacks"]) == ["partner-acme-voice"]
    (violation,) = doc["violations"]
    assert violation["level"] == "mandatory" and violation["stack"] == "partner-acme-voice"
    assert "DE requires data residency" in violation["message"]
    assert md.index("mandatory policy violation") < md.index("### `partner-acme-voice`")
    assert "1 mandatory policy violation" in err


def test_a_change_that_touches_nothing_plannable(cli, project_repo: Path, tmp_path: Path) -> None:
    change(project_repo, "docs", lambda repo: (repo / "README.md").write_text("platform, documented\n"))
    doc, md, _ = preview(cli, project_repo, tmp_path)
    assert doc["stacks"] == {} and "touches nothing plannable" in md


def test_unknown_refs_exit_2(cli, project_repo: Path) -> None:
    run = cli("ci-preview", "--base", "no-such-ref", code=2, root=project_repo)
    assert "unknown git ref 'no-such-ref'" in run.err
    cli("ci-preview", "--base", "--upload-pack=evil", code=2, root=project_repo)


def test_a_purge_flag_before_retention_fails_the_preview(cli, project_repo: Path, tmp_path: Path) -> None:
    import datetime

    def purge(repo: Path) -> None:
        stack = repo / "stacks" / "Pulumi.partner-sunrise-telecom.yaml"
        today = datetime.date.today().isoformat()
        stack.write_text(stack.read_text() + f"  platform:offboardedOn: '{today}'\n  platform:purgeData: true\n")

    change(project_repo, "early-purge", purge)
    doc, _, _ = preview(cli, project_repo, tmp_path, code=1)
    messages = [v["message"] for v in doc["violations"] if v["policy"] == "valid-files"]
    assert any("may not be purged before" in m for m in messages), doc["violations"]


def test_removing_a_partner_before_its_retention_ran_out_fails(cli, project_repo: Path, tmp_path: Path) -> None:
    import datetime

    def offboard(repo: Path) -> None:
        stack = repo / "stacks" / "Pulumi.partner-sunrise-telecom.yaml"
        stack.write_text(stack.read_text() + f"  platform:offboardedOn: '{datetime.date.today().isoformat()}'\n")

    change(project_repo, "offboarded-today", offboard)
    git(project_repo, "checkout", "-q", "-B", "remove-early", "offboarded-today")
    (project_repo / "partners" / "sunrise-telecom.yaml").unlink()
    (project_repo / "stacks" / "Pulumi.partner-sunrise-telecom.yaml").unlink()
    git(project_repo, "add", "-A")
    git(project_repo, "-c", "user.name=ci", "-c", "user.email=ci@example.invalid", "commit", "-qm", "remove early")
    run = cli("ci-preview", "--base", "offboarded-today", "--head", "HEAD", code=1, root=project_repo)
    assert "retention-first" in run.err and "retention runs until" in run.err


def test_a_partner_with_another_partners_domain_fails_the_preview(cli, project_repo: Path, tmp_path: Path) -> None:
    def clash(repo: Path) -> None:
        spec = (repo / "partners" / "examples" / "pampas-voz.yaml").read_text()
        (repo / "partners" / "clash-co.yaml").write_text(
            spec.replace("id: pampas-voz", "id: clash-co").replace("voz.pampas.example", "VOICE.ACME.EXAMPLE.")
        )
        (repo / "stacks" / "Pulumi.partner-clash-co.yaml").write_text("config:\n  aws:region: sa-east-1\n")

    change(project_repo, "domain-clash", clash)
    doc, _, _ = preview(cli, project_repo, tmp_path, code=1)
    assert any(
        v["stack"] == "partner-clash-co" and v["level"] == "mandatory" and "acme-voice" in v["message"]
        for v in doc["violations"]
    ), doc["violations"]


def test_a_symlinked_data_folder_is_bad_input(cli, project_repo: Path) -> None:
    def link(repo: Path) -> None:
        (repo / "stacks-real").mkdir()
        for path in (repo / "stacks").iterdir():
            path.rename(repo / "stacks-real" / path.name)
        (repo / "stacks").rmdir()
        (repo / "stacks").symlink_to("stacks-real")

    change(project_repo, "symlinked-folder", link)
    run = cli("ci-preview", "--base", "base", "--head", "HEAD", code=2, root=project_repo)
    assert "stacks" in run.err and "symbolic link" in run.err
