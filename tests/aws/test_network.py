"""The VPC: subnets per zone carved from the VPC CIDR, internet only through the gateways declared."""

from __future__ import annotations

import functools
import ipaddress

import pulumi
import pulumi_aws as aws
import pytest

from components.aws.network import Network, NetworkArgs, subnet_cidrs
from tests.aws.support import REGION_ZONES, AwsRun, run_aws

SUBNET = "aws:ec2/subnet:Subnet"
ROUTE = "aws:ec2/route:Route"
ROUTE_TABLE = "aws:ec2/routeTable:RouteTable"
ASSOCIATION = "aws:ec2/routeTableAssociation:RouteTableAssociation"
NAT = "aws:ec2/natGateway:NatGateway"
EIP = "aws:ec2/eip:Eip"


def network_args(**changes) -> NetworkArgs:
    fields = {
        "name_prefix": "lab",
        "cidr": "10.40.0.0/16",
        "az_count": 2,
        "nat_gateway": False,
        "cluster_name": "llm-lab",
    }
    return NetworkArgs(**{**fields, **changes})


@functools.cache
def network(az_count: int = 2, nat_gateway: bool = False) -> tuple[AwsRun, Network]:
    built: list[Network] = []
    run = run_aws(lambda: built.append(Network("net", network_args(az_count=az_count, nat_gateway=nat_gateway))))
    return run, built[0]


def subnets(run: AwsRun, kind: str) -> list:
    """Public or private subnets in zone order (resources register concurrently, in no fixed order)."""
    return sorted((s for s in run.of_type(SUBNET) if s.name.startswith(f"net-{kind}-")), key=lambda s: s.name)


@pytest.mark.parametrize("az_count", [2, 3])
def test_one_public_and_one_private_subnet_per_zone_from_the_mocked_zones(az_count):
    run, net = network(az_count)
    zones = REGION_ZONES[:az_count]
    assert net.availability_zones == zones
    assert len(run.of_type(SUBNET)) == 2 * az_count
    assert [s["availabilityZone"] for s in subnets(run, "public")] == zones
    assert [s["availabilityZone"] for s in subnets(run, "private")] == zones


def test_subnets_are_disjoint_blocks_inside_the_vpc():
    run, _ = network(3)
    vpc = ipaddress.ip_network(run.named("aws:ec2/vpc:Vpc", "net-vpc")["cidrBlock"])
    blocks = [ipaddress.ip_network(s["cidrBlock"]) for s in run.of_type(SUBNET)]
    assert all(block.subnet_of(vpc) and block.prefixlen == 20 for block in blocks)
    assert not any(a.overlaps(b) for i, a in enumerate(blocks) for b in blocks[i + 1 :])


@pytest.mark.parametrize(
    ("vpc", "count", "expected"),
    [
        ("10.40.0.0/16", 4, ["10.40.0.0/20", "10.40.16.0/20", "10.40.32.0/20", "10.40.48.0/20"]),
        ("10.40.0.0/20", 4, ["10.40.0.0/22", "10.40.4.0/22", "10.40.8.0/22", "10.40.12.0/22"]),
        ("10.40.0.0/21", 6, [f"10.40.{n}.0/24" for n in range(6)]),
    ],
)
def test_subnets_are_20s_where_they_fit_and_shrink_in_smaller_vpcs(vpc, count, expected):
    assert subnet_cidrs(vpc, count) == expected


def test_vpc_resolves_dns_names_for_eks():
    run, _ = network()
    vpc = run.named("aws:ec2/vpc:Vpc", "net-vpc")
    assert vpc["enableDnsHostnames"] is True
    assert vpc["enableDnsSupport"] is True


def test_subnets_are_tagged_for_kubernetes_load_balancers():
    run, _ = network()
    for subnet in subnets(run, "public"):
        assert subnet["mapPublicIpOnLaunch"] is True
        assert subnet["tags"]["kubernetes.io/role/elb"] == "1"
        assert subnet["tags"]["kubernetes.io/cluster/llm-lab"] == "shared"
    for subnet in subnets(run, "private"):
        assert subnet.get("mapPublicIpOnLaunch") is not True
        assert subnet["tags"]["kubernetes.io/role/internal-elb"] == "1"
        assert "kubernetes.io/role/elb" not in subnet["tags"]


def test_without_nat_only_the_public_table_routes_to_the_internet():
    run, net = network()
    assert run.of_type(NAT) == [] and run.of_type(EIP) == []
    assert net.nat_gateway_count == 0
    (route,) = run.of_type(ROUTE)
    assert route["routeTableId"] == "net-public-id"
    assert route["destinationCidrBlock"] == "0.0.0.0/0"
    assert route["gatewayId"] == "net-igw-id"
    associations = {a["subnetId"]: a["routeTableId"] for a in run.of_type(ASSOCIATION)}
    assert associations == {
        **{f"{s.name}-id": "net-public-id" for s in subnets(run, "public")},
        **{f"{s.name}-id": "net-private-id" for s in subnets(run, "private")},
    }


def test_nat_gateway_is_single_in_the_first_public_subnet_and_routes_private_traffic():
    run, net = network(3, nat_gateway=True)
    (nat,) = run.of_type(NAT)
    (address,) = run.of_type(EIP)
    assert net.nat_gateway_count == 1
    assert nat["subnetId"] == f"net-public-{REGION_ZONES[0]}-id"
    assert nat["allocationId"] == f"{address.name}-id"
    assert address["domain"] == "vpc"
    private_route = run.named(ROUTE, "net-private-nat")
    assert private_route["routeTableId"] == "net-private-id"
    assert private_route["destinationCidrBlock"] == "0.0.0.0/0"
    assert private_route["natGatewayId"] == f"{nat.name}-id"
    assert run.depends_on(nat, run.named("aws:ec2/internetGateway:InternetGateway", "net-igw"))


def test_an_explicit_provider_reaches_every_resource():
    def program():
        cloud = aws.Provider("cloud", region="eu-west-1")
        Network("net", network_args(), opts=pulumi.ResourceOptions(provider=cloud))

    run = run_aws(program)
    (provider,) = run.of_type("pulumi:providers:aws")
    resources = [r for r in run.resources if r.type.startswith("aws:")]
    assert resources and all(r.provider == f"{provider.urn}::cloud-id" for r in resources)


def test_every_resource_is_a_child_of_the_component():
    run, _ = network(3, nat_gateway=True)
    (component,) = run.of_type("llm-infra-lab:aws:Network")
    assert {r.parent for r in run.resources if r is not component} == {component.urn}


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        (
            {"cidr": "10.40.0.0/23"},
            r"10\.40\.0\.0/23 is too small: 4 subnets would each be smaller than /24; use a /22 or larger",
        ),
        ({"cidr": "10.40.0.0/22", "az_count": 3}, r"too small: 6 subnets .* use a /21 or larger"),
        ({"cidr": "10.40.0.0/28"}, "too small"),
        ({"cidr": "fd00::/56"}, "must be IPv4"),
        ({"cidr": "10.40.0.1/16"}, "host bits set"),
        ({"az_count": 1}, "az_count must be 2 or 3"),
        ({"az_count": 4}, "az_count must be 2 or 3"),
    ],
)
def test_invalid_network_args_are_refused(changes, message):
    with pytest.raises(ValueError, match=message):
        network_args(**changes)


def test_smallest_vpc_that_fits_is_accepted():
    assert network_args(cidr="10.40.0.0/22").cidr == "10.40.0.0/22"
