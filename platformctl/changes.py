"""Spec-to-stack changes: onboard and offboard partners, launch countries.

A change is decided and written under the locks of everything it touches, so what it read cannot change
before it writes: the partner's or region's own lock, held through the engine apply, and the fleet lock while
it checks fleet-wide rules (domain ownership) and writes. Stack files are edited in place (every key, comment
and encrypted value the command does not own survives); the spec bytes that were validated are the bytes
written; all files of one change are written under a journal, so a crash leaves all or none (see `journal`).
"""

from __future__ import annotations

import datetime
import datetime as dt
import re
import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

from fleet.checks import (
    domain_problems,
    fleet_domain_problems,
    fleet_domains,
    launched_country_problems,
    parse_offboarding_date,
    platform_zone,
    purge_allowed_from,
)
from fleet.program import top_level_entries
from fleet.repo import Repo
from foundation.errors import InputError, PlatformError, Problem
from foundation.stacks import StackName, partner_stack, region_stack
from foundation.yamlio import decode_text, dump_yaml, edit_yaml_text, read_bounded, remove_key, write_atomic
from partners.spec import PartnerSpec, parse_spec_bytes
from platformctl import journal as journals
from platformctl.locking import FLEET, holding
from regions.catalog import Catalog, ResidencyVerdict


class Mode(StrEnum):
    DRY_RUN = "dry-run"
    """Write nothing; plan the change offline."""
    NO_APPLY = "no-apply"
    """Write the spec and stack files; CI previews and applies them."""
    APPLY = "apply"
    """Write, then preview and update through the real engine."""


@dataclass
class Change:
    """What a command decided: the files it writes and the stacks they affect."""

    files: dict[Path, bytes | None] = field(default_factory=dict)
    """New bytes per file; None deletes the file."""
    stacks: list[StackName] = field(default_factory=list)
    """Stacks whose plan the change alters."""
    warnings: list[str] = field(default_factory=list)
    """Things worth saying that do not stop the change."""
    notes: list[str] = field(default_factory=list)
    """What was done, for the summary."""
    operations: list[tuple[StackName, str]] = field(default_factory=list)
    """Engine operations to run after writing (APPLY mode), in order."""
    delete_after_apply: list[Path] = field(default_factory=list)
    """Files removed once the engine operations succeeded (APPLY mode)."""
    compare: bool = False
    """The stacks exist already: a dry run shows what changes against their current plan."""
    events: list[dict[str, Any]] = field(default_factory=list)
    """Webhook events posted once the engine applied the change (APPLY mode; platformctl/webhook_events.py)."""


class AbortedError(PlatformError):
    """The user declined to apply; the files were restored."""


@dataclass(frozen=True)
class SpecInput:
    """A spec file given on the command line, read once."""

    display: str
    """The path as the user gave it (for messages)."""
    raw: bytes
    """Its bytes: validated and, unchanged, written."""


# ---------------------------------------------------------------- stack files, edited in place

STACK_HEADER = "# Written by platformctl; reviewed in pull requests.\n"


def edit_stack_file(repo: Repo, stack: StackName, set_values: dict[str, Any], delete: tuple[str, ...] = ()) -> bytes:
    """The stack file with `set_values` set and `delete` removed under `config:`; everything else kept."""
    path = repo.stack_file(stack)
    display = f"stacks/{path.name}"
    if not path.exists():
        return (STACK_HEADER + dump_yaml({"config": dict(set_values)})).encode("utf-8")
    text = decode_text(read_bounded(path, display), display)
    repo.stack_config(stack)  # the file must be a valid stack file before it is edited

    def edit(document: Any) -> None:
        from ruamel.yaml.comments import CommentedMap

        if document.get("config") is None:
            document["config"] = CommentedMap()
        config = document["config"]
        for key in delete:
            remove_key(config, key)
        for key, value in set_values.items():
            config[key] = value

    return edit_yaml_text(text, display, edit).encode("utf-8")


def new_partner_stack_text(spec: PartnerSpec, catalog: Catalog) -> str:
    """A new partner's stack file (the fleet generator and tests write the same)."""
    config = {"aws:region": catalog.region(spec.home_region).aws_region}
    return f"# Written by platformctl; the spec is partners/{spec.id}.yaml.\n" + dump_yaml({"config": config})


