"""KongGateway: the control-plane entities every region's data plane serves (global stack)."""

from __future__ import annotations

import json
from dataclasses import dataclass

import pulumi
import pulumi_kong as kong
import pulumi_random as random
import pulumi_tls as tls

from components.outputs import secret
from foundation.naming import tier_acl_group
from gateway.model import ApiCatalog
from gateway.rate_limits import rate_limit_config
from gateway.routes import platform_routes, strip_partner_header_config
from gateway.vault import METER_AUTHORIZATION, env_reference
from partners.tiers import TierTable


@dataclass(frozen=True)
class KongGatewayArgs:
    apis: ApiCatalog
    """The API surface (gateway/apis.yaml)."""
    tiers: TierTable
    """The tier table: which tiers may call which API, and the rate limits each tier gets."""
    dns_zone: str
    """The platform's public zone (stack config platform:dnsZone)."""
    upstream_domain: str = "svc.cluster.local"
    """Cluster DNS suffix of the upstream services in each region."""
    meter_upstream: str = "meter.platform"
    """The meter's Service (name.namespace) in every region's cluster; each data plane reaches its own."""
    meter_port: int = 8787
    """The meter's port."""


class KongGateway(pulumi.ComponentResource):
    service_ids: dict[str, pulumi.Output[str]]
    meter_service_id: pulumi.Output[str]

    def __init__(self, name: str, args: KongGatewayArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("platform:kong_gateway:KongGateway", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        plugins = args.apis.global_plugins
        lowest_tier = next(iter(args.tiers.tiers.values()))

        kong.Plugin(
            f"{name}-correlation-id",
            name="correlation-id",
            config_json=json.dumps(plugins.correlation_id.model_dump(), sort_keys=True),
            opts=child,
        )
        kong.Plugin(
            f"{name}-prometheus",
            name="prometheus",
            config_json=json.dumps({"per_consumer": True, "status_code_metrics": True, "latency_metrics": True}),
            opts=child,
        )
        kong.Plugin(
            f"{name}-request-size-limiting",
            name="request-size-limiting",
            config_json=json.dumps({"allowed_payload_size": plugins.request_size_limit_mb, "size_unit": "megabytes"}),
            opts=child,
        )
        # No global cors plugin: each partner's routes admit that partner's own dashboards (gateway/cors.py).
        # Upstreams learn the partner from the authenticated consumer (key-auth sets X-Consumer-Custom-ID to its
        # custom_id, the partner id), never from the client: a client's X-Partner-Id goes on every route. No route or
        # service has a request-transformer of its own, which would replace this global one there.
        kong.Plugin(
            f"{name}-strip-partner-header",
            name="request-transformer",
            config_json=strip_partner_header_config(),
            opts=child,
        )

        self.service_ids = {}
        for api_name, api in args.apis.apis.items():
            upstream = api.upstream
            service = kong.Service(
                f"{name}-{api_name}",
                name=f"{api_name}-api",
                protocol=upstream.protocol,
                host=f"{upstream.host}.{args.apis.upstream_namespace}.{args.upstream_domain}",
                port=upstream.port,
                path=upstream.path,
                retries=3,
                connect_timeout=5000,
                read_timeout=3_600_000 if api.websocket else 60_000,
                write_timeout=3_600_000 if api.websocket else 60_000,
                tags=["platform", f"api:{api_name}"],
                opts=child,
            )
            self.service_ids[api_name] = service.id
            kong.Plugin(
                f"{name}-{api_name}-key-auth",
                name="key-auth",
                service_id=service.id,
                config_json=json.dumps({"key_names": ["apikey"], "hide_credentials": True}),
                opts=child,
            )
            kong.Plugin(
                f"{name}-{api_name}-acl",
                name="acl",
                service_id=service.id,
                config_json=json.dumps(
                    {"allow": [tier_acl_group(t) for t in args.tiers.holding(api.feature)], "hide_groups_header": True}
                ),
                opts=child,
            )
            # The default limit, on the API services only (not global): a consumer without its own tier plugin, or a
            # caller without a consumer (counted by IP), gets the lowest tier's limits. A consumer-scoped plugin (the
            # partner's tier limit) takes precedence over a service-scoped one. Not global, because a global instance
            # would also throttle Twilio's status callbacks to the meter and its voice webhooks (no consumer: per
            # Twilio IP), and Kong has no way to exclude a route from a global plugin; a route or service without a
            # rate-limiting plugin of its own is not limited. Plugin precedence (1 consumer+route+service ... 8 consumer
            # ... 11 service, 12 global): developer.konghq.com/plugins/scopes/#plugin-precedence; no exclusion of
            # global plugins: github.com/Kong/kong/discussions/7289 (read 2026-12-06).
            kong.Plugin(
                f"{name}-{api_name}-default-rate-limit",
                name="rate-limiting",
                service_id=service.id,
                config_json=rate_limit_config(lowest_tier.rate_limit),
                opts=child,
            )
        for spec in platform_routes(args.apis):
            route = kong.Route(
                f"{name}-{spec.name}",
                name=spec.name,
                service_id=self.service_ids[spec.api],
                protocols=["https"],
                paths=[spec.path],
                strip_path=False,
                preserve_host=False,
                https_redirect_status_code=426,
                tags=["platform", f"api:{spec.api}", f"version:{spec.version}"],
                opts=child,
            )
            if spec.deprecation is not None:
                kong.Plugin(
                    f"{name}-{spec.name}-deprecation",
                    name="response-transformer",
                    route_id=route.id,
                    config_json=spec.deprecation,
                    opts=child,
                )

        self.meter_token = self._meter(name, args, child)

        # Hybrid mode, shared mTLS: control plane and every regional data plane present this certificate.
        cluster_key = tls.PrivateKey(f"{name}-cluster-key", algorithm="ECDSA", ecdsa_curve="P384", opts=child)
        cluster_cert = tls.SelfSignedCert(
            f"{name}-cluster-cert",
            private_key_pem=cluster_key.private_key_pem,
            subject=tls.SelfSignedCertSubjectArgs(common_name="kong_clustering"),
            validity_period_hours=24 * 365 * 3,
            early_renewal_hours=24 * 90,
            allowed_uses=["digital_signature", "key_encipherment", "server_auth", "client_auth"],
            opts=child,
        )
        self.cluster_cert = cluster_cert.cert_pem
        self.cluster_key = secret(cluster_key.private_key_pem)
        self.rate_limits = {name_: rate_limit_config(t.rate_limit) for name_, t in args.tiers.tiers.items()}
        self.register_outputs({"service_ids": self.service_ids, "rate_limit_plans": self.rate_limits})

    def _meter(self, name: str, args: KongGatewayArgs, child: pulumi.ResourceOptions) -> pulumi.Output[str]:
        """The meter's Kong service (each region stack routes its own meter host to it), and http-log on every API
        service feeding it (`meter_log_config`)."""
        meter_base = f"http://{args.meter_upstream}.{args.upstream_domain}:{args.meter_port}"
        token = random.RandomPassword(f"{name}-meter-token", length=48, special=False, opts=child)
        service = kong.Service(
            f"{name}-meter",
            name="meter",
            protocol="http",
            host=f"{args.meter_upstream}.{args.upstream_domain}",
            port=args.meter_port,
            retries=3,
            connect_timeout=2000,
            read_timeout=10_000,
            write_timeout=10_000,
            tags=["platform", "service:meter"],
            opts=child,
        )
        # The route to the meter is per region: each region stack binds its meter host's certificate and routes it.
        self.meter_service_id = service.id
        # The token is not in the plugin config: each data plane resolves the header from its own environment (the
        # region stack puts `Bearer <token>` there from a Secret), so the config is plain and holds no secret.
        log_config = json.dumps(meter_log_config(meter_base), sort_keys=True)
        for api_name, service_id in self.service_ids.items():
            kong.Plugin(
                f"{name}-{api_name}-http-log",
                name="http-log",
                service_id=service_id,
                config_json=log_config,
                opts=child,
            )
        return secret(token.result)


def meter_log_config(meter_base: str) -> dict[str, object]:
    """http-log plugin config feeding the meter: batches of 100, the meter's bearer token as a vault reference.

    Kong http-log plugin schema (headers map, queue.max_batch_size; entries carry request.id and
    consumer.custom_id): developer.konghq.com/plugins/http-log, Kong Gateway 3.9, checked 2026-11. The headers map's
    values are `referenceable = true` in kong/plugins/http-log/schema.lua at tag 3.9.1 (checked 2026-12-06), so the
    data plane resolves `Authorization` from its environment (gateway/vault.py).

    The log goes from each data plane straight to its region's meter Service (cluster DNS), not through Kong's proxy:
    no route, so no proxy plugin (rate limiting included) ever applies to these posts."""
    return {
        "http_endpoint": f"{meter_base}/kong/http-log",
        "method": "POST",
        "content_type": "application/json",
        "timeout": 10_000,
        "keepalive": 60_000,
        "headers": {"Authorization": env_reference(METER_AUTHORIZATION)},
        "queue": {"max_batch_size": 100, "max_coalescing_delay": 1},
    }
