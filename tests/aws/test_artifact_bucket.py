"""The artifact bucket: private, encrypted, versioned, TLS-only, expiring old versions, and kept on delete."""

from __future__ import annotations

import functools
import json

import pulumi
import pytest

from components.aws.artifact_bucket import ArtifactBucket, ArtifactBucketArgs
from tests.aws.support import AwsRun, run_aws

BUCKET = "aws:s3/bucket:Bucket"
BUCKET_NAME = "lab-artifacts-20260101000000000000000001"
BUCKET_ARN = f"arn:aws:s3:::{BUCKET_NAME}"
COMPUTED = {"artifacts-bucket": {"bucket": BUCKET_NAME, "arn": BUCKET_ARN}}

GUARDS = {
    "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock": "artifacts-public-access-block",
    "aws:s3/bucketOwnershipControls:BucketOwnershipControls": "artifacts-ownership",
    "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration": "artifacts-encryption",
    "aws:s3/bucketVersioning:BucketVersioning": "artifacts-versioning",
    "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration": "artifacts-lifecycle",
    "aws:s3/bucketPolicy:BucketPolicy": "artifacts-tls-only",
}


@functools.cache
def artifacts(retain: bool = True) -> AwsRun:
    def program():
        bucket = ArtifactBucket("artifacts", ArtifactBucketArgs(name_prefix="lab-artifacts", retain=retain))
        pulumi.export("name", bucket.bucket_name)
        pulumi.export("arn", bucket.bucket_arn)

    return run_aws(program, COMPUTED)


def guard(run: AwsRun, type_: str):
    return run.named(type_, GUARDS[type_])


def test_bucket_is_named_by_prefix_and_never_force_destroyed():
    run = artifacts()
    bucket = run.named(BUCKET, "artifacts-bucket")
    assert bucket["bucketPrefix"] == "lab-artifacts-"
    assert bucket["forceDestroy"] is False
    assert run.run.outputs == {"name": BUCKET_NAME, "arn": BUCKET_ARN}


def test_every_guard_exists_once_and_points_at_the_bucket():
    run = artifacts()
    bucket = run.named(BUCKET, "artifacts-bucket")
    for type_ in GUARDS:
        (resource,) = run.of_type(type_)
        assert resource["bucket"] == "artifacts-bucket-id"
        assert run.property_dependencies[resource.urn]["bucket"] == {bucket.urn}


def test_public_access_is_blocked_and_acls_are_disabled():
    run = artifacts()
    block = guard(run, "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock")
    for flag in ("blockPublicAcls", "blockPublicPolicy", "ignorePublicAcls", "restrictPublicBuckets"):
        assert block[flag] is True, flag
    ownership = guard(run, "aws:s3/bucketOwnershipControls:BucketOwnershipControls")
    assert ownership["rule"] == {"objectOwnership": "BucketOwnerEnforced"}


def test_objects_are_encrypted_and_versioned():
    run = artifacts()
    sse = guard(run, "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration")
    assert [rule["applyServerSideEncryptionByDefault"]["sseAlgorithm"] for rule in sse["rules"]] == ["AES256"]
    versioning = guard(run, "aws:s3/bucketVersioning:BucketVersioning")
    assert versioning["versioningConfiguration"] == {"status": "Enabled"}


def test_old_versions_and_abandoned_uploads_expire_once_versioning_is_on():
    run = artifacts()
    lifecycle = guard(run, "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration")
    rules = {rule["id"]: rule for rule in lifecycle["rules"]}
    assert all(rule["status"] == "Enabled" and "filter" not in rule for rule in rules.values())
    assert rules["expire-noncurrent-versions"]["noncurrentVersionExpiration"] == {"noncurrentDays": 30}
    assert rules["abort-incomplete-multipart-uploads"]["abortIncompleteMultipartUpload"] == {"daysAfterInitiation": 7}
    assert run.depends_on(lifecycle, guard(run, "aws:s3/bucketVersioning:BucketVersioning"))


def test_bucket_policy_denies_every_request_without_tls():
    run = artifacts()
    policy = guard(run, "aws:s3/bucketPolicy:BucketPolicy")
    (statement,) = json.loads(policy["policy"])["Statement"]
    assert statement["Effect"] == "Deny"
    assert statement["Principal"] == "*"
    assert statement["Action"] == "s3:*"
    assert statement["Resource"] == [BUCKET_ARN, f"{BUCKET_ARN}/*"]
    assert statement["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
    assert run.depends_on(policy, guard(run, "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock"))


@pytest.mark.parametrize("retain", [True, False])
def test_retain_protects_the_bucket_and_keeps_it_guarded(retain):
    run = artifacts(retain)
    bucket = run.named(BUCKET, "artifacts-bucket")
    assert (bucket.protect, bucket.retain_on_delete) == (retain, retain)
    for type_ in GUARDS:
        resource = guard(run, type_)
        assert resource.retain_on_delete is retain, type_
        assert resource.protect is False, type_


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"name_prefix": "Lab-Artifacts"}, "must be 1-36 lowercase letters"),
        ({"name_prefix": "-lab"}, "starting with a letter or digit"),
        ({"name_prefix": "x" * 37}, "must be 1-36"),
        ({"name_prefix": ""}, "must be 1-36"),
        ({"noncurrent_version_days": 0}, "noncurrent_version_days must be at least 1"),
    ],
)
def test_invalid_bucket_args_are_refused(changes, message):
    with pytest.raises(ValueError, match=message):
        ArtifactBucketArgs(**{"name_prefix": "lab-artifacts", "retain": True, **changes})


def test_a_fixed_bucket_name_replaces_the_prefix():
    args = ArtifactBucketArgs(name_prefix="lab-dvc", retain=True, bucket_name="lab-dvc-remote")
    bucket = run_aws(lambda: ArtifactBucket("dvc", args)).named(BUCKET, "dvc-bucket")
    assert bucket["bucket"] == "lab-dvc-remote"
    assert "bucketPrefix" not in bucket.inputs