# ---------------------------------------------------------------- onboarding


def read_spec_inputs(paths: list[Path]) -> list[SpecInput]:
    """Read each spec file once (bounded); these bytes are validated and written."""
    if not paths:
        raise InputError.single("arguments", "SPEC", "give at least one partner spec file")
    return [SpecInput(str(path), read_bounded(path, str(path))) for path in paths]


def onboarding_locks(inputs: list[SpecInput]) -> list[str]:
    """The partner locks a batch needs: its ids, read from the validated bytes (bad specs fail here)."""
    problems: list[Problem] = []
    locks = []
    for item in inputs:
        try:
            locks.append(str(partner_stack(parse_spec_bytes(item.raw, item.display).id)))
        except InputError as exc:
            problems += exc.problems
    if problems:
        raise InputError(problems)
    return locks


def onboarding_change(repo: Repo, inputs: list[SpecInput], update: bool, reactivate: bool = False) -> Change:
    """Validate every spec (model, catalog, fleet) before anything is written; one bad spec, nothing written."""
    change = Change()
    problems: list[Problem] = []
    seen: dict[str, str] = {}
    batch: dict[str, tuple[str, str]] = {}
    for item in inputs:
        try:
            spec = parse_spec_bytes(item.raw, item.display)
            change.warnings += repo.check_spec(spec, item.display)
        except InputError as exc:
            problems.extend(exc.problems)
            continue
        if spec.id in seen:
            problems.append(Problem(item.display, "id", f"{spec.id!r} is also the id in {seen[spec.id]}"))
            continue
        seen[spec.id] = item.display
        batch[spec.id] = (spec.domain, item.display)
        try:
            _onboard_one(repo, spec, item, update, reactivate, change)
        except InputError as exc:
            problems.extend(exc.problems)
    problems += _domain_ownership(repo, batch, change)
    if problems:
        raise InputError(problems)
    return change


def _onboard_one(
    repo: Repo, spec: PartnerSpec, item: SpecInput, update: bool, reactivate: bool, change: Change
) -> None:
    stack = partner_stack(spec.id)
    target = repo.partner_file(spec.id)
    exists = target.exists() or target.is_symlink()
    if exists and not update:
        raise InputError.single(
            item.display,
            "id",
            f"partner {spec.id!r} already exists (partners/{spec.id}.yaml); pass --update to change it",
        )
    offboarded = repo.offboarded_on(spec.id) if repo.has_stack(stack) else ""
    if offboarded and not reactivate:
        raise InputError.single(
            item.display,
            "id",
            f"partner {spec.id!r} was offboarded on {offboarded}; pass --reactivate to bring it back",
        )
    if reactivate and not offboarded:
        change.warnings.append(f"{spec.id}: --reactivate has nothing to do, the partner is active")
    region = repo.catalog().region(spec.home_region)
    previous = _current_spec(repo, spec.id) if exists else None
    if previous is not None and previous.home_region != spec.home_region:
        change.warnings.append(
            f"{spec.id}: moves from {previous.home_region} to {spec.home_region}: every resource of {stack} is "
            f"replaced (deleted in {previous.home_region}, created in {spec.home_region}); data-bearing resources "
            f"in {previous.home_region} are retained, not copied"
        )
    if previous is not None and previous.billing.currency != spec.billing.currency:
        change.warnings.append(currency_change_warning(spec.id, previous.billing.currency, spec.billing.currency))
    change.files[target] = item.raw
    change.files[repo.stack_file(stack)] = edit_stack_file(
        repo,
        stack,
        {"aws:region": region.aws_region},
        delete=("platform:offboardedOn", "platform:purgeData", "platform:releaseNumbers") if reactivate else (),
    )
    change.stacks.append(stack)
    change.operations.append((stack, "up"))
    change.compare = change.compare or exists
    what = "reactivated partner" if offboarded else "changed partner" if exists else "new partner"
    change.notes.append(f"{spec.id}: {what} ({spec.tier}, {spec.home_region})")
    _installs_changed(repo, spec, previous, change)


