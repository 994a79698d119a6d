"""Spec-to-stack changes: onboard and offboard partners, launch countries. Validate all, then write atomically."""

from __future__ import annotations

import datetime
import tempfile
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

from partners.spec import PartnerSpec, check_against_catalog, load_spec
from platformctl.errors import InputError, Problem
from platformctl.locking import exclusive
from platformctl.repo import Repo
from platformctl.stackconfig import load_stack_config
from platformctl.stacks import StackName, partner_stack, region_stack
from platformctl.yamlio import dump_yaml, load_yaml_file, write_atomic
from regions.catalog import Catalog, ResidencyVerdict, load_catalog

OVERLAY_LINKS = (
    "__main__.py",
    "Pulumi.yaml",
    "components",
    "regions",
    "gateway",
    "platformctl",
    "policies",
    ".platformctl",
)


class Mode(StrEnum):
    DRY_RUN = "dry-run"
    """Write nothing; plan the change offline."""
    NO_APPLY = "no-apply"
    """Write the spec and stack files; CI previews and applies them."""
    APPLY = "apply"
    """Write, then preview and update through the real engine."""


@dataclass
class Change:
    """What a command decided: the files it writes (path → text) and the stacks they affect."""

    files: dict[Path, str | None] = field(default_factory=dict)
    """New text per file; None deletes the file."""
    stacks: list[StackName] = field(default_factory=list)
    """Stacks whose plan the change alters."""
    warnings: list[str] = field(default_factory=list)
    """Things worth saying that do not stop the change."""
    notes: list[str] = field(default_factory=list)
    """What was done, for the summary."""
    locks: list[str] = field(default_factory=list)
    """Lock names to hold while writing."""
    operations: list[tuple[StackName, str]] = field(default_factory=list)
    """Engine operations to run after writing (APPLY mode), in order."""
    delete_after_apply: list[Path] = field(default_factory=list)
    """Files removed once the engine operations succeeded (APPLY mode)."""


def partner_stack_text(spec: PartnerSpec, catalog: Catalog, extra: dict[str, Any] | None = None) -> str:
    config: dict[str, Any] = {"aws:region": catalog.region(spec.home_region).aws_region, **(extra or {})}
    return f"# Written by platformctl; the spec is partners/{spec.id}.yaml.\n" + dump_yaml({"config": config})


KEPT_PARTNER_CONFIG = ("platform:stripeAccount",)
"""Stack-file keys not derived from the spec (written by other commands): a rewrite keeps them. The Stripe account
stays until the partner's last statement is paid, so offboarding keeps it too."""


def _kept_config(repo: Repo, partner_id: str) -> dict[str, Any]:
    stack = partner_stack(partner_id)
    if not stack.config_file(repo.root).is_file():
        return {}
    values = load_stack_config(repo.root, stack).file_values
    return {key: values[key] for key in KEPT_PARTNER_CONFIG if values.get(key)}


def plan_onboarding(repo: Repo, spec_files: list[Path], update: bool) -> Change:
    """Validate every spec (model and catalog) before anything is written; one bad spec, nothing written."""
    if not spec_files:
        raise InputError.single("arguments", "SPEC", "give at least one partner spec file")
    catalog = load_catalog(repo.root / "regions")
    change = Change()
    problems: list[Problem] = []
    seen: dict[str, str] = {}
    for path in spec_files:
        display = repo.display(path)
        try:
            spec = load_spec(path, display)
            change.warnings += check_against_catalog(spec, catalog, display)
        except InputError as exc:
            problems.extend(exc.problems)
            continue
        if spec.id in seen:
            problems.append(Problem(display, "id", f"{spec.id!r} is also the id in {seen[spec.id]}"))
            continue
        seen[spec.id] = display
        target = repo.partner_file(spec.id)
        if target.exists() and not update:
            problems.append(
                Problem(
                    display,
                    "id",
                    f"partner {spec.id!r} already exists (partners/{spec.id}.yaml); pass --update to change it",
                )
            )
            continue
        change.files[target] = path.read_text(encoding="utf-8")
        change.files[partner_stack(spec.id).config_file(repo.root)] = partner_stack_text(
            spec, catalog, _kept_config(repo, spec.id)
        )
        change.stacks.append(partner_stack(spec.id))
        change.locks.append(f"partner-{spec.id}")
        change.operations.append((partner_stack(spec.id), "up"))
        change.notes.append(
            f"{spec.id}: {'changed partner' if target.exists() else 'new partner'} ({spec.tier}, {spec.home_region})"
        )
    if problems:
        raise InputError(problems)
    return change


def recheck_onboarding(repo: Repo, change: Change, update: bool) -> None:
    """Under the locks: a run that won the race may have written the partner since we validated."""
    if update:
        return
    for stack in change.stacks:
        if repo.partner_file(stack.key).exists():
            raise InputError.single(
                f"partners/{stack.key}.yaml", "id", f"partner {stack.key!r} was onboarded by another run"
            )


