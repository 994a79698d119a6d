"""`platformctl verify-domain`: check a partner's DNS proof of its own domain, then record it in its stack file.

The partner stack holds a random token (a secret output, handed to the partner) and asks for a certificate and a
route on the partner's domain only once its stack file says `platform:domainVerified: <that domain>`. This is the
step that says it: it reads the token from the deployed stack, looks up the TXT record `_platform-challenge.<domain>`
and the delegation `_acme-challenge.<domain> CNAME _acme-challenge.<id>.<zone>` (cert-manager follows it to answer
the custom domain's DNS-01 challenge in the platform zone; without it the custom-domain Certificate waits its 900 s
and the partner's whole `up` fails), and writes the flag only when both hold. Nothing is written otherwise, and the
token is never printed.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from fleet.repo import Repo
from foundation.errors import EngineError, InputError, PlatformError
from foundation.stacks import StackName, partner_stack
from gateway.tls import CHALLENGE_PREFIX, acme_delegation_name, acme_delegation_target, challenge_record, proof_matches
from platformctl.changes import Change, config_change, recover_interrupted, write_change

DNS_SERVER_ENV = "PLATFORMCTL_DNS_SERVER"
"""`HOST:PORT` of the DNS server to ask instead of the system's resolvers (a test server on loopback, a split-horizon
resolver)."""
VERIFIED_KEY = "platform:domainVerified"

Outputs = Callable[[Repo, StackName], dict[str, Any]]


class ProofMissingError(PlatformError):
    """The partner has not published its token (yet): exit 1, nothing written."""


def lookup_txt(name: str) -> list[str]:
    """The TXT strings published at `name` (none when the name or the record does not exist)."""
    import dns.exception
    import dns.resolver

    try:
        answer = _resolver().resolve(name, "TXT")
    except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer):
        return []
    except (dns.exception.Timeout, dns.resolver.NoNameservers, OSError, ValueError) as exc:
        raise EngineError(f"the DNS lookup of {name} failed: {exc}") from None
    return [b"".join(record.strings).decode("utf-8", "replace") for record in answer]


def _resolver() -> Any:
    import dns.resolver

    server = os.environ.get(DNS_SERVER_ENV, "")
    resolver = dns.resolver.Resolver(configure=not server)
    if server:
        host, _, port = server.rpartition(":")
        if not host or not port.isdigit():
            raise InputError.single(DNS_SERVER_ENV, "", f"{server!r} is not HOST:PORT")
        resolver.nameservers = [host.strip("[]")]
        resolver.port = int(port)
    resolver.lifetime = 5.0
    return resolver


def lookup_cname(name: str) -> str | None:
    """The target of the CNAME record at `name` (lower case, no trailing dot), None when there is none."""
    import dns.exception
    import dns.resolver

    try:
        answer = _resolver().resolve(name, "CNAME")
    except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer):
        return None
    except (dns.exception.Timeout, dns.resolver.NoNameservers, OSError, ValueError) as exc:
        raise EngineError(f"the DNS lookup of {name} failed: {exc}") from None
    return str(answer[0].target).lower().rstrip(".")


def verify_domain(
    repo: Repo, partner_id: str, outputs: Outputs | None = None, warn: Callable[[str], None] | None = None
) -> str:
    """Check the proof and record it through the change path (lock, journal; `warn` hears what an interrupted
    earlier change needed); returns what was done, for the user."""
    from platformctl.engine import stack_outputs

    try:
        stack = partner_stack(partner_id)
    except InputError:
        raise InputError.single("arguments", "PARTNER", f"{partner_id!r} is not a partner id") from None
    if not repo.partner_file(partner_id).is_file() or not repo.has_stack(stack):
        raise InputError.single("arguments", "PARTNER", f"no partner {partner_id!r} (spec and stack file)")
    if recover_interrupted(repo.root, [str(stack)], warn or (lambda _: None)):
        repo = Repo(repo.root)  # what an interrupted change left is rolled back: read the files again
    spec = repo.spec(partner_id)
    if repo.stack_config(stack).file_values.get(VERIFIED_KEY) == spec.domain:
        return f"{spec.domain} is already verified for {partner_id}"
    deployed = (outputs or stack_outputs)(repo, stack)
    token = deployed.get("domain_challenge_token")
    if not isinstance(token, str) or not token:
        raise EngineError(f"{stack} has no domain_challenge_token output yet: run `platformctl up {stack}` first")
    record = challenge_record(spec.domain)
    if not proof_matches(lookup_txt(record), token):
        raise ProofMissingError(
            f"{record}: no TXT record holds {partner_id}'s token (`{CHALLENGE_PREFIX}<token>`, the stack's secret "
            "output domain_challenge_token); nothing written"
        )
    delegation = acme_delegation_name(spec.domain)
    expected = _delegation_target(repo, partner_id, deployed)
    found = lookup_cname(delegation)
    if found != expected:
        seen = f"it is a CNAME to {found}" if found else "there is no CNAME record"
        raise ProofMissingError(
            f"{delegation}: must be a CNAME to {expected} ({seen}): cert-manager follows it to answer the custom "
            "domain's DNS-01 challenge, and without it the certificate waits 900 s and the partner's `up` fails; "
            "nothing written"
        )

    def mark_verified(fresh: Repo) -> Change:
        # A fresh read under the partner's lock: the spec may have changed while the DNS was being asked.
        if fresh.spec(partner_id).domain != spec.domain:
            raise InputError.single(f"partners/{partner_id}.yaml", "domain", "changed while it was being verified")
        return config_change(fresh, stack, {VERIFIED_KEY: spec.domain})

    write_change(repo.root, [str(stack)], mark_verified, warn or (lambda _: None))
    return (
        f"{spec.domain} verified for {partner_id}: `platformctl up {stack}` now requests its certificate and routes it"
    )


def _delegation_target(repo: Repo, partner_id: str, deployed: dict[str, Any]) -> str:
    """Where the delegation must point: as the deployed stack says (its `acme_delegation` output), else as the
    program would say it for the fleet's zone."""
    from fleet.checks import platform_zone

    shown = deployed.get("acme_delegation")
    value = shown.get("value") if isinstance(shown, dict) else None
    if isinstance(value, str) and value:
        return value.lower().rstrip(".")
    return acme_delegation_target(partner_id, platform_zone(repo))