def _installs_changed(repo: Repo, spec: PartnerSpec, previous: PartnerSpec | None, change: Change) -> None:
    """An installation's consumer lives in the integration's stack: a dry run plans it too, and the note says which
    stacks to apply (they are not this partner's to lock)."""
    from foundation.stacks import integration_stack
    from platformctl.webhook_events import install_events

    before = set(previous.integrations) if previous is not None else set()
    # The webhooks service learns who installed what from these events (it routes a partner's events to the
    # integrations it installed): a first onboarding with integrations produces them too.
    change.events += install_events(
        spec.id,
        {i: repo.integration(i).events for i in sorted(set(spec.integrations) - before)},
        sorted(before - set(spec.integrations)),
        dt.datetime.now(dt.UTC),
    )
    for integration_id in sorted(before ^ set(spec.integrations)):
        stack = integration_stack(integration_id)
        if not repo.has_stack(stack):
            continue
        change.stacks.append(stack)
        verb = "installs" if integration_id in spec.integrations else "removes"
        change.notes.append(
            f"{spec.id}: {verb} {integration_id}: apply {stack} for its installation consumer "
            f"(`platformctl up {stack}`; CI applies it after merge)"
        )


def currency_change_warning(partner_id: str, old: str, new: str, today: dt.date | None = None) -> str:
    """What a billing-currency change does to the partner's money, said before it is applied."""
    today = today or dt.datetime.now(dt.UTC).date()
    following = f"{today.year + 1}-01" if today.month == 12 else f"{today.year}-{today.month + 1:02d}"
    return (
        f"{partner_id}: billing.currency changes from {old} to {new}. The partner stack's `up` records it in the "
        f"warehouse's PARTNERS row as pending: it takes effect from the first day of the month after the `up` (UTC; "
        f"{following} if applied this month): calls until then are metered and paid in {old}, from then on in {new}, "
        f"so that no month holds usage in both currencies (such a month cannot be paid). Statements already made "
        f"stay in {old}"
    )


def _current_spec(repo: Repo, partner_id: str) -> PartnerSpec | None:
    try:
        return repo.spec(partner_id)
    except InputError:
        return None  # a broken spec being replaced: nothing to compare with


def _domain_ownership(repo: Repo, batch: dict[str, tuple[str, str]], change: Change) -> list[Problem]:
    """The batch's domains on their own, against each other and against the rest of the fleet (read under the
    fleet lock, so two runs cannot both claim one domain)."""
    zone = platform_zone(repo)
    others, warnings = fleet_domains(repo, skip=batch)
    change.warnings += warnings
    problems: list[Problem] = []
    checked: dict[str, tuple[str, str]] = dict(others)
    for partner_id, (domain, source) in batch.items():
        problems += domain_problems(domain, zone, source)
        problems += [
            p for p in fleet_domain_problems({**checked, partner_id: (domain, source)}, "") if p.source == source
        ]
        checked[partner_id] = (domain, source)
    return list(dict.fromkeys(problems))


# ---------------------------------------------------------------- offboarding


def _numbers_note(spec: PartnerSpec, released: bool) -> str:
    count = sum(n.count for n in spec.telephony.numbers) if spec.telephony else 0
    if not count:
        return ""
    if released:
        return f"; its {count} Twilio number(s) are released and its Twilio subaccount closed when the stack drops them"
    return f"; its {count} Twilio number(s) and Twilio subaccount are kept (pass --release-numbers to let them go)"


