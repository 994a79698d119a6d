"""Country launches: the country's region stack gains it (`platformctl launch-country CC`).

The region is chosen (and the residency rules checked) before the region's lock is taken; the change itself is
decided on a fresh read under that lock and written by `changes.carry_out`.
"""

from __future__ import annotations

import re

from fleet.checks import launched_country_problems
from fleet.repo import Repo
from foundation.errors import InputError
from foundation.stacks import region_stack
from platformctl.changes import Change, edit_stack_file
from regions.catalog import ResidencyVerdict


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
