"""The per-stack result cache: a stack is planned again only when something it depends on changed, and a plan
made from the cache is byte for byte the plan made without it."""

from __future__ import annotations

import dataclasses
import datetime
import json
from pathlib import Path

import pytest

from fleet.repo import Repo
from foundation.errors import InputError
from foundation.stacks import parse_stack_name, region_stack
from platformctl.offline.planner import StackPlan, plan_stacks
from platformctl.offline.results import dated_facts, step_resources
from platformctl.offline.store import CachedResult, ResultCache, masked_references, preview_text
from platformctl.planning import PlanResult, document_text, policy_resources, run_plan
from scripts.fleet import copy_repo
from tests.conftest import ROOT
from tests.platformctl.offline.warm_cache import WarmRepo, warm_repo

PARTNER = [parse_stack_name("partner-acme-voice")]
ROOT_COPY_SOURCE = Path(__file__).resolve().parents[3]
BOTH = [parse_stack_name("partner-acme-voice"), parse_stack_name("partner-sakura-calls")]


def planned(root: Path, stacks=PARTNER, use_cache: bool = True) -> tuple[PlanResult, list[str]]:
    """Plan through the cache; also return which stacks were planned (not served from the cache)."""
    names: list[str] = []
    result = run_plan(Repo(root), stacks, workers=1, progress=names.append, use_cache=use_cache)
    return result, names


def entries(root: Path) -> dict[str, Path]:
    return {p.stem: p for p in (root / ".platformctl" / "cache").glob("*.plan")}


@pytest.fixture(scope="module")
def both_plans(tmp_path_factory: pytest.TempPathFactory) -> dict[str, StackPlan]:
    """Both partners and what they read, planned cold in a scratch copy. Read only
    (test_policy_resources_read_back_from_steps_equal_the_recorded_ones reads acme-voice's plan)."""
    return plan_stacks(Repo(copy_repo(ROOT, tmp_path_factory.mktemp("scratch") / "repo")), BOTH, workers=1)


@pytest.fixture(scope="module")
def warm_partner(tmp_path_factory: pytest.TempPathFactory) -> WarmRepo:
    """The repository after a cold plan of acme-voice through its cache, planned once; tests plan in copies."""
    return warm_repo(tmp_path_factory.mktemp("warm-partner"), PARTNER)


@pytest.fixture(scope="module")
def warm_both(tmp_path_factory: pytest.TempPathFactory) -> WarmRepo:
    """The repository after a cold plan of both partners through its cache, planned once; tests plan in copies."""
    return warm_repo(tmp_path_factory.mktemp("warm-both"), BOTH)


def test_only_what_changed_is_planned_and_the_result_is_the_cold_plan(warm_partner: WarmRepo, tmp_path: Path) -> None:
    first = warm_partner  # the first plan, cold
    assert list(first.planned) == ["global", "region-eu-central", "partner-acme-voice"]
    repo_copy = first.copy(tmp_path / "repo")
    again, names = planned(repo_copy)
    assert names == []
    assert again.json_text() == first.json_text

    spec = repo_copy / "partners" / "acme-voice.yaml"
    spec.write_text(spec.read_text().replace("voice_greeting: ", "voice_greeting: Hello again. "))
    warm, names = planned(repo_copy)
    assert names == ["partner-acme-voice"]  # global and the region come from the cache
    cold, names = planned(repo_copy, use_cache=False)
    assert names == ["global", "region-eu-central", "partner-acme-voice"]
    assert warm.json_text() == cold.json_text()
    assert "Hello again." in warm.json_text()


def test_a_changed_stack_file_replans_the_stacks_that_read_it(warm_partner: WarmRepo, tmp_path: Path) -> None:
    repo_copy = warm_partner.copy(tmp_path / "repo")
    stack_file = repo_copy / "stacks" / "Pulumi.region-eu-central.yaml"
    stack_file.write_text(stack_file.read_text() + "# a comment changes nothing the program sees\n")
    _, names = planned(repo_copy)
    assert names == []
    stack_file.write_text(stack_file.read_text().replace("  - AT\n", ""))
    _, names = planned(repo_copy)
    assert names == ["region-eu-central", "partner-acme-voice"]


