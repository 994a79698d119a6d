"""`platformctl marketplace build`: the marketplace as a static site and `marketplace.json`.

Pages hold no script at all and say so in their Content-Security-Policy (`default-src 'none'`), and every value
that came from a spec is HTML-escaped where it is written: a name or description carrying markup shows as text.
Filtering by category is a static page per category (it works without scripts); links are relative, so the site
can be served from any path or opened from disk. Install counts and conformance results come from the regional
warehouses (`marketplace_figures`); their text is escaped like a spec's.
"""

from __future__ import annotations

import html
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

from fleet.repo import Repo
from foundation.currencies import minor_exponent
from foundation.errors import InputError
from foundation.yamlio import write_atomic
from integrations.spec import CATEGORIES, IntegrationSpec
from platformctl.marketplace_figures import (
    Figures,
    RegionResult,
    check_local_warehouses,
    check_results_folder,
    check_warehouse_urls,
    read_results_folder,
    read_warehouses,
    summary,
)

CSP = "default-src 'none'; style-src 'self'; img-src 'self'; base-uri 'none'; form-action 'none'"
STYLE = """body{font-family:system-ui,sans-serif;margin:2rem auto;max-width:60rem;padding:0 1rem;color:#212529}
nav a{margin-right:.75rem}article{border:1px solid #ddd;border-radius:6px;padding:1rem;margin:1rem 0}
.muted{color:#6c757d}.pass{color:#1e7e34}.fail{color:#b02a37}dt{font-weight:600}dd{margin:0 0 .5rem 0}
"""


@dataclass(frozen=True)
class Listing:
    spec: IntegrationSpec
    """The published spec."""
    state: str
    """published or suspended."""
    installs: int
    """Partners with it installed now (the warehouses' INSTALLS rows not removed)."""
    conformance: Mapping[str, RegionResult]
    """The latest conformance result per region (empty: never measured)."""


def price_text(amount: int, currency: str) -> str:
    """Minor units as an amount in the currency's own exponent (900 EUR -> 9.00 EUR)."""
    exponent = minor_exponent(currency)
    value = Decimal(amount).scaleb(-exponent)
    return f"{value:.{exponent}f} {currency}"


def listed_specs(repo: Repo) -> dict[str, tuple[IntegrationSpec, str]]:
    """Every published (or suspended) integration's spec and state, by id."""
    found: dict[str, tuple[IntegrationSpec, str]] = {}
    for iid in repo.integration_ids():
        record = repo.review_record(iid)
        if record is not None and record.state in ("published", "suspended"):
            found[iid] = (repo.integration(iid), record.state)
    return found


def listings(repo: Repo, figures: Figures) -> list[Listing]:
    """Every published (or suspended) integration with its install count and latest conformance per region."""
    return [
        Listing(spec, state, figures.installs(iid), figures.conformance.get(iid, {}))
        for iid, (spec, state) in listed_specs(repo).items()
    ]


def gather(repo: Repo, warehouses: Sequence[str], results: Path | None = None) -> list[Listing]:
    """The listings with their figures: from each warehouse URL (relative local: paths taken from the repository),
    then the results folder if given (a folder that is not there: InputError naming --results)."""
    specs = {iid: spec for iid, (spec, _) in listed_specs(repo).items()}
    figures = read_warehouses(warehouses, repo.root, specs)
    if results is not None:
        read_results_folder(results, figures, specs)
    return listings(repo, figures)


def document(repo: Repo, items: list[Listing]) -> dict[str, Any]:
    """marketplace.json: the listing for machines."""
    scopes = repo.api_catalog().scopes
    return {
        "categories": list(CATEGORIES),
        "integrations": [
            {
                "id": item.spec.id,
                "name": item.spec.name,
                "category": item.spec.category,
                "state": item.state,
                "developer": {"id": item.spec.developer.id, "name": item.spec.developer.legal_name},
                "description": item.spec.description,
                "pricing": dict(item.spec.pricing.monthly) if item.spec.pricing else {},
                "scopes": [{"scope": s, "description": scopes[s].description} for s in item.spec.scopes if s in scopes],
                "data_classes": list(item.spec.data_classes),
                "regions": list(item.spec.regions),
                "installs": item.installs,
                "conformance": summary(item.conformance),
                "page": f"integrations/{item.spec.id}.html",
            }
            for item in items
        ],
    }