def offboarding_change(
    repo: Repo, partner_id: str, purge: bool, today: datetime.date, release_numbers: bool = False
) -> Change:
    stack = partner_argument(partner_id)
    spec_file = repo.partner_file(stack.key)
    if not spec_file.is_file():
        raise InputError.single("arguments", "ID", f"no partner {partner_id!r} (no partners/{partner_id}.yaml)")
    if not repo.has_stack(stack):
        raise InputError.single(
            "arguments", "ID", f"partner {partner_id!r} has no stack file (stacks/Pulumi.{stack}.yaml)"
        )
    spec = repo.spec(stack.key)
    source = f"stacks/Pulumi.{stack}.yaml"
    offboarded_on = repo.stack_config(stack).file_values.get("platform:offboardedOn") or ""
    change = Change(stacks=[stack], compare=True)
    if not purge:
        if offboarded_on:
            raise InputError.single(
                "arguments", "ID", f"partner {partner_id!r} was already offboarded on {offboarded_on}"
            )
        values: dict[str, Any] = {"platform:offboardedOn": today.isoformat()}
        # Flags left from an earlier life of the stack must not act now: an offboarding never purges, and
        # releases numbers only when asked this time.
        stale: tuple[str, ...] = ("platform:purgeData",)
        if release_numbers:
            values["platform:releaseNumbers"] = True
        else:
            stale += ("platform:releaseNumbers",)
        change.files[repo.stack_file(stack)] = edit_stack_file(repo, stack, values, delete=stale)
        change.operations.append((stack, "up"))
        change.notes.append(
            f"{partner_id}: offboarded; its namespace, gateway consumer and warehouse access go, "
            "its data (buckets, keys, schema) is kept until the retention runs out"
            + _numbers_note(spec, release_numbers)
        )
        return change
    retention = repo.catalog().strictest_retention_days(spec.countries)
    if not offboarded_on:
        raise InputError.single(
            "arguments",
            "--purge",
            f"partner {partner_id!r} is still active: offboard it first; its data may be purged {retention} days later",
        )
    since = parse_offboarding_date(offboarded_on, source, today)
    purge_from = purge_allowed_from(since, retention, source)
    if today < purge_from:
        raise InputError.single(
            "arguments",
            "--purge",
            f"the retention of {partner_id!r}'s countries ({', '.join(spec.countries)}: {retention} days from "
            f"{since.isoformat()}) runs until {purge_from.isoformat()}; purging is refused before then",
        )
    # The retain flags live in the state: an update with purgeData lifts them, then the destroy deletes the data.
    change.files[repo.stack_file(stack)] = edit_stack_file(repo, stack, {"platform:purgeData": True})
    change.operations += [(stack, "up"), (stack, "destroy")]
    change.delete_after_apply += [repo.stack_file(stack), spec_file]
    change.notes.append(
        f"{partner_id}: retention ran out on {purge_from.isoformat()}; data-bearing resources are no longer retained "
        "(apply, then destroy the stack to delete them)" + _numbers_note(spec, True)
    )
    return change


def partner_argument(partner_id: str) -> StackName:
    """An id from the command line, validated exactly as a spec's id is (no path tricks reach the filesystem)."""
    try:
        return partner_stack(partner_id)
    except InputError:
        raise InputError.single(
            "arguments", "ID", f"{partner_id!r} is not a partner id (3-40 of a-z, 0-9, '-', starting with a letter)"
        ) from None


# ---------------------------------------------------------------- country launches


def launch_region(repo: Repo, country: str, region: str | None) -> tuple[str, str]:
    """The country code and the region to launch it in (decided before the region's lock is taken)."""
    catalog = repo.catalog()
    if not re.fullmatch(r"[A-Za-z]{2}", country):
        raise InputError.single("arguments", "CC", f"{country!r} is not an ISO 3166-1 alpha-2 code (two ASCII letters)")
    code = country.upper()
    if code not in catalog.countries:
        raise InputError.single(
            "arguments", "CC", f"unknown country {country!r}; known: {', '.join(sorted(catalog.countries))}"
        )
    serving = catalog.regions_serving(code)
    if region is None:
        if len(serving) != 1:
            choices = ", ".join(serving) if serving else ", ".join(catalog.regions)
            raise InputError.single(
                "arguments", "--region", f"{code} can be served from several regions; choose one of: {choices}"
            )
        region = serving[0]
    if region not in catalog.regions:
        raise InputError.single("arguments", "--region", f"unknown region {region!r}")
    if catalog.residency_verdict(code, region) is ResidencyVerdict.FORBIDDEN:
        raise InputError.single(
            "arguments",
            "--region",
            f"{code} requires data residency and may only be served from: {', '.join(serving)}",
        )
    return code, region


