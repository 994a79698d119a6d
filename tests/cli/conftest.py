"""CLI tests' Stripe: the loopback fake (tests/services/stripe_fake.py), named to the commands by the environment
variables they read (STRIPE_API_KEY, STRIPE_API_BASE)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.services.stripe_fake import TEST_KEY, FakeStripe, StripeServer


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeStripe]:
    with StripeServer() as server:
        monkeypatch.setenv("STRIPE_API_KEY", TEST_KEY)
        monkeypatch.setenv("STRIPE_API_BASE", server.base)
        yield server
