"""Every write to the plan cache goes through one guard: a run during which any input changed keeps nothing, so
no entry pairs one version of a spec's key with another version's preview or policy findings (issue 18, item 13).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TypeAlias

import pytest

import platformctl.offline.results as results_module
import platformctl.planning as planning_module
from fleet.repo import Repo
from foundation.stacks import parse_stack_name
from platformctl.offline.store import CachedResult, ResultCache
from platformctl.planning import run_plan
from scripts.fleet import copy_repo
from tests.conftest import ROOT
from tests.platformctl.offline.warm_cache import WarmRepo, warm_repo

ACME = parse_stack_name("partner-acme-voice")
BOTH = [ACME, parse_stack_name("partner-sakura-calls")]
CLASHING = "ai.sakura-calls.example"
"""sakura-calls' own domain: acme-voice claiming it is a mandatory domain-ownership violation."""
SPEC = Path("partners") / "acme-voice.yaml"
Observed: TypeAlias = tuple[str, list[tuple[str, str, str]]]
"""A plan's `--json` text and its findings as (stack, policy, message), sorted."""


def cache_files(root: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in (root / ".platformctl" / "cache").glob("*")}


def set_domain(root: Path, domain: str) -> None:
    spec = root / SPEC
    lines = spec.read_text().splitlines(keepends=True)
    spec.write_text("".join(f"domain: {domain}\n" if line.startswith("domain:") else line for line in lines))


def observed(root: Path, use_cache: bool) -> Observed:
    result = run_plan(Repo(root), BOTH, workers=1, use_cache=use_cache)
    return result.json_text(), sorted((v.stack, v.policy, v.message) for v in result.violations)


@pytest.fixture(scope="module")
def cold_plan(tmp_path_factory: pytest.TempPathFactory) -> Callable[[bytes], Observed]:
    """`cold_plan(spec)`: what a cold plan of both partners observes when acme-voice's spec holds the bytes `spec`
    (and every other file is the repository's), planned once per spec in a scratch copy that nothing else plans in
    or edits. Three specs occur (a clean domain, the clashing one, voice2): a test's own cold plans of its final
    state were a quarter of the module's time."""
    found: dict[bytes, Observed] = {}

    def plan(spec: bytes) -> Observed:
        if spec not in found:
            root = copy_repo(ROOT, tmp_path_factory.mktemp("cold") / "repo")
            (root / SPEC).write_bytes(spec)
            found[spec] = observed(root, use_cache=False)
        text, violations = found[spec]
        return text, list(violations)

    return plan


@pytest.fixture(scope="module")
def warm_at(
    tmp_path_factory: pytest.TempPathFactory, cold_plan: Callable[[bytes], Observed]
) -> Callable[[str], WarmRepo]:
    """`warm_at(domain)`: a template whose cache a cold plan of both partners filled with acme-voice's domain set
    to `domain`, planned once per domain (two occur); each test plans in its own copy of it."""
    templates: dict[str, WarmRepo] = {}

    def template(domain: str) -> WarmRepo:
        if domain not in templates:
            directory = tmp_path_factory.mktemp("warm")
            scratch = copy_repo(ROOT, directory / "spec")
            set_domain(scratch, domain)
            expected = cold_plan((scratch / SPEC).read_bytes())
            templates[domain] = warm = warm_repo(directory, BOTH, lambda root: set_domain(root, domain))
            # The cache was empty: a cold plan, which is the same in any folder (what sharing `cold_plan` relies on).
            assert (warm.json_text, sorted((v.stack, v.policy, v.message) for v in warm.violations)) == expected
        return templates[domain]

    return template


SwapAt = Callable[[pytest.MonkeyPatch, Callable[[], None]], None]


def after_keys(monkeypatch: pytest.MonkeyPatch, swap: Callable[[], None]) -> None:
    """The keys are computed from one version, the workers then read the other."""
    real = results_module.stack_keys

    def keys_then_swap(*args, **kwargs):
        keys = real(*args, **kwargs)
        swap()
        return keys

    monkeypatch.setattr(results_module, "stack_keys", keys_then_swap)


