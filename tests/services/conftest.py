"""Fixtures of the services' tests."""

from __future__ import annotations

import signal
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.services.image_env import ImageEnv, image_env
from tests.services.meter_harness import Meter


@pytest.fixture(scope="session")
def image() -> ImageEnv:
    """The services image's environment (built once per session when CI has not built it)."""
    return image_env()


@pytest.fixture
def meters(tmp_path: Path) -> Iterator[Callable[..., Meter]]:
    """Starts meters (in tmp_path unless told another workdir) and kills whatever a failed test left running."""
    started: list[Meter] = []

    def start(
        workdir: Path = tmp_path,
        env: dict[str, str] | None = None,
        wait: bool = True,
        fd_limit: int | None = None,
        **kwargs: Any,
    ) -> Meter:
        workdir.mkdir(parents=True, exist_ok=True)
        meter = Meter(workdir, **kwargs).start(env=env, wait=wait, fd_limit=fd_limit)
        started.append(meter)
        return meter

    yield start
    for meter in started:
        if meter.proc is not None and meter.proc.poll() is None:
            meter.stop(signal.SIGKILL)