def country_launch_change(repo: Repo, code: str, region: str) -> Change:
    catalog = repo.catalog()
    stack = region_stack(region)
    source = f"stacks/Pulumi.{stack}.yaml"
    if not repo.has_stack(stack):
        raise InputError.single(source, "", f"region {region} has no stack file")
    launched = repo.stack_config(stack).values.get("platform:launchedCountries") or []
    problems = launched_country_problems(catalog, region, launched, source)
    if problems:
        raise InputError(problems)  # never add to a list that is already wrong
    change = Change(stacks=[stack], compare=True)
    verdict = catalog.residency_verdict(code, region)
    if verdict is ResidencyVerdict.WARN:
        change.warnings.append(
            f"{code} prefers data residency in {', '.join(catalog.regions_serving(code))}; "
            f"{region} needs a documented transfer basis"
        )
    elif verdict is ResidencyVerdict.ALLOWED and code not in catalog.regions[region].serves:
        # Allowed, but not what the catalog plans for: say so, or a typo'd --region goes through unnoticed.
        serving = catalog.regions_serving(code)
        usual = f"normally served from {', '.join(serving)}" if serving else "served by no region in the catalog"
        change.warnings.append(
            f"{code} is {usual}; {region} is allowed because {code}'s data residency is optional "
            f"(regions/countries.yaml), so its data will be kept in {region}"
        )
    if code in launched:
        change.notes.append(f"{code} is already launched in {region}; nothing to change")
        change.stacks = []
        return change
    updated = [*launched, code]
    problems = launched_country_problems(catalog, region, updated, source)
    if problems:
        raise InputError(problems)
    change.files[repo.stack_file(stack)] = edit_stack_file(repo, stack, {"platform:launchedCountries": updated})
    retention = catalog.strictest_retention_days(updated)
    change.operations.append((stack, "up"))
    change.notes.append(f"{code} launched in {region}; the region's data now expires after {retention} days")
    return change


# ---------------------------------------------------------------- carrying a change out


@dataclass
class Hooks:
    """How a change talks to the person running it (the CLI supplies these; tests supply their own)."""

    say: Callable[[str], None]
    """Print one line of progress."""
    warn: Callable[[str], None]
    """Print one warning."""
    confirm: Callable[[str], bool]
    """Ask before applying; False stops the change and restores the files."""
    engine_output: Callable[[str], None] | None = None
    """Stream the engine's output."""


@dataclass
class Outcome:
    change: Change
    """What was decided."""
    plan: Any = None
    """The dry run's PlanResult (diffed against the current files when the stacks exist)."""


def carry_out(
    root: Path,
    locks: list[str],
    decide: Callable[[Repo], Change],
    mode: Mode,
    hooks: Hooks,
    engine: Any = None,
) -> Outcome:
    """Decide the change under its locks, then plan it (dry run), write it, or write and apply it.

    `decide` runs against a fresh read of the repository taken after the locks are held, so nothing it read can
    change before the files are written."""
    if mode is Mode.DRY_RUN:
        repo = Repo(root)
        change = decide(repo)
        _warn_all(hooks, repo, change)
        return Outcome(change, dry_run_plan(repo, change))
    state_dir = Repo(root).state_dir
    wanted = _with_journal_locks(root, state_dir, locks)
    with holding(state_dir, wanted):
        for note in journals.recover([j for j in journals.pending(root, state_dir) if set(j.locks) <= set(wanted)]):
            hooks.warn(f"recovered: {note}")
        with holding(state_dir, [FLEET]):
            repo = Repo(root)
            change = decide(repo)
            _warn_all(hooks, repo, change)
            if not change.files:
                return Outcome(change)
            journal = journals.begin(root, state_dir, wanted, change.files)
            _write(change)
            journal.move_to("written")
        for path, content in change.files.items():
            hooks.say(f"{'removed' if content is None else 'wrote'} {repo.display(path)}")
        if mode is Mode.NO_APPLY or not change.operations:
            journal.close()
            return Outcome(change)
        _apply(repo, change, journal, hooks, engine)
        return Outcome(change)


