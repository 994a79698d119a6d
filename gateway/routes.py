"""The gateway's routes as data: the platform routes (any host) and each partner's copies of them (its own hosts).

One table feeds the global stack's routes and every partner stack's, so a partner host serves exactly the platform's
paths. Why partner routes repeat the paths instead of matching on `hosts` alone: Kong's router (traditional and
traditional_compatible flavours, "Matching priorities" in the proxy reference) tries routes with more matching
fields first. A hosts-only partner route (hosts + snis: two fields) outranks every paths-only platform route (one
field) and swallowed `/v2/graphql` on a partner domain into REST. A partner route with hosts + snis + paths has three
fields, so on its hosts it beats the platform route of the same path, and among the partner's own routes the
longest path wins (`/v2/graphql` over `/v2`). `gateway/router.py` checks this on the planned routes.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from gateway.model import ApiCatalog, route_prefix

PARTNER_HEADER = "X-Partner-Id"
"""A header upstreams must never take from a client: the gateway removes it on every route (global plugin)."""


@dataclass(frozen=True)
class RouteSpec:
    api: str
    """API (gateway/apis.yaml) whose service the route forwards to."""
    version: str
    """API version the route serves."""
    path: str
    """Path prefix the route matches (kept on the way upstream: strip_path false)."""
    deprecation: str | None
    """response-transformer config (JSON) adding Deprecation, Sunset and Link; None for current versions."""

    @property
    def name(self) -> str:
        return f"{self.api}-{self.version}"


def platform_routes(catalog: ApiCatalog) -> list[RouteSpec]:
    routes = []
    for api_name, api in catalog.apis.items():
        for version, spec in api.versions.items():
            deprecation = None
            if spec.sunset is not None and spec.successor is not None:
                successor = route_prefix(api_name, spec.successor)
                deprecation = json.dumps(
                    {
                        "add": {
                            "headers": [
                                "Deprecation: true",
                                f"Sunset: {spec.sunset.strftime('%a, %d %b %Y 23:59:59 GMT')}",
                                f'Link: <{successor}>; rel="successor-version"',
                            ]
                        }
                    }
                )
            routes.append(RouteSpec(api_name, version, route_prefix(api_name, version), deprecation))
    return routes


def strip_partner_header_config() -> str:
    """request-transformer config removing the client's X-Partner-Id (upstreams read X-Consumer-Custom-ID, which
    key-auth sets from the authenticated consumer, whose custom_id is the partner id)."""
    return json.dumps({"remove": {"headers": [PARTNER_HEADER]}})
