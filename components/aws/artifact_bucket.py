"""The S3 bucket DVC and MLflow keep datasets, models and run artifacts in."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

_BUCKET_PREFIX = re.compile(r"^[a-z0-9][a-z0-9-]{0,35}$")
"""S3 names are lowercase; a bucket_prefix leaves at most 37 characters, one of them the dash added here."""

ABORT_MULTIPART_AFTER_DAYS = 7


@dataclass(frozen=True)
class ArtifactBucketArgs:
    name_prefix: str
    retain: bool
    """Protect the bucket and keep it, with its guards, when the stack is destroyed."""
    noncurrent_version_days: int = 30
    bucket_name: str | None = None
    """A fixed name, for a bucket people type (a DVC remote); None names it `<name_prefix>-<random>`."""

    def __post_init__(self) -> None:
        if not _BUCKET_PREFIX.match(self.name_prefix):
            raise ValueError(
                f"bucket name prefix {self.name_prefix!r} must be 1-36 lowercase letters, digits or '-', "
                "starting with a letter or digit"
            )
        if self.noncurrent_version_days < 1:
            raise ValueError(f"noncurrent_version_days must be at least 1, got {self.noncurrent_version_days}")


def tls_only_policy(bucket_arn: str) -> str:
    """Refuse plain-HTTP requests, whoever makes them."""
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Sid": "DenyInsecureTransport",
                    "Effect": "Deny",
                    "Principal": "*",
                    "Action": "s3:*",
                    "Resource": [bucket_arn, f"{bucket_arn}/*"],
                    "Condition": {"Bool": {"aws:SecureTransport": "false"}},
                }
            ],
        }
    )


class ArtifactBucket(pulumi.ComponentResource):
    """A private, versioned, encrypted, TLS-only bucket whose old versions expire instead of piling up.

    Encryption is SSE-S3 (AES256): no KMS key to pay for, no per-request KMS charge, and no kms:Decrypt to grant
    to every IRSA role. SSE-KMS would add a key policy as a second gate and CloudTrail records of each data key
    use, which a lab's artifact store does not need.

    The guards are kept along with a retained bucket: deleting them would leave it public-capable, unversioned
    and reachable over plain HTTP.
    """

    def __init__(self, name: str, args: ArtifactBucketArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("llm-infra-lab:aws:ArtifactBucket", name, None, opts)

        bucket = aws.s3.Bucket(
            f"{name}-bucket",
            bucket=args.bucket_name,
            bucket_prefix=None if args.bucket_name else f"{args.name_prefix}-",
            force_destroy=False,
            opts=pulumi.ResourceOptions(parent=self, protect=args.retain, retain_on_delete=args.retain),
        )
        guard = pulumi.ResourceOptions(parent=self, retain_on_delete=args.retain)

        public_access_block = aws.s3.BucketPublicAccessBlock(
            f"{name}-public-access-block",
            bucket=bucket.id,
            block_public_acls=True,
            block_public_policy=True,
            ignore_public_acls=True,
            restrict_public_buckets=True,
            opts=guard,
        )
        aws.s3.BucketOwnershipControls(
            f"{name}-ownership",
            bucket=bucket.id,
            rule=aws.s3.BucketOwnershipControlsRuleArgs(object_ownership="BucketOwnerEnforced"),
            opts=guard,
        )
        aws.s3.BucketServerSideEncryptionConfiguration(
            f"{name}-encryption",
            bucket=bucket.id,
            rules=[
                aws.s3.BucketServerSideEncryptionConfigurationRuleArgs(
                    apply_server_side_encryption_by_default=(
                        aws.s3.BucketServerSideEncryptionConfigurationRuleApplyServerSideEncryptionByDefaultArgs(
                            sse_algorithm="AES256"
                        )
                    ),
                )
            ],
            opts=guard,
        )
        versioning = aws.s3.BucketVersioning(
            f"{name}-versioning",
            bucket=bucket.id,
            versioning_configuration=aws.s3.BucketVersioningVersioningConfigurationArgs(status="Enabled"),
            opts=guard,
        )
        aws.s3.BucketLifecycleConfiguration(
            f"{name}-lifecycle",
            bucket=bucket.id,
            # Rules without a filter cover the whole bucket.
            rules=[
                aws.s3.BucketLifecycleConfigurationRuleArgs(
                    id="expire-noncurrent-versions",
                    status="Enabled",
                    noncurrent_version_expiration=(
                        aws.s3.BucketLifecycleConfigurationRuleNoncurrentVersionExpirationArgs(
                            noncurrent_days=args.noncurrent_version_days
                        )
                    ),
                    expiration=aws.s3.BucketLifecycleConfigurationRuleExpirationArgs(expired_object_delete_marker=True),
                ),
                aws.s3.BucketLifecycleConfigurationRuleArgs(
                    id="abort-incomplete-multipart-uploads",
                    status="Enabled",
                    abort_incomplete_multipart_upload=(
                        aws.s3.BucketLifecycleConfigurationRuleAbortIncompleteMultipartUploadArgs(
                            days_after_initiation=ABORT_MULTIPART_AFTER_DAYS
                        )
                    ),
                ),
            ],
            # Noncurrent-version rules only take effect once versioning is on.
            opts=pulumi.ResourceOptions.merge(guard, pulumi.ResourceOptions(depends_on=[versioning])),
        )
        # S3 refuses concurrent changes to one bucket's access settings: the access block goes first.
        aws.s3.BucketPolicy(
            f"{name}-tls-only",
            bucket=bucket.id,
            policy=bucket.arn.apply(tls_only_policy),
            opts=pulumi.ResourceOptions.merge(guard, pulumi.ResourceOptions(depends_on=[public_access_block])),
        )

        self.bucket_name: pulumi.Output[str] = bucket.bucket
        self.bucket_arn: pulumi.Output[str] = bucket.arn
        self.register_outputs({"bucketName": self.bucket_name, "bucketArn": self.bucket_arn})
