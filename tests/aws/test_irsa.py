"""IRSA roles: assumable by one service account only, granting named actions on one bucket prefix only."""

from __future__ import annotations

import json

import pytest

from components.aws.irsa import IrsaRole, IrsaRoleArgs, bucket_access_policy
from tests.aws.support import ACCOUNT, AwsRun, run_aws

ISSUER = "oidc.eks.us-east-1.amazonaws.com/id/0123456789ABCDEF0123456789ABCDEF"
OIDC_ARN = f"arn:aws:iam::{ACCOUNT}:oidc-provider/{ISSUER}"
BUCKET_ARN = "arn:aws:s3:::lab-artifacts-20260101000000000000000001"


def irsa_args(**changes) -> IrsaRoleArgs:
    fields = {
        "name": "llm-lab-mlflow",
        "oidc_provider_arn": OIDC_ARN,
        "oidc_issuer": ISSUER,
        "namespace": "mlops",
        "service_account": "mlflow",
        "policy_json": '{"Version": "2012-10-17", "Statement": []}',
    }
    return IrsaRoleArgs(**{**fields, **changes})


def mlflow_role(**changes) -> AwsRun:
    """The role MLflow would get, with read-write access to the bucket's `mlflow/` prefix unless changed."""

    def program():
        changes.setdefault("policy_json", bucket_access_policy(BUCKET_ARN, prefix="mlflow"))
        IrsaRole("mlflow", irsa_args(**changes))

    return run_aws(program)


def allow_statements(document: str) -> list[dict]:
    return [s for s in json.loads(document)["Statement"] if s["Effect"] == "Allow"]


def listed(value) -> list:
    return value if isinstance(value, list) else [value]


def test_trust_policy_admits_one_service_account_through_the_cluster_oidc_provider():
    role = mlflow_role().named("aws:iam/role:Role", "mlflow-role")
    assert role["namePrefix"] == "llm-lab-mlflow-"
    (statement,) = allow_statements(role["assumeRolePolicy"])
    assert statement["Principal"] == {"Federated": OIDC_ARN}
    assert statement["Action"] == "sts:AssumeRoleWithWebIdentity"
    assert statement["Condition"] == {
        "StringEquals": {
            f"{ISSUER}:sub": "system:serviceaccount:mlops:mlflow",
            f"{ISSUER}:aud": "sts.amazonaws.com",
        }
    }


def test_inline_policy_is_attached_to_the_role_and_managed_policies_by_arn():
    managed = "arn:aws:iam::aws:policy/service-role/AmazonEBSCSIDriverPolicy"
    run = mlflow_role(managed_policy_arns=[managed])
    inline = run.named("aws:iam/rolePolicy:RolePolicy", "mlflow-policy")
    assert inline["role"] == "mlflow-role-id"
    assert json.loads(inline["policy"])["Statement"][1]["Resource"] == f"{BUCKET_ARN}/mlflow/*"
    attachment = run.named("aws:iam/rolePolicyAttachment:RolePolicyAttachment", "mlflow-AmazonEBSCSIDriverPolicy")
    assert (attachment["role"], attachment["policyArn"]) == ("mlflow-role-id", managed)


def test_managed_policies_alone_need_no_inline_policy():
    run = mlflow_role(policy_json=None, managed_policy_arns=["arn:aws:iam::aws:policy/ReadOnlyAccess"])
    assert run.of_type("aws:iam/rolePolicy:RolePolicy") == []


def test_prefix_policy_lists_and_touches_objects_under_the_prefix_only():
    run = mlflow_role()
    document = run.named("aws:iam/rolePolicy:RolePolicy", "mlflow-policy")["policy"]
    statements = allow_statements(document)
    assert len(statements) == len(json.loads(document)["Statement"]) == 2
    actions = [action for statement in statements for action in listed(statement["Action"])]
    assert not [a for a in actions if a == "*" or a.endswith(":*") or "*" in a]
    by_action = {action: statement for statement in statements for action in listed(statement["Action"])}
    assert by_action["s3:ListBucket"]["Resource"] == BUCKET_ARN
    assert by_action["s3:ListBucket"]["Condition"] == {"StringLike": {"s3:prefix": ["mlflow", "mlflow/*"]}}
    object_actions = {"s3:GetObject", "s3:PutObject", "s3:DeleteObject", "s3:AbortMultipartUpload"}
    object_actions.add("s3:ListMultipartUploadParts")
    assert set(by_action) == {"s3:ListBucket", *object_actions}
    for action in object_actions:
        assert by_action[action]["Resource"] == f"{BUCKET_ARN}/mlflow/*"


@pytest.mark.parametrize("prefix", ["", "/mlflow", "mlflow/", "ml*", "*"])
def test_prefix_must_be_plain(prefix):
    with pytest.raises(ValueError, match="must be a plain key prefix"):
        bucket_access_policy(BUCKET_ARN, prefix=prefix)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"policy_json": None}, "grants nothing"),
        ({"namespace": ""}, "give both namespace and service_account"),
        ({"service_account": ""}, "give both namespace and service_account"),
        ({"name": "x" * 38}, "must be 1 to 37 characters"),
    ],
)
def test_invalid_irsa_args_are_refused(changes, message):
    with pytest.raises(ValueError, match=message):
        irsa_args(**changes)
