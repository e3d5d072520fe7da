"""Cluster Autoscaler: a pinned chart and image matching the cluster's minor, in kube-system, finding only this
cluster's node groups, scaling them through a role only its service account can assume and only on groups
tagged for this cluster, within the restricted Pod Security settings and a fixed memory budget."""

from __future__ import annotations

import json
import re

import pytest

from components.aws.cluster_autoscaler import ClusterAutoscaler, ClusterAutoscalerArgs
from policies.llm_infra_lab_policies.aws import wildcard_actions
from stacks import platform
from tests.aws.support import ACCOUNT, AwsRun, run_aws

RELEASE = "kubernetes:helm.sh/v3:Release"
ROLE = "aws:iam/role:Role"
POLICY = "aws:iam/rolePolicy:RolePolicy"
CLUSTER = "llm-lab-dev"
ISSUER = "oidc.eks.us-east-1.amazonaws.com/id/0123456789ABCDEF0123456789ABCDEF"
OIDC_ARN = f"arn:aws:iam::{ACCOUNT}:oidc-provider/{ISSUER}"


def autoscaler_args(**changes) -> ClusterAutoscalerArgs:
    fields = {
        "cluster_name": CLUSTER,
        "region": "us-east-1",
        "oidc_provider_arn": OIDC_ARN,
        "oidc_issuer": ISSUER,
        "role_name": f"{CLUSTER}-cluster-autoscaler",
        "kubernetes_version": platform.KUBERNETES_VERSION,
    }
    return ClusterAutoscalerArgs(**{**fields, **changes})


BUILT: dict[str, ClusterAutoscaler] = {}


@pytest.fixture(scope="module")
def run() -> AwsRun:
    def program():
        BUILT["autoscaler"] = ClusterAutoscaler("cluster-autoscaler", autoscaler_args())

    return run_aws(program)


@pytest.fixture(scope="module")
def release(run) -> dict:
    return run.named(RELEASE, "cluster-autoscaler")


@pytest.fixture(scope="module")
def values(release) -> dict:
    return release["values"]


def statements(run: AwsRun) -> list[dict]:
    return json.loads(run.named(POLICY, "cluster-autoscaler-irsa-policy")["policy"])["Statement"]


def test_release_is_the_pinned_upstream_chart_in_kube_system(release):
    assert release["chart"] == "cluster-autoscaler"
    assert release["repositoryOpts"] == {"repo": "https://kubernetes.github.io/autoscaler"}
    assert re.fullmatch(r"\d+\.\d+\.\d+", release["version"]), "a pinned chart version, never a range"
    # Which version: tests/test_helm_values.py ties the pin to the chart data its values are checked against.
    assert release["namespace"] == "kube-system"
    assert release["atomic"] is True


def test_image_is_pinned_and_its_minor_is_the_clusters(values):
    image = values["image"]
    assert image["repository"] == "registry.k8s.io/autoscaling/cluster-autoscaler"
    assert re.fullmatch(r"v\d+\.\d+\.\d+", image["tag"])
    assert image["tag"].startswith(f"v{platform.KUBERNETES_VERSION}."), "the minor of the cluster it simulates"


def test_finds_node_groups_by_this_clusters_tags_in_its_region(values):
    assert values["cloudProvider"] == "aws"
    assert values["awsRegion"] == "us-east-1"
    assert values["autoDiscovery"] == {"clusterName": CLUSTER}
    assert "autoscalingGroups" not in values, "static --nodes would conflict with auto-discovery"


def test_service_account_carries_the_irsa_role(values):
    account = values["rbac"]["serviceAccount"]
    assert account["create"] is True
    assert account["name"] == "cluster-autoscaler"
    # The mocks give every IAM role the ARN arn:aws:mock::<account>:<logical name>.
    role_arn = f"arn:aws:mock::{ACCOUNT}:cluster-autoscaler-irsa-role"
    assert account["annotations"] == {"eks.amazonaws.com/role-arn": role_arn}


