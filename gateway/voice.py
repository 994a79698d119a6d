"""The voice host of each region, `voice.<region>.<zone>`: what Twilio calls for the partners' numbers (their voice URL
is `https://voice.<region>.<zone>/twilio/voice`), routed by the region's gateway to the region's voice service.

The voice service is not deployed by this project: each region stack names its upstream, `platform:voiceUpstream`
(host:port, reached over plain HTTP inside the region, like the API upstreams of gateway/apis.yaml). Pulumi.yaml's
default is under `.invalid` (RFC 6761 section 6.4), so `platformctl validate --for-deploy region-<code>` reports it
until a region sets its own.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

VOICE_PATH_PREFIX = "/twilio/"
"""What the voice host routes: Twilio's webhooks (the voice URL `/twilio/voice` and what its TwiML points back to).
Nothing else of the voice service (health, metrics) is reachable from outside."""
VOICE_METHODS = ("GET", "POST")
"""Twilio requests a voice URL with POST (default) or GET (the number's voice method); a media stream's WebSocket
upgrade is a GET."""

_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_HOST = re.compile(rf"{_LABEL}(?:\.{_LABEL})*")


@dataclass(frozen=True)
class VoiceUpstream:
    host: str
    """DNS name (or IPv4 address) of the region's voice service, as the region's Kong data plane resolves it."""
    port: int
    """Its HTTP port."""


def parse_voice_upstream(value: object) -> VoiceUpstream:
    """`host:port` -> VoiceUpstream; ValueError saying what is wrong (no scheme, path, user info or IPv6 literal)."""
    if not isinstance(value, str) or not value:
        raise ValueError("must be host:port, e.g. voice.platform.svc.cluster.local:8080")
    host, sep, port = value.rpartition(":")
    if not sep or not host:
        raise ValueError(f"{value[:100]!r} is not host:port (a port is required)")
    if len(host) > 253 or not _HOST.fullmatch(host):
        raise ValueError(f"{value[:100]!r}: {host[:100]!r} is not a DNS name (no scheme, path, user or IPv6 literal)")
    if not port.isascii() or not port.isdigit() or not 1 <= int(port) <= 65535:
        raise ValueError(f"{value[:100]!r}: port {port[:20]!r} is not a number from 1 to 65535")
    return VoiceUpstream(host=host.lower(), port=int(port))
