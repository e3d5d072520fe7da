"""IAM roles for Kubernetes service accounts (IRSA): AWS permissions for one pod identity, not for the node."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pulumi
import pulumi_aws as aws
import pulumi_kubernetes as k8s

from components.runtime.helm import chart_release

STS_AUDIENCE = "sts.amazonaws.com"
SERVICE_ACCOUNT_ANNOTATION = "eks.amazonaws.com/role-arn"
"""Put on a Kubernetes service account, the role its pods' tokens are exchanged for."""
MAX_ROLE_NAME_PREFIX = 37
"""IAM allows a 38-character name prefix; one goes to the dash before the suffix."""

OBJECT_ACTIONS = (
    "s3:GetObject",
    "s3:PutObject",
    "s3:DeleteObject",
    "s3:AbortMultipartUpload",
    "s3:ListMultipartUploadParts",
)


@dataclass(frozen=True)
class IrsaRoleArgs:
    name: str
    """Prefix of the IAM role's name; AWS appends a unique suffix."""
    oidc_provider_arn: pulumi.Input[str]
    oidc_issuer: pulumi.Input[str]
    """The cluster's OIDC issuer without `https://`, as IAM condition keys spell it."""
    namespace: str
    service_account: str
    policy_json: pulumi.Input[str] | None = None
    managed_policy_arns: Sequence[str] = field(default_factory=tuple)

    def __post_init__(self) -> None:
        if not 1 <= len(self.name) <= MAX_ROLE_NAME_PREFIX:
            raise ValueError(f"IRSA role name {self.name!r} must be 1 to {MAX_ROLE_NAME_PREFIX} characters")
        if not self.namespace or not self.service_account:
            raise ValueError("an IRSA role is bound to one service account: give both namespace and service_account")
        if self.policy_json is None and not self.managed_policy_arns:
            raise ValueError(f"IRSA role {self.name} grants nothing: give policy_json or managed_policy_arns")


def trust_policy(oidc_provider_arn: str, oidc_issuer: str, namespace: str, service_account: str) -> str:
    """Only tokens issued to this service account, for STS, may assume the role."""
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Principal": {"Federated": oidc_provider_arn},
                    "Action": "sts:AssumeRoleWithWebIdentity",
                    "Condition": {
                        "StringEquals": {
                            f"{oidc_issuer}:sub": f"system:serviceaccount:{namespace}:{service_account}",
                            f"{oidc_issuer}:aud": STS_AUDIENCE,
                        }
                    },
                }
            ],
        }
    )


def bucket_access_policy(
    bucket_arn: pulumi.Input[str], *, prefix: str | None = None, extra_object_actions: tuple[str, ...] = ()
) -> pulumi.Output[str]:
    """Read, write and delete objects, and list them: under `prefix/` only (one tool's corner of a shared
    bucket), or in the whole bucket when one tool owns it (prefix None)."""
    if prefix is not None and (not prefix or prefix.startswith("/") or prefix.endswith("/") or "*" in prefix):
        raise ValueError(f"prefix {prefix!r} must be a plain key prefix without leading or trailing '/' or '*'")

    def document(arn: str) -> str:
        actions = [*OBJECT_ACTIONS, *extra_object_actions]
        listing = {"Sid": "ListBucket", "Effect": "Allow", "Action": "s3:ListBucket", "Resource": arn}
        objects = {"Sid": "ObjectsInBucket", "Effect": "Allow", "Action": actions, "Resource": f"{arn}/*"}
        if prefix is not None:
            listing |= {"Sid": "ListPrefix", "Condition": {"StringLike": {"s3:prefix": [prefix, f"{prefix}/*"]}}}
            objects |= {"Sid": "ObjectsUnderPrefix", "Resource": f"{arn}/{prefix}/*"}
        return json.dumps({"Version": "2012-10-17", "Statement": [listing, objects]})

    return pulumi.Output.from_input(bucket_arn).apply(document)


