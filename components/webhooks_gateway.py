"""WebhooksGateway (global stack): the token Kong forwards owners' requests to the webhooks management API with.

The API itself (service, key-auth, ACL, the `/v1/webhooks` route and its copies on partner hosts) is an entry of
gateway/apis.yaml like every platform API; this adds the one thing it needs beyond them: Kong, not the client, sets
the Authorization the service trusts X-Consumer-Custom-ID with. Every region's data plane reaches its own region's
service (cluster DNS)."""

from __future__ import annotations

import json
from dataclasses import dataclass

import pulumi
import pulumi_kong as kong
import pulumi_random as random

from components.outputs import secret
from gateway.routes import PARTNER_HEADER


@dataclass(frozen=True)
class WebhooksGatewayArgs:
    service_id: pulumi.Input[str]
    """The Kong service of the `webhooks` API (gateway/apis.yaml; KongGateway makes it, its key-auth, ACL, route)."""


def forward_config(token: str) -> dict[str, object]:
    """request-transformer on the route: the client's Authorization and X-Partner-Id never reach the service; Kong's
    own Authorization (the service's gateway token) does. X-Consumer-Custom-ID is Kong's: key-auth sets it from the
    authenticated consumer and clears a client's copy when the consumer has none. This service's request-transformer
    replaces the global one there, so it removes X-Partner-Id itself. Plugin schema: developer.konghq.com/plugins/
    request-transformer (order remove, rename, replace, add, append)."""
    return {
        "remove": {"headers": ["Authorization", PARTNER_HEADER]},
        "add": {"headers": [f"Authorization:Bearer {token}"]},
    }


class WebhooksGateway(pulumi.ComponentResource):
    kong_token: pulumi.Output[str]

    def __init__(self, name: str, args: WebhooksGatewayArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("platform:webhooks_gateway:WebhooksGateway", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        token = random.RandomPassword(f"{name}-kong-token", length=48, special=False, opts=child)
        self.kong_token = secret(token.result)
        kong.Plugin(
            f"{name}-forward",
            name="request-transformer",
            service_id=args.service_id,
            config_json=secret(token.result.apply(lambda value: json.dumps(forward_config(value), sort_keys=True))),
            opts=child,
        )
        self.register_outputs({"kong_token": self.kong_token})