def _page(title: str, body: str, depth: int) -> str:
    up = "../" * depth
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="{CSP}">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f'<title>{html.escape(title)}</title><link rel="stylesheet" href="{up}style.css"></head><body>'
        f'<header><h1><a href="{up}index.html">Integration marketplace</a></h1></header>{body}</body></html>\n'
    )


def _nav(depth: int, counts: dict[str, int], current: str | None) -> str:
    up = "../" * depth
    current_all = ' aria-current="page"' if current is None else ""
    links = [f'<a href="{up}index.html"{current_all}>All</a>']
    for category in CATEGORIES:
        if counts.get(category):
            mark = ' aria-current="page"' if category == current else ""
            links.append(
                f'<a href="{up}category/{category}.html" data-category="{category}"{mark}>'
                f"{html.escape(category)} ({counts[category]})</a>"
            )
    return f'<nav aria-label="Categories">{"".join(links)}</nav>'


def _pricing(spec: IntegrationSpec) -> str:
    if spec.pricing is None:
        return "Free"
    return ", ".join(f"{price_text(amount, cur)} / month" for cur, amount in sorted(spec.pricing.monthly.items()))


def _percent(share: float) -> str:
    return f"{share * 100:.2f} %"


def _conformance(results: Mapping[str, RegionResult]) -> str:
    """Per region: the verdict and its figures; every text escaped (it came from a warehouse row or a file)."""
    if not results:
        return '<span class="muted">not measured yet</span>'
    items = []
    for region in sorted(results):
        r = results[region]
        verdict = f'<span class="{"pass" if r.passed else "fail"}">{"passed" if r.passed else "failed"}</span>'
        figures = (
            f"p95 {r.p95_ms:.1f} ms, {r.requests_per_second:.1f} requests/s, {_percent(r.error_rate)} errors, "
            f"checked {r.checked_at or 'at an unknown time'}"
        )
        earlier = (
            ""
            if r.current_image
            else ' <span class="muted">(an earlier image was measured)</span>'
            if r.image_digest
            else ' <span class="muted">(the measured image is not recorded)</span>'
        )
        items.append(
            f'<li data-region="{html.escape(region, quote=True)}">{html.escape(region)}: {verdict} '
            f"({html.escape(figures)}){earlier}</li>"
        )
    return f"<ul>{''.join(items)}</ul>"


def _verdict(results: Mapping[str, RegionResult]) -> str:
    if not results:
        return "conformance not measured yet"
    return "conformance passed" if all(r.passed for r in results.values()) else "conformance failed"


def _installs(count: int) -> str:
    return f"{count} install{'' if count == 1 else 's'}"


def _card(item: Listing, depth: int) -> str:
    spec, up = item.spec, "../" * depth
    return (
        f'<article data-category="{spec.category}" data-id="{spec.id}">'
        f'<h2><a href="{up}integrations/{spec.id}.html">{html.escape(spec.name)}</a></h2>'
        f'<p class="muted">by {html.escape(spec.developer.legal_name)} · {html.escape(spec.category)}</p>'
        f"<p>{html.escape(spec.description)}</p><p>{html.escape(_pricing(spec))}</p>"
        f'<p class="muted" data-installs="{item.installs}">{_installs(item.installs)} · '
        f"{_verdict(item.conformance)}</p></article>"
    )


PROJECT_FILE_SUFFIXES = (".py", ".yaml", ".yml", ".toml", ".md")
"""A top-level folder holding such a file is one of the project's own (specs, stacks, code, docs)."""


