"""TLS on every host the gateway serves: names, proofs and the issuer, as data shared by the stacks and policies.

Choice: cert-manager in each region (not Kong's `acme` plugin). Kong's acme plugin can only be configured globally,
orders a certificate on the first request to a host (that request gets Kong's default certificate), and in hybrid
mode needs an external store; cert-manager issues before any route exists, renews by itself, and keeps each
partner's key in the partner's own namespace.

- Platform names per partner, api/dashboard/webhooks.<id>.<zone>: CNAMEs in the platform zone to the home region's
  gateway load balancer; certificate by ACME DNS-01 against Route 53 (the ClusterIssuer `letsencrypt-dns01`).
- Partner-owned domains: first proven. The partner stack holds a random token (a Pulumi secret, shown to the
  partner only as a secret output); the partner publishes it as TXT `_platform-challenge.<domain>`. `platformctl`
  checks the record (gateway/tls.py `proof_matches`) and only then sets `platform:domainVerified: <domain>` in the
  partner's stack file (a reviewed change); without it the stack requests no certificate and routes no domain.
  The certificate is then issued by DNS-01 too, through delegation: the partner also sets
  `_acme-challenge.<domain> CNAME _acme-challenge.<id>.<zone>` and cert-manager (cnameStrategy Follow) answers the
  challenge in the platform zone (`platformctl verify-domain` checks that delegation with the TXT proof). DNS-01
  rather than HTTP-01, because HTTP-01 needs the domain to point at the gateway before the certificate exists, and in
  that window Kong would answer the domain's TLS handshakes with its default certificate; with DNS-01 the certificate
  is bound before the partner moves its DNS.
- Binding: no stack reads the Secret (a preview would read it before it exists, pulumi/pulumi#16395, and a copy in
  Kong would go stale at the first renewal). Each region runs `platformctl certs sync` every two minutes
  (components/certificate_sync.py, services/certsync.py): it copies every registered Secret into Kong as a
  certificate with the Secret's DNS names as SNIs, again whenever cert-manager renews it. A stack registers a Secret
  by granting the sync `get` on it (a labelled Role). Every route depends on its hosts' Certificate being Ready and
  is https-only.
"""

from __future__ import annotations

import hmac
import re

ACME_ISSUER = "letsencrypt-dns01"
"""cert-manager ClusterIssuer of every region (Route 53 DNS-01, CNAME delegation followed)."""
PLATFORM_LABELS = ("api", "dashboard", "webhooks")
"""The names each partner gets under the platform zone."""
CHALLENGE_LABEL = "_platform-challenge"
"""TXT record under a partner's domain that proves the partner controls it."""
CHALLENGE_PREFIX = "platform-domain-verification="
"""What the TXT record's value starts with (the token follows)."""
CERT_SYNC_ACCOUNT = "kong-cert-sync"
"""ServiceAccount (and job) in each region's platform namespace that copies certificates into Kong."""
CERT_SYNC_NAMESPACE = "platform"
"""Namespace of that ServiceAccount."""
CERT_SYNC_LABEL = "platform.io/kong-certificate-sync"
"""Label of the Role that registers a certificate's Secret for the sync (services/certsync.py SYNC_LABEL)."""


def platform_hosts(partner_id: str, zone: str) -> dict[str, str]:
    """label -> host: api.<id>.<zone>, dashboard.<id>.<zone>, webhooks.<id>.<zone>."""
    return {label: f"{label}.{partner_id}.{zone}" for label in PLATFORM_LABELS}


def challenge_record(domain: str) -> str:
    return f"{CHALLENGE_LABEL}.{domain}"


def acme_delegation_name(domain: str) -> str:
    """The name the partner delegates with a CNAME: `_acme-challenge.<domain>` (RFC 8555 section 8.4)."""
    return f"_acme-challenge.{domain}"


def acme_delegation_target(partner_id: str, zone: str) -> str:
    """Where the partner's `_acme-challenge.<domain>` CNAME points: a name in the platform zone cert-manager writes.

    It starts with `_acme-challenge.` because cert-manager's DNS permission covers only TXT records under such names
    (components/regional_deployment/certificates.py ACME_RECORDS_ONLY); `<id>.<zone>` itself is no host the
    platform serves."""
    return f"_acme-challenge.{partner_id}.{zone}"


def proof_matches(txt_values: list[str], token: str) -> bool:
    """Whether one of the TXT strings published at the challenge record carries the partner's token."""
    expected = f"{CHALLENGE_PREFIX}{token}"
    return bool(token) and any(hmac.compare_digest(v.strip(), expected) for v in txt_values)


def is_platform_host(host: str, partner_id: str, zone: str | None = None) -> bool:
    """Whether `host` is one of `partner_id`'s platform names (under `zone` when given)."""
    labels = host.lower().split(".")
    if len(labels) < 3 or labels[0] not in PLATFORM_LABELS or labels[1] != partner_id:
        return False
    return zone is None or ".".join(labels[2:]) == zone.lower()


def host_matches(pattern: str, host: str) -> bool:
    """SNI/host match as Kong does it: exact, or one wildcard at the left (`*.a.b`) or right (`a.*`)."""
    pattern, host = pattern.lower(), host.lower()
    if pattern.startswith("*."):
        return host.endswith(pattern[1:])
    if pattern.endswith(".*"):
        return host.startswith(pattern[:-1])
    return re.fullmatch(re.escape(pattern), host) is not None
