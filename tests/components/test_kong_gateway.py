"""KongGateway under the SDK's mocks (global stack)."""

from __future__ import annotations

import json

from tests.conftest import Plan

PLUGIN = "kong:index/plugin:Plugin"


def test_services_for_rest_graphql_and_streaming(fleet: Plan) -> None:
    services = {r.inputs["name"]: r.inputs for r in fleet.resources("global", "kong:index/service:Service")}
    assert set(services) == {"rest-api", "graphql-api", "streaming-api", "meter"}
    assert services["rest-api"]["host"] == "voice-api.platform.svc.cluster.local"
    assert services["streaming-api"]["readTimeout"] == 3_600_000


def test_versioned_routes_and_deprecation_headers_on_the_older(fleet: Plan) -> None:
    routes = {r.inputs["name"]: r for r in fleet.resources("global", "kong:index/route:Route")}
    assert routes["rest-v1"].inputs["paths"] == ["/v1"]
    assert routes["rest-v2"].inputs["paths"] == ["/v2"]
    assert routes["graphql-v2"].inputs["paths"] == ["/v2/graphql"]
    deprecations = [r for r in fleet.resources("global", PLUGIN) if r.inputs["name"] == "response-transformer"]
    assert {d.property_dependencies["routeId"][0] for d in deprecations} == {
        routes["rest-v1"].urn,
        routes["graphql-v1"].urn,
    }
    headers = json.loads(deprecations[0].inputs["configJson"])["add"]["headers"]
    assert "Deprecation: true" in headers
    assert "Sunset: Wed, 30 Jun 2027 23:59:59 GMT" in headers
    assert 'Link: </v2>; rel="successor-version"' in headers


def test_global_plugins(fleet: Plan) -> None:
    global_plugins = {
        r.inputs["name"]: json.loads(r.inputs["configJson"])
        for r in fleet.resources("global", PLUGIN)
        if not ({"serviceId", "routeId", "consumerId"} & set(r.inputs))
    }
    assert set(global_plugins) == {"correlation-id", "prometheus", "request-size-limiting", "cors", "rate-limiting"}
    assert global_plugins["request-size-limiting"]["allowed_payload_size"] == 8
    assert global_plugins["rate-limiting"]["minute"] == 300  # the starter plan is the default


def test_tier_plans_gate_apis_by_feature(fleet: Plan) -> None:
    services = {r.urn: r.inputs["name"] for r in fleet.resources("global", "kong:index/service:Service")}
    acls = {
        services[r.property_dependencies["serviceId"][0]]: json.loads(r.inputs["configJson"])["allow"]
        for r in fleet.resources("global", PLUGIN)
        if r.inputs["name"] == "acl"
    }
    assert acls == {
        "rest-api": ["tier-starter", "tier-professional", "tier-enterprise"],
        "graphql-api": ["tier-professional", "tier-enterprise"],
        "streaming-api": ["tier-enterprise"],
    }
    plans = fleet.outputs("global")["kong_rate_limit_plans"]
    assert json.loads(plans["enterprise"])["hour"] == 300000


def test_hybrid_cluster_key_and_snowflake_admin_keys_are_secret(fleet: Plan) -> None:
    outputs = fleet.outputs("global")
    assert outputs["kong_cluster_key"] == "[secret]"
    assert outputs["snowflake_admin_keys"] == "[secret]"
    assert outputs["snowflake_accounts"]["eu-central"] == "PLATFORM_EU_CENTRAL"
    accounts = fleet.resources("global", "snowflake:index/account:Account")
    assert len(accounts) == 15 and all(a.protect for a in accounts)