def _with_journal_locks(root: Path, state_dir: Path, locks: list[str]) -> list[str]:
    """A crashed change that touched one of our stacks is finished first, under all of its locks."""
    wanted = set(locks)
    for journal in journals.pending(root, state_dir):
        if wanted & set(journal.locks):
            wanted |= set(journal.locks)
    return sorted(wanted)


def _warn_all(hooks: Hooks, repo: Repo, change: Change) -> None:
    for warning in dict.fromkeys([*repo.warnings, *change.warnings]):
        hooks.warn(warning)


def _write(change: Change) -> None:
    for path, content in change.files.items():
        if content is None:
            path.unlink(missing_ok=True)
        else:
            write_atomic(path, content)


def _apply(repo: Repo, change: Change, journal: journals.Journal, hooks: Hooks, engine: Any) -> None:
    if engine is None:
        from platformctl import engine as real_engine

        engine = real_engine
    try:
        for stack in dict.fromkeys(s for s, _ in change.operations):
            engine.run(repo, stack, "preview", on_output=hooks.engine_output)
    except PlatformError:
        restored = journal.rollback()
        hooks.warn(f"preview failed: the files were restored ({', '.join(restored) or 'unchanged'})")
        raise
    if not hooks.confirm("apply these changes"):
        restored = journal.rollback()
        raise AbortedError(f"not applied: the files were restored ({', '.join(restored) or 'unchanged'})")
    journal.move_to("applying")
    for stack, operation in change.operations:
        try:
            engine.run(repo, stack, operation, on_output=hooks.engine_output)
        except PlatformError as exc:
            journal.close()
            raise type(exc)(
                f"{exc}\nthe files stay as written (they describe what was being applied); "
                f"fix the cause and run `platformctl {operation} {stack}`"
            ) from exc
    for path in change.delete_after_apply:
        path.unlink(missing_ok=True)
        hooks.say(f"removed {repo.display(path)}")
    journal.close()
    if change.events:
        import os

        from platformctl.webhook_events import send

        sent, notes = send(change.events, os.environ)
        for line in sent:
            hooks.say(line)
        for note in notes:
            hooks.warn(note)


def dry_run_plan(repo: Repo, change: Change) -> Any:
    """Plan the changed stacks on a scratch view with the change applied; when the stacks exist, diff the result
    against their plan from the current files (so a region move shows its deletes and creates)."""
    from platformctl.offline.store import ResultCache
    from platformctl.planning import run_plan

    if not change.stacks:
        return None
    with overlay(repo, change) as scratch:
        # The repository's plan cache, read-only: unchanged stacks the changed ones read (global, a region) come
        # from it when their keys match; the scratch view's results are not kept.
        cached = ResultCache(repo.state_dir / "cache", write=False)
        after = run_plan(Repo(scratch), change.stacks, workers=1, cache=cached)
    if not change.compare:
        return after
    existing = [s for s in change.stacks if repo.has_stack(s) and _plannable(repo, s)]
    if not existing:
        return after
    before = run_plan(repo, existing, workers=1)
    return after.against(before.document)


def _plannable(repo: Repo, stack: StackName) -> bool:
    try:
        repo.dependencies(stack)
        return True
    except InputError:
        return False


@contextmanager
def overlay(repo: Repo, change: Change) -> Iterator[Path]:
    """A scratch view of the repository with the change applied, for --dry-run plans; the repo is untouched."""
    with tempfile.TemporaryDirectory(prefix="platformctl-dry-run-") as tmp:
        root = Path(tmp)
        for name in top_level_entries(repo.root):
            if name in ("partners", "stacks", "integrations"):
                continue
            if (repo.root / name).exists():
                (root / name).symlink_to(repo.root / name)
        for folder in ("partners", "stacks", "integrations"):
            (root / folder).mkdir()
            if not (repo.root / folder).is_dir():
                continue
            for item in (repo.root / folder).iterdir():
                if item.is_file() and not item.is_symlink():
                    # Copies, not links: a spec must be a regular file where it is read.
                    shutil.copy2(item, root / folder / item.name)
        for path, content in change.files.items():
            target = root / path.relative_to(repo.root)
            target.unlink(missing_ok=True)
            if content is not None:
                target.write_bytes(content)
        yield root
