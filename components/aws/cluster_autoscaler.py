"""The Kubernetes Cluster Autoscaler: grows and shrinks the managed node groups between their min and max.

HorizontalPodAutoscalers add pods; without this, a pod they add can stay Pending for want of a node.
The autoscaler finds the node groups' Auto Scaling groups by the tags EKS puts on every managed node
group (`k8s.io/cluster-autoscaler/enabled` = `true`, `k8s.io/cluster-autoscaler/<cluster>` = `owned`)
and may change the size of, or terminate instances in, only those groups, through an IRSA role bound
to its own service account. Its minor version must equal the cluster's: it simulates the scheduler.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

import pulumi

from components.aws.irsa import SERVICE_ACCOUNT_ANNOTATION, IrsaChart, install_with_role
from components.runtime import restricted

# The newest chart published; its image is v1.35.0 (no chart ships a newer minor yet). In kube-system: it
# must see every pod, and kube-system is exempt from the lab's restricted Pod Security labels.
CHART = IrsaChart(
    chart="cluster-autoscaler",
    version="9.59.0",
    repository="https://kubernetes.github.io/autoscaler",
    namespace="kube-system",
    service_account="cluster-autoscaler",
)
IMAGE_REPOSITORY = "registry.k8s.io/autoscaling/cluster-autoscaler"
IMAGE_TAG = "v1.36.1"
"""The cluster's minor, one past the chart's default: 1.36 reads the same flags and needs no RBAC the
chart's 1.35 role lacks (cluster-autoscaler 1.36.0 release notes)."""
MEMORY_MIB = 256
CPU_REQUEST = "50m"
CPU_LIMIT = "500m"
RUN_AS = 65532
"""The image's distroless `nonroot` user."""
DISCOVERY_TAG = "k8s.io/cluster-autoscaler/enabled"
DISCOVERY_TAG_VALUE = "true"
CLUSTER_TAG_VALUE = "owned"
READ_ACTIONS = (
    "autoscaling:DescribeAutoScalingGroups",
    "autoscaling:DescribeAutoScalingInstances",
    "autoscaling:DescribeLaunchConfigurations",
    "autoscaling:DescribeScalingActivities",
    "autoscaling:DescribeTags",
    "ec2:DescribeImages",
    "ec2:DescribeInstanceTypes",
    "ec2:DescribeLaunchTemplateVersions",
    "ec2:GetInstanceTypesFromInstanceRequirements",
    "eks:DescribeNodegroup",
)
SCALING_ACTIONS = ("autoscaling:SetDesiredCapacity", "autoscaling:TerminateInstanceInAutoScalingGroup")
EXTRA_ARGS = {
    # The two node groups have the same instance types and subnets: keep their sizes even.
    "balance-similar-node-groups": True,
    # Fewest idle CPU and memory after the scale-up; needs no priority ConfigMap to maintain.
    "expander": "least-waste",
    # On a few small nodes, coredns, metrics-server and this pod sit on every node: skipping nodes with
    # kube-system pods would keep every node forever. Their PodDisruptionBudgets still hold.
    "skip-nodes-with-system-pods": False,
    # Restricted pods keep scratch files in emptyDir (their root is read-only); that must not pin a node.
    "skip-nodes-with-local-storage": False,
}


def _minor(version: str) -> str:
    return ".".join(version.removeprefix("v").split(".")[:2])


@dataclass(frozen=True)
class ClusterAutoscalerArgs:
    cluster_name: pulumi.Input[str]
    region: str
    oidc_provider_arn: pulumi.Input[str]
    oidc_issuer: pulumi.Input[str]
    """The cluster's OIDC issuer without `https://`."""
    role_name: str
    """Prefix of the IRSA role's name (IAM allows 37 characters before the suffix)."""
    kubernetes_version: str
    """The cluster's, e.g. "1.35": the image's minor must be the same."""

    def __post_init__(self) -> None:
        if not re.fullmatch(r"1\.\d+", self.kubernetes_version):
            raise ValueError(f"kubernetes_version must look like 1.35, got {self.kubernetes_version!r}")
        if _minor(IMAGE_TAG) != self.kubernetes_version:
            raise ValueError(
                f"cluster-autoscaler {IMAGE_TAG} is for Kubernetes {_minor(IMAGE_TAG)}, the cluster runs "
                f"{self.kubernetes_version}: its minor must match, so pin a chart and image for "
                f"{self.kubernetes_version} in {__name__}"
            )


def scaling_policy(cluster_name: pulumi.Input[str]) -> pulumi.Output[str]:
    """Read anything about groups and instance types; resize or shrink only this cluster's tagged groups."""

    def document(cluster: str) -> str:
        return json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {"Sid": "Discover", "Effect": "Allow", "Action": list(READ_ACTIONS), "Resource": "*"},
                    {
                        "Sid": "ScaleThisClustersGroups",
                        "Effect": "Allow",
                        "Action": list(SCALING_ACTIONS),
                        "Resource": "*",
                        "Condition": {
                            "StringEquals": {
                                f"aws:ResourceTag/{DISCOVERY_TAG}": DISCOVERY_TAG_VALUE,
                                f"aws:ResourceTag/k8s.io/cluster-autoscaler/{cluster}": CLUSTER_TAG_VALUE,
                            }
                        },
                    },
                ],
            }
        )

    return pulumi.Output.from_input(cluster_name).apply(document)


def _values(args: ClusterAutoscalerArgs, role_arn: pulumi.Input[str]) -> dict:
    """One replica, auto-discovery by the cluster's tags, the IRSA service account, restricted security."""
    return {
        "cloudProvider": "aws",
        "awsRegion": args.region,
        # The chart turns this into --node-group-auto-discovery=asg:tag=<enabled tag>,<cluster tag>.
        "autoDiscovery": {"clusterName": args.cluster_name},
        "image": {"repository": IMAGE_REPOSITORY, "tag": IMAGE_TAG},
        "replicaCount": 1,
        "rbac": {
            "create": True,
            "serviceAccount": {
                "create": True,
                "name": CHART.service_account,
                "annotations": {SERVICE_ACCOUNT_ANNOTATION: role_arn},
            },
        },
        "extraArgs": EXTRA_ARGS,
        "resources": restricted.resources(MEMORY_MIB, CPU_REQUEST, CPU_LIMIT),
        # fsGroup lets the non-root user read the projected web identity token IRSA mounts.
        "securityContext": restricted.pod(RUN_AS, fs_group=True),
        "containerSecurityContext": restricted.CONTAINER,
    }


class ClusterAutoscaler(pulumi.ComponentResource):
    """The cluster-autoscaler release in kube-system and the IRSA role it scales the node groups with."""

    def __init__(self, name: str, args: ClusterAutoscalerArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("llm-infra-lab:aws:ClusterAutoscaler", name, None, opts)
        installed = install_with_role(
            name,
            CHART,
            role_name=args.role_name,
            oidc_provider_arn=args.oidc_provider_arn,
            oidc_issuer=args.oidc_issuer,
            policy_json=scaling_policy(args.cluster_name),
            values=lambda role_arn: _values(args, role_arn),
            parent=self,
        )
        self.role, self.values, self.release = installed.role, installed.values, installed.release
        self.memory_mib = MEMORY_MIB
        self.register_outputs({"roleArn": self.role.role_arn, "release": self.release.name})
