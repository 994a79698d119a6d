"""What each tier gets at the gateway: its ACL group and its rate-limiting plugin config (from the tier table)."""

from __future__ import annotations

import json

from partners.tiers import RateLimit


def rate_limit_config(limits: RateLimit) -> str:
    """rate-limiting plugin config for one tier's limits (local counters: one data plane per region)."""
    return json.dumps({**limits.model_dump(), "policy": "local", "limit_by": "consumer"}, sort_keys=True)
