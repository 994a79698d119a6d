"""What the fleet's files must mean, beyond their types: launched countries, offboarding dates, purge flags,
secrets, the pairing of specs and stack files, and who owns which domain.

`validate` reports all of these; changes check the files they are about to write with the same functions;
the program refuses a region stack whose launched countries break them.
"""

from __future__ import annotations

import datetime
import ipaddress
import re
from collections.abc import Iterable
from typing import Any

from fleet.repo import Repo
from fleet.stackconfig import SECRET_PLACEHOLDER
from foundation.errors import InputError, Problem
from foundation.stacks import StackKind, StackName, partner_stack
from regions.catalog import Catalog, ResidencyVerdict

INTERNAL_SUFFIXES = ("localhost", "local", "internal", "svc", "cluster.local", "arpa", "invalid", "test", "onion")
"""Names that resolve inside a cluster, a host or a private network, or never publicly (RFC 6761, 6762, 7686):
a partner domain must be a public name."""


def normalize_domain(domain: str) -> str:
    """Compare domains case-insensitively, with a trailing root dot ignored."""
    return domain.strip().lower().removesuffix(".")


def launched_country_problems(catalog: Catalog, region: str, launched: Any, source: str) -> list[Problem]:
    """`platform:launchedCountries` of a region stack: a list of known, distinct countries it may serve."""
    field = "config.platform:launchedCountries"
    if not isinstance(launched, list):
        return [Problem(source, field, "must be a list of ISO 3166-1 alpha-2 codes")]
    problems = []
    seen: set[str] = set()
    for index, code in enumerate(launched):
        where = f"{field}.{index}"
        if isinstance(code, bool):
            problems.append(Problem(source, where, "a country code was read as a boolean: quote it (YAML's NO)"))
            continue
        if not isinstance(code, str) or code not in catalog.countries:
            problems.append(Problem(source, where, f"unknown country {code!r}"))
            continue
        if code in seen:
            problems.append(Problem(source, where, f"{code} is listed more than once"))
        seen.add(code)
        if region in catalog.regions and catalog.residency_verdict(code, region) is ResidencyVerdict.FORBIDDEN:
            serving = ", ".join(catalog.regions_serving(code))
            problems.append(
                Problem(source, where, f"{code} requires data residency and may only be served from: {serving}")
            )
    return problems


def parse_offboarding_date(value: Any, source: str, today: datetime.date) -> datetime.date:
    field = "config.platform:offboardedOn"
    if not isinstance(value, str):
        raise InputError.single(source, field, "must be a YYYY-MM-DD date")
    try:
        # fromisoformat also takes week dates (2026-W01-1), also ten characters: the shape is checked first.
        if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", value):
            raise ValueError(value)
        day = datetime.date.fromisoformat(value)
    except ValueError:
        raise InputError.single(source, field, f"{value!r} is not a YYYY-MM-DD date") from None
    if day > today:
        raise InputError.single(source, field, f"{value} is in the future: a partner is offboarded on or before today")
    return day


def purge_allowed_from(offboarded: datetime.date, retention_days: int, source: str) -> datetime.date:
    try:
        return offboarded + datetime.timedelta(days=retention_days)
    except OverflowError:
        raise InputError.single(source, "config.platform:offboardedOn", "date is out of range") from None


def stack_problems(repo: Repo, stack: StackName, today: datetime.date) -> list[Problem]:
    """One stack file's meaning (its types were checked when it was read)."""
    source = f"stacks/Pulumi.{stack}.yaml"
    try:
        config = repo.stack_config(stack)
    except InputError as exc:
        return list(exc.problems)
    catalog = repo.catalog()
    problems: list[Problem] = []
    declarations = repo.declarations()
    for key, value in config.file_values.items():
        declaration = declarations.get(key)
        if getattr(declaration, "secret", False) and value != SECRET_PLACEHOLDER and value not in ("", None):
            problems.append(
                Problem(source, f"config.{key}", "is a secret and must be stored encrypted (`secure:`), not in clear")
            )
    if stack.kind is StackKind.REGION:
        if stack.subject not in catalog.regions:
            problems.append(Problem(source, "", f"region {stack.subject!r} is not in regions/regions.yaml"))
        launched = config.values.get("platform:launchedCountries") or []
        problems += launched_country_problems(catalog, stack.subject, launched, source)
        region = catalog.regions.get(stack.subject)
        aws_region = config.file_values.get("aws:region")
        if region is not None and aws_region is not None and aws_region != region.aws_region:
            problems.append(
                Problem(
                    source, "config.aws:region", f"is {aws_region!r}; region {stack.subject} is {region.aws_region}"
                )
            )
        for key in ("platform:offboardedOn", "platform:purgeData"):
            if key in config.file_values:
                problems.append(Problem(source, f"config.{key}", "belongs to partner stacks only"))
    elif stack.kind is StackKind.PARTNER:
        problems += _partner_stack_problems(repo, stack, config.file_values, source, today)
    else:
        for key in ("platform:launchedCountries", "platform:offboardedOn", "platform:purgeData"):
            if key in config.file_values:
                problems.append(Problem(source, f"config.{key}", "does not belong to the global stack"))
    return problems