def read_prefix_policy(bucket_arn: pulumi.Input[str], prefix: str) -> pulumi.Output[str]:
    """Read the objects under `prefix/`, and list them: what a model server's downloader needs, nothing more.

    Listing is conditioned on the prefix where a request carries one; HeadBucket, which a downloader asks
    first, carries none and is authorised as s3:ListBucket too, hence `IfExists`.
    """
    if not prefix or prefix.startswith("/") or prefix.endswith("/") or "*" in prefix:
        raise ValueError(f"prefix {prefix!r} must be a plain key prefix without leading or trailing '/' or '*'")

    def document(arn: str) -> str:
        listing = {
            "Sid": "ListPrefix",
            "Effect": "Allow",
            "Action": "s3:ListBucket",
            "Resource": arn,
            "Condition": {"StringLikeIfExists": {"s3:prefix": [prefix, f"{prefix}/*"]}},
        }
        reading = {
            "Sid": "ReadUnderPrefix",
            "Effect": "Allow",
            "Action": "s3:GetObject",
            "Resource": f"{arn}/{prefix}/*",
        }
        return json.dumps({"Version": "2012-10-17", "Statement": [listing, reading]})

    return pulumi.Output.from_input(bucket_arn).apply(document)


class IrsaRole(pulumi.ComponentResource):
    """A role only `system:serviceaccount:<namespace>:<service_account>` can assume, through the cluster's OIDC."""

    def __init__(self, name: str, args: IrsaRoleArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("llm-infra-lab:aws:IrsaRole", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)

        assume_role_policy = pulumi.Output.all(args.oidc_provider_arn, args.oidc_issuer).apply(
            lambda values: trust_policy(values[0], values[1], args.namespace, args.service_account)
        )
        role = aws.iam.Role(
            f"{name}-role", name_prefix=f"{args.name}-", assume_role_policy=assume_role_policy, opts=child
        )
        if args.policy_json is not None:
            aws.iam.RolePolicy(f"{name}-policy", role=role.id, policy=args.policy_json, opts=child)
        for policy_arn in args.managed_policy_arns:
            aws.iam.RolePolicyAttachment(
                f"{name}-{policy_arn.rsplit('/', 1)[-1]}", role=role.id, policy_arn=policy_arn, opts=child
            )

        self.role_arn: pulumi.Output[str] = role.arn
        self.role_name: pulumi.Output[str] = role.name
        self.register_outputs({"roleArn": self.role_arn, "roleName": self.role_name})


@dataclass(frozen=True)
class IrsaChart:
    """A pinned chart whose service account acts as an IRSA role: the lab's controllers that call AWS."""

    chart: str
    version: str
    repository: str
    namespace: str
    service_account: str


@dataclass(frozen=True)
class IrsaRelease:
    role: IrsaRole
    values: Mapping[str, Any]
    release: k8s.helm.v3.Release


def install_with_role(
    name: str,
    chart: IrsaChart,
    *,
    role_name: str,
    oidc_provider_arn: pulumi.Input[str],
    oidc_issuer: pulumi.Input[str],
    policy_json: pulumi.Input[str],
    values: Callable[[pulumi.Output[str]], Mapping[str, Any]],
    parent: pulumi.Resource,
) -> IrsaRelease:
    """The role only the chart's service account may assume, then the release, its values given the role's ARN."""
    child = pulumi.ResourceOptions(parent=parent)
    role = IrsaRole(
        f"{name}-irsa",
        IrsaRoleArgs(
            name=role_name,
            oidc_provider_arn=oidc_provider_arn,
            oidc_issuer=oidc_issuer,
            namespace=chart.namespace,
            service_account=chart.service_account,
            policy_json=policy_json,
        ),
        opts=child,
    )
    chart_values = values(role.role_arn)
    release = chart_release(
        name,
        release=chart.chart,
        chart=chart.chart,
        version=chart.version,
        repository=chart.repository,
        namespace=chart.namespace,
        values=chart_values,
        opts=child,
    )
    return IrsaRelease(role=role, values=chart_values, release=release)
