"""VoiceEndpoint (each region's voice host) under the SDK's mocks: DNS, certificate bound by SNI, Kong service and
route to the region's voice service from `platform:voiceUpstream`."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

import pytest

from foundation.yamlio import dump_yaml, load_yaml_file
from platformctl.offline.recorder import RecordedResource
from tests.conftest import Plan

STACK = "region-eu-central"
HOST = "voice.eu-central.voice-platform.example"


def _parts(plan: Plan, stack: str = STACK) -> dict[str, RecordedResource]:
    parent = plan.one(stack, "platform:voice_endpoint:VoiceEndpoint", "region-voice")
    return {r.type: r for r in plan.resources(stack) if r.parent == parent.urn}


def test_every_region_has_its_voice_host(fleet: Plan) -> None:
    regions = [s for s in fleet.plans if s.startswith("region-")]
    assert len(regions) == 15
    for stack in regions:
        code = stack.removeprefix("region-")
        host = f"voice.{code}.voice-platform.example"
        record = fleet.one(stack, "aws:route53/record:Record", "region-voice-dns")
        assert record.inputs["name"] == host and record.inputs["type"] == "CNAME"
        # Same region provider as every other AWS resource of the region; the CNAME's target is the region's gateway.
        assert record.provider.startswith(fleet.one(stack, "pulumi:providers:aws", "region-aws").urn)
        lb = fleet.one(stack, "kubernetes:core/v1:Service", "region-gateway-lb")
        assert lb.urn in record.property_dependencies["records"]
        route = fleet.one(stack, "kong:index/route:Route", "region-voice-route")
        assert route.inputs["hosts"] == route.inputs["snis"] == [host]
        assert route.inputs["name"] == f"voice-{code}"
        # What the region exports as the numbers' voice URL is what the route serves.
        url = urlsplit(fleet.outputs(stack)["voice_endpoint_url"])
        assert url.scheme == "https" and url.hostname == host
        assert any(url.path.startswith(p) for p in route.inputs["paths"])


def test_the_voice_host_has_its_certificate_before_its_route(fleet: Plan) -> None:
    parts = _parts(fleet)
    certificate = parts["kubernetes:cert-manager.io/v1:Certificate"]
    assert certificate.inputs["metadata"]["namespace"] == "platform"
    assert certificate.inputs["spec"]["dnsNames"] == [HOST]
    assert certificate.inputs["spec"]["issuerRef"] == {"kind": "ClusterIssuer", "name": "letsencrypt-dns01"}
    assert certificate.provider.startswith(fleet.one(STACK, "pulumi:providers:kubernetes", "region-k8s").urn)
    # Kong gets it from the region's certificate sync (no Secret read by the stack): a Role lets the sync read
    # exactly this Secret, and the route waits for the certificate to be issued.
    sync_role = parts["kubernetes:rbac.authorization.k8s.io/v1:Role"]
    assert sync_role.inputs["rules"][0]["resourceNames"] == ["tls-voice"]
    assert "kong:index/certificate:Certificate" not in parts
    route = parts["kong:index/route:Route"]
    assert certificate.urn in route.dependencies
    issuer = fleet.one(STACK, "kubernetes:cert-manager.io/v1:ClusterIssuer", "region-acme-issuer")
    assert issuer.urn in certificate.dependencies
    # Not the meter's certificate: each host its own (the meter's Secret is tls-meter).
    assert certificate.inputs["spec"]["secretName"] == "tls-voice"


def test_the_route_reaches_the_regions_voice_service_over_https_only(fleet: Plan) -> None:
    parts = _parts(fleet)
    service = parts["kong:index/service:Service"]
    route = parts["kong:index/route:Route"]
    assert route.property_dependencies["serviceId"] == [service.urn]
    assert service.inputs["name"] == "voice-eu-central"
    # Pulumi.yaml's placeholder until the region names its voice service (validate --for-deploy reports it).
    assert (service.inputs["host"], service.inputs["port"]) == ("voice-service.invalid", 8080)
    assert service.inputs["protocol"] == "http"
    assert route.inputs["protocols"] == ["https"] and route.inputs["httpsRedirectStatusCode"] == 426
    assert route.inputs["paths"] == ["/twilio/"] and route.inputs["stripPath"] is False
    assert route.inputs["methods"] == ["GET", "POST"]
    assert route.inputs["preserveHost"] is True  # Twilio's signature covers the URL it called, host included
    kong = fleet.one(STACK, "pulumi:providers:kong", "kong")
    assert all(r.provider.startswith(kong.urn) for r in (service, route))


def _set_upstream(root: Path, value: object) -> None:
    path = root / "stacks" / f"Pulumi.{STACK}.yaml"
    doc = load_yaml_file(path, path.name)
    doc["config"]["platform:voiceUpstream"] = value
    path.write_text(dump_yaml(doc))


def test_each_region_names_its_voice_upstream(repo_copy: Path, plan_in) -> None:
    _set_upstream(repo_copy, "Voice.Platform.svc.cluster.local:9090")
    plan = plan_in(repo_copy, STACK)
    service = _parts(plan)["kong:index/service:Service"]
    assert (service.inputs["host"], service.inputs["port"]) == ("voice.platform.svc.cluster.local", 9090)


@pytest.mark.parametrize(
    "value",
    [
        "voice.platform.svc.cluster.local",  # no port
        "http://voice:8080",  # a scheme
        "voice:8080/path",
        "voice:0",
        "voice:65536",
        "voice:80a",
        "[::1]:8080",
        "user@voice:8080",
        "voice host:8080",
        "-voice:8080",
        ":8080",
        "voice:８０",  # full-width digits
        "a" * 300 + ":8080",
    ],
)
def test_a_bad_voice_upstream_is_refused_naming_the_file_and_key(repo_copy: Path, plan_in, value: str) -> None:
    from foundation.errors import InputError

    _set_upstream(repo_copy, value)
    with pytest.raises(InputError, match=r"stacks/Pulumi\.region-eu-central\.yaml: platform:voiceUpstream: ") as err:
        plan_in(repo_copy, STACK)
    assert len(str(err.value)) < 400  # a long value is not echoed in full