def _partner_stack_problems(
    repo: Repo, stack: StackName, values: dict[str, Any], source: str, today: datetime.date
) -> list[Problem]:
    problems: list[Problem] = []
    if not repo.partner_file(stack.subject).is_file():
        return []  # said by pairing_problems
    try:
        spec = repo.spec(stack.subject)
    except InputError:
        return []  # the spec's own problems are reported with the spec
    catalog = repo.catalog()
    if "platform:launchedCountries" in values:
        problems.append(Problem(source, "config.platform:launchedCountries", "belongs to region stacks only"))
    expected_region = catalog.regions[spec.home_region].aws_region if spec.home_region in catalog.regions else None
    if expected_region and values.get("aws:region") not in (None, expected_region):
        problems.append(
            Problem(
                source,
                "config.aws:region",
                f"is {values.get('aws:region')!r}; the partner's home region {spec.home_region} is {expected_region}",
            )
        )
    offboarded = values.get("platform:offboardedOn")
    purge = values.get("platform:purgeData")
    if offboarded:
        try:
            day = parse_offboarding_date(offboarded, source, today)
            if purge is True:
                retention = catalog.strictest_retention_days(spec.countries)
                purge_from = purge_allowed_from(day, retention, source)
                if today < purge_from:
                    problems.append(
                        Problem(
                            source,
                            "config.platform:purgeData",
                            f"retention of {', '.join(spec.countries)} ({retention} days from {day}) runs until "
                            f"{purge_from}: data may not be purged before then",
                        )
                    )
        except InputError as exc:
            problems += exc.problems
    elif purge is True:
        problems.append(Problem(source, "config.platform:purgeData", "is set for an active partner: offboard it first"))
    return problems


def pairing_problems(repo: Repo) -> list[Problem]:
    """Every partner spec has its stack file and every partner stack file its spec."""
    problems = []
    if not repo.has_stack(StackName(StackKind.GLOBAL, "")):
        problems.append(
            Problem("stacks/Pulumi.global.yaml", "", "missing: every region and partner reads the global stack")
        )
    ids = set(repo.partner_ids())
    stacks = {s.subject for s in repo.stack_names() if s.kind is StackKind.PARTNER}
    for partner_id in sorted(ids - stacks):
        problems.append(
            Problem(
                f"partners/{partner_id}.yaml", "", f"spec without a stack file: stacks/Pulumi.partner-{partner_id}.yaml"
            )
        )
    for partner_id in sorted(stacks - ids):
        problems.append(
            Problem(
                f"stacks/Pulumi.partner-{partner_id}.yaml", "", f"stack file without a spec: partners/{partner_id}.yaml"
            )
        )
    return problems


def platform_zone(repo: Repo) -> str:
    global_stack = StackName(StackKind.GLOBAL, "")
    zone = ""
    if repo.has_stack(global_stack):
        try:
            zone = str(repo.stack_config(global_stack).values.get("platform:dnsZone") or "")
        except InputError:
            zone = ""
    if not zone:
        declared = repo.declarations().get("platform:dnsZone")
        zone = str(getattr(declared, "default", "") or "")
    return normalize_domain(zone)


def domain_problems(domain: str, zone: str, source: str, field: str = "domain") -> list[Problem]:
    """A partner domain on its own: public, not an address, not the platform's zone or under it."""
    name = normalize_domain(domain)
    try:
        ipaddress.ip_address(name)
        return [Problem(source, field, "must be a domain name, not an IP address")]
    except ValueError:
        pass
    for suffix in INTERNAL_SUFFIXES:
        if name == suffix or name.endswith(f".{suffix}"):
            return [
                Problem(source, field, f"{domain!r} is an internal or reserved name (.{suffix}), not a public domain")
            ]
    if zone and (name == zone or name.endswith(f".{zone}")):
        return [
            Problem(source, field, f"{domain!r} is in the platform's own zone {zone}; partner names there are ours")
        ]
    return []


def _overlap(a: str, b: str) -> bool:
    return a == b or a.endswith(f".{b}") or b.endswith(f".{a}")


def fleet_domain_problems(domains: dict[str, tuple[str, str]], zone: str) -> list[Problem]:
    """Domains of the fleet (partner id -> (domain, source)): each valid alone, and no two equal or nested."""
    problems: list[Problem] = []
    for domain, source in sorted(domains.values()):
        problems += domain_problems(domain, zone, source)
    items = sorted((normalize_domain(domain), partner_id, source) for partner_id, (domain, source) in domains.items())
    for i, (name, partner_id, source) in enumerate(items):
        for other, other_id, other_source in items[i + 1 :]:
            if _overlap(name, other):
                # Said on both sides: whichever file a reader opens names the clash.
                relation = "is the same as" if name == other else "overlaps"
                problems.append(
                    Problem(source, "domain", f"{name} {relation} {other}, the domain of partner {other_id!r}")
                )
                problems.append(
                    Problem(other_source, "domain", f"{other} {relation} {name}, the domain of partner {partner_id!r}")
                )
    return problems


def fleet_domains(repo: Repo, skip: Iterable[str] = ()) -> tuple[dict[str, tuple[str, str]], list[str]]:
    """The fleet's domains by partner id (skipping `skip`), and warnings for specs that could not be read."""
    table, unreadable = repo.partner_domains()
    skipped = set(skip)
    domains = {partner_id: entry for partner_id, entry in table.items() if partner_id not in skipped}
    warnings = [
        f"partners/{partner_id}.yaml could not be read, its domain is not compared: {problem}"
        for partner_id, problem in unreadable.items()
        if partner_id not in skipped
    ]
    return domains, warnings


def fleet_problems(repo: Repo, today: datetime.date) -> list[Problem]:
    """Everything `validate` checks across files: pairing, every stack's meaning, domain ownership."""
    problems = pairing_problems(repo)
    for stack in repo.stack_names():
        problems += stack_problems(repo, stack, today)
    domains, _ = fleet_domains(repo)
    problems += fleet_domain_problems(domains, platform_zone(repo))
    return problems


def offboarded_partner(repo: Repo, partner_id: str) -> bool:
    stack = partner_stack(partner_id)
    return repo.has_stack(stack) and bool(repo.stack_config(stack).file_values.get("platform:offboardedOn"))