def check_out_folder(root: Path, out: Path) -> None:
    """The site's folder is its own: never the project's root (index.html beside Pulumi.yaml, pages in integrations/
    beside the specs) nor inside a hidden folder (.git, .platformctl) or one of the project's folders."""
    target, base = out.resolve(), root.resolve()
    if target == base:
        raise InputError.single(str(out), "--out", "is the project's root: give the site a folder of its own (site)")
    if base not in target.parents:
        return
    top = base / target.relative_to(base).parts[0]
    if top.name.startswith(".") or (
        top.is_dir() and any(f.is_file() and f.suffix in PROJECT_FILE_SUFFIXES for f in top.iterdir())
    ):
        raise InputError.single(
            str(out), "--out", f"is inside the project's {top.name}/ folder: give the site a folder of its own (site)"
        )


def build(repo: Repo, out: Path, warehouses: Sequence[str], results: Path | None = None) -> dict[str, Any]:
    """Write the site into `out` (index, a page per category and per integration, marketplace.json), with install
    counts and conformance results from `warehouses` (and `results`, a folder of the job's JSON, if given)."""
    if out.exists() and not out.is_dir():
        raise InputError.single(str(out), "--out", "exists and is not a directory")
    check_out_folder(repo.root, out)
    check_warehouse_urls(warehouses)  # refused before --out is made
    check_local_warehouses(warehouses, repo.root)
    if results is not None:
        check_results_folder(results)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:  # under a file, in /proc or /sys, no permission: the argument is wrong, not the tool
        raise InputError.single(str(out), "--out", f"cannot create it: {exc.strerror or exc}") from None
    items = gather(repo, warehouses, results)
    scopes = repo.api_catalog().scopes
    counts: dict[str, int] = {}
    for item in items:
        counts[item.spec.category] = counts.get(item.spec.category, 0) + 1
    files: dict[str, str] = {"style.css": STYLE}
    cards = "".join(_card(item, 0) for item in items) or '<p class="muted">No integrations are published yet.</p>'
    files["index.html"] = _page("Integration marketplace", _nav(0, counts, None) + f"<main>{cards}</main>", 0)
    for category in CATEGORIES:
        if not counts.get(category):
            continue
        chosen = "".join(_card(item, 1) for item in items if item.spec.category == category)
        files[f"category/{category}.html"] = _page(
            f"{category} integrations", _nav(1, counts, category) + f"<main><h2>{category}</h2>{chosen}</main>", 1
        )
    for item in items:
        spec = item.spec
        asked = "".join(
            f'<li>{html.escape(scopes[s].description)} <span class="muted">({html.escape(s)})</span></li>'
            for s in spec.scopes
            if s in scopes
        )
        state = "" if item.state == "published" else '<p class="fail">Temporarily unavailable (suspended).</p>'
        body = (
            f"{_nav(1, counts, spec.category)}<main><h2>{html.escape(spec.name)}</h2>{state}"
            f"<p>{html.escape(spec.description)}</p><dl>"
            f"<dt>Developer</dt><dd>{html.escape(spec.developer.legal_name)} "
            f"({html.escape(spec.developer.website)})</dd>"
            f'<dt>Category</dt><dd><a href="../category/{spec.category}.html">{spec.category}</a></dd>'
            f"<dt>Price</dt><dd>{html.escape(_pricing(spec))}</dd>"
            f"<dt>It asks to</dt><dd><ul>{asked or '<li>nothing on your tenant</li>'}</ul></dd>"
            f"<dt>Data it processes</dt><dd>{html.escape(', '.join(spec.data_classes) or 'none')}</dd>"
            f"<dt>Regions</dt><dd>{html.escape(', '.join(spec.regions))}</dd>"
            f"<dt>Conformance</dt><dd>{_conformance(item.conformance)}</dd>"
            f'<dt>Installs</dt><dd data-installs="{item.installs}">{item.installs}</dd></dl></main>'
        )
        files[f"integrations/{spec.id}.html"] = _page(f"{spec.name} - integration marketplace", body, 1)
    doc = document(repo, items)
    files["marketplace.json"] = json.dumps(doc, indent=1, sort_keys=True) + "\n"
    try:
        for relative, text in files.items():
            write_atomic(out / relative, text)
    except OSError as exc:
        raise InputError.single(str(out), "--out", f"cannot write the site there: {exc.strerror or exc}") from None
    return {"out": str(out), "files": sorted(files), "integrations": [i["id"] for i in doc["integrations"]]}
