"""CORS on a partner's routes: its own dashboards (platform name, and its verified domain) and nothing else, judged by
a model of Kong 3.9's cors handler (gateway/cors.py `kong_origin_allows`)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from gateway.cors import kong_origin_allows, partner_origins

ZONE = "voice-platform.example"
PLUGIN = "kong:index/plugin:Plugin"


def _cors_by_route(plan, stack: str) -> dict[str, list[str]]:
    routes = {r.urn: r.name for r in plan.resources(stack, "kong:index/route:Route")}
    return {
        routes[r.property_dependencies["routeId"][0]]: json.loads(r.inputs["configJson"])["origins"]
        for r in plan.resources(stack, PLUGIN)
        if r.inputs["name"] == "cors"
    }


def _allows(origins: list[str], origin: str) -> bool:
    return any(kong_origin_allows(entry, origin) for entry in origins)


def test_each_route_admits_the_partners_dashboards_and_nothing_else(repo_copy: Path, plan_in) -> None:
    """Failing before: only https://<one label>.<zone> was admitted (globally), so neither dashboard.<id>.<zone> nor
    the white-label dashboard on the verified domain could call the API from a browser."""
    stack_file = repo_copy / "stacks" / "Pulumi.partner-acme-voice.yaml"
    stack_file.write_text(stack_file.read_text() + "  platform:domainVerified: voice.acme.example\n")
    plan = plan_in(repo_copy, "partner-acme-voice", "partner-sakura-calls")
    acme = _cors_by_route(plan, "partner-acme-voice")
    assert set(acme) == {r.name for r in plan.resources("partner-acme-voice", "kong:index/route:Route")}
    for origins in acme.values():
        assert _allows(origins, f"https://dashboard.acme-voice.{ZONE}")
        assert _allows(origins, "https://voice.acme.example")
        for hostile in (
            f"https://dashboard.sakura-calls.{ZONE}",  # another partner's dashboard
            f"https://api.acme-voice.{ZONE}",
            f"https://x.{ZONE}",
            f"http://dashboard.acme-voice.{ZONE}",
            f"https://dashboard.acme-voice.{ZONE}.evil.com",
            "https://evil.voice.acme.example",
            "https://evil.com",
        ):
            assert not _allows(origins, hostile), hostile
    sakura = _cors_by_route(plan, "partner-sakura-calls")
    for origins in sakura.values():
        assert _allows(origins, f"https://dashboard.sakura-calls.{ZONE}")
        assert not _allows(origins, f"https://dashboard.acme-voice.{ZONE}")
        assert not _allows(origins, "https://voice.acme.example")


def test_an_unverified_domain_is_not_an_origin() -> None:
    templates = ("https://dashboard.{partner}.{zone}", "https://{domain}")
    assert partner_origins(templates, "acme", ZONE, None) == [f"https://dashboard.acme.{ZONE}"]
    assert partner_origins(templates, "acme", ZONE, "Voice.Acme.Example") == [
        f"https://dashboard.acme.{ZONE}",
        "https://voice.acme.example",
    ]


@pytest.mark.parametrize(
    "bad", ["https://*.{zone}", "https://dashboard.{zone}", "http://{domain}", "https://{domain}/x"]
)
def test_templates_that_would_admit_more_are_refused(bad: str) -> None:
    with pytest.raises(ValueError, match="CORS origin"):
        partner_origins((bad,), "acme", ZONE, "voice.acme.example")
