"""CORS origins for Kong's `cors` plugin.

Who calls the API from a browser: a partner's own dashboard, at `https://dashboard.<id>.<zone>` and, white-labelled,
on the partner's verified domain. So each partner's routes carry their own `cors` plugin admitting exactly those
origins (apis.yaml `cors_origins`: templates with `{partner}`, `{zone}` and `{domain}`; `partner_origins` expands
them); there is no global cors plugin, so no other origin is admitted anywhere (a route-scoped plugin takes
precedence over a global one, Kong docs "Plugin precedence"). A template naming `{domain}` counts only once the
domain is verified.

Origins with a wildcard (`https://*.{zone}`, kept by `origin_regex` for other uses) are planned as anchored regexes:

Kong (3.9, kong/plugins/cors/handler.lua at tag 3.9.1, 2025-06-04) treats an origin containing any character other
than `A-Za-z0-9.:/-` as a PCRE regex: it strips one leading `^`, appends `$` if missing, and matches it anchored at
the start ("ajo" flags) against the request's normalized origin (`scheme://host[:port]`), or against its host only
when the regex has no `:`. So `https://*.zone` is the regex "https:/" + "/*" + any one character + "zone": it matches
no subdomain. `kong_origin_allows` below is that algorithm, so tests can ask Kong's question of every planned origin.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

_LABEL = r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
"""One DNS label (what `*` stands for: exactly one label, never a dot)."""
_PATTERN = re.compile(r"^https://(\*\.)?([a-z0-9.-]*\{zone\}|[a-z0-9.-]+)$")
_PLAIN = re.compile(r"^[A-Za-z0-9.:/-]+$")


_TEMPLATE = re.compile(r"^https://(?:[a-z0-9.-]|\{partner\}|\{zone\}|\{domain\})+$")


def partner_origins(templates: tuple[str, ...], partner_id: str, zone: str, verified_domain: str | None) -> list[str]:
    """The exact origins one partner's dashboards call from (plain `https://HOST` strings Kong compares as they are);
    templates naming `{domain}` are left out until the partner's domain is verified."""
    origins = []
    for template in templates:
        check_partner_template(template)
        if "{domain}" in template and not verified_domain:
            continue
        origin = template.replace("{partner}", partner_id).replace("{zone}", zone)
        origin = origin.replace("{domain}", (verified_domain or "").lower())
        if not _PLAIN.fullmatch(origin) or urlsplit(origin).hostname != origin.removeprefix("https://"):
            raise ValueError(f"CORS origin template {template!r} gives {origin!r}, which is not https://HOST")
        origins.append(origin)
    return list(dict.fromkeys(origins))


def check_partner_template(template: str) -> None:
    """A template is https://HOST with `{partner}`, `{zone}` and `{domain}` placeholders only: no wildcard."""
    if not _TEMPLATE.fullmatch(template) or ("{partner}" not in template and "{domain}" not in template):
        raise ValueError(
            f"CORS origin {template!r} must be https://HOST naming {{partner}} or {{domain}} (a partner's own "
            "dashboard; {zone} stands for the platform zone); no wildcard"
        )


def cors_config(origins: list[str], correlation_header: str) -> str:
    """The cors plugin's config for a partner's routes (Kong 3.9 cors schema fields only)."""
    import json

    if not origins:
        raise ValueError("a cors plugin needs at least one origin: Kong reads none as `*`")
    return json.dumps(
        {
            "origins": origins,
            "methods": ["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"],
            "headers": ["Authorization", "Content-Type", "apikey", correlation_header],
            "exposed_headers": [correlation_header, "Deprecation", "Sunset", "Link"],
            "credentials": False,
            "max_age": 3600,
        },
        sort_keys=True,
    )


def origin_regex(pattern: str, zone: str) -> str:
    """`https://*.{zone}` -> `^https://<one label>\\.<zone escaped>$`; a plain origin stays a plain string."""
    match = _PATTERN.fullmatch(pattern)
    if not match:
        raise ValueError(
            f"CORS origin {pattern!r} must be https://HOST or https://*.HOST ({{zone}} stands for the platform zone)"
        )
    host = match.group(2).replace("{zone}", zone)
    if not match.group(1):
        return f"https://{host}"
    return rf"^https://{_LABEL}\.{re.escape(host)}$"


def _normalize(origin: str) -> tuple[str, str]:
    """(scheme://host[:port] without a default port, host), as Kong's normalize_origin."""
    parts = urlsplit(origin)
    if not parts.hostname:
        return origin, origin
    port = parts.port
    if (parts.scheme, port) in (("http", 80), ("https", 443)):
        port = None
    return f"{parts.scheme}://{parts.hostname}" + (f":{port}" if port else ""), parts.hostname


def kong_origin_allows(entry: str, request_origin: str) -> bool:
    """Whether Kong's cors plugin, configured with the origin `entry`, allows `request_origin`."""
    if entry == "*":
        return True
    domain, host = _normalize(request_origin)
    if _PLAIN.fullmatch(entry):
        return domain == _normalize(entry)[0]
    regex = entry if entry.endswith("$") else entry + "$"
    regex = regex[1:] if regex.startswith("^") else regex
    return re.match(regex, domain if ":" in entry else host) is not None
