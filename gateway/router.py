"""Which Kong route serves a request: a pure-Python model of Kong's HTTP router for the planned routes.

Kong 3.x's default `router_flavor = traditional_compatible` turns every route into one match per path and orders
them by one 64-bit priority (kong/router/transform.lua `get_priority`, github.com/Kong/kong tag 3.9.1, 2025-06-04;
the documented rules are "Matching priorities" in the proxy reference, docs.konghq.com
gateway/how-kong-works/routing-traffic):

1. the number of fields the route matches on (methods, hosts, headers, snis, paths): more first;
2. hosts all plain (no wildcard) first;
3. a regex path (`~...`) first; then a higher `regex_priority` (regex paths only);
4. more headers first;
5. the longer prefix path first;
6. then creation order (here: the order the plan registers routes).

The first route in that order whose every field matches wins. Request paths are prefix-matched; regex paths are
anchored at the start (transform.lua prefixes `^`).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class KongRoute:
    name: str
    """Route name."""
    service: str
    """Service the route forwards to (its name, or its resource URN in a plan)."""
    paths: tuple[str, ...] = ()
    """Prefix paths, or regex paths starting with `~`."""
    hosts: tuple[str, ...] = ()
    """Host header values; `*.` or `.*` wildcards at either end."""
    snis: tuple[str, ...] = ()
    """TLS server names."""
    methods: tuple[str, ...] = ()
    """HTTP methods."""
    headers: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    """Other headers the route requires (any of the values)."""
    protocols: tuple[str, ...] = ("http", "https")
    """Protocols the route accepts."""
    regex_priority: int = 0
    """Order among regex paths (higher first)."""
    strip_path: bool = True
    """Kong's default: the matched prefix is removed on the way upstream."""
    order: int = 0
    """Creation order (the last tie-breaker)."""


@dataclass(frozen=True)
class Request:
    host: str
    """Host header (and SNI, for https)."""
    path: str
    """Normalized request path."""
    method: str = "GET"
    """HTTP method."""
    headers: Mapping[str, str] = field(default_factory=dict)
    """Other request headers."""
    scheme: str = "https"
    """http or https."""


def _host_matches(pattern: str, host: str) -> bool:
    pattern, host = pattern.lower(), host.lower()
    if pattern.startswith("*."):
        return host.endswith(pattern[1:])
    if pattern.endswith(".*"):
        return host.startswith(pattern[:-1])
    return pattern == host


def _path_matches(pattern: str, path: str) -> bool:
    if pattern.startswith("~"):
        return re.match(pattern[1:], path) is not None
    return path.startswith(pattern)


def _priority(route: KongRoute, path: str | None) -> tuple[int, ...]:
    weight = sum(bool(f) for f in (route.methods, route.hosts, route.headers, route.snis)) + (path is not None)
    plain_hosts = bool(route.hosts) and not any("*" in h for h in route.hosts)
    regex = path is not None and path.startswith("~")
    return (
        weight,
        int(plain_hosts),
        int(regex),
        len(route.headers),
        route.regex_priority if regex else 0,
        0 if regex or path is None else len(path),
        -route.order,
    )


def _matches(route: KongRoute, path: str | None, request: Request) -> bool:
    if request.scheme not in route.protocols:
        return False
    if route.hosts and not any(_host_matches(h, request.host) for h in route.hosts):
        return False
    if route.snis and (request.scheme != "https" or not any(_host_matches(s, request.host) for s in route.snis)):
        return False
    if route.methods and request.method.upper() not in route.methods:
        return False
    for name, values in route.headers.items():
        sent = {k.lower(): v for k, v in request.headers.items()}.get(name.lower())
        if sent is None or sent.lower() not in {v.lower() for v in values}:
            return False
    return path is None or _path_matches(path, request.path)


def winner(routes: Iterable[KongRoute], request: Request) -> KongRoute | None:
    """The route Kong serves `request` with, or None (Kong answers 404 "no Route matched")."""
    candidates = [(route, path) for route in routes for path in (route.paths or (None,))]
    candidates.sort(key=lambda c: _priority(*c), reverse=True)
    return next((route for route, path in candidates if _matches(route, path, request)), None)


def upstream_path(route: KongRoute, service_path: str, request_path: str) -> str:
    """The path Kong sends upstream (route `path_handling` v0, the default): the service path, then the request
    path without the matched prefix when strip_path is on."""
    remainder = request_path
    if route.strip_path:
        matched = next((p for p in route.paths if _path_matches(p, request_path)), None)
        if matched is not None:
            prefix = re.match(matched[1:], request_path).group(0) if matched.startswith("~") else matched  # type: ignore[union-attr]
            remainder = request_path[len(prefix) :]
    base = service_path or "/"
    if not remainder:
        return base
    if base.endswith("/") and remainder.startswith("/"):
        return base + remainder[1:]
    return base + remainder if remainder.startswith("/") or base.endswith("/") else f"{base}/{remainder}"


def routes_from_plan(resources: Iterable[Any]) -> list[KongRoute]:
    """KongRoutes from planned `kong:index/route:Route` resources (objects with .type, .name, .inputs and maybe
    .property_dependencies). The service is the route's `api:<name>` tag, else the URN its serviceId comes from
    (a partner stack's service ids come from the global stack and are unknown in a plan)."""
    routes = []
    for index, r in enumerate(resources):
        if r.type != "kong:index/route:Route":
            continue
        inputs = r.inputs
        deps = getattr(r, "property_dependencies", {}).get("serviceId") or [inputs.get("serviceId")]
        apis = [t[4:] for t in inputs.get("tags") or () if isinstance(t, str) and t.startswith("api:")]
        headers = {h["name"]: tuple(h.get("values", ())) for h in inputs.get("headers", []) or []}
        routes.append(
            KongRoute(
                name=inputs.get("name", r.name),
                service=apis[0] if apis else str(deps[0]),
                paths=tuple(inputs.get("paths") or ()),
                hosts=tuple(inputs.get("hosts") or ()),
                snis=tuple(inputs.get("snis") or ()),
                methods=tuple(inputs.get("methods") or ()),
                headers=headers,
                protocols=tuple(inputs.get("protocols") or ("http", "https")),
                regex_priority=int(inputs.get("regexPriority", 0) or 0),
                strip_path=bool(inputs.get("stripPath", True)),
                order=index,
            )
        )
    return routes
