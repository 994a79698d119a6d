"""Rows for `platformctl partners|regions|countries|stacks`."""

from __future__ import annotations

import datetime
from pathlib import Path
from typing import Any

from fleet.checks import fleet_problems
from fleet.repo import Repo
from foundation.errors import InputError, Problem
from platformctl import journal as journals


def partners(repo: Repo) -> list[dict[str, Any]]:
    rows = []
    for partner_id in repo.partner_ids():
        spec = repo.spec(partner_id)
        rows.append(
            {
                "id": spec.id,
                "company_name": spec.company_name,
                "tier": spec.tier,
                "home_region": spec.home_region,
                "countries": list(spec.countries),
                "domain": spec.domain,
                "status": "offboarded" if repo.offboarded_on(spec.id) else "active",
            }
        )
    return rows


def regions(repo: Repo) -> list[dict[str, Any]]:
    catalog = repo.catalog()
    rows = []
    for code, region in catalog.regions.items():
        launched = repo.launched_countries(code)
        rows.append(
            {
                "code": code,
                "aws_region": region.aws_region,
                "serves": list(region.serves),
                "launched": launched,
                "retention_days": catalog.strictest_retention_days([cc for cc in launched if cc in catalog.countries]),
            }
        )
    return rows


def countries(repo: Repo) -> list[dict[str, Any]]:
    catalog = repo.catalog()
    return [
        {
            "code": code,
            "name": country.name,
            "currency": country.currency,
            "languages": list(country.languages),
            "regime": country.compliance.regime,
            "residency": country.compliance.residency.value,
            "retention_days": country.compliance.retention_days,
            "regions": catalog.regions_serving(code),
        }
        for code, country in sorted(catalog.countries.items())
    ]


def stacks(repo: Repo) -> list[dict[str, Any]]:
    return [{"stack": str(s), "kind": s.kind.value, "file": f"stacks/Pulumi.{s}.yaml"} for s in repo.stack_names()]


def validate(repo: Repo, paths: list[Path], today: datetime.date) -> list[str]:
    """Validate the catalogs, the tier table, the API catalog, and every spec and stack file (or the given spec
    files): types, then meaning (see fleet.checks). Returns warnings; raises one InputError with every problem."""
    problems: list[Problem] = []
    for loader in (repo.catalog, repo.tiers, repo.api_catalog, repo.telephony):
        try:
            loader()
        except InputError as exc:
            problems.extend(exc.problems)
    if problems:
        raise InputError(problems)  # specs cannot be checked against a broken catalog
    if paths:
        for path in paths:
            display = repo.display(path)
            try:
                repo.check_spec(repo.spec_at(path), display)
            except InputError as exc:
                problems.extend(exc.problems)
    else:
        try:
            ids = repo.partner_ids()
        except InputError as exc:
            problems.extend(exc.problems)
            ids = []
        for partner_id in ids:
            try:
                repo.spec(partner_id)
            except InputError as exc:
                problems.extend(exc.problems)
        problems += _integration_problems(repo)
        try:
            problems += fleet_problems(repo, today)
        except InputError as exc:
            problems.extend(exc.problems)
        problems += [
            Problem(
                f".platformctl/journal/{j.path.name}",
                "",
                f"an interrupted change to {', '.join(j.locks)} "
                "is pending: the next change to those stacks recovers it",
            )
            for j in journals.pending(repo.root, repo.state_dir)
        ]
        problems += [
            Problem(f".platformctl/journal/{path.name}", "", "is not a readable change journal; remove it")
            for path in journals.unreadable(repo.state_dir, repo.root)
        ]
    if problems:
        raise InputError(list(dict.fromkeys(problems)))
    return list(repo.warnings)


def _integration_problems(repo: Repo) -> list[Problem]:
    """Every integration spec and review record reads; a published one is still the digest that was approved."""
    from integrations.review import published_spec

    problems: list[Problem] = []
    try:
        ids = repo.integration_ids()
    except InputError as exc:
        return list(exc.problems)
    for integration_id in ids:
        try:
            repo.integration(integration_id)
            record = repo.review_record(integration_id)
            if record is not None and record.state in ("published", "suspended"):
                published_spec(repo, integration_id)
        except InputError as exc:
            problems.extend(exc.problems)
    return problems
