"""Repo, the one reader: each file parsed once per run, each spec checked once, warnings kept once."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import partners.spec
from fleet.repo import Repo, active, for_program
from foundation.errors import InputError
from foundation.stacks import parse_stack_name


def test_a_spec_is_parsed_and_checked_once_per_run(repo_copy: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls = {"parse": 0, "check": 0}
    parse, check = partners.spec.parse_spec_bytes, partners.spec.check_against_catalog

    def counting_parse(*args):
        calls["parse"] += 1
        return parse(*args)

    def counting_check(*args):
        calls["check"] += 1
        return check(*args)

    monkeypatch.setattr(partners.spec, "parse_spec_bytes", counting_parse)
    monkeypatch.setattr(partners.spec, "check_against_catalog", counting_check)
    repo = Repo(repo_copy)
    for _ in range(3):
        repo.spec("acme-voice")
        repo.dependencies(parse_stack_name("partner-acme-voice"))
    assert calls == {"parse": 1, "check": 1}


def test_a_residency_warning_is_kept_once(repo_copy: Path) -> None:
    spec = repo_copy / "partners" / "acme-voice.yaml"
    # JP prefers residency in ap-tokyo; serving it from eu-central warns.
    spec.write_text(spec.read_text().replace("countries: [DE, AT]", "countries: [DE, AT, JP]"))
    repo = Repo(repo_copy)
    repo.spec("acme-voice")
    repo.spec("acme-voice")
    assert len(repo.warnings) == 1 and "JP" in repo.warnings[0]


def test_the_program_reads_through_the_planners_repo(repo_copy: Path) -> None:
    repo = Repo(repo_copy)
    assert for_program(repo_copy) is not repo
    with active(repo):
        assert for_program(repo_copy) is repo
    assert for_program(repo_copy) is not repo


def test_spec_file_name_and_id_must_agree(repo_copy: Path) -> None:
    source = repo_copy / "partners" / "acme-voice.yaml"
    (repo_copy / "partners" / "acme-other.yaml").write_text(source.read_text())
    with pytest.raises(InputError, match=re.escape("file is named acme-other.yaml")):
        Repo(repo_copy).spec("acme-other")


def test_a_symlinked_spec_is_refused(repo_copy: Path, tmp_path: Path) -> None:
    outside = tmp_path / "outside.yaml"
    outside.write_text((repo_copy / "partners" / "acme-voice.yaml").read_text())
    target = repo_copy / "partners" / "acme-voice.yaml"
    target.unlink()
    target.symlink_to(outside)
    with pytest.raises(InputError, match="symbolic link"):
        Repo(repo_copy).spec("acme-voice")


@pytest.mark.parametrize("bad", ["../etc/passwd", "Acme", "a/b", "x"])
def test_ids_are_checked_before_any_file_is_read(repo_copy: Path, bad: str) -> None:
    with pytest.raises(InputError, match="not a partner id"):
        Repo(repo_copy).spec(bad)


def test_a_spec_file_whose_name_is_no_id_is_bad_input(repo_copy: Path) -> None:
    (repo_copy / "partners" / "Bad Name.yaml").write_text("id: x\n")
    with pytest.raises(InputError, match="not a partner id"):
        Repo(repo_copy).partner_ids()


def test_partner_ids_are_listed_once_per_run(repo_copy: Path) -> None:
    repo = Repo(repo_copy)
    ids = repo.partner_ids()
    ids.append("mutated")  # a caller's copy: the run's listing stays as read
    spec = (repo_copy / "partners" / "acme-voice.yaml").read_text()
    (repo_copy / "partners" / "zz-new.yaml").write_text(spec.replace("id: acme-voice", "id: zz-new"))
    assert repo.partner_ids() == ids[:-1]
    assert Repo(repo_copy).partner_ids() == [*ids[:-1], "zz-new"]


def test_a_bad_file_name_is_reported_on_every_listing(repo_copy: Path) -> None:
    (repo_copy / "partners" / "Bad Name.yaml").write_text("id: x\n")
    repo = Repo(repo_copy)
    for _ in range(2):
        with pytest.raises(InputError, match="not a partner id"):
            repo.partner_ids()


def test_the_domain_table_is_read_once_and_handed_out_as_copies(repo_copy: Path) -> None:
    repo = Repo(repo_copy)
    domains, unreadable = repo.partner_domains()
    assert domains["acme-voice"] == (repo.spec("acme-voice").domain, "partners/acme-voice.yaml") and not unreadable
    domains.clear()
    assert repo.partner_domains()[0]["acme-voice"][1] == "partners/acme-voice.yaml"
