"""The CrossGuard pack run over everything the AWS components register: no violation, and nothing skipped."""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import Any

from pulumi_policy import (
    PolicyCustomTimeouts,
    PolicyResource,
    PolicyResourceOptions,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    StackValidationArgs,
)
from pulumi_policy.proxy import unknown_checking_proxy

from components.aws.artifact_bucket import ArtifactBucket, ArtifactBucketArgs
from components.aws.eks import EksCluster
from components.aws.irsa import IrsaRole, IrsaRoleArgs, bucket_access_policy
from components.aws.network import Network, NetworkArgs
from policies.llm_infra_lab_policies import POLICIES
from policies.llm_infra_lab_policies import aws as aws_policies
from tests.aws import test_artifact_bucket, test_eks
from tests.aws.support import AwsRun, run_aws


@functools.cache
def platform() -> AwsRun:
    """The AWS components wired as the `platform` phase would wire them."""

    def program():
        network = Network(
            "network",
            NetworkArgs(name_prefix="lab", cidr="10.40.0.0/16", az_count=2, nat_gateway=False, cluster_name="llm-lab"),
        )
        cluster = EksCluster("lab", test_eks.eks_args(subnet_ids=network.public_subnet_ids))
        bucket = ArtifactBucket("artifacts", ArtifactBucketArgs(name_prefix="lab-artifacts", retain=True))
        IrsaRole(
            "mlflow",
            IrsaRoleArgs(
                name="llm-lab-mlflow",
                oidc_provider_arn=cluster.oidc_provider_arn,
                oidc_issuer=cluster.oidc_issuer,
                namespace="mlops",
                service_account="mlflow",
                policy_json=bucket_access_policy(bucket.bucket_arn, prefix="mlflow"),
            ),
        )

    return run_aws(program, {**test_eks.COMPUTED, **test_artifact_bucket.COMPUTED})


def _options(protect: bool) -> PolicyResourceOptions:
    return PolicyResourceOptions(protect, [], None, [], PolicyCustomTimeouts(0, 0, 0), [], None)


def merged(inputs: Mapping[str, Any], outputs: Mapping[str, Any]) -> dict[str, Any]:
    """Inputs with what the provider reported laid over them, nested blocks merged key by key."""
    result = dict(inputs)
    for key, value in outputs.items():
        both = isinstance(value, Mapping) and isinstance(result.get(key), Mapping)
        result[key] = merged(result[key], value) if both else value
    return result


def policy_resources(run: AwsRun) -> list[PolicyResource]:
    """Each registration as a stack policy sees it after `pulumi up`: its inputs, id and what the provider reported."""
    computed = {**test_eks.COMPUTED, **test_artifact_bucket.COMPUTED}
    by_urn: dict[str, PolicyResource] = {}
    for r in run.resources:
        props = {**merged(r.inputs, computed.get(r.name, {})), "id": f"{r.name}-id"}
        by_urn[r.urn] = PolicyResource(
            r.type, unknown_checking_proxy(props), r.urn, r.name, _options(r.protect), None, None, [], {}
        )
    for urn, resource in by_urn.items():
        resource.dependencies = [by_urn[d] for d in run.dependencies[urn] if d in by_urn]
        resource.property_dependencies = {
            key: [by_urn[d] for d in urns if d in by_urn] for key, urns in run.property_dependencies[urn].items()
        }
    return list(by_urn.values())


def violations(resources: list[PolicyResource]) -> list[tuple[str, str]]:
    found: list[tuple[str, str]] = []
    for policy in POLICIES:

        def report(message: str, urn: Any = None, name: str = policy.name) -> None:
            found.append((name, message))

        if isinstance(policy, ResourceValidationPolicy):
            for r in resources:
                args = ResourceValidationArgs(r.resource_type, r.props, r.urn, r.name, r.opts, None)
                policy.validate(args, report)
        else:
            policy.validate(StackValidationArgs(resources), report)
    return found


def test_platform_resources_pass_every_policy():
    assert violations(policy_resources(platform())) == []


def test_the_governed_types_are_the_ones_registered():
    types = {r.type for r in platform().resources}
    governed = {
        "s3-bucket-settings": {*aws_policies.PUBLIC_ACCESS_BLOCKS, *aws_policies.ENCRYPTION_CONFIGS},
        "s3-bucket-guards / data-retained": set(aws_policies.BUCKETS),
        "s3-bucket-settings versioning": set(aws_policies.VERSIONINGS),
        "iam-no-wildcard-actions": {"aws:iam/rolePolicy:RolePolicy", "aws:iam/role:Role"},
        "eks-endpoint-restricted": {aws_policies.EKS_CLUSTER},
    }
    for policy, policy_types in governed.items():
        assert types & policy_types, f"{policy}: none of {policy_types} registered, so nothing was checked"


def test_the_policies_catch_a_broken_registration():
    """Guards the check above: an open endpoint, a missing guard and a wildcard grant are each reported."""
    resources = policy_resources(platform())
    cluster = next(r for r in resources if r.resource_type == aws_policies.EKS_CLUSTER)
    props = dict(cluster.props)
    props["vpcConfig"] = {**props["vpcConfig"], "publicAccessCidrs": ["0.0.0.0/0"]}
    cluster.props = unknown_checking_proxy(props)
    policy = next(r for r in resources if r.resource_type == "aws:iam/rolePolicy:RolePolicy")
    policy.props = unknown_checking_proxy(
        {**policy.props, "policy": '{"Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}]}'}
    )
    resources = [r for r in resources if r.resource_type not in aws_policies.VERSIONINGS]
    assert sorted(name for name, _ in violations(resources)) == [
        "eks-endpoint-restricted",
        "iam-no-wildcard-actions",
        "s3-bucket-guards",
    ]