def test_role_trusts_exactly_the_autoscalers_service_account(run):
    role = run.named(ROLE, "cluster-autoscaler-irsa-role")
    assert role["namePrefix"] == f"{CLUSTER}-cluster-autoscaler-"
    (statement,) = json.loads(role["assumeRolePolicy"])["Statement"]
    assert statement["Principal"] == {"Federated": OIDC_ARN}
    assert statement["Condition"] == {
        "StringEquals": {
            f"{ISSUER}:sub": "system:serviceaccount:kube-system:cluster-autoscaler",
            f"{ISSUER}:aud": "sts.amazonaws.com",
        }
    }


def test_mutating_actions_only_on_groups_tagged_for_this_cluster(run):
    scaling = [s for s in statements(run) if {"autoscaling:SetDesiredCapacity"} & set(s["Action"])]
    assert len(scaling) == 1
    (statement,) = scaling
    assert set(statement["Action"]) == {
        "autoscaling:SetDesiredCapacity",
        "autoscaling:TerminateInstanceInAutoScalingGroup",
    }
    assert statement["Condition"] == {
        "StringEquals": {
            "aws:ResourceTag/k8s.io/cluster-autoscaler/enabled": "true",
            f"aws:ResourceTag/k8s.io/cluster-autoscaler/{CLUSTER}": "owned",
        }
    }


def test_unconditioned_statements_only_read(run):
    unconditioned = [s for s in statements(run) if "Condition" not in s]
    actions = [action for s in unconditioned for action in s["Action"]]
    assert actions, "discovery needs Describe permissions"
    assert all(action.split(":")[1].startswith(("Describe", "Get")) for action in actions), actions
    assert {"autoscaling:DescribeAutoScalingGroups", "eks:DescribeNodegroup"} <= set(actions)


def test_no_wildcard_actions(run):
    document = run.named(POLICY, "cluster-autoscaler-irsa-policy")["policy"]
    assert wildcard_actions(document) == []
    assert all("*" not in action for s in statements(run) for action in s["Action"])


def test_pod_and_container_are_restricted(values):
    assert values["securityContext"]["runAsNonRoot"] is True
    assert values["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert values["securityContext"]["runAsUser"] != 0
    assert values["containerSecurityContext"] == {
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "capabilities": {"drop": ["ALL"]},
    }


def test_one_replica_requests_the_memory_it_is_limited_to(run, values):
    resources = values["resources"]
    assert values["replicaCount"] == 1
    assert resources["requests"]["memory"] == resources["limits"]["memory"] == "256Mi"
    assert resources["requests"]["cpu"]
    assert BUILT["autoscaler"].memory_mib == 256, "what the lead adds to the cluster's memory total"


def test_scale_down_is_not_blocked_by_system_pods_or_scratch_volumes(values):
    args = values["extraArgs"]
    assert args["skip-nodes-with-system-pods"] is False
    assert args["skip-nodes-with-local-storage"] is False
    assert args["balance-similar-node-groups"] is True
    assert args["expander"] == "least-waste"


def neighbour_minors() -> list[str]:
    major, minor = platform.KUBERNETES_VERSION.split(".")
    return [f"{major}.{int(minor) - 1}", f"{major}.{int(minor) + 1}"]


@pytest.mark.parametrize("version", neighbour_minors())
def test_a_cluster_of_another_minor_is_refused(version):
    expected = rf"is for Kubernetes {re.escape(platform.KUBERNETES_VERSION)}, the cluster runs {re.escape(version)}"
    with pytest.raises(ValueError, match=expected):
        autoscaler_args(kubernetes_version=version)


def test_a_malformed_kubernetes_version_is_refused():
    with pytest.raises(ValueError, match="must look like 1.35"):
        autoscaler_args(kubernetes_version=f"v{platform.KUBERNETES_VERSION}.0")


def test_a_role_name_iam_cannot_hold_is_refused():
    with pytest.raises(ValueError, match="must be 1 to 37 characters"):
        run_aws(lambda: ClusterAutoscaler("cluster-autoscaler", autoscaler_args(role_name="x" * 38)))
