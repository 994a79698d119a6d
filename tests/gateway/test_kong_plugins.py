"""Plugin configs against the Kong 3.9 plugin schemas."""

from __future__ import annotations

import json

from components.webhooks_gateway import forward_config
from gateway.kong_plugins import PLUGIN_FIELDS, config_problems
from tests.conftest import Plan

SECRET_CONFIGS = {"webhooks-forward": lambda: forward_config("token")}
"""The one plugin whose config is a Pulumi secret: request-transformer adds Kong's bearer token for the webhooks
service, and Kong 3.9's request-transformer fields are not referenceable (so no vault reference); its shape is
checked on the same function with a stand-in token."""


def test_every_planned_plugin_config_fits_its_schema(fleet: Plan) -> None:
    seen = set()
    for stack in fleet.plans:
        for plugin in fleet.resources(stack, "kong:index/plugin:Plugin"):
            seen.add(plugin.inputs["name"])
            # No other plugin config carries a secret: the meter's token is a vault reference (gateway/vault.py).
            if plugin.inputs["configJson"] == "[secret]":
                assert plugin.name in SECRET_CONFIGS, plugin.urn
                config = SECRET_CONFIGS[plugin.name]()
            else:
                config = json.loads(plugin.inputs["configJson"])
            assert config_problems(plugin.inputs["name"], config) == []
    assert seen <= set(PLUGIN_FIELDS)


def test_unknown_and_misnested_fields_are_reported() -> None:
    assert config_problems("rate-limiting", {"minute": 5, "redis_hots": "x"}) == [
        "rate-limiting: config.redis_hots is not a field of the rate-limiting plugin (Kong 3.9)"
    ]
    assert config_problems("rate-limiting", {"redis": {"host": "h", "sni": "x"}}) == [
        "rate-limiting: config.redis.sni is not a field of the rate-limiting plugin (Kong 3.9)"
    ]
    assert config_problems("rate-limiting", {"redis": "h"}) == ["rate-limiting: config.redis must be an object"]
    assert config_problems("acme", {}) == [
        "plugin 'acme' is not in the checked plugin list (gateway/kong_plugins.py): add its schema"
    ]
    assert config_problems("cors", ["x"]) == ["cors: config must be an object"]


def test_the_meters_log_config_fits_the_http_log_schema() -> None:
    from components.kong_gateway import meter_log_config

    assert config_problems("http-log", meter_log_config("http://meter.platform.svc.cluster.local:8787")) == []
    assert config_problems("http-log", {"queue": {"max_batch": 1}}) == [
        "http-log: config.queue.max_batch is not a field of the http-log plugin (Kong 3.9)"
    ]


def test_vault_references_only_where_kong_resolves_them() -> None:
    assert config_problems("http-log", {"headers": {"Authorization": "{vault://env/meter-kong-authorization}"}}) == []
    assert config_problems("rate-limiting", {"redis": {"password": "{vault://env/platform-redis-auth}"}}) == []
    # Kong resolves only a whole value: "Bearer {vault://...}" would go out as that text.
    assert config_problems("http-log", {"headers": {"Authorization": "Bearer {vault://env/token}"}}) == [
        "http-log: config.headers.Authorization embeds a vault reference in other text; Kong resolves only a whole "
        "value {vault://...}"
    ]
    assert config_problems("rate-limiting", {"redis": {"host": "{vault://env/redis-host}"}}) == [
        "rate-limiting: config.redis.host is not referenceable in Kong 3.9: the reference would be used as text"
    ]
    assert config_problems("cors", {"origins": ["{vault://env/origin}"]}) == [
        "cors: config.origins is not referenceable in Kong 3.9: the reference would be used as text"
    ]
