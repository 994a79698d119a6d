"""`platformctl warehouse sync`: every partner's billing terms from the repository into the warehouse's PARTNERS, and
the marketplace's INSTALLS, DEVELOPERS and INTEGRATIONS rows (the merges the partner and integration stacks run).

The same rows (partners/terms.py) and the same upsert (foundation.warehouse_schema.partner_merge_sql) that each
partner stack runs at `up`, for local runs and tests: insert or update by PARTNER_ID; a partner whose stack file
says `platform:offboardedOn` keeps its row with OFFBOARDED_ON set (statements of earlier periods still read it).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from fleet.checks import parse_offboarding_date
from fleet.repo import Repo
from foundation.errors import PlatformError
from foundation.stacks import integration_stack, partner_stack
from foundation.warehouse_schema import (
    DEVELOPER_TERMS,
    DEVELOPERS,
    INSTALL_TERMS,
    INSTALLS,
    INTEGRATION_TERMS,
    INTEGRATIONS,
    PARTNERS,
    developer_merge_sql,
    install_merge_sql,
    install_remove_sql,
    integration_merge_sql,
    partner_merge_sql,
    partner_rows_json,
    rows_json,
)
from partners.terms import partner_terms
from platformctl.billing import stripe_account_of


@dataclass(frozen=True)
class SyncReport:
    warehouse: str
    """The warehouse URL written to (credentials are never in it)."""
    dry_run: bool
    """Nothing was written."""
    rows: list[dict[str, Any]]
    """The terms rows, in partner id order."""
    before: dict[str, dict[str, Any]]
    """The rows PARTNERS held for those partners before (empty on a dry run of an unreachable warehouse)."""

    def changes(self) -> dict[str, str]:
        """partner id -> "new" | "updated" | "unchanged"."""
        result = {}
        for row in self.rows:
            old = self.before.get(row["PARTNER_ID"])
            if old is None:
                result[row["PARTNER_ID"]] = "new"
            else:
                same = all(_same(old.get(k), v) for k, v in row.items())
                result[row["PARTNER_ID"]] = "unchanged" if same else "updated"
        return result

    def as_dict(self) -> dict[str, Any]:
        changes = self.changes()
        return {
            "warehouse": self.warehouse,
            "dry_run": self.dry_run,
            "partners": [{"partner": r["PARTNER_ID"], "change": changes[r["PARTNER_ID"]], "row": r} for r in self.rows],
        }


def _same(old: Any, new: Any) -> bool:
    if old is None or new is None:
        return old is None and new is None
    from decimal import Decimal, InvalidOperation

    try:
        return Decimal(str(old)) == Decimal(str(new))
    except InvalidOperation:
        return str(old) == str(new)


def terms_rows(repo: Repo, today: dt.date | None = None) -> list[dict[str, Any]]:
    """Every partner's PARTNERS row from its spec, the tier table, the price book and its stack file."""
    today = today or dt.datetime.now(dt.UTC).date()
    prices = repo.prices()
    rows = []
    for partner_id, spec in sorted(repo.specs().items()):
        offboarded = repo.offboarded_on(partner_id)
        source = f"stacks/Pulumi.{partner_stack(partner_id)}.yaml"
        day = parse_offboarding_date(offboarded, source, today) if offboarded else None
        rows.append(partner_terms(spec, repo.tiers(), prices, stripe_account_of(repo, partner_id), day))
    return rows


def marketplace_rows(repo: Repo) -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[dict[str, Any]]]:
    """INSTALLS rows of every active partner's installs, and the DEVELOPERS and INTEGRATIONS rows of every integration
    with a stack (the same rows the partner and integration stacks upsert; a local warehouse is every region's)."""
    from integrations.payouts import developer_row, install_row, integration_row

    installs = [
        install_row(repo.catalog(), repo.integration(iid), pid, spec.billing.currency)
        for pid, spec in sorted(repo.specs().items())
        if not repo.offboarded_on(pid)
        for iid in spec.integrations
    ]
    developers: dict[str, dict[str, Any]] = {}
    listings = []
    for iid in repo.integration_ids():
        if not repo.has_stack(integration_stack(iid)):
            continue
        spec = repo.integration(iid)
        row = developer_row(repo.catalog(), spec, stripe_account_of(repo, iid, "integration"))
        if row["STRIPE_ACCOUNT"] or spec.developer.id not in developers:
            developers[spec.developer.id] = row
        listings.append(integration_row(repo.catalog(), spec, repo.review_rules()))
    return installs, list(developers.values()), listings


def _sync_marketplace(conn: Any, repo: Repo) -> None:
    """The same merges the stacks run; an install the repository no longer has is dated removed (never deleted)."""
    installs, developers, listings = marketplace_rows(repo)
    cur = conn.cursor()
    db = conn.database
    if installs:
        cur.execute(install_merge_sql(db), (rows_json(INSTALLS, INSTALL_TERMS, installs),))
    if developers:
        cur.execute(developer_merge_sql(db), (rows_json(DEVELOPERS, DEVELOPER_TERMS, developers),))
    if listings:
        cur.execute(integration_merge_sql(db), (rows_json(INTEGRATIONS, INTEGRATION_TERMS, listings),))
    cur.execute(f"SELECT {INSTALLS.key} FROM {INSTALLS.fqn(db)} WHERE REMOVED_ON IS NULL")
    kept = {r["INSTALL_ID"] for r in installs}
    for (install,) in cur.fetchall():
        if install not in kept:
            conn.cursor().execute(install_remove_sql(db, install))


def read_partners(conn: Any, ids: list[str]) -> dict[str, dict[str, Any]]:
    if not ids:
        return {}
    cur = conn.cursor()
    names = [c.name for c in PARTNERS.columns]
    marks = ", ".join(["%s"] * len(ids))
    cur.execute(f"SELECT {', '.join(names)} FROM {PARTNERS.fqn(conn.database)} WHERE PARTNER_ID IN ({marks})", ids)
    return {row[0]: dict(zip(names, row, strict=True)) for row in cur.fetchall()}


def sync(repo: Repo, warehouse_url: str, dry_run: bool = False) -> SyncReport:
    """Upsert every partner's terms row (nothing is written on a dry run; the warehouse is still read to say what
    would change)."""
    from services import warehouse

    rows = terms_rows(repo)
    url = warehouse.anchored(warehouse_url, repo.root)
    conn = warehouse.connect(url)
    try:
        if url.startswith("local:"):
            warehouse.ensure_schema(conn)
        before = read_partners(conn, [r["PARTNER_ID"] for r in rows])
        if not dry_run and rows:
            conn.cursor().execute(partner_merge_sql(conn.database), (partner_rows_json(list[Any](rows)),))
        if not dry_run:
            _sync_marketplace(conn, repo)
    except PlatformError:
        raise
    except Exception as exc:  # the driver's error (no table, refused, timed out): a runtime failure, exit 1
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise warehouse.WarehouseUnavailableError(f"warehouse sync: the warehouse refused or failed: {first}") from None
    finally:
        conn.close()
    return SyncReport(warehouse_url, dry_run, rows, before)
