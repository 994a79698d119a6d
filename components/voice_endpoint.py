"""VoiceEndpoint: a region's voice host, `voice.<region>.<zone>` - its DNS name to the region's gateway, a certificate
bound to Kong for it (SNI), and a Kong service and route to the region's voice service (gateway/voice.py)."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_aws as aws
import pulumi_kong as kong

from components.gateway_certificates import bind_certificate
from gateway.voice import VOICE_METHODS, VOICE_PATH_PREFIX, VoiceUpstream


@dataclass(frozen=True)
class VoiceEndpointArgs:
    region_code: str
    """The region (names the Kong entities: Kong's configuration is shared by every region's data plane)."""
    host: pulumi.Input[str]
    """voice.<region>.<zone>: the host the partners' numbers' voice URL names."""
    upstream: VoiceUpstream
    """The region's voice service (stack config platform:voiceUpstream)."""
    dns_zone_id: pulumi.Input[str]
    """Route 53 zone of the platform (global stack output)."""
    gateway_hostname: pulumi.Input[str]
    """The region's gateway load balancer: the host's CNAME target."""
    namespace: str
    """Namespace cert-manager writes the host's certificate Secret into (the gateway's)."""
    depends_on: tuple[pulumi.Resource, ...] = ()
    """What the certificate needs first (that namespace)."""


class VoiceEndpoint(pulumi.ComponentResource):
    def __init__(self, name: str, args: VoiceEndpointArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("platform:voice_endpoint:VoiceEndpoint", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        tags = ["platform", "service:voice", f"region:{args.region_code}"]
        aws.route53.Record(
            f"{name}-dns",
            zone_id=args.dns_zone_id,
            name=args.host,
            type="CNAME",
            ttl=300,
            records=[args.gateway_hostname],
            opts=child,
        )
        binding = bind_certificate(
            name,
            "voice",
            [args.host],
            args.namespace,
            labels={"app.kubernetes.io/name": "voice"},
            parent=self,
            # The Certificate kind, its ClusterIssuer and the sync that copies the Secret into Kong come first.
            depends_on=list(args.depends_on),
        )
        # One service per region: each region names its own upstream, and the route's host sends a call there only.
        service = kong.Service(
            f"{name}-service",
            name=f"voice-{args.region_code}",
            protocol="http",
            host=args.upstream.host,
            port=args.upstream.port,
            # At most one retry (Kong's default is 5): a webhook may start handling a call; past that, Twilio's own
            # recourse is the number's voice fallback URL.
            retries=1,
            connect_timeout=2000,
            # A call's media stream (a WebSocket upgrade on this host) lives as long as the call: an hour, like the
            # streaming API's service.
            read_timeout=3_600_000,
            write_timeout=3_600_000,
            tags=tags,
            opts=child,
        )
        # Created after the host's certificate, so Kong never answers the host with its default certificate. No
        # rate-limiting plugin applies: the default limit is scoped to the API services (components/kong_gateway.py).
        self.route = kong.Route(
            f"{name}-route",
            name=f"voice-{args.region_code}",
            service_id=service.id,
            protocols=["https"],
            methods=list(VOICE_METHODS),
            hosts=[args.host],
            snis=[args.host],
            paths=[VOICE_PATH_PREFIX],
            strip_path=False,
            # Twilio signs the URL it called, host included: the voice service checks X-Twilio-Signature against it.
            preserve_host=True,
            https_redirect_status_code=426,
            tags=tags,
            opts=pulumi.ResourceOptions(parent=self, depends_on=[binding]),
        )
        self.service_id = service.id
        self.register_outputs({"service_id": service.id, "route_id": self.route.id})
