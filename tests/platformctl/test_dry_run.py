"""Dry runs: planned on a scratch view, reading the repository's plan cache and adding nothing to it."""

from __future__ import annotations

from pathlib import Path


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
