"""What a rule may read of its stack's context, and the policy-context fingerprint derived from it.

Each policy declares the context fields its rule (and its level) reads: `Policy(..., reads={"kind", "partner_id"})`.
A rule is handed a view of the context in which every other field refuses to be used (`UndeclaredContextReadError`), so
a rule cannot read more than it declares, and the fleet tables in the view hold only the entries that can change
the stack's findings (see `narrowed_fleet`). The fingerprint a stack's cached findings are kept under is a digest
of exactly those values for the union of all declarations: a new rule widens it by declaring what it reads.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Iterable, Set
from functools import lru_cache
from typing import Any, NoReturn

from policies.model import CONTEXT_FIELDS, Policy, StackContext

IN_EVERY_KEY = frozenset({"catalog"})
"""Context the stack's cache key already covers, left out of the fingerprint: the catalog's files are in every key."""
FleetTables = dict[str, Any]


class UndeclaredContextReadError(Exception):
    """A rule used a context field its policy does not declare in `reads`: a bug in the declaration (the policy
    context's fingerprint would miss a change of that field, and the cached findings would go stale)."""


class _Undeclared:
    """Stands in a rule's view for a field the rule did not declare: any use of it raises."""

    __slots__ = ("field", "policy")

    def __init__(self, policy: str, field: str) -> None:
        self.policy = policy
        self.field = field

    def refuse(self, *args: object, **kwargs: object) -> NoReturn:
        raise UndeclaredContextReadError(
            f"policy {self.policy} reads context.{self.field} without declaring it: add it to the policy's reads="
        )


REFUSED_USES = (
    *("__bool__", "__len__", "__iter__", "__contains__", "__getitem__", "__hash__", "__getattr__", "__call__"),
    *("__eq__", "__ne__", "__lt__", "__le__", "__gt__", "__ge__", "__add__", "__radd__", "__mod__"),
    *("__str__", "__repr__", "__format__", "__int__", "__float__", "__index__"),
)
for _use in REFUSED_USES:
    setattr(_Undeclared, _use, _Undeclared.refuse)


def rule_view(context: StackContext, policy: Policy, fleet: FleetTables) -> StackContext:
    """`context` as `policy`'s rule sees it: its declared fields (the fleet tables narrowed), nothing else."""
    hidden: dict[str, Any] = {name: _Undeclared(policy.name, name) for name in CONTEXT_FIELDS - policy.reads}
    shown = {name: value for name, value in fleet.items() if name in policy.reads}
    return dataclasses.replace(context, **hidden, **shown)


def narrowed_fleet(context: StackContext, claims: Iterable[str]) -> FleetTables:
    """The fleet tables as the rules see them: only the entries that can change this stack's findings, so that
    onboarding one partner does not re-check every stack. A partner stack sees the partner ids that extend its own
    (`<id>-...`: a reference `acme-voice-x` in its resources is another partner's only if that id exists; any other
    id is not its own either way) and the domains that equal, contain or lie under its domain or a host it claims
    (`claims`); other stacks see neither table."""
    if context.kind != "partner" or not context.partner_id:
        return {"fleet_partner_ids": (), "fleet_domains": ()}
    prefix = f"{context.partner_id}-"
    overlapping = set(_overlapping(context.fleet_domains, [*claims, context.partner_domain or ""]))
    return {
        "fleet_partner_ids": tuple(i for i in context.fleet_partner_ids if i.startswith(prefix)),
        "fleet_domains": tuple(pair for pair in context.fleet_domains if pair in overlapping),
    }


def context_fingerprint(context: StackContext, claims: Iterable[str], policies: Iterable[Policy]) -> str:
    """A digest of every context value `policies` declare they read, as their rules see it (the fleet tables
    narrowed): equal fingerprints, equal findings for the same resources."""
    policies = list(policies)
    reads: Set[str] = frozenset().union(*(p.reads for p in policies)) - IN_EVERY_KEY
    fleet = narrowed_fleet(context, claims)
    digest = hashlib.sha256()
    for name in sorted(reads):
        value = fleet[name] if name in fleet else getattr(context, name)
        digest.update(f"{name}={value!r}\n".encode())
    return digest.hexdigest()


def _overlapping(domains: tuple[tuple[str, str], ...], hosts: list[str]) -> set[tuple[str, str]]:
    """The (partner, domain) pairs whose domain equals, contains or is contained in one of `hosts`."""
    equal, under = _domain_index(domains)
    found: set[tuple[str, str]] = set()
    for host in hosts:
        name = host.lower().rstrip(".")
        if not name:
            continue
        labels = name.split(".")
        for start in range(len(labels)):  # the host itself and each domain above it
            found.update(equal.get(".".join(labels[start:]), ()))
        found.update(under.get(name, ()))  # domains below the host
    return found


@lru_cache(maxsize=4)
def _domain_index(
    domains: tuple[tuple[str, str], ...],
) -> tuple[dict[str, list[tuple[str, str]]], dict[str, list[tuple[str, str]]]]:
    """The fleet's domains by name, and by every name above them: built once per run."""
    equal: dict[str, list[tuple[str, str]]] = {}
    under: dict[str, list[tuple[str, str]]] = {}
    for partner, domain in domains:
        name = domain.lower().rstrip(".")
        equal.setdefault(name, []).append((partner, domain))
        labels = name.split(".")
        for start in range(1, len(labels)):
            under.setdefault(".".join(labels[start:]), []).append((partner, domain))
    return equal, under
