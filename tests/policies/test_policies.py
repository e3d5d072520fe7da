"""Each policy's validate function, called directly with good and bad resources.

Resources are built the way the analyzer builds them (`ResourceValidationArgs` over the
unknown-checking proxy), so a check reading a preview-unknown value is exercised as well.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from pulumi_policy import (
    EnforcementLevel,
    PolicyCustomTimeouts,
    PolicyResource,
    PolicyResourceOptions,
    ResourceValidationArgs,
    StackValidationArgs,
)
from pulumi_policy.proxy import UNKNOWN_NUMBER_VALUE, UNKNOWN_STRING_VALUE, unknown_checking_proxy

from policies.llm_infra_lab_policies import POLICIES
from policies.llm_infra_lab_policies.aws import (
    eks_endpoint_restricted,
    iam_no_wildcard_actions,
    rds_backups_and_tls,
    rds_encrypted_private,
    s3_bucket_guards,
    s3_bucket_settings,
)
from policies.llm_infra_lab_policies.retention import claims_retained, data_retained
from policies.llm_infra_lab_policies.workloads import memory_limits, no_anonymous_grafana, pinned_images


def _options(protect: bool = False) -> PolicyResourceOptions:
    return PolicyResourceOptions(protect, [], None, [], PolicyCustomTimeouts(0, 0, 0), [], None)


def validate(policy: Any, type_: str, props: dict[str, Any], *, protect: bool = False) -> list[str]:
    """The messages `policy` reports for one resource."""
    args = ResourceValidationArgs(
        type_, unknown_checking_proxy(props), f"urn:pulumi:test::lab::{type_}::res", "res", _options(protect), None
    )
    found: list[str] = []
    policy.validate(args, lambda message, urn=None: found.append(message))
    return found


# --- shapes ----------------------------------------------------------------------------------

CONTAINER = "docker:index/container:Container"
IMAGE = "docker:index/remoteImage:RemoteImage"
DEPLOYMENT = "kubernetes:apps/v1:Deployment"
CRONJOB = "kubernetes:batch/v1:CronJob"
POD = "kubernetes:core/v1:Pod"
STATEFULSET = "kubernetes:apps/v1:StatefulSet"
HELM_RELEASE = "kubernetes:helm.sh/v3:Release"
PAB = "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock"
SSE = "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration"
SSE_V2 = "aws:s3/bucketServerSideEncryptionConfigurationV2:BucketServerSideEncryptionConfigurationV2"
VERSIONING = "aws:s3/bucketVersioning:BucketVersioning"
VERSIONING_V2 = "aws:s3/bucketVersioningV2:BucketVersioningV2"
ACL_V2 = "aws:s3/bucketAclV2:BucketAclV2"
BUCKET = "aws:s3/bucket:Bucket"
BUCKET_V2 = "aws:s3/bucketV2:BucketV2"
IAM_POLICY = "aws:iam/policy:Policy"
ROLE_POLICY = "aws:iam/rolePolicy:RolePolicy"
ROLE = "aws:iam/role:Role"
RDS = "aws:rds/instance:Instance"
RDS_CLUSTER = "aws:rds/cluster:Cluster"
RDS_PARAMS = "aws:rds/parameterGroup:ParameterGroup"
RDS_CLUSTER_PARAMS = "aws:rds/clusterParameterGroup:ClusterParameterGroup"
EKS = "aws:eks/cluster:Cluster"
VOLUME = "docker:index/volume:Volume"
PVC = "kubernetes:core/v1:PersistentVolumeClaim"

GOOD_CONTAINER = {"name": "app", "image": "ghcr.io/lab/app:1.2.3", "resources": {"limits": {"memory": "256Mi"}}}


def docker(**props: Any) -> dict[str, Any]:
    return {"image": "sha256:0123abcd", "memory": 256, "envs": ["A=b"], **props}


def pod(*containers: dict[str, Any], init: tuple[dict[str, Any], ...] = ()) -> dict[str, Any]:
    spec: dict[str, Any] = {"containers": list(containers)}
    if init:
        spec["initContainers"] = list(init)
    return spec


def deployment(*containers: dict[str, Any], **kw: Any) -> dict[str, Any]:
    return {"spec": {"template": {"spec": pod(*containers, **kw)}}}


def container(**fields: Any) -> dict[str, Any]:
    return {**GOOD_CONTAINER, **fields}


def policy_doc(*statements: dict[str, Any]) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})


def force_ssl(value: str) -> dict[str, str]:
    return {"name": "rds.force_ssl", "value": value, "applyMethod": "immediate"}


ALLOW_GET = {"Effect": "Allow", "Action": ["s3:GetObject"], "Resource": "arn:aws:s3:::b/*"}
ALL_BLOCKED = dict.fromkeys(("blockPublicAcls", "blockPublicPolicy", "ignorePublicAcls", "restrictPublicBuckets"), True)
SSE_RULE = {"applyServerSideEncryptionByDefault": {"sseAlgorithm": "aws:kms"}}
GRAFANA_INI = "[server]\nhttp_port = 3000\n[auth.anonymous]\nenabled = true\norg_role = Viewer\n"

# (policy, type, props, protect, expected): expected is None for no violation, else a fragment of
# the one message reported.
CASES: list[tuple[Any, str, dict[str, Any], bool, str | None]] = [
    # 1. pinned images
    (pinned_images, IMAGE, {"name": "grafana/grafana:13.2.3"}, False, None),
    (pinned_images, IMAGE, {"name": "busybox@sha256:" + "a" * 64}, False, None),
    (pinned_images, IMAGE, {"name": "localhost:5000/lab/app:0.4"}, False, None),
    (pinned_images, IMAGE, {"name": "grafana/grafana"}, False, "'grafana/grafana' has no tag and pulls `latest`"),
    (pinned_images, IMAGE, {"name": "localhost:5000/lab/app"}, False, "'localhost:5000/lab/app' has no tag"),
    (pinned_images, IMAGE, {"name": "grafana/grafana:latest"}, False, "pin a version tag (grafana/grafana:<version>)"),
    (pinned_images, IMAGE, {"name": UNKNOWN_STRING_VALUE}, False, None),
    (pinned_images, CONTAINER, docker(), False, None),
    (pinned_images, CONTAINER, docker(image="nginx:latest"), False, "container: image 'nginx:latest' floats"),
    (pinned_images, DEPLOYMENT, deployment(container()), False, None),
    (
        pinned_images,
        DEPLOYMENT,
        deployment(container(), init=(container(name="init", image="busybox"),)),
        False,
        "init container \"init\": image 'busybox' has no tag",
    ),
    (
        pinned_images,
        CRONJOB,
        {"spec": {"jobTemplate": {"spec": {"template": {"spec": pod(container(image="python:latest"))}}}}},
        False,
        "container \"app\": image 'python:latest' floats",
    ),
    (pinned_images, POD, {"spec": pod(container(image="qdrant/qdrant:v1.15.4"))}, False, None),
    # 2. memory limits
    (memory_limits, CONTAINER, docker(), False, None),
    (memory_limits, CONTAINER, docker(memory=UNKNOWN_NUMBER_VALUE), False, None),
    (memory_limits, CONTAINER, docker(memory=None), False, "container: no memory limit: set `memory`"),
    (memory_limits, CONTAINER, docker(memory=0), False, "container: no memory limit: set `memory`"),
    (memory_limits, STATEFULSET, deployment(container()), False, None),
    (
        memory_limits,
        STATEFULSET,
        deployment({"name": "db", "image": "postgres:17.6"}),
        False,
        'container "db": no memory limit: set `resources.limits.memory`',
    ),
    (
        memory_limits,
        DEPLOYMENT,
        deployment(container(), init=(container(name="migrate", resources={"requests": {"memory": "64Mi"}}),)),
        False,
        'init container "migrate": no memory limit',
    ),
    # 7. anonymous Grafana
    (no_anonymous_grafana, CONTAINER, docker(envs=["GF_AUTH_ANONYMOUS_ENABLED=false", "X=1"]), False, None),
    (
        no_anonymous_grafana,
        CONTAINER,
        docker(envs=["GF_AUTH_ANONYMOUS_ENABLED=true", "GF_AUTH_ANONYMOUS_ORG_ROLE=Admin"]),
        False,
        "container: Grafana anonymous access is on (role Admin): set GF_AUTH_ANONYMOUS_ENABLED=false",
    ),
    (
        no_anonymous_grafana,
        CONTAINER,
        docker(envs=["GF_AUTH_ANONYMOUS_ENABLED=True", UNKNOWN_STRING_VALUE]),
        False,
        "anonymous access is on (role Viewer)",
    ),
    (
        no_anonymous_grafana,
        CONTAINER,
        docker(uploads=[{"file": "/etc/grafana/grafana.ini", "content": GRAFANA_INI}]),
        False,
        "anonymous access is on in /etc/grafana/grafana.ini",
    ),
    (
        no_anonymous_grafana,
        DEPLOYMENT,
        deployment(container(env=[{"name": "GF_AUTH_ANONYMOUS_ENABLED", "value": "true"}])),
        False,
        'container "app": Grafana anonymous access is on',
    ),
    (no_anonymous_grafana, HELM_RELEASE, {"chart": "grafana", "values": {"grafana.ini": {"server": {}}}}, False, None),
    (
        no_anonymous_grafana,
        HELM_RELEASE,
        {"chart": "grafana", "values": {"grafana.ini": {"auth.anonymous": {"enabled": True, "org_role": "Admin"}}}},
        False,
        "anonymous access is on in the chart values",
    ),
    (
        no_anonymous_grafana,
        "kubernetes:helm.sh/v4:Chart",
        {"chart": "kube-prometheus-stack", "values": {"grafana": {"env": {"GF_AUTH_ANONYMOUS_ENABLED": "true"}}}},
        False,
        "anonymous access is on in the chart values",
    ),
    # 3. S3 settings
    (s3_bucket_settings, PAB, {"bucket": "b", **ALL_BLOCKED}, False, None),
    (
        s3_bucket_settings,
        PAB,
        {"bucket": "b", **ALL_BLOCKED, "restrictPublicBuckets": False, "ignorePublicAcls": None},
        False,
        "set ignorePublicAcls=True, restrictPublicBuckets=True",
    ),
    (s3_bucket_settings, SSE, {"bucket": "b", "rules": [SSE_RULE]}, False, None),
    (s3_bucket_settings, SSE_V2, {"bucket": "b", "rules": []}, False, "no default encryption: add a rule"),
    (s3_bucket_settings, VERSIONING, {"bucket": "b", "versioningConfiguration": {"status": "Enabled"}}, False, None),
    (
        s3_bucket_settings,
        VERSIONING_V2,
        {"bucket": "b", "versioningConfiguration": {"status": "Suspended"}},
        False,
        'versioning is Suspended: set versioningConfiguration.status "Enabled"',
    ),
    (s3_bucket_settings, ACL_V2, {"bucket": "b", "acl": "private"}, False, None),
    (
        s3_bucket_settings,
        ACL_V2,
        {"bucket": "b", "acl": "public-read"},
        False,
        'ACL "public-read" makes objects public',
    ),
    (
        s3_bucket_settings,
        ACL_V2,
        {
            "bucket": "b",
            "accessControlPolicy": {
                "grants": [
                    {
                        "grantee": {"type": "Group", "uri": "http://acs.amazonaws.com/groups/global/AllUsers"},
                        "permission": "READ",
                    }
                ]
            },
        },
        False,
        "grants AllUsers or AuthenticatedUsers",
    ),
    (s3_bucket_settings, BUCKET, {"bucket": "artifacts"}, False, None),
    (s3_bucket_settings, BUCKET_V2, {"acl": "public-read-write"}, False, 'ACL "public-read-write"'),
    # 4. IAM
    (iam_no_wildcard_actions, IAM_POLICY, {"policy": policy_doc(ALLOW_GET)}, False, None),
    (
        iam_no_wildcard_actions,
        IAM_POLICY,
        {"policy": policy_doc({"Effect": "Deny", "Action": "*", "Resource": "*"}, ALLOW_GET)},
        False,
        None,
    ),
    (
        iam_no_wildcard_actions,
        IAM_POLICY,
        {"policy": policy_doc({"Effect": "Allow", "Action": "*", "Resource": "*"})},
        False,
        "Action '*' is a wildcard grant: list the actions",
    ),
    (
        iam_no_wildcard_actions,
        ROLE_POLICY,
        {"role": "r", "policy": {"Statement": {"Effect": "Allow", "Action": ["s3:GetObject", "s3:*"]}}},
        False,
        "Action 's3:*' is a wildcard grant",
    ),
    (
        iam_no_wildcard_actions,
        ROLE,
        {"inlinePolicies": [{"name": "ok", "policy": policy_doc(ALLOW_GET)}]},
        False,
        None,
    ),
    (
        iam_no_wildcard_actions,
        ROLE,
        {"inlinePolicies": [{"name": "x", "policy": policy_doc({"Effect": "Allow", "NotAction": "iam:*"})}]},
        False,
        "NotAction 'iam:*' (allows every other action) is a wildcard grant",
    ),
    (iam_no_wildcard_actions, ROLE_POLICY, {"role": "r", "policy": UNKNOWN_STRING_VALUE}, False, None),
    # 5. RDS
    (rds_encrypted_private, RDS, {"storageEncrypted": True, "publiclyAccessible": False}, False, None),
    (
        rds_encrypted_private,
        RDS,
        {"publiclyAccessible": False},
        False,
        "storage is not encrypted: set storageEncrypted",
    ),
    (
        rds_encrypted_private,
        RDS_CLUSTER,
        {"storageEncrypted": True, "publiclyAccessible": True},
        False,
        "publicly accessible: set publiclyAccessible=False",
    ),
    (rds_backups_and_tls, RDS, {"backupRetentionPeriod": 7}, False, None),
    (rds_backups_and_tls, RDS, {"engine": "postgres"}, False, None),
    (rds_backups_and_tls, RDS, {"backupRetentionPeriod": UNKNOWN_NUMBER_VALUE}, False, None),
    (
        rds_backups_and_tls,
        RDS_CLUSTER,
        {"backupRetentionPeriod": 0},
        False,
        "automated backups are off (backupRetentionPeriod=0)",
    ),
    (rds_backups_and_tls, RDS_PARAMS, {"family": "postgres18", "parameters": [force_ssl("1")]}, False, None),
    (rds_backups_and_tls, RDS_PARAMS, {"family": "postgres18", "parameters": []}, False, None),
    (rds_backups_and_tls, RDS_PARAMS, {"family": "mysql8.4", "parameters": []}, False, None),
    (
        rds_backups_and_tls,
        RDS_PARAMS,
        {"family": "postgres17", "parameters": [force_ssl("0"), {"name": "log_lock_waits", "value": "1"}]},
        False,
        "set the parameter rds.force_ssl to 1 (postgres17)",
    ),
    (
        rds_backups_and_tls,
        RDS_PARAMS,
        {"family": "postgres14", "parameters": []},
        False,
        "accepts connections without TLS",
    ),
    (
        rds_backups_and_tls,
        RDS_PARAMS,
        {"family": "postgres14", "parameters": [force_ssl(UNKNOWN_STRING_VALUE)]},
        False,
        None,
    ),
    (
        rds_backups_and_tls,
        RDS_CLUSTER_PARAMS,
        {"family": "aurora-postgresql17", "parameters": [force_ssl("0")]},
        False,
        "rds.force_ssl to 1 (aurora-postgresql17)",
    ),
    # 6. EKS
    (eks_endpoint_restricted, EKS, {"vpcConfig": {"endpointPublicAccess": False, "subnetIds": ["s"]}}, False, None),
    (
        eks_endpoint_restricted,
        EKS,
        {"vpcConfig": {"endpointPublicAccess": True, "publicAccessCidrs": ["203.0.113.0/24"]}},
        False,
        None,
    ),
    (eks_endpoint_restricted, EKS, {"vpcConfig": {"subnetIds": ["s"]}}, False, "open to 0.0.0.0/0 (the default)"),
    (
        eks_endpoint_restricted,
        EKS,
        {"vpcConfig": {"endpointPublicAccess": True, "publicAccessCidrs": ["10.0.0.0/8", "0.0.0.0/0"]}},
        False,
        "public API endpoint is open to 0.0.0.0/0: set vpcConfig.endpointPublicAccess=False",
    ),
    # 8. retained data
    (data_retained, VOLUME, {"name": "v"}, True, None),
    (data_retained, VOLUME, {"name": "v"}, False, "set protect=True"),
    (data_retained, BUCKET_V2, {"bucket": "b"}, False, None),
    (data_retained, BUCKET_V2, {"bucket": "b", "forceDestroy": True}, True, None),
    (data_retained, BUCKET, {"bucket": "b", "forceDestroy": True}, False, "forceDestroy=True deletes every object"),
    (data_retained, RDS, {"skipFinalSnapshot": True, "deletionProtection": True}, False, None),
    (data_retained, RDS, {"finalSnapshotIdentifier": "final"}, False, None),
    (
        data_retained,
        RDS_CLUSTER,
        {"skipFinalSnapshot": True, "deletionProtection": False},
        False,
        "set deletionProtection=True, or skipFinalSnapshot=False with a finalSnapshotIdentifier, or protect=True",
    ),
]


@pytest.mark.parametrize(
    ("policy", "type_", "props", "protect", "expected"),
    CASES,
    ids=[f"{c[0].name}-{c[1].rsplit(':', 1)[-1]}-{i}" for i, c in enumerate(CASES)],
)
def test_policy(policy, type_, props, protect, expected):
    messages = validate(policy, type_, props, protect=protect)
    if expected is None:
        assert messages == []
    else:
        assert len(messages) == 1, messages
        assert expected in messages[0]
        assert messages[0].startswith("res: "), "a message names the resource"


def test_every_resource_policy_has_a_good_and_a_bad_case():
    outcomes: dict[str, set[bool]] = {}
    for policy, *_, expected in CASES:
        outcomes.setdefault(policy.name, set()).add(expected is not None)
    resource_policies = {p.name for p in POLICIES if p not in (s3_bucket_guards, claims_retained)}
    assert {name for name, seen in outcomes.items() if seen == {True, False}} == resource_policies


def test_a_policy_ignores_types_it_does_not_govern():
    assert validate(pinned_images, "random:index/randomPassword:RandomPassword", {"length": 32}) == []


def test_every_policy_is_mandatory_and_describes_itself():
    assert len({p.name for p in POLICIES}) == len(POLICIES) == 11
    for policy in POLICIES:
        assert policy.enforcement_level == EnforcementLevel.MANDATORY
        assert len(policy.description) > 40


# --- the S3 stack policy -----------------------------------------------------------------------


def resource(type_: str, name: str, props: dict[str, Any], deps: dict[str, list[PolicyResource]] | None = None):
    urn = f"urn:pulumi:test::lab::{type_}::{name}"
    return PolicyResource(type_, unknown_checking_proxy(props), urn, name, _options(), None, None, [], deps or {})


def stack_violations(resources: list[PolicyResource]) -> list[tuple[str, str | None]]:
    found: list[tuple[str, str | None]] = []
    s3_bucket_guards.validate(StackValidationArgs(resources), lambda message, urn=None: found.append((message, urn)))
    return found


STORAGE_CLASS = "kubernetes:storage.k8s.io/v1:StorageClass"


@pytest.mark.parametrize(
    ("reclaim_policy", "claim_class", "protect", "violated"),
    [
        ("Retain", "gp3", False, False),
        ("Delete", "gp3", False, True),
        ("Retain", None, False, True),
        ("Delete", "gp3", True, False),
        ("Retain", UNKNOWN_STRING_VALUE, False, False),
    ],
    ids=["class-retains", "class-deletes", "default-class", "protected", "unknown-in-preview"],
)
def test_a_claim_is_protected_or_its_storage_class_retains_the_volume(reclaim_policy, claim_class, protect, violated):
    storage = resource(STORAGE_CLASS, "gp3", {"metadata": {"name": "gp3"}, "reclaimPolicy": reclaim_policy})
    urn = f"urn:pulumi:test::lab::{PVC}::data"
    props = unknown_checking_proxy({"spec": {"storageClassName": claim_class}})
    claim = PolicyResource(PVC, props, urn, "data", _options(protect), None, None, [], {})
    found: list[str] = []
    claims_retained.validate(StackValidationArgs([storage, claim]), lambda message, urn=None: found.append(message))
    assert bool(found) is violated
    if violated:
        assert "reclaimPolicy Retain" in found[0]


def test_buckets_with_all_three_guards_pass_matched_by_dependency_or_by_name():
    preview = resource(BUCKET, "artifacts", {"bucket": UNKNOWN_STRING_VALUE})  # autonamed, unknown in preview
    named = resource(BUCKET_V2, "dvc", {"bucket": "lab-dvc"})
    resources = [preview, named]
    for type_, props in ((PAB, ALL_BLOCKED), (SSE, {"rules": [SSE_RULE]}), (VERSIONING, {})):
        resources.append(
            resource(type_, f"{type_}-a", {**props, "bucket": UNKNOWN_STRING_VALUE}, {"bucket": [preview]})
        )
        resources.append(resource(type_, f"{type_}-b", {**props, "bucket": "lab-dvc"}))
    assert stack_violations(resources) == []


def test_a_bucket_missing_guards_is_reported_once_per_missing_guard():
    bucket = resource(BUCKET, "artifacts", {"bucket": "lab-artifacts"})
    other = resource(BUCKET, "other", {"bucket": "lab-other"})
    block = resource(PAB, "artifacts", {**ALL_BLOCKED, "bucket": "lab-artifacts"})
    sse_of_other = resource(SSE, "other", {"rules": [SSE_RULE], "bucket": "lab-other"})
    found = stack_violations([bucket, other, block, sse_of_other])
    no_encryption = "artifacts: bucket has no encryption configuration: add an aws.s3.BucketServerSideEncryption"
    assert (no_encryption + "Configuration for it", bucket.urn) in found
    assert ("artifacts: bucket has no versioning: add an aws.s3.BucketVersioning for it", bucket.urn) in found
    missing = {(message.split(":")[0], message.split("has no ")[1].split(":")[0]) for message, _ in found}
    assert len(found) == len(missing) == 4
    assert missing == {
        ("artifacts", "encryption configuration"),
        ("artifacts", "versioning"),
        ("other", "public access block"),
        ("other", "versioning"),
    }
