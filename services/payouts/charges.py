"""Partners' integration charges: each marketplace install active in a month is a line on the partner's statement
for that month (kind `integration`, minus the listed monthly price in the partner's currency fixed at install),
deducted from its payout; a month whose charges exceed its payout carries the debt like any other (money.below_minimum).

Read from the warehouse's RAW.INSTALLS with THE definition of an active install
(foundation.warehouse_schema.ACTIVE_INSTALLS_SQL), once per month a run looks at.
"""

from __future__ import annotations

from typing import Any

from foundation.warehouse_schema import active_installs_sql
from services.payouts import money
from services.payouts.money import Adjustment


class ChargeBook:
    """The integration charge lines of each partner and month (read once per month)."""

    def __init__(self, conn: Any) -> None:
        self.conn = conn
        self.months: dict[str, dict[str, list[Adjustment]]] = {}
        self.priced_in: dict[str, dict[str, set[str]]] = {}
        """month -> partner -> the currencies its charges are priced in (the statement's, unless repriced)."""

    def partners(self, month: str) -> set[str]:
        """The partners charged in `month` (a partner with installs and no calls has a statement all the same)."""
        self.lines("", month)
        return set(self.months[month])

    def lines(self, partner: str, month: str) -> list[Adjustment]:
        if month not in self.months:
            cur = self.conn.cursor()
            cur.execute(
                "SELECT PARTNER_ID, INTEGRATION_ID, CURRENCY, MONTHLY_MINOR FROM ("
                + active_installs_sql(self.conn.database)
                + ") WHERE MONTHLY_MINOR > 0",
                money.month_bounds(month),
            )
            found: dict[str, list[Adjustment]] = {}
            priced_in: dict[str, set[str]] = {}
            for pid, integration, currency, price in cur.fetchall():
                priced_in.setdefault(pid, set()).add(str(currency))
                reason = f"integration {integration}: {money.format_minor(int(price), currency)} a month"
                found.setdefault(pid, []).append(
                    Adjustment(kind="integration", amount_minor=-int(price), reason=reason)
                )
            self.months[month], self.priced_in[month] = found, priced_in
        return list(self.months[month].get(partner, []))

    def currencies(self, partner: str, month: str) -> set[str]:
        """The currencies of the partner's charges in `month`. An INSTALLS row is repriced in the partner's new
        currency by its stack's `up`, while its statements keep the old one until the change takes effect: a price
        in another currency than the statement's is never deducted as if it were in the statement's."""
        self.lines(partner, month)
        return set(self.priced_in[month].get(partner, set()))