def plan_offboarding(repo: Repo, partner_id: str, purge: bool, today: datetime.date) -> Change:
    stack = partner_stack(partner_id)  # validates the id: no path tricks reach the filesystem
    spec_file = repo.partner_file(stack.key)
    if not spec_file.is_file():
        raise InputError.single("arguments", "ID", f"no partner {partner_id!r} (no partners/{partner_id}.yaml)")
    spec = load_spec(spec_file, f"partners/{partner_id}.yaml")
    catalog = load_catalog(repo.root / "regions")
    config = load_stack_config(repo.root, stack).file_values
    offboarded_on = config.get("platform:offboardedOn") or ""
    change = Change(stacks=[stack], locks=[f"partner-{partner_id}"])
    if not purge:
        if offboarded_on:
            raise InputError.single(
                "arguments", "ID", f"partner {partner_id!r} was already offboarded on {offboarded_on}"
            )
        change.files[stack.config_file(repo.root)] = partner_stack_text(
            spec, catalog, {**_kept_config(repo, partner_id), "platform:offboardedOn": today.isoformat()}
        )
        change.operations.append((stack, "up"))
        change.notes.append(
            f"{partner_id}: offboarded; its namespace, gateway consumer and warehouse access go, "
            "its data (buckets, keys, schema) is kept until the retention runs out"
        )
        return change
    retention = catalog.strictest_retention_days(spec.countries)
    if not offboarded_on:
        raise InputError.single(
            "arguments",
            "--purge",
            f"partner {partner_id!r} is still active: offboard it first; its data may be purged {retention} days later",
        )
    try:
        since = datetime.date.fromisoformat(offboarded_on)
    except ValueError:
        raise InputError.single(
            f"stacks/Pulumi.{stack}.yaml", "config.platform:offboardedOn", "not a YYYY-MM-DD date"
        ) from None
    purge_from = since + datetime.timedelta(days=retention)
    if today < purge_from:
        raise InputError.single(
            "arguments",
            "--purge",
            f"the retention of {partner_id!r}'s countries ({', '.join(spec.countries)}: {retention} days from "
            f"{since.isoformat()}) runs until {purge_from.isoformat()}; purging is refused before then",
        )
    # The retain flags live in the state: an update with purgeData lifts them, then the destroy deletes the data.
    change.files[stack.config_file(repo.root)] = partner_stack_text(
        spec,
        catalog,
        {**_kept_config(repo, partner_id), "platform:offboardedOn": offboarded_on, "platform:purgeData": True},
    )
    change.operations += [(stack, "up"), (stack, "destroy")]
    change.delete_after_apply += [stack.config_file(repo.root), spec_file]
    change.notes.append(
        f"{partner_id}: retention ran out on {purge_from.isoformat()}; data-bearing resources are no longer retained "
        "(apply, then destroy the stack to delete them)"
    )
    return change


def plan_country_launch(repo: Repo, country: str, region: str | None) -> Change:
    catalog = load_catalog(repo.root / "regions")
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
    verdict = catalog.residency_verdict(code, region)
    if verdict is ResidencyVerdict.FORBIDDEN:
        raise InputError.single(
            "arguments",
            "--region",
            f"{code} requires data residency and may only be served from: {', '.join(serving)}",
        )
    stack = region_stack(region)
    path = stack.config_file(repo.root)
    doc = load_yaml_file(path, f"stacks/{path.name}") or {}
    config = dict(doc.get("config") or {})
    launched = list(config.get("platform:launchedCountries") or [])
    change = Change(stacks=[stack], locks=[str(stack)])
    if verdict is ResidencyVerdict.WARN:
        change.warnings.append(
            f"{code} prefers data residency in {', '.join(serving)}; {region} needs a documented transfer basis"
        )
    if code in launched:
        change.notes.append(f"{code} is already launched in {region}; nothing to change")
        change.stacks = []
        return change
    config["platform:launchedCountries"] = [*launched, code]
    header = "# Written by platformctl (launch-country); reviewed in pull requests.\n"
    change.files[path] = header + dump_yaml({"config": config})
    retention = catalog.strictest_retention_days(config["platform:launchedCountries"])
    change.operations.append((stack, "up"))
    change.notes.append(f"{code} launched in {region}; the region's data now expires after {retention} days")
    return change


def write_change(repo: Repo, change: Change, recheck: Any = None) -> None:
    """Hold every lock, re-check, then write each file atomically (or delete it)."""
    with ExitStack() as locks:
        for name in sorted(set(change.locks)):
            locks.enter_context(exclusive(repo.state_dir, name))
        if recheck is not None:
            recheck()
        for path, text in change.files.items():
            if text is None:
                path.unlink(missing_ok=True)
            else:
                write_atomic(path, text)


@contextmanager
def overlay(repo: Repo, change: Change) -> Iterator[Path]:
    """A scratch view of the repository with the change applied, for --dry-run plans; the repo is untouched."""
    with tempfile.TemporaryDirectory(prefix="platformctl-dry-run-") as tmp:
        root = Path(tmp)
        for name in OVERLAY_LINKS:
            if (repo.root / name).exists():
                (root / name).symlink_to(repo.root / name)
        for folder in ("partners", "stacks"):
            (root / folder).mkdir()
            for item in (repo.root / folder).iterdir():
                if item.is_file():
                    (root / folder / item.name).symlink_to(item)
        for path, text in change.files.items():
            target = root / path.relative_to(repo.root)
            target.unlink(missing_ok=True)
            if text is not None:
                target.write_text(text, encoding="utf-8")
        yield root
