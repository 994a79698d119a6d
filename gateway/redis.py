"""Where each region's gateway Redis is, as the one global rate-limiting config names it (gateway/rate_limits.py)."""

from __future__ import annotations

REDIS_SERVICE = "kong-redis"
"""ExternalName Service (in the gateway's namespace) that points at the region's Redis."""
REDIS_NAMESPACE = "platform"
"""Namespace of the Kong data plane and of that Service in every regional cluster."""
REDIS_PORT = 6379
"""ElastiCache's Redis port."""
REDIS_AUTH_ENV = "platform-redis-auth"
"""Kong env-vault name of the auth token: the data plane's PLATFORM_REDIS_AUTH variable."""


def redis_config() -> dict[str, object]:
    """The `redis` record of a rate-limiting config: the region's Redis, as each data plane resolves it."""
    return {
        "host": f"{REDIS_SERVICE}.{REDIS_NAMESPACE}.svc.cluster.local",
        "port": REDIS_PORT,
        "password": f"{{vault://env/{REDIS_AUTH_ENV}}}",
        "ssl": True,
        "ssl_verify": True,
        "timeout": 2000,
    }
