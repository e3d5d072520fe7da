"""The AWS Load Balancer Controller: the gateway's network load balancer, reconciled by a maintained controller.

The in-tree cloud provider's load balancers get critical fixes only, open NodePorts to 0.0.0.0/0 on the
nodes' security group and leave load balancers behind when the cluster goes first. This controller gives a
Service of class `service.k8s.aws/nlb` an NLB whose own security group decides who may connect, opens the
nodes only to that load balancer, and holds the Service's deletion (a finalizer) until the NLB is gone.

Its IAM role, bound to its service account, may do what an NLB needs and no more: no ALB rules, WAF, Shield,
Cognito or certificates. It may create load balancers, target groups and security groups only with the
controller's tag for this cluster, and change or delete only what carries that tag. Pods cannot reach the
instance metadata (one hop), so the region and VPC are given to it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import pulumi

from components.aws.irsa import SERVICE_ACCOUNT_ANNOTATION, IrsaChart, install_with_role
from components.runtime import restricted

CHART = IrsaChart(
    chart="aws-load-balancer-controller",
    version="3.5.0",  # controller v3.5.0: the chart's version is the controller's since 3.0
    repository="https://aws.github.io/eks-charts",
    namespace="kube-system",
    service_account="aws-load-balancer-controller",
)
LOAD_BALANCER_CLASS = "service.k8s.aws/nlb"
"""A Service of this class is this controller's; the in-tree provider leaves it alone."""
CLUSTER_TAG = "elbv2.k8s.aws/cluster"
"""The controller tags what it creates with the cluster's name."""
MEMORY_MIB = 128
CPU_REQUEST = "50m"
CPU_LIMIT = "500m"
RUN_AS = 65534
"""The chart's own fsGroup and the image's user: it reads the projected web identity token."""

READ_ACTIONS = (
    "ec2:DescribeAccountAttributes",
    "ec2:DescribeAddresses",
    "ec2:DescribeAvailabilityZones",
    "ec2:DescribeInternetGateways",
    "ec2:DescribeInstances",
    "ec2:DescribeNetworkInterfaces",
    "ec2:DescribeRouteTables",
    "ec2:DescribeSecurityGroups",
    "ec2:DescribeSubnets",
    "ec2:DescribeTags",
    "ec2:DescribeVpcPeeringConnections",
    "ec2:DescribeVpcs",
    "ec2:GetSecurityGroupsForVpc",
    "elasticloadbalancing:DescribeCapacityReservation",
    "elasticloadbalancing:DescribeListenerAttributes",
    "elasticloadbalancing:DescribeListenerCertificates",
    "elasticloadbalancing:DescribeListeners",
    "elasticloadbalancing:DescribeLoadBalancerAttributes",
    "elasticloadbalancing:DescribeLoadBalancers",
    "elasticloadbalancing:DescribeRules",
    "elasticloadbalancing:DescribeSSLPolicies",
    "elasticloadbalancing:DescribeTags",
    "elasticloadbalancing:DescribeTargetGroupAttributes",
    "elasticloadbalancing:DescribeTargetGroups",
    "elasticloadbalancing:DescribeTargetHealth",
)
"""What the controller reads to build and compare its model (DescribeRules: it lists every listener's rules)."""
OWN_RESOURCE_ACTIONS = (
    "ec2:AuthorizeSecurityGroupIngress",
    "ec2:RevokeSecurityGroupIngress",
    "ec2:DeleteSecurityGroup",
    "elasticloadbalancing:DeleteLoadBalancer",
    "elasticloadbalancing:DeleteTargetGroup",
    "elasticloadbalancing:ModifyCapacityReservation",
    "elasticloadbalancing:ModifyListenerAttributes",
    "elasticloadbalancing:ModifyLoadBalancerAttributes",
    "elasticloadbalancing:ModifyTargetGroup",
    "elasticloadbalancing:ModifyTargetGroupAttributes",
    "elasticloadbalancing:SetIpAddressType",
    "elasticloadbalancing:SetSecurityGroups",
    "elasticloadbalancing:SetSubnets",
)
"""Changes to what the controller made for this cluster: allowed only on resources tagged so."""


@dataclass(frozen=True)
class LoadBalancerControllerArgs:
    cluster_name: pulumi.Input[str]
    region: str
    vpc_id: pulumi.Input[str]
    oidc_provider_arn: pulumi.Input[str]
    oidc_issuer: pulumi.Input[str]
    """The cluster's OIDC issuer without `https://`."""
    role_name: str
    """Prefix of the IRSA role's name."""


