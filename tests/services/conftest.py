"""Fixtures of the services' tests."""

from __future__ import annotations

import pytest

from tests.services.image_env import ImageEnv, image_env


@pytest.fixture(scope="session")
def image() -> ImageEnv:
    """The services image's environment (built once per session when CI has not built it)."""
    return image_env()