def test_a_changed_program_file_replans_everything(warm_partner: WarmRepo, tmp_path: Path) -> None:
    repo_copy = warm_partner.copy(tmp_path / "repo")
    module = repo_copy / "components" / "partner_tenant.py"
    module.write_text(module.read_text() + "\n# an edit\n")
    from platformctl.offline import keys

    keys.forget_program()
    try:
        _, names = planned(repo_copy)
    finally:
        keys.forget_program()
    assert names == ["global", "region-eu-central", "partner-acme-voice"]


def test_findings_follow_a_changed_policy_context_without_replanning(warm_both: WarmRepo, tmp_path: Path) -> None:
    """Another partner's domain is part of acme's policy context (domain ownership), not of its plan: acme's steps
    stay cached, its findings are evaluated again from them and equal a cold plan's."""
    first = warm_both
    repo_copy = first.copy(tmp_path / "repo")
    assert not [v for v in first.violations if v.stack == "partner-acme-voice" and v.level == "mandatory"]
    acme = Repo(repo_copy).spec("acme-voice").domain
    sakura = repo_copy / "partners" / "sakura-calls.yaml"
    old_domain = Repo(repo_copy).spec("sakura-calls").domain
    sakura.write_text(sakura.read_text().replace(old_domain, f"calls.{acme}"))
    warm, names = planned(repo_copy, BOTH)
    assert names == ["partner-sakura-calls"]
    found = {(v.stack, v.policy) for v in warm.violations if v.level == "mandatory"}
    assert ("partner-acme-voice", "domain-ownership") in found or ("partner-sakura-calls", "domain-ownership") in found
    cold, _ = planned(repo_copy, BOTH, use_cache=False)
    assert warm.violations == cold.violations
    assert warm.json_text() == cold.json_text()


def test_policy_resources_read_back_from_steps_equal_the_recorded_ones(both_plans: dict[str, StackPlan]) -> None:
    plan = both_plans["partner-acme-voice"]
    recorded = sorted(policy_resources(plan.recording.resources), key=lambda r: r.urn)
    read_back = sorted(step_resources(json.loads(json.dumps(plan.preview()))["steps"]), key=lambda r: r.urn)
    assert read_back == recorded


@pytest.mark.parametrize(
    "damage",
    [
        lambda raw: b"not json\n" + raw,
        lambda raw: raw[:-40],  # torn
        lambda raw: raw.replace(b'"create"', b'"delete"', 1),  # edited body, digest no longer matches
        lambda raw: b"",
    ],
)
def test_a_damaged_entry_is_ignored_and_replanned(warm_partner: WarmRepo, tmp_path: Path, damage) -> None:
    first = warm_partner
    repo_copy = first.copy(tmp_path / "repo")
    path = entries(repo_copy)["partner-acme-voice"]
    path.write_bytes(damage(path.read_bytes()))
    again, names = planned(repo_copy)
    assert names == ["partner-acme-voice"]
    assert again.json_text() == first.json_text


def test_an_entry_of_another_stack_or_key_is_ignored(warm_both: WarmRepo, tmp_path: Path) -> None:
    repo_copy = warm_both.copy(tmp_path / "repo")
    found = entries(repo_copy)
    found["partner-acme-voice"].write_bytes(found["partner-sakura-calls"].read_bytes())  # another stack's entry
    _, names = planned(repo_copy, BOTH)
    assert names == ["partner-acme-voice"]


def test_a_lossy_dependency_is_planned_again_for_its_readers(warm_partner: WarmRepo, tmp_path: Path) -> None:
    """A dependency whose cached outputs hid a known secret cannot feed a reader's plan: it is planned again."""
    repo_copy = warm_partner.copy(tmp_path / "repo")
    cache = ResultCache(repo_copy / ".platformctl" / "cache")
    paths = entries(repo_copy)
    key = json.loads(paths["global"].read_bytes().partition(b"\n")[0])["meta"]["key"]
    entry = cache.get("global", key)
    assert entry is not None
    entry.lossy = True
    cache.watch(repo_copy)
    cache.put(entry)
    assert cache.commit()
    paths["partner-acme-voice"].unlink()
    _, names = planned(repo_copy)
    assert names == ["global", "partner-acme-voice"]


def test_secrets_stay_off_the_disk() -> None:
    masked, lossy = masked_references("global", {"keys": {"eu": "hunter2"}, "name": "x"}, ["keys"])
    assert lossy and masked["name"] == "x" and "hunter2" not in json.dumps(masked)
    assert set(masked["keys"]) == {"eu"}  # the structure is kept for indexing
    _, lossy = masked_references("global", masked, ["keys"])
    assert not lossy  # nothing known was hidden


