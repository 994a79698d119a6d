"""What the marketplace listing reads from a regional warehouse, and the key of a conformance run: the queries over
`warehouse_schema`'s CONFORMANCE_RESULTS and INSTALLS that `platformctl marketplace build` runs, and the result id
the conformance job (services/conformance.py) writes with. Strings only; no driver."""

from __future__ import annotations

import hashlib

from foundation.warehouse_schema import CONFORMANCE_RESULTS, INSTALLS


def conformance_result_id(integration_id: str, region: str, image_digest: str, checked_at: str) -> str:
    """The key of one conformance run: the same run written twice is one row, another run is another row."""
    text = "\n".join((integration_id, region, image_digest, checked_at))
    return "cr_" + hashlib.sha256(text.encode("utf-8")).hexdigest()[:40]


def latest_conformance_sql(database: str) -> str:
    """The latest conformance result per integration and region (ties on CHECKED_AT broken by RESULT_ID)."""
    names = ", ".join(c.name for c in CONFORMANCE_RESULTS.columns)
    return (
        f"SELECT {names} FROM {CONFORMANCE_RESULTS.fqn(database)} QUALIFY ROW_NUMBER() OVER "
        "(PARTITION BY INTEGRATION_ID, REGION ORDER BY CHECKED_AT DESC, RESULT_ID DESC) = 1 "
        "ORDER BY INTEGRATION_ID, REGION"
    )


def current_installs_sql(database: str) -> str:
    """(INTEGRATION_ID, PARTNER_ID) of every install not removed (REMOVED_ON IS NULL), once per pair: the listing's
    install count. Pairs, not counts: an install of a partner homed outside its developer's home region is recorded
    in both regions' warehouses, so the listing counts distinct partners over all the warehouses it reads. (Billing's
    "active in a period" is `warehouse_schema.ACTIVE_INSTALLS_SQL`; this is "installed now".)"""
    return (
        f"SELECT DISTINCT INTEGRATION_ID, PARTNER_ID FROM {INSTALLS.fqn(database)} "
        "WHERE REMOVED_ON IS NULL ORDER BY INTEGRATION_ID, PARTNER_ID"
    )
