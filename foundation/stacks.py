"""Stack names, kinds and files: `global`, `region-<code>`, `partner-<id>`, `integration-<id>`."""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from foundation.errors import InputError
from foundation.naming import PARTNER_ID_PATTERN, REGION_CODE_PATTERN, RESERVED_PARTNER_IDS

PROJECT = "platform"


class StackKind(StrEnum):
    GLOBAL = "global"
    REGION = "region"
    PARTNER = "partner"
    INTEGRATION = "integration"


KIND_ORDER = {StackKind.GLOBAL: 0, StackKind.REGION: 1, StackKind.PARTNER: 2, StackKind.INTEGRATION: 3}
"""Planning order: a stack reads only stacks of a smaller rank."""


@dataclass(frozen=True, order=True)
class StackName:
    kind: StackKind
    """Which program branch builds the stack."""
    subject: str
    """What the stack is of: its region code, partner id or integration id; empty for the global stack."""

    def __str__(self) -> str:
        return "global" if self.kind is StackKind.GLOBAL else f"{self.kind.value}-{self.subject}"

    @property
    def rank(self) -> int:
        return KIND_ORDER[self.kind]

    def config_file(self, root: Path) -> Path:
        return root / "stacks" / f"Pulumi.{self}.yaml"


def parse_stack_name(name: str) -> StackName:
    """Parse a stack name; anything else (including path tricks) is an InputError."""
    if name == "global":
        return StackName(StackKind.GLOBAL, "")
    for kind, pattern in (
        (StackKind.REGION, REGION_CODE_PATTERN),
        (StackKind.PARTNER, PARTNER_ID_PATTERN),
        (StackKind.INTEGRATION, PARTNER_ID_PATTERN),
    ):
        prefix = f"{kind.value}-"
        subject = name[len(prefix) :]
        if name.startswith(prefix) and re.fullmatch(pattern, subject):
            if kind in (StackKind.PARTNER, StackKind.INTEGRATION) and subject in RESERVED_PARTNER_IDS:
                break
            return StackName(kind, subject)
    raise InputError.single(
        "stack", "", f"unknown stack name {name!r}: expected global, region-<code>, partner-<id> or integration-<id>"
    )


def region_stack(code: str) -> StackName:
    """The region's stack; a code that is not one is an InputError (it names files and locks)."""
    if not isinstance(code, str) or not re.fullmatch(REGION_CODE_PATTERN, code):
        raise InputError.single("stack", "", f"{code!r} is not a region code")
    return StackName(StackKind.REGION, code)


def partner_stack(partner_id: str) -> StackName:
    """The partner's stack; an id that is not one is an InputError (it names files and locks)."""
    if not isinstance(partner_id, str) or not re.fullmatch(PARTNER_ID_PATTERN, partner_id):
        raise InputError.single("stack", "", f"{partner_id!r} is not a partner id")
    if partner_id in RESERVED_PARTNER_IDS:
        raise InputError.single("stack", "", f"{partner_id!r} is reserved and is no partner's id")
    return StackName(StackKind.PARTNER, partner_id)


def integration_stack(integration_id: str) -> StackName:
    """The integration's stack; an id that is not one is an InputError (it names files and locks)."""
    if not isinstance(integration_id, str) or not re.fullmatch(PARTNER_ID_PATTERN, integration_id):
        raise InputError.single("stack", "", f"{integration_id!r} is not an integration id")
    if integration_id in RESERVED_PARTNER_IDS:
        raise InputError.single("stack", "", f"{integration_id!r} is reserved and is no integration's id")
    return StackName(StackKind.INTEGRATION, integration_id)


GLOBAL = StackName(StackKind.GLOBAL, "")
