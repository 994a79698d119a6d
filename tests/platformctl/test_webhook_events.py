"""`onboard-partner --update` in apply mode produces integration.installed / integration.removed once the engine
applied the change: to a loopback stand-in for the webhooks service (the same schemas), or a note when no service
is configured or it is down; never on a failed apply, never in other modes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from foundation.errors import EngineError
from platformctl import changes, partner_changes
from tests.integrations.conftest import published_calsync
from tests.services.events_receiver import EventsReceiver, events_receiver, producer_env


class Engine:
    """Stands in for the Pulumi engine driver (platformctl/engine.py), as tests/platformctl/test_changes.py does."""

    fail_up = False

    @classmethod
    def run(cls, repo: Any, stack: str, operation: str, on_output: Any = None) -> dict[str, Any]:
        if operation == "up" and cls.fail_up:
            raise EngineError(f"pulumi up {stack} failed: quota")
        return {}


def _update(root: Path, integrations: list[str], mode: changes.Mode = changes.Mode.APPLY) -> tuple[list, list]:
    spec = root / "partners" / "acme-voice.yaml"
    doc = yaml.safe_load(spec.read_text())
    doc["integrations"] = integrations
    raw = yaml.safe_dump(doc).encode()
    said: list[str] = []
    warned: list[str] = []
    hooks = changes.Hooks(say=said.append, warn=warned.append, confirm=lambda _: True)
    item = changes.SpecInput("acme-voice.yaml", raw)
    changes.carry_out(
        root,
        ["partner-acme-voice"],
        lambda repo: partner_changes.onboarding_change(repo, [item], update=True),
        mode,
        hooks,
        engine=Engine,
    )
    return said, warned


@pytest.fixture
def root(repo_copy: Path) -> Path:
    published_calsync(repo_copy, installs=())
    Engine.fail_up = False
    return repo_copy


@pytest.fixture
def receiver() -> Any:
    with events_receiver() as running:
        yield running


def test_install_and_removal_are_produced_after_the_apply(
    root: Path, receiver: EventsReceiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in producer_env(receiver).items():
        monkeypatch.setenv(name, value)
    said, warned = _update(root, ["calsync"])
    (installed,) = receiver.of_type("integration.installed")
    assert installed["partner"] == "acme-voice"
    assert installed["data"] == {"integration": "calsync", "event_types": ["call.completed"]}
    assert "sent integration.installed (acme-voice, calsync) to the webhooks service" in said and not warned

    _update(root, ["calsync"])  # nothing changed in the list: nothing produced
    assert len(receiver.events) == 1

    _update(root, [])
    (removed,) = receiver.of_type("integration.removed")
    assert removed["data"] == {"integration": "calsync"} and removed["partner"] == "acme-voice"
    _update(root, ["calsync"], changes.Mode.NO_APPLY)  # written for CI to apply: not produced here
    assert len(receiver.events) == 2 and receiver.refused == []


def test_a_failed_apply_produces_nothing(root: Path, receiver: EventsReceiver, monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in producer_env(receiver).items():
        monkeypatch.setenv(name, value)
    Engine.fail_up = True
    with pytest.raises(EngineError):
        _update(root, ["calsync"])
    assert receiver.events == {} and receiver.posts == []


def test_unconfigured_or_down_is_a_note_and_the_change_stands(
    root: Path, receiver: EventsReceiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("WEBHOOKS_URL", raising=False)
    monkeypatch.delenv("WEBHOOKS_EVENT_TOKEN", raising=False)
    _, warned = _update(root, ["calsync"])
    assert warned == [
        "webhooks production is off (WEBHOOKS_URL, WEBHOOKS_EVENT_TOKEN not set): not sent: integration.installed "
        "(acme-voice, calsync)"
    ]
    assert "calsync" in (root / "partners" / "acme-voice.yaml").read_text()

    for name, value in producer_env(receiver).items():
        monkeypatch.setenv(name, value)
    receiver.down()
    _, warned = _update(root, [])
    (note,) = warned
    assert note.startswith("integration.removed (acme-voice, calsync) not sent: ") and "503" in note
    assert "calsync" not in (root / "partners" / "acme-voice.yaml").read_text()


def test_a_malformed_url_is_a_note_not_a_traceback(root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WEBHOOKS_URL", "webhooks:8788")
    monkeypatch.setenv("WEBHOOKS_EVENT_TOKEN", "t" * 20)
    _, warned = _update(root, ["calsync"])
    (note,) = warned
    assert "WEBHOOKS_URL" in note and note.endswith("not sent: integration.installed (acme-voice, calsync)")
