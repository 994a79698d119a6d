"""The Kong entities of a marketplace integration (global control plane), registered by its IntegrationSandbox with
the sandbox as their parent: a service and route under `/integrations/<id>/` that only installing partners' consumers
may call; per scope a route on the platform API matching the scope's paths and methods and the
`X-Platform-Integration: <id>` header, open only to the integration's ACL group; one consumer per installation, in
that group, whose custom_id `<partner>/<integration>` names the partner's tenant to the upstreams. Suspended: every
route answers 503 with a body saying so; the consumers stay.

A builder, not a component of its own: a component here would change the URN of every entity below it."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any, cast

import pulumi
import pulumi_kong as kong
import pulumi_random as random

from foundation.naming import installation_consumer, integration_acl_group, integration_gateway_name, partner_namespace
from gateway.model import Scope
from integrations.spec import IntegrationSpec

INTEGRATION_HEADER = "X-Platform-Integration"
"""Header an integration sends with platform API calls: it selects the integration's scope routes."""


def build_integration_routes(
    name: str,
    spec: IntegrationSpec,
    scopes: Mapping[str, Scope],
    kong_service_ids: pulumi.Input[Mapping[str, str]],
    installations: tuple[str, ...],
    suspended: bool,
    namespace: str,
    opts: pulumi.ResourceOptions,
) -> dict[str, object]:
    """Registers the integration's Kong entities with `opts` (parent: the sandbox); returns the outputs they add."""
    group = integration_acl_group(spec.id)
    tags = [f"integration:{spec.id}"]
    service = kong.Service(
        f"{name}-service",
        name=integration_gateway_name(spec.id),
        protocol="http",
        # Each region's data plane resolves the name in its own cluster: traffic stays in the region.
        host=f"{spec.id}.{namespace}.svc.cluster.local",
        port=spec.port,
        path="/",
        retries=2,
        connect_timeout=5000,
        read_timeout=60_000,
        write_timeout=60_000,
        tags=tags,
        opts=opts,
    )
    kong.Plugin(
        f"{name}-key-auth",
        name="key-auth",
        service_id=service.id,
        config_json=json.dumps({"key_names": ["apikey"], "hide_credentials": True}),
        tags=tags,
        opts=opts,
    )
    route = kong.Route(
        f"{name}-route",
        name=integration_gateway_name(spec.id),
        service_id=service.id,
        protocols=["https"],
        paths=[f"/integrations/{spec.id}/"],
        strip_path=True,
        preserve_host=False,
        https_redirect_status_code=426,
        tags=tags,
        opts=opts,
    )
    # Only partners that installed it reach it (their consumers carry their private group).
    kong.Plugin(
        f"{name}-route-acl",
        name="acl",
        route_id=route.id,
        config_json=json.dumps(
            {"allow": [group, *(partner_namespace(p) for p in installations)], "hide_groups_header": True}
        ),
        tags=tags,
        opts=opts,
    )
    routes = [("route", route)]
    for scope_name in spec.scopes:
        scope = scopes[scope_name]
        slug = scope_name.replace(":", "-")
        scope_route = kong.Route(
            f"{name}-scope-{slug}",
            name=f"integration-{spec.id}-{slug}",
            service_id=pulumi.Output.from_input(kong_service_ids).apply(_service_of(scope.api)),
            protocols=["https"],
            paths=list(scope.paths),
            methods=list(scope.methods),
            headers=[kong.RouteHeaderArgs(name=INTEGRATION_HEADER, values=[spec.id])],
            strip_path=False,
            preserve_host=False,
            https_redirect_status_code=426,
            tags=[*tags, f"scope:{scope_name}"],
            opts=opts,
        )
        # The route's ACL replaces the service's tier ACL here: only this integration's installations pass.
        kong.Plugin(
            f"{name}-scope-{slug}-acl",
            name="acl",
            route_id=scope_route.id,
            config_json=json.dumps({"allow": [group], "hide_groups_header": True}),
            tags=tags,
            opts=opts,
        )
        routes.append((f"scope-{slug}", scope_route))
    if suspended:
        for label, suspended_route in routes:
            kong.Plugin(
                f"{name}-{label}-suspended",
                name="request-termination",
                route_id=suspended_route.id,
                config_json=json.dumps(suspended_response(spec.id)),
                tags=tags,
                opts=opts,
            )
    keys: dict[str, pulumi.Output[str]] = {}
    for partner_id in installations:
        username = installation_consumer(spec.id, partner_id)
        consumer = kong.Consumer(
            f"{name}-install-{partner_id}",
            username=username,
            custom_id=f"{partner_id}/{spec.id}",
            tags=[*tags, f"installation:{partner_id}"],
            opts=opts,
        )
        key = random.RandomPassword(f"{name}-install-{partner_id}-key", length=48, special=False, opts=opts)
        kong.ConsumerKeyAuth(
            f"{name}-install-{partner_id}-key-auth", consumer_id=consumer.id, key=key.result, tags=tags, opts=opts
        )
        kong.ConsumerAcl(f"{name}-install-{partner_id}-acl", consumer_id=consumer.id, group=group, tags=tags, opts=opts)
        keys[partner_id] = key.result
    return {
        "installation_keys": pulumi.Output.secret(cast(Any, pulumi.Output.all(**keys)) if keys else {}),
        "route_path": f"/integrations/{spec.id}/",
    }


def _service_of(api: str) -> Callable[[Mapping[str, str]], str]:
    return lambda ids: ids[api]


def suspended_response(integration_id: str) -> dict[str, object]:
    """request-termination config of a suspended integration's routes (Kong 3.9 schema fields)."""
    return {
        "status_code": 503,
        "message": f"The integration {integration_id} is suspended by the marketplace; installations are kept.",
    }
