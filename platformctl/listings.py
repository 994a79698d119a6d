"""Rows for `platformctl partners|regions|countries|stacks`."""

from __future__ import annotations

from typing import Any

from partners.spec import load_spec
from platformctl.errors import InputError, Problem
from platformctl.repo import Repo
from platformctl.stackconfig import load_stack_config
from platformctl.stacks import partner_stack, region_stack
from regions.catalog import Catalog, load_catalog


def partners(repo: Repo) -> list[dict[str, Any]]:
    rows = []
    for path in repo.partner_spec_files():
        spec = load_spec(path, repo.display(path))
        stack = partner_stack(spec.id)
        config = load_stack_config(repo.root, stack).file_values if stack.config_file(repo.root).is_file() else {}
        rows.append(
            {
                "id": spec.id,
                "company_name": spec.company_name,
                "tier": spec.tier,
                "home_region": spec.home_region,
                "countries": list(spec.countries),
                "domain": spec.domain,
                "status": "offboarded" if config.get("platform:offboardedOn") else "active",
            }
        )
    return rows


def regions(repo: Repo) -> list[dict[str, Any]]:
    catalog = load_catalog(repo.root / "regions")
    rows = []
    for code, region in catalog.regions.items():
        stack = region_stack(code)
        launched: list[str] = []
        if stack.config_file(repo.root).is_file():
            launched = load_stack_config(repo.root, stack).values.get("platform:launchedCountries") or []
        rows.append(
            {
                "code": code,
                "aws_region": region.aws_region,
                "serves": list(region.serves),
                "launched": launched,
                "retention_days": catalog.strictest_retention_days(launched),
            }
        )
    return rows


def countries(repo: Repo) -> list[dict[str, Any]]:
    catalog = load_catalog(repo.root / "regions")
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


def validate(repo: Repo, paths: list[Any]) -> list[str]:
    """Validate the catalog, the tier table, the API catalog and every spec (or the given files).

    Returns residency warnings; raises one InputError carrying every problem found."""
    from gateway.model import load_api_catalog
    from partners.spec import check_against_catalog
    from partners.tiers import load_tiers
    from platformctl import telephony

    problems: list[Problem] = []
    warnings: list[str] = []
    catalog: Catalog | None = None
    try:
        catalog = load_catalog(repo.root / "regions")
        telephony.load_telephony(catalog, repo.root / "regions")
    except InputError as exc:
        problems.extend(exc.problems)
    for loader in (
        lambda: load_tiers(repo.root / "partners" / "tiers.yaml"),
        lambda: load_api_catalog(repo.root / "gateway" / "apis.yaml"),
    ):
        try:
            loader()
        except InputError as exc:
            problems.extend(exc.problems)
    files = paths or repo.partner_spec_files()
    for path in files:
        display = repo.display(path)
        try:
            spec = load_spec(path, display)
            if catalog is not None:
                warnings += check_against_catalog(spec, catalog, display)
                warnings += telephony.check_spec(repo, spec, catalog, display)
            if not paths and path.stem != spec.id:
                problems.append(Problem(display, "id", f"is {spec.id!r} but the file is named {path.name}"))
        except InputError as exc:
            problems.extend(exc.problems)
    if not paths:
        for stack in repo.stack_names():
            try:
                load_stack_config(repo.root, stack)
            except InputError as exc:
                problems.extend(exc.problems)
    if problems:
        raise InputError(problems)
    return warnings
