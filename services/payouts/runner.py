"""`payouts run`, the one entry both CLIs call (`platform-services payouts run` in the image, `platformctl payouts
run` locally): check every argument, open the warehouse, the statement store and Stripe, run the job.

Nothing here reads the repository: terms come from the warehouse's PARTNERS table (see services.payouts.job).
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping
from pathlib import Path

from foundation.errors import InputError
from foundation.naming import REGION_CODE_PATTERN
from services import warehouse
from services.payouts import money
from services.payouts.developers import pay_developers
from services.payouts.job import Report, run_payouts
from services.payouts.notices import publish_outcomes
from services.payouts.statements import open_store
from services.payouts.stripe_gateway import StripeGateway
from services.webhooks.producer import settings_problem


def resolve_period(period: str, now: dt.datetime) -> str:
    if period == money.PREVIOUS:
        return money.latest_payable(now)
    money.check_period(period)
    return money.check_payable(period, now)


def run(
    period: str,
    *,
    region: str | None,
    warehouse_url: str,
    statements: str,
    adjustments_file: Path | None,
    dry_run: bool,
    live: bool,
    env: Mapping[str, str],
    now: dt.datetime | None = None,
) -> Report:
    """Validate every argument (bad input: InputError, nothing written or called), then run the job."""
    now = now or dt.datetime.now(dt.UTC)
    period = resolve_period(period, now)
    if region is not None and not re.fullmatch(REGION_CODE_PATTERN, region):
        raise InputError.single("--region", "", f"{region!r} is not a region code (e.g. eu-central)")
    if adjustments_file is not None and not adjustments_file.is_file():
        raise InputError.single("--adjustments", "", f"{adjustments_file} is not a file")
    adjustments = money.load_adjustments(adjustments_file, period) if adjustments_file else []
    problem = None if dry_run else settings_problem(env)  # before anything is paid
    if problem is not None:
        raise problem
    store = open_store(statements, None, env)
    gateway = None if dry_run else StripeGateway.from_env(env, live=live)
    conn = warehouse.connect(warehouse_url)
    try:
        if warehouse_url.startswith("local:"):
            warehouse.ensure_schema(conn)
        report = run_payouts(
            conn=conn,
            period=period,
            store=store,
            gateway=gateway,
            adjustments=adjustments,
            region=region,
            dry_run=dry_run,
            now=now,
        )
        # Developers paid from this region (their home region's warehouse holds their rows), statements beside the
        # partners' under developers/ (partner and developer ids share one pattern).
        report.developers = pay_developers(
            conn=conn,
            period=period,
            store=open_store(statements.rstrip("/") + "/developers", None, env),
            gateway=gateway,
            region=region,
            dry_run=dry_run,
            now=now,
        )
    finally:
        conn.close()
    if not dry_run:
        # After every statement is written: the webhooks service is never on the money path (see notices.py).
        report.webhooks = publish_outcomes(report.outcomes, env)
    return report
