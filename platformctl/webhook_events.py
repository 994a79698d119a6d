"""Events platformctl produces for the region's webhooks service: `integration.installed` / `integration.removed`
when a partner spec's `integrations:` list changes through `onboard-partner --update` in apply mode.

They are posted after the engine applied the change (the installation's consumer exists then), to WEBHOOKS_URL
with WEBHOOKS_EVENT_TOKEN from the environment (the partner's home region's service: events never leave their
region). Unset, or the service unreachable: the command says the event was not sent and succeeds anyway - the
installation is what was asked for, the notification is not worth failing it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from typing import Any

from foundation.errors import InputError, PlatformError
from services.webhooks.producer import TOKEN_ENV, URL_ENV, publish, settings_problem


def install_events(
    partner: str,
    installed: dict[str, tuple[str, ...]],
    removed: list[str],
    now: dt.datetime,
) -> list[dict[str, Any]]:
    """The events of one spec change: `installed` maps each new integration to the event types its spec subscribes
    to. Ids carry the change's time: installing, removing and installing again are three events."""
    stamp = int(now.timestamp() * 1000)
    events: list[dict[str, Any]] = [
        {
            "id": f"integration.installed:{partner}:{integration}:{stamp}",
            "type": "integration.installed",
            "partner": partner,
            "data": {"integration": integration, "event_types": list(dict.fromkeys(types))[:32]},
        }
        for integration, types in sorted(installed.items())
    ]
    events += [
        {
            "id": f"integration.removed:{partner}:{integration}:{stamp}",
            "type": "integration.removed",
            "partner": partner,
            "data": {"integration": integration},
        }
        for integration in sorted(removed)
    ]
    return events


def _name(event: Mapping[str, Any]) -> str:
    return f"{event['type']} ({event['partner']}, {event['data']['integration']})"


def send(
    events: list[dict[str, Any]], env: Mapping[str, str], post: Callable[..., str] = publish
) -> tuple[list[str], list[str]]:
    """Post `events`: (a line per event sent, a line per event not sent). Never raises."""
    if not events:
        return [], []
    names = ", ".join(_name(e) for e in events)
    problem = settings_problem(env)
    if problem is not None:
        return [], [f"{problem}: not sent: {names}"]
    if not (env.get(URL_ENV) and env.get(TOKEN_ENV)):
        return [], [f"webhooks production is off ({URL_ENV}, {TOKEN_ENV} not set): not sent: {names}"]
    sent, notes = [], []
    for event in events:
        try:
            post(event, env)
        except (InputError, PlatformError) as exc:
            notes.append(f"{_name(event)} not sent: {exc}")
        except Exception as exc:  # the change is applied; its notification is never worth a traceback
            notes.append(f"{_name(event)} not sent: {type(exc).__name__}: {exc}")
        else:
            sent.append(f"sent {_name(event)} to the webhooks service")
    return sent, notes
