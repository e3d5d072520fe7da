"""The VPC the EKS cluster runs in: public subnets for nodes and load balancers, private ones held in reserve."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

SUBNET_PREFIX_LENGTH = 20
"""4,096 addresses per subnet where the VPC has room: the VPC CNI gives every pod its own VPC address."""
SMALLEST_SUBNET_PREFIX_LENGTH = 24
"""Below 256 addresses a subnet runs out after a few nodes' worth of pods."""

EKS_UNSUPPORTED_ZONE_IDS = ("use1-az3", "usw1-az2", "cac1-az3")
"""Zones where EKS cannot place a control plane. Zone names map to ids per account, so exclude by id."""


@dataclass(frozen=True)
class NetworkArgs:
    name_prefix: str
    cidr: str
    az_count: int
    nat_gateway: bool
    """One NAT gateway (about $33 a month) lets private subnets reach the internet; off by default."""
    cluster_name: str
    """The EKS cluster whose load balancers may use these subnets."""

    def __post_init__(self) -> None:
        if self.az_count not in (2, 3):
            raise ValueError(f"az_count must be 2 or 3 (EKS needs two zones; more only costs), got {self.az_count}")
        subnet_cidrs(self.cidr, 2 * self.az_count)


def subnet_cidrs(vpc_cidr: str, count: int) -> list[str]:
    """`count` equal blocks from the start of the VPC: /20s where they fit, else the largest that do."""
    network = ipaddress.ip_network(vpc_cidr)
    if network.version != 4:
        raise ValueError(f"VPC CIDR {vpc_cidr} must be IPv4")
    prefix_length = max(SUBNET_PREFIX_LENGTH, network.prefixlen + (count - 1).bit_length())
    if prefix_length > SMALLEST_SUBNET_PREFIX_LENGTH:
        needed = SMALLEST_SUBNET_PREFIX_LENGTH - (count - 1).bit_length()
        raise ValueError(
            f"VPC CIDR {vpc_cidr} is too small: {count} subnets would each be smaller than "
            f"/{SMALLEST_SUBNET_PREFIX_LENGTH}; use a /{needed} or larger"
        )
    subnets = network.subnets(new_prefix=prefix_length)
    return [str(next(subnets)) for _ in range(count)]


class Network(pulumi.ComponentResource):
    """Public subnets route to an internet gateway; private subnets reach the internet only through the optional NAT.

    Without a NAT gateway, nodes live in the public subnets with public addresses: the cheapest way for them to
    pull images. Private subnets exist from the start so a later phase can move workloads there without
    renumbering the VPC.
    """

    def __init__(self, name: str, args: NetworkArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("llm-infra-lab:aws:Network", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        prefix = args.name_prefix

        zones = aws.get_availability_zones(
            state="available",
            exclude_zone_ids=list(EKS_UNSUPPORTED_ZONE_IDS),
            filters=[aws.GetAvailabilityZonesFilterArgs(name="opt-in-status", values=["opt-in-not-required"])],
            opts=pulumi.InvokeOptions(parent=self),
        )
        if len(zones.names) < args.az_count:
            raise ValueError(f"the region offers {len(zones.names)} usable zones, fewer than az_count={args.az_count}")
        self.availability_zones: list[str] = sorted(zones.names)[: args.az_count]
        cidrs = subnet_cidrs(args.cidr, 2 * args.az_count)
        public_cidrs, private_cidrs = cidrs[: args.az_count], cidrs[args.az_count :]
        cluster_tag = {f"kubernetes.io/cluster/{args.cluster_name}": "shared"}

        vpc = aws.ec2.Vpc(
            f"{name}-vpc",
            cidr_block=args.cidr,
            enable_dns_hostnames=True,
            enable_dns_support=True,
            tags={"Name": f"{prefix}-vpc"},
            opts=child,
        )
        gateway = aws.ec2.InternetGateway(f"{name}-igw", vpc_id=vpc.id, tags={"Name": f"{prefix}-igw"}, opts=child)
        public_table = aws.ec2.RouteTable(
            f"{name}-public", vpc_id=vpc.id, tags={"Name": f"{prefix}-public"}, opts=child
        )
        aws.ec2.Route(
            f"{name}-public-internet",
            route_table_id=public_table.id,
            destination_cidr_block="0.0.0.0/0",
            gateway_id=gateway.id,
            opts=child,
        )
        private_table = aws.ec2.RouteTable(
            f"{name}-private", vpc_id=vpc.id, tags={"Name": f"{prefix}-private"}, opts=child
        )

        public_subnets = []
        private_subnets = []
        for zone, public_cidr, private_cidr in zip(self.availability_zones, public_cidrs, private_cidrs, strict=True):
            public = aws.ec2.Subnet(
                f"{name}-public-{zone}",
                vpc_id=vpc.id,
                availability_zone=zone,
                cidr_block=public_cidr,
                map_public_ip_on_launch=True,
                tags={"Name": f"{prefix}-public-{zone}", "kubernetes.io/role/elb": "1", **cluster_tag},
                opts=child,
            )
            private = aws.ec2.Subnet(
                f"{name}-private-{zone}",
                vpc_id=vpc.id,
                availability_zone=zone,
                cidr_block=private_cidr,
                tags={"Name": f"{prefix}-private-{zone}", "kubernetes.io/role/internal-elb": "1", **cluster_tag},
                opts=child,
            )
            aws.ec2.RouteTableAssociation(
                f"{name}-public-{zone}", subnet_id=public.id, route_table_id=public_table.id, opts=child
            )
            aws.ec2.RouteTableAssociation(
                f"{name}-private-{zone}", subnet_id=private.id, route_table_id=private_table.id, opts=child
            )
            public_subnets.append(public)
            private_subnets.append(private)

        self.nat_gateway_count = 0
        if args.nat_gateway:
            # One gateway for every zone: a zone outage cuts private egress, which a lab can live with.
            address = aws.ec2.Eip(f"{name}-nat", domain="vpc", tags={"Name": f"{prefix}-nat"}, opts=child)
            nat = aws.ec2.NatGateway(
                f"{name}-nat",
                allocation_id=address.id,
                subnet_id=public_subnets[0].id,
                tags={"Name": f"{prefix}-nat"},
                opts=pulumi.ResourceOptions(parent=self, depends_on=[gateway]),
            )
            aws.ec2.Route(
                f"{name}-private-nat",
                route_table_id=private_table.id,
                destination_cidr_block="0.0.0.0/0",
                nat_gateway_id=nat.id,
                opts=child,
            )
            self.nat_gateway_count = 1

        self.vpc_id: pulumi.Output[str] = vpc.id
        self.public_subnet_ids: list[pulumi.Output[str]] = [subnet.id for subnet in public_subnets]
        self.private_subnet_ids: list[pulumi.Output[str]] = [subnet.id for subnet in private_subnets]
        self.register_outputs(
            {
                "vpcId": self.vpc_id,
                "publicSubnetIds": self.public_subnet_ids,
                "privateSubnetIds": self.private_subnet_ids,
                "availabilityZones": self.availability_zones,
                "natGatewayCount": self.nat_gateway_count,
            }
        )