def test_the_cache_holds_no_secret_values(warm_both: WarmRepo) -> None:
    text = "".join(p.read_text() for p in entries(warm_both.root).values())  # what a plan wrote (read only)
    assert text
    assert "PRIVATE KEY" not in text and "BEGIN" not in text


def test_a_stack_name_is_checked_before_it_names_a_file(tmp_path: Path) -> None:
    cache = ResultCache(tmp_path)
    with pytest.raises(InputError, match="unknown stack name"):
        cache.get("../../etc/passwd", "k")
    entry = CachedResult("partner-acme-voice", "k", "{}", {}, {}, [], False, [], [])
    with pytest.raises(InputError, match="unknown stack name"):
        cache.put(dataclasses.replace(entry, stack="../../etc/passwd"))
    cache.watch(tmp_path)
    cache.put(entry)
    assert cache.commit()
    assert cache.get("partner-acme-voice", "k") == entry
    assert cache.get("partner-acme-voice", "other") is None


def test_the_kubernetes_support_date_is_part_of_a_region_key(repo_copy: Path) -> None:
    repo = Repo(repo_copy)
    region = region_stack("eu-central")
    version = repo.stack_config(region).values["platform:kubernetesVersion"]
    end = repo.catalog().cloud.kubernetes_versions[version].standard_support_ends
    before = dated_facts(repo, region, end - datetime.timedelta(days=1))
    after = dated_facts(repo, region, end + datetime.timedelta(days=1))
    assert before != after
    assert dated_facts(repo, parse_stack_name("global"), end) == ""


@pytest.mark.parametrize(
    "stacks",
    [
        {},
        {"global": {"steps": [], "changeSummary": {}, "outputs": {}, "diagnostics": []}},
        {
            "partner-a": {"steps": [{"op": "create", "urn": "u", "newState": {"inputs": {"x": "é\n\u2028", "e": {}}}}]},
            "partner-b": {"steps": [], "outputs": {"list": [1, 2.5, None, True, []]}},
        },
    ],
)
def test_the_document_text_is_what_json_dumps_writes(stacks) -> None:
    extra = {"shard": {"index": 1}, "violations": [{"policy": "p", "message": "m\n"}]}
    fragments = {name: preview_text(preview) for name, preview in stacks.items()}
    assert document_text(fragments, extra) == json.dumps({"stacks": stacks, **extra}, indent=1)
    assert document_text(fragments, {}) == json.dumps({"stacks": stacks}, indent=1)


def test_an_entry_that_is_not_a_regular_file_is_not_read(warm_partner: WarmRepo, tmp_path: Path) -> None:
    """A fifo in the cache would block a plain open forever; a directory or a symlink to a device is no entry."""
    import os

    repo_copy = warm_partner.copy(tmp_path / "repo")
    paths = entries(repo_copy)
    paths["partner-acme-voice"].unlink()
    os.mkfifo(paths["partner-acme-voice"])
    paths["region-eu-central"].unlink()
    paths["region-eu-central"].symlink_to("/dev/zero")
    _, names = planned(repo_copy)
    assert names == ["region-eu-central", "partner-acme-voice"]
    assert all(p.is_file() and not p.is_symlink() for p in entries(repo_copy).values())  # both replaced by entries


def test_an_entry_not_signed_with_this_users_key_is_ignored(warm_partner: WarmRepo, tmp_path: Path) -> None:
    """A branch that commits `.platformctl/cache` entries (a digest anyone can compute) gets them replanned."""
    import hashlib

    first = warm_partner
    repo_copy = first.copy(tmp_path / "repo")
    path = entries(repo_copy)["partner-acme-voice"]
    header, _, body = path.read_bytes().partition(b"\n")
    meta = json.loads(header)["meta"]
    meta["violations"] = []
    forged = hashlib.sha256(json.dumps(meta, sort_keys=True).encode() + b"\0" + body).hexdigest()
    path.write_bytes(json.dumps({"digest": forged, "meta": meta}).encode() + b"\n" + body)
    again, names = planned(repo_copy)
    assert names == ["partner-acme-voice"]
    assert again.json_text() == first.json_text


