"""What each tier gets at the gateway: its ACL group and its rate-limiting plugin config (from the tier table).

Counters live in the region's Redis (`policy: redis`), so the limit a consumer sees is the tier table's whatever the
number of gateway pods. Plugin entities are global (the hybrid-mode control plane pushes one config to all 15
regions' data planes), but each region has its own Redis; one config names all of them through things each data
plane resolves locally:

- `redis.host` is the in-cluster name of an ExternalName Service every region stack creates in its `platform`
  namespace, aliasing that region's ElastiCache primary endpoint (Kong 3.9's `redis.host` is not referenceable);
- `redis.password` is a Kong vault reference, `{vault://env/platform-redis-auth}`, which each data plane resolves
  from its own environment (PLATFORM_REDIS_AUTH, from the region's auth-token Secret): no token is in the control
  plane's config, the global stack, or any plan;
- TLS on (`ssl`), chain verified (`ssl_verify`) against the data plane's system CA bundle
  (`lua_ssl_trusted_certificate = system`). `server_name` stays unset: one global value cannot name 15 regional
  endpoints, so the hostname is not checked; the Redis security group admitting only the cluster and the auth token
  carry that weight. A consumer's calls are counted in its home region's Redis when they land there (DNS sends a
  partner's hosts to its home region); a call landing in another region counts there.

Field names: kong/plugins/rate-limiting/schema.lua and kong/tools/redis/schema.lua, Kong tag 3.9.1 (2025-06-04).
"""

from __future__ import annotations

import json

from gateway.redis import redis_config
from partners.tiers import RateLimit


def rate_limit_config(limits: RateLimit) -> str:
    """rate-limiting plugin config for one tier's limits: shared counters in the region's Redis, synchronous
    (`sync_rate` -1), so every pod of the region enforces one count."""
    return json.dumps(
        {
            **limits.model_dump(),
            "policy": "redis",
            "redis": redis_config(),
            "sync_rate": -1,
            "limit_by": "consumer",
            "fault_tolerant": True,
        },
        sort_keys=True,
    )
