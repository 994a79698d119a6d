"""KongGateway under the SDK's mocks (global stack)."""

from __future__ import annotations

import json

from gateway.router import routes_from_plan, upstream_path
from tests.conftest import Plan

PLUGIN = "kong:index/plugin:Plugin"


def test_services_for_rest_graphql_and_streaming(fleet: Plan) -> None:
    services = {r.inputs["name"]: r.inputs for r in fleet.resources("global", "kong:index/service:Service")}
    assert set(services) == {"rest-api", "graphql-api", "streaming-api", "webhooks-api", "meter"}
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
    links = {
        route.split("-")[0]: next(
            h for h in json.loads(d.inputs["configJson"])["add"]["headers"] if h.startswith("Link")
        )
        for d in deprecations
        for route in [next(n for n, r in routes.items() if r.urn == d.property_dependencies["routeId"][0])]
    }
    # Each deprecated version points at its own API's successor, GraphQL at GraphQL.
    assert links == {
        "rest": 'Link: </v2>; rel="successor-version"',
        "graphql": 'Link: </v2/graphql>; rel="successor-version"',
    }


def test_global_plugins(fleet: Plan) -> None:
    global_plugins = {
        r.inputs["name"]: json.loads(r.inputs["configJson"])
        for r in fleet.resources("global", PLUGIN)
        if not ({"serviceId", "routeId", "consumerId"} & set(r.inputs))
    }
    assert set(global_plugins) == {
        "correlation-id",
        "prometheus",
        "request-size-limiting",
        "request-transformer",
    }
    assert global_plugins["request-transformer"] == {"remove": {"headers": ["X-Partner-Id"]}}
    assert global_plugins["request-size-limiting"]["allowed_payload_size"] == 8


def test_default_rate_limit_is_on_the_api_services_only(fleet: Plan) -> None:
    # Not global: a global instance would throttle Twilio's callbacks to the meter and its voice webhooks (no consumer,
    # so per Twilio IP at the lowest tier's 10/s), and Kong cannot exclude a route from a global plugin.
    services = {r.urn: r.inputs["name"] for r in fleet.resources("global", "kong:index/service:Service")}
    limits = [r for r in fleet.resources("global", PLUGIN) if r.inputs["name"] == "rate-limiting"]
    assert all(set(r.inputs) & {"serviceId"} and not set(r.inputs) & {"routeId", "consumerId"} for r in limits)
    scoped = {services[r.property_dependencies["serviceId"][0]]: json.loads(r.inputs["configJson"]) for r in limits}
    assert set(scoped) == {"rest-api", "graphql-api", "streaming-api", "webhooks-api"}
    assert all(c["second"] == 10 and c["minute"] == 300 for c in scoped.values())  # the starter plan is the default
    # The meter's and every region's voice service: no rate-limiting plugin on them or their routes, in any stack.
    checked = 0
    for stack in fleet.plans:
        routes = {r.urn: r for r in fleet.resources(stack, "kong:index/route:Route")}
        exempt_routes = {u for u, r in routes.items() if str(r.inputs.get("name", "")).startswith(("meter", "voice"))}
        exempt_services = {u for u, n in services.items() if n == "meter"} | {
            r.urn for r in fleet.resources(stack, "kong:index/service:Service") if r.inputs["name"].startswith("voice-")
        }
        checked += len(exempt_routes)
        for plugin in fleet.resources(stack, PLUGIN):
            if plugin.inputs["name"] != "rate-limiting":
                continue
            deps = plugin.property_dependencies
            assert not set(deps.get("routeId", [])) & exempt_routes, plugin.urn
            assert not set(deps.get("serviceId", [])) & exempt_services, plugin.urn
    assert checked == 2 * 15  # each region's meter route and voice route


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
        "webhooks-api": ["tier-starter", "tier-professional", "tier-enterprise"],
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


def test_rate_limits_count_in_the_regions_redis_not_per_pod(fleet: Plan) -> None:
    configs = [
        json.loads(r.inputs["configJson"])
        for stack in ("global", "partner-acme-voice", "partner-sakura-calls")
        for r in fleet.resources(stack, PLUGIN)
        if r.inputs["name"] == "rate-limiting"
    ]
    assert len(configs) == 6  # the default limit on the four API services (webhooks too); each partner's tier limit
    for config in configs:
        assert config["policy"] == "redis" and config["sync_rate"] == -1
        assert config["redis"]["host"] == "kong-redis.platform.svc.cluster.local"
        assert config["redis"]["ssl"] is True and config["redis"]["ssl_verify"] is True
        # The token is resolved by each data plane from its own environment: nothing secret in the config.
        assert config["redis"]["password"] == "{vault://env/platform-redis-auth}"


def test_graphql_upstream_gets_the_request_path_once(fleet: Plan) -> None:
    services = {r.inputs["name"]: r.inputs for r in fleet.resources("global", "kong:index/service:Service")}
    routes = [r for r in routes_from_plan(fleet.resources("global")) if r.service.endswith("graphql")]
    assert routes
    for route in routes:
        assert upstream_path(route, services["graphql-api"]["path"], route.paths[0]) == route.paths[0]


def test_the_meters_bearer_token_is_a_vault_reference_not_a_value(fleet: Plan) -> None:
    logs = [r for r in fleet.resources("global", PLUGIN) if r.inputs["name"] == "http-log"]
    assert len(logs) == 4  # one per API service: rest, graphql, streaming, webhooks
    for log in logs:
        config = json.loads(log.inputs["configJson"])  # plain: no secret in it any more
        assert config["headers"] == {"Authorization": "{vault://env/meter-kong-authorization}"}
        # Straight to the region's meter Service, not through Kong's proxy: no route, no proxy plugin applies.
        assert config["http_endpoint"] == "http://meter.platform.svc.cluster.local:8787/kong/http-log"
    token = fleet.one("global", "random:index/randomPassword:RandomPassword", "gateway-meter-token")
    assert not any(token.urn in deps for log in logs for deps in log.property_dependencies.values())
    assert fleet.outputs("global")["meter_kong_token"] == "[secret]"


def test_no_global_cors_plugin_admits_origins_for_everyone(fleet: Plan) -> None:
    """Failing before: a global cors plugin admitted https://<any one label>.<zone> on every route (and no partner
    dashboard, which is dashboard.<id>.<zone> or the partner's own domain). Partner routes carry their own."""
    assert [r.name for r in fleet.resources("global", PLUGIN) if r.inputs["name"] == "cors"] == []
