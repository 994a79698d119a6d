"""The payouts tests' Stripe: the loopback fake of the endpoints the job uses (tests/services/stripe_fake.py)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.services.stripe_fake import FakeStripe, StripeServer


@pytest.fixture
def fake() -> Iterator[FakeStripe]:
    with StripeServer() as server:
        yield server
