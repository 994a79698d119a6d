"""CORS origins for Kong's `cors` plugin: written as `https://*.{zone}` in apis.yaml, planned as anchored regexes.

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
