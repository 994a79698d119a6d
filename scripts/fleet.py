"""Generate a fleet of partner specs and stacks in a copy of the platform repository (for benchmarks and tests)."""

from __future__ import annotations

import shutil
from pathlib import Path

from fleet.program import program_files
from foundation.naming import TIER_NAMES
from foundation.stacks import partner_stack
from foundation.yamlio import dump_yaml
from partners.spec import PartnerSpec
from platformctl.partner_changes import new_partner_stack_text
from regions.catalog import load_catalog


def copy_repo(source: Path, target: Path) -> Path:
    """Copy the program's files (as derived from its imports), the specs and the stack files into `target`."""
    target.mkdir(parents=True, exist_ok=True)
    for relative in program_files(source):
        path = source / relative
        if path.is_file():
            (target / relative).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, target / relative)
    for folder in ("stacks", "partners", "integrations"):
        if not (source / folder).is_dir():
            continue
        shutil.copytree(
            source / folder, target / folder, ignore=shutil.ignore_patterns("__pycache__"), dirs_exist_ok=True
        )
    return target


def generate_partners(root: Path, count: int) -> list[str]:
    """Write `count` valid partner specs and their stack files, spread over every region and tier."""
    catalog = load_catalog(root / "regions")
    regions = list(catalog.regions.values())
    ids = []
    for index in range(count):
        region = regions[index % len(regions)]
        partner_id = f"fleet-{index:04d}"
        spec = {
            "id": partner_id,
            "company_name": f"Fleet Partner {index:04d} Ltd",
            "tier": TIER_NAMES[index % len(TIER_NAMES)],
            "domain": f"voice.{partner_id}.example",
            "home_region": region.code,
            "countries": list(region.serves[: 1 + index % len(region.serves)]),
            "contact": {"name": "Ops Team", "email": f"ops@{partner_id}.example"},
            "branding": {
                "primary_color": "#0A84FF",
                "logo_url": f"https://cdn.{partner_id}.example/logo.svg",
                "voice_greeting": f"Thanks for calling partner {index}.",
            },
            "billing": {"currency": catalog.country(region.serves[0]).currency, "payout_method": "stripe_connect"},
        }
        (root / "partners" / f"{partner_id}.yaml").write_text(dump_yaml(spec))
        stack_file = partner_stack(partner_id).config_file(root)
        stack_file.write_text(new_partner_stack_text(PartnerSpec.model_validate(spec), catalog))
        ids.append(partner_id)
    return ids
