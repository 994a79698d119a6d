"""The region's network (components/regional_deployment/network.py)."""

from __future__ import annotations

from tests.conftest import Plan


def test_network_spans_the_catalog_zones(fleet: Plan) -> None:
    subnets = fleet.resources("region-ca-central", "aws:ec2/subnet:Subnet")
    assert sorted({s.inputs["availabilityZoneId"] for s in subnets}) == ["cac1-az1", "cac1-az2", "cac1-az4"]
    assert not any("availabilityZone" in s.inputs for s in subnets)
    vpc = fleet.one("region-ca-central", "aws:ec2/vpc:Vpc", "region-vpc")
    assert vpc.inputs["cidrBlock"] == "10.12.0.0/16"
