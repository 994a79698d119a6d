"""Partner changes: onboarding (new, updated, reactivated partners) and offboarding (retain, then purge).

Each function decides a `changes.Change` from a fresh read of the repository; `changes.carry_out` writes it under
the partner's lock and the journal. Everything is validated before anything is written: one bad spec, nothing
written.
"""

from __future__ import annotations

import datetime
import datetime as dt
from pathlib import Path
from typing import Any

from fleet.checks import (
    domain_problems,
    fleet_domain_problems,
    fleet_domains,
    parse_offboarding_date,
    platform_zone,
    purge_allowed_from,
)
from fleet.repo import Repo
from foundation.errors import InputError, Problem
from foundation.stacks import StackName, partner_stack
from foundation.yamlio import dump_yaml, read_bounded
from partners.spec import PartnerSpec, parse_spec_bytes
from platformctl.changes import Change, SpecInput, edit_stack_file
from regions.catalog import Catalog


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
    spec_file = repo.partner_file(stack.subject)
    if not spec_file.is_file():
        raise InputError.single("arguments", "ID", f"no partner {partner_id!r} (no partners/{partner_id}.yaml)")
    if not repo.has_stack(stack):
        raise InputError.single(
            "arguments", "ID", f"partner {partner_id!r} has no stack file (stacks/Pulumi.{stack}.yaml)"
        )
    spec = repo.spec(stack.subject)
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