def while_planning(monkeypatch: pytest.MonkeyPatch, swap: Callable[[], None]) -> None:
    """A stack has been planned, the next one not yet."""
    real = results_module.plan_and_finish

    def plan_with_swap(repo, to_plan, finish, workers, progress, known, pool=None):
        def progress_and_swap(name: str) -> None:
            swap()
            if progress is not None:
                progress(name)

        return real(repo, to_plan, finish, workers, progress_and_swap, known, pool)

    monkeypatch.setattr(results_module, "plan_and_finish", plan_with_swap)


def before_policies(monkeypatch: pytest.MonkeyPatch, swap: Callable[[], None]) -> None:
    """Planning is over and its stamps were still clean; the policy check reads the repository after the swap
    (the path that used to write its re-evaluated entries back unguarded)."""
    real = planning_module.stack_violations

    def swap_then_check(repo: Repo, result, cache: ResultCache):
        swap()
        repo._specs.clear()  # the policy context is read as the files are now
        repo._domains = None
        return real(repo, result, cache)

    monkeypatch.setattr(planning_module, "stack_violations", swap_then_check)


def in_the_policy_context(monkeypatch: pytest.MonkeyPatch, swap: Callable[[], None]) -> None:
    """The policy context is read from a fresh view of the repository after the swap."""
    real = planning_module.context_for

    def swap_then_context(repo: Repo, stack, config):
        swap()
        return real(Repo(repo.root), stack, config)

    monkeypatch.setattr(planning_module, "context_for", swap_then_context)


POINTS = [after_keys, while_planning, before_policies, in_the_policy_context]


@pytest.mark.parametrize("swap_at", POINTS, ids=[p.__name__ for p in POINTS])
@pytest.mark.parametrize("from_clean", [True, False], ids=["clean-to-violating", "violating-to-clean"])
@pytest.mark.parametrize("put_back", [True, False], ids=["put-back", "left"])
def test_a_spec_swapped_mid_plan_never_reaches_the_cache(
    warm_at: Callable[[str], WarmRepo],
    cold_plan: Callable[[bytes], Observed],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    swap_at: SwapAt,
    from_clean: bool,
    put_back: bool,
) -> None:
    clean = "voice.acme.example"
    first, second = (clean, CLASHING) if from_clean else (CLASHING, clean)
    repo_copy = warm_at(first).copy(tmp_path / "repo")  # the cache holds both stacks at `first`, as a plan wrote it
    set_domain(repo_copy, "voice2.acme.example")  # acme must be planned again; its policy context changes too
    before = cache_files(repo_copy)

    swapped: list[bool] = []

    def swap() -> None:
        if not swapped:
            swapped.append(True)
            set_domain(repo_copy, second)

    with monkeypatch.context() as patch:
        swap_at(patch, swap)
        run_plan(Repo(repo_copy), BOTH, workers=1)
    assert swapped, "the swap point was reached"
    assert cache_files(repo_copy) == before, "a run whose inputs changed wrote to the cache"

    if put_back:
        set_domain(repo_copy, "voice2.acme.example")
    warm = observed(repo_copy, use_cache=True)
    cold = cold_plan((repo_copy / SPEC).read_bytes())  # the cold plan of these very files (planned once per spec)
    assert warm == cold
    clashes = [v for v in cold[1] if v[0] == "partner-acme-voice" and CLASHING in v[2]]
    assert bool(clashes) == (not put_back and second == CLASHING)


def test_an_unguarded_run_keeps_nothing(tmp_path: Path) -> None:
    """Staged entries are written only by `commit` after `watch`: a put without a watched run writes nothing."""
    cache = ResultCache(tmp_path)
    cache.put(CachedResult("partner-acme-voice", "k", "{}", {}, {}, [], False, [], []))
    assert not cache.commit()
    assert cache.get("partner-acme-voice", "k") is None
    assert list(tmp_path.iterdir()) == []