def test_a_signed_entry_of_the_wrong_shape_is_ignored(warm_partner: WarmRepo, tmp_path: Path) -> None:
    repo_copy = warm_partner.copy(tmp_path / "repo")
    cache = ResultCache(repo_copy / ".platformctl" / "cache")
    key = json.loads(entries(repo_copy)["partner-acme-voice"].read_bytes().partition(b"\n")[0])["meta"]["key"]
    entry = cache.get("partner-acme-voice", key)
    assert entry is not None
    entry.summary = {"create": "many"}  # type: ignore[dict-item]
    cache.watch(repo_copy)
    cache.put(entry)
    assert cache.commit()
    assert cache.get("partner-acme-voice", key) is None


def test_nothing_planned_while_files_changed_is_cached(repo_copy: Path) -> None:
    """The workers read the files after the keys were computed: if any file the plan reads changed meanwhile (even
    back to its old bytes), the results are used for this run but not kept."""
    import os

    tiers = repo_copy / "partners" / "tiers.yaml"

    def touch(_: str) -> None:
        os.utime(tiers, ns=(tiers.stat().st_atime_ns, tiers.stat().st_mtime_ns + 1_000_000))

    run_plan(Repo(repo_copy), PARTNER, workers=1, progress=touch)
    assert entries(repo_copy) == {}
    _, names = planned(repo_copy)
    assert names == ["global", "region-eu-central", "partner-acme-voice"]
    assert set(entries(repo_copy)) == {"global", "region-eu-central", "partner-acme-voice"}


def test_a_symlinked_cache_is_not_used(repo_copy: Path, tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "keep-me.plan").write_text("not ours")
    (repo_copy / ".platformctl").mkdir(exist_ok=True)
    (repo_copy / ".platformctl" / "cache").symlink_to(elsewhere)
    run_plan(Repo(repo_copy), [parse_stack_name("global")], workers=1, prune=True)  # plans and writes an entry
    assert [p.name for p in elsewhere.iterdir()] == ["keep-me.plan"]


def test_onboarding_an_unrelated_partner_does_not_recheck_the_others(warm_both: WarmRepo, tmp_path: Path) -> None:
    """A new partner adds an id and a domain to every partner's view of the fleet; only a partner whose id it
    extends or whose hosts its domain overlaps has its findings evaluated again."""
    import shutil

    repo_copy = warm_both.copy(tmp_path / "repo")
    before = {name: path.read_bytes() for name, path in entries(repo_copy).items()}
    shutil.copy(repo_copy / "partners" / "examples" / "pampas-voz.yaml", repo_copy / "partners" / "pampas-voz.yaml")
    stack = repo_copy / "stacks" / "Pulumi.partner-pampas-voz.yaml"
    stack.write_text((repo_copy / "stacks" / "Pulumi.partner-acme-voice.yaml").read_text())
    three = [*BOTH, parse_stack_name("partner-pampas-voz")]
    _, names = planned(repo_copy, three)
    assert names == ["region-sa-east", "partner-pampas-voz"]
    after = {name: path.read_bytes() for name, path in entries(repo_copy).items()}
    assert after["partner-acme-voice"] == before["partner-acme-voice"]  # findings not re-evaluated, not rewritten
    assert after["partner-sakura-calls"] == before["partner-sakura-calls"]


@pytest.mark.parametrize("make", ["device", "readable by others", "short"])
def test_a_signing_key_that_is_not_a_private_key_file_is_replaced(tmp_path: Path, monkeypatch, make: str) -> None:
    from platformctl.offline import signing

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    key_file = tmp_path / "platformctl" / "cache-signing.key"
    key_file.parent.mkdir()
    if make == "device":
        key_file.symlink_to("/dev/zero")  # would never end if read whole
    else:
        key_file.write_bytes(b"k" * (32 if make == "readable by others" else 5))
        key_file.chmod(0o644 if make == "readable by others" else 0o600)
    signing.signing_secret.cache_clear()
    try:
        key = signing.signing_secret()
        assert len(key) == 32 and key != b"k" * 32
        assert key_file.is_file() and not key_file.is_symlink() and key_file.stat().st_mode & 0o077 == 0
        assert key_file.read_bytes() == key
        signing.signing_secret.cache_clear()
        assert signing.signing_secret() == key  # kept for the next run
    finally:
        signing.signing_secret.cache_clear()


