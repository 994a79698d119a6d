"""CLI tests' Stripe: the loopback fake (tests/services/stripe_fake.py), named to the commands by the environment
variables they read (STRIPE_API_KEY, STRIPE_API_BASE)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.services.payouts_harness import stripe_for_commands
from tests.services.stripe_fake import FakeStripe


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeStripe]:
    with stripe_for_commands(monkeypatch) as server:
        yield server
