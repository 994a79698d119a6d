"""The region's network: one VPC over the catalog's zones (public, private and endpoint subnets, one NAT) and the
VPC endpoints through which tenants reach S3, KMS and STS."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from regions.catalog import Region
from regions.network import INTERFACE_ENDPOINT_SERVICES, address_layout


@dataclass(frozen=True)
class RegionNetwork:
    vpc: aws.ec2.Vpc
    """The region's VPC."""
    private_subnets: list[aws.ec2.Subnet]
    """One per zone: the nodes, Redis (NAT for the way out)."""
    public_subnets: list[aws.ec2.Subnet]
    """One per zone: the public load balancers and the NAT."""


def build_network(name: str, region: Region, opts: pulumi.ResourceOptions) -> RegionNetwork:
    """`opts`: parent (the deployment) and the region's AWS provider."""
    vpc = aws.ec2.Vpc(
        f"{name}-vpc",
        cidr_block=str(region.cidr),
        enable_dns_hostnames=True,
        enable_dns_support=True,
        tags={"Name": f"platform-{region.code}"},
        opts=opts,
    )
    layout = address_layout(region)
    igw = aws.ec2.InternetGateway(f"{name}-igw", vpc_id=vpc.id, opts=opts)
    public_rt = aws.ec2.RouteTable(
        f"{name}-public-rt",
        vpc_id=vpc.id,
        routes=[aws.ec2.RouteTableRouteArgs(cidr_block="0.0.0.0/0", gateway_id=igw.id)],
        opts=opts,
    )
    private_subnets, public_subnets, endpoint_subnets = [], [], []
    # Zone IDs, not names: a zone name is a different physical zone in each account.
    for zone_id, cidr in zip(region.zone_ids, layout.public, strict=True):
        public = aws.ec2.Subnet(
            f"{name}-public-{zone_id}",
            vpc_id=vpc.id,
            availability_zone_id=zone_id,
            cidr_block=str(cidr),
            map_public_ip_on_launch=False,
            tags={"kubernetes.io/role/elb": "1"},
            opts=opts,
        )
        aws.ec2.RouteTableAssociation(
            f"{name}-public-{zone_id}-rt", subnet_id=public.id, route_table_id=public_rt.id, opts=opts
        )
        public_subnets.append(public)
    eip = aws.ec2.Eip(f"{name}-nat-ip", domain="vpc", opts=opts)
    nat = aws.ec2.NatGateway(f"{name}-nat", allocation_id=eip.id, subnet_id=public_subnets[0].id, opts=opts)
    private_rt = aws.ec2.RouteTable(
        f"{name}-private-rt",
        vpc_id=vpc.id,
        routes=[aws.ec2.RouteTableRouteArgs(cidr_block="0.0.0.0/0", nat_gateway_id=nat.id)],
        opts=opts,
    )
    for zone_id, cidr in zip(region.zone_ids, layout.private, strict=True):
        private = aws.ec2.Subnet(
            f"{name}-private-{zone_id}",
            vpc_id=vpc.id,
            availability_zone_id=zone_id,
            cidr_block=str(cidr),
            tags={"kubernetes.io/role/internal-elb": "1"},
            opts=opts,
        )
        aws.ec2.RouteTableAssociation(
            f"{name}-private-{zone_id}-rt", subnet_id=private.id, route_table_id=private_rt.id, opts=opts
        )
        private_subnets.append(private)
    for zone_id, cidr in zip(region.zone_ids, layout.endpoints, strict=True):
        endpoint_subnets.append(
            aws.ec2.Subnet(
                f"{name}-endpoints-{zone_id}",
                vpc_id=vpc.id,
                availability_zone_id=zone_id,
                cidr_block=str(cidr),
                tags={"platform:subnet": "endpoints"},
                opts=opts,
            )
        )
    _endpoints(name, region, vpc, private_rt, endpoint_subnets, opts)
    return RegionNetwork(vpc=vpc, private_subnets=private_subnets, public_subnets=public_subnets)


def _endpoints(
    name: str,
    region: Region,
    vpc: aws.ec2.Vpc,
    private_rt: aws.ec2.RouteTable,
    subnets: list[aws.ec2.Subnet],
    opts: pulumi.ResourceOptions,
) -> None:
    """AWS APIs inside the VPC: tenants reach S3, KMS and STS without the NAT, and network policy can name them."""
    aws.ec2.VpcEndpoint(
        f"{name}-s3-gateway",
        vpc_id=vpc.id,
        service_name=f"com.amazonaws.{region.aws_region}.s3",
        vpc_endpoint_type="Gateway",
        route_table_ids=[private_rt.id],
        opts=opts,
    )
    https_in = aws.ec2.SecurityGroup(
        f"{name}-endpoints-sg",
        description="HTTPS from the VPC to its interface endpoints",
        vpc_id=vpc.id,
        ingress=[
            aws.ec2.SecurityGroupIngressArgs(protocol="tcp", from_port=443, to_port=443, cidr_blocks=[str(region.cidr)])
        ],
        opts=opts,
    )
    for service in INTERFACE_ENDPOINT_SERVICES:
        aws.ec2.VpcEndpoint(
            f"{name}-{service}-endpoint",
            vpc_id=vpc.id,
            service_name=f"com.amazonaws.{region.aws_region}.{service}",
            vpc_endpoint_type="Interface",
            subnet_ids=[s.id for s in subnets],
            security_group_ids=[https_in.id],
            private_dns_enabled=True,
            # S3 has a gateway endpoint too: answer the VPC's own lookups with the interface endpoint's addresses,
            # the only S3 addresses a tenant's NetworkPolicy lets its pods reach.
            dns_options=(
                aws.ec2.VpcEndpointDnsOptionsArgs(private_dns_only_for_inbound_resolver_endpoint=False)
                if service == "s3"
                else None
            ),
            opts=opts,
        )
