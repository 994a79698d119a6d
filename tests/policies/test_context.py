"""Policy contexts: the fleet-level parts (partner ids, the domain table) are read once per run, not per stack."""

from __future__ import annotations

from pathlib import Path

import pytest

import partners.spec
from fleet.checks import fleet_domains
from fleet.repo import Repo
from foundation.stacks import StackKind, parse_stack_name
from policies.context import context_for


def _contexts(repo: Repo) -> dict[str, object]:
    return {str(s): context_for(repo, s, repo.stack_config(s).values) for s in repo.stack_names()}


def test_every_stack_s_context_reads_the_fleet_once(repo_copy: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    listings = {"partners": 0, "parses": 0}
    list_specs, parse = Repo.partner_spec_files, partners.spec.parse_spec_bytes

    def counting_listing(self: Repo) -> list[Path]:
        listings["partners"] += 1
        return list_specs(self)

    def counting_parse(*args):
        listings["parses"] += 1
        return parse(*args)

    monkeypatch.setattr(Repo, "partner_spec_files", counting_listing)
    monkeypatch.setattr(partners.spec, "parse_spec_bytes", counting_parse)
    repo = Repo(repo_copy)
    contexts = _contexts(repo)
    ids = repo.partner_ids()
    assert len(ids) >= 3 and len(contexts) == len(repo.stack_names())
    assert listings == {"partners": 1, "parses": len(ids)}


def test_contexts_carry_the_whole_fleet_as_the_files_say(repo_copy: Path) -> None:
    repo = Repo(repo_copy)
    contexts = _contexts(repo)
    ids = sorted(p.stem for p in (repo_copy / "partners").glob("*.yaml") if p.stem not in ("tiers", "prices"))
    expected_domains = tuple((pid, Repo(repo_copy).spec(pid).domain) for pid in ids)
    for name, context in contexts.items():
        assert context.fleet_partner_ids == tuple(ids), name  # type: ignore[attr-defined]
        if parse_stack_name(name).kind is StackKind.PARTNER:
            assert context.fleet_domains == expected_domains, name  # type: ignore[attr-defined]


def test_a_fresh_repo_sees_a_partner_written_after_the_first_read(repo_copy: Path) -> None:
    """A `Repo` is one run's reading: a change writes files and reads them back through a new one."""
    before = Repo(repo_copy)
    stack = parse_stack_name("partner-acme-voice")
    old = context_for(before, stack, {})
    spec = (repo_copy / "partners" / "acme-voice.yaml").read_text()
    (repo_copy / "partners" / "zz-new.yaml").write_text(
        spec.replace("id: acme-voice", "id: zz-new").replace("acme-voice.example", "zz-new.example")
    )
    assert "zz-new" not in context_for(before, stack, {}).fleet_partner_ids
    fresh = context_for(Repo(repo_copy), stack, {})
    assert fresh.fleet_partner_ids == (*old.fleet_partner_ids, "zz-new")
    assert dict(fresh.fleet_domains)["zz-new"] == dict(old.fleet_domains)["acme-voice"].replace("acme-voice", "zz-new")


def test_an_unreadable_spec_leaves_the_others_contexts_and_is_reported_once(repo_copy: Path) -> None:
    (repo_copy / "partners" / "sakura-calls.yaml").write_text("id: [unclosed\n")
    repo = Repo(repo_copy)
    context = context_for(repo, parse_stack_name("partner-acme-voice"), {})
    assert "sakura-calls" in context.fleet_partner_ids
    assert "sakura-calls" not in dict(context.fleet_domains)
    for skip, count in (((), 1), (("sakura-calls",), 0)):
        domains, warnings = fleet_domains(repo, skip=skip)
        assert "acme-voice" in domains and "sakura-calls" not in domains
        assert len(warnings) == count and all("partners/sakura-calls.yaml could not be read" in w for w in warnings)
