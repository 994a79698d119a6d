"""Output helpers shared by the components."""

from __future__ import annotations

from typing import Any, cast

import pulumi


def secret(value: pulumi.Input[str]) -> pulumi.Output[str]:
    """`pulumi.Output.secret` for strings (its stub's type variable resolves to Never under mypy)."""
    return cast(pulumi.Output[str], pulumi.Output.secret(cast(Any, value)))
