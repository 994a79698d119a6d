"""A region's address layout: which ranges of its VPC hold pods, load balancers and AWS service endpoints.

Region stacks build the subnets from it and partner stacks write their egress rules from it, so both agree without
a stack output: the endpoint subnets hold nothing but interface endpoints, which lets a tenant's NetworkPolicy
allow them by address without also allowing pods (with the VPC CNI pods take addresses of the private subnets)."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from regions.catalog import Region

INTERFACE_ENDPOINT_SERVICES = ("s3", "kms", "sts")
"""AWS APIs tenants reach through interface endpoints in the endpoint subnets (private DNS on, so the SDKs'
default regional hostnames resolve to them). S3 also gets a gateway endpoint for the nodes' own traffic."""
POD_IDENTITY_AGENT = "169.254.170.23/32"
"""EKS Pod Identity agent (a node-local address; pods fetch their credentials there, on port 80)."""
INSTANCE_METADATA = "169.254.169.254/32"
"""EC2 instance metadata service: node credentials; never reachable from a tenant pod."""


@dataclass(frozen=True)
class AddressLayout:
    private: tuple[ipaddress.IPv4Network, ...]
    """Node and pod subnets (one /19 per zone)."""
    public: tuple[ipaddress.IPv4Network, ...]
    """Load balancer and NAT subnets (one /24 per zone)."""
    endpoints: tuple[ipaddress.IPv4Network, ...]
    """Interface endpoint subnets (one /24 per zone), nothing else in them."""


def address_layout(region: Region) -> AddressLayout:
    """/16 -> private /19s from the bottom; the top /19 split into /24s: public from its start, endpoints from 16."""
    zones = len(region.zone_ids)
    private = list(region.cidr.subnets(new_prefix=19))
    top = list(private[-1].subnets(new_prefix=24))
    return AddressLayout(
        private=tuple(private[:zones]), public=tuple(top[:zones]), endpoints=tuple(top[16 : 16 + zones])
    )
