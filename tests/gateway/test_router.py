"""Which route wins each (host, path), under the model of Kong's router, for the planned routes."""

from __future__ import annotations

import pytest

from gateway.router import KongRoute, Request, routes_from_plan, winner
from tests.conftest import Plan

ZONE = "voice-platform.example"


@pytest.fixture(scope="module")
def routes(fleet: Plan) -> list[KongRoute]:
    resources = [
        r for stack in ("global", "partner-acme-voice", "partner-sakura-calls") for r in fleet.resources(stack)
    ]
    return routes_from_plan(resources)


PATHS = {
    "/v1/calls": "rest-v1",
    "/v2/calls": "rest-v2",
    "/v2": "rest-v2",
    "/v1/graphql": "graphql-v1",
    "/v2/graphql": "graphql-v2",
    "/v2/streaming/socket": "streaming-v2",
    "/v1/webhooks/endpoints": "webhooks-v1",  # not swallowed by REST's /v1, on partner hosts either
}


@pytest.mark.parametrize(("path", "expected"), PATHS.items())
def test_platform_host_paths(routes: list[KongRoute], path: str, expected: str) -> None:
    chosen = winner(routes, Request(host=f"gateway.{ZONE}", path=path))
    assert chosen is not None and chosen.name == expected


@pytest.mark.parametrize(("path", "expected"), PATHS.items())
def test_partner_host_paths_reach_the_same_apis_on_the_partners_routes(
    routes: list[KongRoute], path: str, expected: str
) -> None:
    chosen = winner(routes, Request(host=f"api.acme-voice.{ZONE}", path=path))
    assert chosen is not None and chosen.name == f"partner-acme-voice-{expected}"
    assert chosen.service == expected.split("-")[0]


def test_graphql_on_a_partner_host_is_not_swallowed_by_rest(routes: list[KongRoute]) -> None:
    chosen = winner(routes, Request(host=f"api.sakura-calls.{ZONE}", path="/v2/graphql"))
    assert chosen is not None and chosen.service == "graphql"


def test_unknown_paths_and_plain_http_find_no_route(routes: list[KongRoute]) -> None:
    assert winner(routes, Request(host=f"api.acme-voice.{ZONE}", path="/admin")) is None
    assert winner(routes, Request(host=f"api.acme-voice.{ZONE}", path="/v2", scheme="http")) is None


def test_the_old_hosts_only_partner_route_outranked_every_path_route() -> None:
    # What partner stacks used to plan: hosts + snis, no paths, to REST.
    old = [
        KongRoute("graphql-v2", "graphql", paths=("/v2/graphql",), order=0),
        KongRoute("rest-v2", "rest", paths=("/v2",), order=1),
        KongRoute("partner-domain", "rest", hosts=("voice.acme.example",), snis=("voice.acme.example",), order=2),
    ]
    chosen = winner(old, Request(host="voice.acme.example", path="/v2/graphql"))
    assert chosen is not None and chosen.name == "partner-domain"


def test_priority_rules_of_the_model() -> None:
    routes = [
        KongRoute("prefix-short", "a", paths=("/v2",), order=0),
        KongRoute("prefix-long", "b", paths=("/v2/x",), order=1),
        KongRoute("regex", "c", paths=(r"~/v2/\d+$",), order=2),
        KongRoute("wild", "d", hosts=("*.example.com",), paths=("/v2",), order=3),
        KongRoute("plain", "e", hosts=("a.example.com",), paths=("/v2",), order=4),
        KongRoute("post", "f", paths=("/v2",), methods=("POST",), order=5),
    ]

    def name(host: str, path: str, method: str = "GET") -> str | None:
        chosen = winner(routes, Request(host=host, path=path, method=method))
        return chosen.name if chosen else None

    assert name("z.org", "/v2/x/y") == "prefix-long"  # longest prefix
    assert name("z.org", "/v2/7") == "regex"  # regex before plain prefixes
    assert name("z.org", "/v2/7/8") == "prefix-short"  # regex anchored: no match
    assert name("b.example.com", "/v2/7") == "wild"  # more fields first
    assert name("a.example.com", "/v2") == "plain"  # plain host before wildcard
    assert name("z.org", "/v2", "POST") == "post"
