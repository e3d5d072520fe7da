"""The security group in front of the gateway's load balancer: who may connect, on which port.

The load balancer controller is told to use this group instead of making one from the Service, so who can
reach the lab is decided here, in the program: per port, a list of CIDRs. The controller still admits the
load balancer on the nodes' group, from a group of its own, never from the internet.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws


@dataclass(frozen=True)
class LoadBalancerFirewallArgs:
    name_prefix: str
    vpc_id: pulumi.Input[str]
    vpc_cidr: str
    """Where the load balancer forwards to and health-checks: the pods' addresses are in the VPC."""
    admitted: Mapping[int, Sequence[str]]
    """Listener port to the CIDRs that may connect to it."""

    def __post_init__(self) -> None:
        if not self.admitted or not all(self.admitted.values()):
            raise ValueError(f"every listener port needs the CIDRs it admits, got {dict(self.admitted)}")
        for cidr in (cidr for cidrs in self.admitted.values() for cidr in cidrs):
            ipaddress.IPv4Network(cidr)


def rule_name(port: int, cidr: str) -> str:
    """A rule's name from what it admits, so adding a CIDR or a port never replaces another rule."""
    return f"{port}-from-{cidr.replace('/', '-')}"


class LoadBalancerFirewall(pulumi.ComponentResource):
    def __init__(self, name: str, args: LoadBalancerFirewallArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("llm-infra-lab:aws:LoadBalancerFirewall", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        group = aws.ec2.SecurityGroup(
            name,
            name_prefix=f"{args.name_prefix}-",
            description="Who may reach the lab's gateway load balancer",
            vpc_id=args.vpc_id,
            opts=child,
        )
        for port, cidrs in args.admitted.items():
            for cidr in dict.fromkeys(cidrs):
                aws.vpc.SecurityGroupIngressRule(
                    f"{name}-{rule_name(port, cidr)}",
                    security_group_id=group.id,
                    ip_protocol="tcp",
                    from_port=port,
                    to_port=port,
                    cidr_ipv4=cidr,
                    description=f"port {port} from {cidr}",
                    opts=child,
                )
        aws.vpc.SecurityGroupEgressRule(
            f"{name}-to-targets",
            security_group_id=group.id,
            ip_protocol="tcp",
            from_port=0,
            to_port=65535,
            cidr_ipv4=args.vpc_cidr,
            description="to the gateway's pods and their health checks",
            opts=child,
        )
        self.security_group_id: pulumi.Output[str] = group.id
        self.register_outputs({"securityGroupId": self.security_group_id})
