"""The region's certificates (components/regional_deployment/certificates.py): cert-manager and its issuer."""

from __future__ import annotations

from tests.conftest import Plan


def test_cert_manager_answers_dns01_in_the_platform_zone(fleet: Plan) -> None:
    stack = "region-eu-central"
    issuer = fleet.one(stack, "kubernetes:cert-manager.io/v1:ClusterIssuer", "region-acme-issuer")
    (solver,) = issuer.inputs["spec"]["acme"]["solvers"]
    assert solver["dns01"]["cnameStrategy"] == "Follow"
    assert issuer.property_dependencies["spec"][0].endswith("organization/platform/global")
    release = fleet.one(stack, "kubernetes:helm.sh/v3:Release", "region-cert-manager")
    assert release.urn in issuer.dependencies