def controller_policy(cluster_name: pulumi.Input[str], vpc_arn: pulumi.Input[str]) -> pulumi.Output[str]:
    """An NLB-only subset of the controller's documented policy, writes scoped to this cluster's tag and VPC."""

    def document(cluster: str, vpc: str) -> str:
        tagged = {"StringEquals": {f"aws:ResourceTag/{CLUSTER_TAG}": cluster}}
        tagging_on_create = {"StringEquals": {f"aws:RequestTag/{CLUSTER_TAG}": cluster}}
        load_balancers = [
            "arn:aws:elasticloadbalancing:*:*:loadbalancer/net/*/*",
            "arn:aws:elasticloadbalancing:*:*:targetgroup/*/*",
        ]
        statements = [
            {
                "Sid": "LoadBalancingServiceRole",
                "Effect": "Allow",
                "Action": "iam:CreateServiceLinkedRole",
                "Resource": "*",
                "Condition": {"StringEquals": {"iam:AWSServiceName": "elasticloadbalancing.amazonaws.com"}},
            },
            {"Sid": "Read", "Effect": "Allow", "Action": list(READ_ACTIONS), "Resource": "*"},
            {
                "Sid": "CreateSecurityGroupsInTheVpc",
                "Effect": "Allow",
                "Action": "ec2:CreateSecurityGroup",
                "Resource": [vpc, "arn:aws:ec2:*:*:security-group/*"],
            },
            {
                "Sid": "TagSecurityGroupsItCreates",
                "Effect": "Allow",
                "Action": "ec2:CreateTags",
                "Resource": "arn:aws:ec2:*:*:security-group/*",
                "Condition": {
                    "StringEquals": {"ec2:CreateAction": "CreateSecurityGroup", **tagging_on_create["StringEquals"]}
                },
            },
            {
                # The nodes' security group is EKS's, not the controller's: it admits the load balancer there.
                "Sid": "AdmitTheLoadBalancerOnTheVpcsGroups",
                "Effect": "Allow",
                "Action": ["ec2:AuthorizeSecurityGroupIngress", "ec2:RevokeSecurityGroupIngress"],
                "Resource": "arn:aws:ec2:*:*:security-group/*",
                "Condition": {"ArnEquals": {"ec2:Vpc": vpc}},
            },
            {
                "Sid": "CreateLoadBalancersTaggedForThisCluster",
                "Effect": "Allow",
                "Action": ["elasticloadbalancing:CreateLoadBalancer", "elasticloadbalancing:CreateTargetGroup"],
                "Resource": "*",
                "Condition": tagging_on_create,
            },
            {
                "Sid": "TagWhatItCreates",
                "Effect": "Allow",
                "Action": "elasticloadbalancing:AddTags",
                "Resource": load_balancers,
                "Condition": {
                    "StringEquals": {
                        "elasticloadbalancing:CreateAction": ["CreateTargetGroup", "CreateLoadBalancer"],
                        **tagging_on_create["StringEquals"],
                    }
                },
            },
            {
                "Sid": "ChangeOnlyThisClustersResources",
                "Effect": "Allow",
                "Action": list(OWN_RESOURCE_ACTIONS),
                "Resource": "*",
                "Condition": tagged,
            },
            {
                # Retagging may not touch the cluster tag itself: what is this cluster's stays so.
                "Sid": "RetagThisClustersResources",
                "Effect": "Allow",
                "Action": [
                    "ec2:CreateTags",
                    "ec2:DeleteTags",
                    "elasticloadbalancing:AddTags",
                    "elasticloadbalancing:RemoveTags",
                ],
                "Resource": [*load_balancers, "arn:aws:ec2:*:*:security-group/*"],
                "Condition": {**tagged, "Null": {f"aws:RequestTag/{CLUSTER_TAG}": "true"}},
            },
            {
                # Listeners and target registrations carry no tag of their own to condition on.
                "Sid": "ListenersAndTargets",
                "Effect": "Allow",
                "Action": [
                    "elasticloadbalancing:CreateListener",
                    "elasticloadbalancing:DeleteListener",
                    "elasticloadbalancing:ModifyListener",
                    "elasticloadbalancing:RegisterTargets",
                    "elasticloadbalancing:DeregisterTargets",
                ],
                "Resource": [
                    *load_balancers,
                    "arn:aws:elasticloadbalancing:*:*:listener/net/*/*/*",
                ],
            },
        ]
        return json.dumps({"Version": "2012-10-17", "Statement": statements})

    return pulumi.Output.all(cluster_name, vpc_arn).apply(lambda values: document(*values))


def _values(args: LoadBalancerControllerArgs, role_arn: pulumi.Input[str]) -> dict:
    """One replica for Services only: no Ingress class, no WAF or Shield, no webhook on every new Service."""
    return {
        "clusterName": args.cluster_name,
        "region": args.region,
        "vpcId": args.vpc_id,
        "replicaCount": 1,
        "serviceAccount": {
            "create": True,
            "name": CHART.service_account,
            "annotations": {SERVICE_ACCOUNT_ANNOTATION: role_arn},
        },
        # The lab's Services name their class; a webhook on every Service would have to be up before any.
        "enableServiceMutatorWebhook": False,
        "createIngressClassResource": False,
        "ingressClassParams": {"create": False},
        "enableShield": False,
        "enableWaf": False,
        "enableWafv2": False,
        "controllerConfig": {"featureGates": {"ServiceTypeLoadBalancerOnly": True}},
        # The webhook's certificate stays across upgrades instead of changing with every render.
        "keepTLSSecret": True,
        "resources": restricted.resources(MEMORY_MIB, CPU_REQUEST, CPU_LIMIT),
        "podSecurityContext": restricted.pod(RUN_AS, fs_group=True),
        "securityContext": restricted.container(restate_pod=True),
    }


class LoadBalancerController(pulumi.ComponentResource):
    """The controller's release in kube-system and the IRSA role its service account acts as."""

    def __init__(self, name: str, args: LoadBalancerControllerArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("llm-infra-lab:aws:LoadBalancerController", name, None, opts)
        vpc_arn = pulumi.Output.all(args.vpc_id).apply(lambda ids: f"arn:aws:ec2:{args.region}:*:vpc/{ids[0]}")
        installed = install_with_role(
            name,
            CHART,
            role_name=args.role_name,
            oidc_provider_arn=args.oidc_provider_arn,
            oidc_issuer=args.oidc_issuer,
            policy_json=controller_policy(args.cluster_name, vpc_arn),
            values=lambda role_arn: _values(args, role_arn),
            parent=self,
        )
        self.role, self.values, self.release = installed.role, installed.values, installed.release
        self.register_outputs({"roleArn": self.role.role_arn})