def test_module_facts_are_kept_signed_between_runs_and_a_tampered_file_is_ignored(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from fleet.program import _facts_cached, program_paths, using_store
    from platformctl.offline import facts

    path = tmp_path / "facts.json"
    first = facts.FactsFile(path)
    _facts_cached.cache_clear()  # as in a new process
    with using_store(first):
        expected = program_paths(ROOT_COPY_SOURCE)
    assert first.changed and len(first.used) >= 60  # every module parsed and handed to the file
    first.save()
    kept = facts.FactsFile(path)
    assert kept.known == first.used
    _facts_cached.cache_clear()
    with using_store(kept):
        assert program_paths(ROOT_COPY_SOURCE) == expected
    assert not kept.changed and kept.used == kept.known  # nothing parsed: every module came from the file

    signature, _, body = path.read_bytes().partition(b"\n")
    forged = json.loads(body)
    digest = next(iter(forged["facts"]))
    forged["facts"][digest]["imports"] = []
    path.write_bytes(signature + b"\n" + json.dumps(forged, sort_keys=True, separators=(",", ":")).encode())
    assert facts.FactsFile(path).known == {}
    path.unlink()
    path.symlink_to(tmp_path / "elsewhere.json")
    (tmp_path / "elsewhere.json").write_bytes(signature + b"\n" + body)
    assert facts.FactsFile(path).known == {}


def test_a_relative_xdg_cache_home_is_ignored(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A relative XDG_CACHE_HOME would put the user's signing key into the current folder (a repository
    perhaps); the XDG specification says to ignore it."""
    from platformctl.offline import signing

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("XDG_CACHE_HOME", "relcache")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert signing.user_folder() is None  # and no home folder: none is created
    (tmp_path / "home").mkdir()
    assert signing.user_folder() == tmp_path / "home" / ".cache" / "platformctl"


def test_module_facts_kept_by_another_version_of_the_derivation_are_not_used(tmp_path: Path) -> None:
    """A facts file signed by this user but written by another version of fleet/program.py (whose facts may mean
    something else) is not used."""
    import hashlib
    import hmac

    from fleet.program import _facts_cached, program_paths, using_store
    from platformctl.offline import facts, signing

    path = tmp_path / "facts.json"
    first = facts.FactsFile(path)
    _facts_cached.cache_clear()
    with using_store(first):
        program_paths(ROOT_COPY_SOURCE)
    first.save()
    assert facts.FactsFile(path).known
    document = json.loads(path.read_bytes().partition(b"\n")[2])
    document["deriver"] = "an older fleet/program.py"
    body = json.dumps(document, sort_keys=True, separators=(",", ":")).encode()
    signature = hmac.new(signing.signing_secret(), b"program-facts\0" + body, hashlib.sha256).hexdigest().encode()
    path.write_bytes(signature + b"\n" + body)
    assert facts.FactsFile(path).known == {}


def test_a_program_module_imported_from_elsewhere_is_in_the_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A folder on PYTHONPATH can shadow one of the program's packages: what this process imported from it is
    hashed into the program fingerprint, so an edit there is a change."""
    import sys
    import types

    from platformctl.offline import keys

    shadow = tmp_path / "pythonpath" / "gateway" / "shadowed.py"
    shadow.parent.mkdir(parents=True)
    shadow.write_text("PREFIX = '/v2'\n")
    module = types.ModuleType("gateway.shadowed")
    module.__file__ = str(shadow)
    # What this process imported from other folders so far: the repository copies planned in it (a module the
    # program imports lazily, such as `integrations`, is imported from the first copy planned), nothing of ours.
    elsewhere = keys.foreign_program_modules(ROOT_COPY_SOURCE)
    assert not [path for _, path in elsewhere if path.is_relative_to(ROOT_COPY_SOURCE.resolve())]
    monkeypatch.setitem(sys.modules, "gateway.shadowed", module)
    keys.forget_program()
    try:
        assert keys.foreign_program_modules(ROOT_COPY_SOURCE) == sorted([*elsewhere, ("gateway.shadowed", shadow)])
        before = keys.program_fingerprint(ROOT_COPY_SOURCE)
        shadow.write_text("PREFIX = '/v3'\n")
        keys.forget_program()
        assert keys.program_fingerprint(ROOT_COPY_SOURCE) != before
    finally:
        keys.forget_program()
