"""Config fields each Kong plugin the platform uses accepts, to reject a planned plugin config Kong would refuse.

Source: the plugins' schema.lua files in github.com/Kong/kong at tag 3.9.1 (commit b724fc71, 2025-06-04), the
version the regional data planes run (`KONG_IMAGE_TAG`), and kong/tools/redis/schema.lua for the `redis` record.
Deprecated shorthand fields (e.g. rate-limiting `redis_host`) are left out on purpose: Kong 4.0 removes them.
A field maps to None (a value) or to the fields of its record.
"""

from __future__ import annotations

from typing import Any

KONG_IMAGE_TAG = "3.9"
"""Kong image the data planes run; the schemas below are that release's."""

Fields = dict[str, "Fields | None"]

_REDIS: Fields = dict.fromkeys(
    ("host", "port", "timeout", "username", "password", "database", "ssl", "ssl_verify", "server_name")
)
_HEADERS_JSON: Fields = {"json": None, "headers": None}
_TYPED_JSON: Fields = {"json": None, "json_types": None, "headers": None}
_BODY_HEADERS_QUERY: Fields = {"body": None, "headers": None, "querystring": None}

_QUEUE: Fields = dict.fromkeys(
    (
        "max_batch_size",
        "max_coalescing_delay",
        "max_entries",
        "max_bytes",
        "max_retry_time",
        "initial_retry_delay",
        "max_retry_delay",
        "concurrency_limit",
    )
)
"""kong/tools/queue_schema.lua (3.9.1)."""

PLUGIN_FIELDS: dict[str, Fields] = {
    "http-log": {
        **dict.fromkeys(
            (
                "http_endpoint",
                "method",
                "content_type",
                "timeout",
                "keepalive",
                "retry_count",
                "queue_size",
                "flush_timeout",
                "headers",
                "custom_fields_by_lua",
            )
        ),
        "queue": _QUEUE,
    },
    "acl": dict.fromkeys(("allow", "deny", "hide_groups_header", "always_use_authenticated_groups")),
    "correlation-id": dict.fromkeys(("header_name", "generator", "echo_downstream")),
    "cors": dict.fromkeys(
        (
            "origins",
            "headers",
            "exposed_headers",
            "methods",
            "max_age",
            "credentials",
            "private_network",
            "preflight_continue",
        )
    ),
    "key-auth": dict.fromkeys(
        (
            "key_names",
            "hide_credentials",
            "anonymous",
            "key_in_header",
            "key_in_query",
            "key_in_body",
            "run_on_preflight",
            "realm",
        )
    ),
    "prometheus": dict.fromkeys(
        (
            "per_consumer",
            "status_code_metrics",
            "ai_metrics",
            "latency_metrics",
            "bandwidth_metrics",
            "upstream_health_metrics",
        )
    ),
    "rate-limiting": {
        **dict.fromkeys(
            (
                "second",
                "minute",
                "hour",
                "day",
                "month",
                "year",
                "limit_by",
                "header_name",
                "path",
                "policy",
                "fault_tolerant",
                "hide_client_headers",
                "error_code",
                "error_message",
                "sync_rate",
            )
        ),
        "redis": _REDIS,
    },
    "request-size-limiting": dict.fromkeys(("allowed_payload_size", "size_unit", "require_content_length")),
    # kong/plugins/request-termination/schema.lua: `message` is answered as {"message": ...} (handler.lua).
    "request-termination": dict.fromkeys(("status_code", "message", "content_type", "body", "echo", "trigger")),
    "request-transformer": {
        "http_method": None,
        "remove": _BODY_HEADERS_QUERY,
        "rename": _BODY_HEADERS_QUERY,
        "replace": {**_BODY_HEADERS_QUERY, "uri": None},
        "add": _BODY_HEADERS_QUERY,
        "append": _BODY_HEADERS_QUERY,
    },
    "response-transformer": {
        "remove": _HEADERS_JSON,
        "rename": _HEADERS_JSON,
        "replace": _TYPED_JSON,
        "add": _TYPED_JSON,
        "append": _TYPED_JSON,
    },
}
"""Allowed config fields per plugin name (Kong 3.9.1 schemas)."""

REFERENCEABLE: dict[str, tuple[str, ...]] = {
    "http-log": ("http_endpoint", "headers.*"),
    "rate-limiting": ("redis.username", "redis.password"),
}
"""Config fields whose schema says `referenceable = true` (a `{vault://...}` value is resolved by the data plane), as
dotted paths, `*` one map key: kong/plugins/http-log/schema.lua (`http_endpoint`, the `headers` map's values) and
kong/tools/redis/schema.lua (`username`, `password`) at 3.9.1; no other plugin here has one. Anywhere else Kong would
use the reference's text as the value."""


def config_problems(plugin: str, config: Any) -> list[str]:
    """What Kong 3.9 would refuse in a plugin's config: an unknown plugin, a field its schema does not have."""
    if plugin not in PLUGIN_FIELDS:
        return [f"plugin {plugin!r} is not in the checked plugin list (gateway/kong_plugins.py): add its schema"]
    if not isinstance(config, dict):
        return [f"{plugin}: config must be an object"]
    return _unknown(plugin, config, PLUGIN_FIELDS[plugin], "config") + _unresolved_references(plugin, config)


def is_vault_reference(value: object) -> bool:
    """A whole value `{vault://...}`, as kong/pdk/vault.lua `is_reference` tells one (3.9.1)."""
    return isinstance(value, str) and value.startswith("{vault://") and value.endswith("}")


def _unresolved_references(plugin: str, config: dict[str, Any]) -> list[str]:
    allowed = REFERENCEABLE.get(plugin, ())
    problems = []
    for path, value in _leaves(config, ()):
        if "{vault://" not in value:
            continue
        dotted = ".".join(path)
        wildcard = ".".join((*path[:-1], "*"))
        if not is_vault_reference(value):
            problems.append(
                f"{plugin}: config.{dotted} embeds a vault reference in other text; Kong resolves only a "
                "whole value {vault://...}"
            )
        elif dotted not in allowed and wildcard not in allowed:
            problems.append(
                f"{plugin}: config.{dotted} is not referenceable in Kong {KONG_IMAGE_TAG}: the reference "
                "would be used as text"
            )
    return problems


def _leaves(value: Any, path: tuple[str, ...]) -> list[tuple[tuple[str, ...], str]]:
    if isinstance(value, str):
        return [(path, value)]
    if isinstance(value, dict):
        return [leaf for key, item in value.items() for leaf in _leaves(item, (*path, str(key)))]
    if isinstance(value, list):
        return [leaf for item in value for leaf in _leaves(item, path)]
    return []


def _unknown(plugin: str, config: dict[str, Any], fields: Fields, path: str) -> list[str]:
    problems = []
    for key, value in config.items():
        if key not in fields:
            problems.append(f"{plugin}: {path}.{key} is not a field of the {plugin} plugin (Kong {KONG_IMAGE_TAG})")
            continue
        nested = fields[key]
        if nested is not None:
            if isinstance(value, dict):
                problems.extend(_unknown(plugin, value, nested, f"{path}.{key}"))
            elif value is not None:
                problems.append(f"{plugin}: {path}.{key} must be an object")
    return problems
