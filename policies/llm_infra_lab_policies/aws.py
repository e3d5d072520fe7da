"""AWS: private, encrypted, versioned S3; least-privilege IAM; private, encrypted, backed-up RDS on TLS; closed EKS API.

Type tokens are those of pulumi-aws 7.51.1. In v7 an S3 bucket's access block, encryption,
versioning and ACL are separate resources (the V2 names are aliases of the plain ones), so the
settings are checked on each of those resources and a stack policy checks that every bucket has
all three guards.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

from pulumi_policy import EnforcementLevel, ReportViolation, StackValidationArgs, StackValidationPolicy

from ._core import UNKNOWN, Resource, dig, items, plain, resource_policy

BUCKETS = ("aws:s3/bucket:Bucket", "aws:s3/bucketV2:BucketV2")
PUBLIC_ACCESS_BLOCKS = ("aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock",)
ENCRYPTION_CONFIGS = (
    "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration",
    "aws:s3/bucketServerSideEncryptionConfigurationV2:BucketServerSideEncryptionConfigurationV2",
)
VERSIONINGS = ("aws:s3/bucketVersioning:BucketVersioning", "aws:s3/bucketVersioningV2:BucketVersioningV2")
ACLS = ("aws:s3/bucketAcl:BucketAcl", "aws:s3/bucketAclV2:BucketAclV2")
RDS_DATABASES = ("aws:rds/instance:Instance", "aws:rds/cluster:Cluster")
RDS_PARAMETER_GROUPS = (
    "aws:rds/parameterGroup:ParameterGroup",
    "aws:rds/clusterParameterGroup:ClusterParameterGroup",
)
FORCE_SSL_DEFAULT_SINCE = 15
"""RDS for PostgreSQL turns `rds.force_ssl` on by default from major version 15; before, it is off."""
EKS_CLUSTER = "aws:eks/cluster:Cluster"

PUBLIC_ACLS = frozenset({"public-read", "public-read-write", "authenticated-read"})
PUBLIC_GRANTEES = (
    "http://acs.amazonaws.com/groups/global/AllUsers",
    "http://acs.amazonaws.com/groups/global/AuthenticatedUsers",
)
BLOCK_FLAGS = ("blockPublicAcls", "blockPublicPolicy", "ignorePublicAcls", "restrictPublicBuckets")
OPEN_CIDRS = frozenset({"0.0.0.0/0", "::/0"})


# S3 ---------------------------------------------------------------------------------------------


def _public_access_block(resource: Resource) -> Iterable[str]:
    off = [flag for flag in BLOCK_FLAGS if resource.props.get(flag) not in (True, UNKNOWN)]
    if off:
        yield f"public access is not fully blocked: set {', '.join(f'{flag}=True' for flag in off)}"


def _encryption(resource: Resource) -> Iterable[str]:
    rules = resource.props.get("rules")
    if rules is UNKNOWN or (isinstance(rules, list) and UNKNOWN in rules):
        return
    algorithms = [dig(rule, "applyServerSideEncryptionByDefault", "sseAlgorithm") for rule in items(rules)]
    if not algorithms or not all(algorithms):
        yield (
            "no default encryption: add a rule with applyServerSideEncryptionByDefault.sseAlgorithm "
            '"aws:kms" (or "AES256")'
        )


def _versioning(resource: Resource) -> Iterable[str]:
    status = dig(resource.props, "versioningConfiguration", "status")
    if status not in (UNKNOWN, "Enabled"):
        yield f'versioning is {status or "not set"}: set versioningConfiguration.status "Enabled"'


def _acl(resource: Resource) -> Iterable[str]:
    acl = resource.props.get("acl")
    if acl in PUBLIC_ACLS:
        yield f'ACL "{acl}" makes objects public: use "private" (or drop the ACL, ownership enforced)'
    grants = items(dig(resource.props, "accessControlPolicy", "grants"))
    if any(dig(grant, "grantee", "uri") in PUBLIC_GRANTEES for grant in grants):
        yield "the ACL grants AllUsers or AuthenticatedUsers: remove those grants"


s3_bucket_settings = resource_policy(
    "s3-bucket-settings",
    "S3 buckets are private, encrypted and versioned: public access block with all four flags, a "
    "default encryption rule, versioning Enabled, and no public ACL.",
    {
        **dict.fromkeys(PUBLIC_ACCESS_BLOCKS, _public_access_block),
        **dict.fromkeys(ENCRYPTION_CONFIGS, _encryption),
        **dict.fromkeys(VERSIONINGS, _versioning),
        **dict.fromkeys((*ACLS, *BUCKETS), _acl),
    },
)

GUARDS: Mapping[str, tuple[tuple[str, ...], str]] = {
    "public access block": (PUBLIC_ACCESS_BLOCKS, "aws.s3.BucketPublicAccessBlock"),
    "encryption configuration": (ENCRYPTION_CONFIGS, "aws.s3.BucketServerSideEncryptionConfiguration"),
    "versioning": (VERSIONINGS, "aws.s3.BucketVersioning"),
}


def _bucket_keys(bucket: Any) -> set[Any]:
    props = plain(bucket.props)
    return {bucket.urn, props.get("id"), props.get("bucket")} - {None, UNKNOWN}


def _targets(guard: Any) -> set[Any]:
    """What a guard resource's `bucket` points at: the value, and the resources it came from."""
    deps = {dep.urn for dep in (guard.property_dependencies or {}).get("bucket", [])}
    return (deps | {plain(guard.props).get("bucket")}) - {None, UNKNOWN}


def validate_bucket_guards(args: StackValidationArgs, report_violation: ReportViolation) -> None:
    targets = {
        label: set().union(*(_targets(r) for r in args.resources if r.resource_type in types))
        for label, (types, _) in GUARDS.items()
    }
    for bucket in (r for r in args.resources if r.resource_type in BUCKETS):
        keys = _bucket_keys(bucket)
        for label, (_, resource_class) in GUARDS.items():
            if not keys & targets[label]:
                report_violation(f"{bucket.name}: bucket has no {label}: add an {resource_class} for it", bucket.urn)


s3_bucket_guards = StackValidationPolicy(
    name="s3-bucket-guards",
    description="Every S3 bucket has its own public access block, default encryption and versioning resource.",
    validate=validate_bucket_guards,
    enforcement_level=EnforcementLevel.MANDATORY,
)


# IAM --------------------------------------------------------------------------------------------


def _documents(resource: Resource) -> list[Any]:
    if resource.type == "aws:iam/role:Role":
        return [policy.get("policy") for policy in items(resource.props.get("inlinePolicies"))]
    return [resource.props.get("policy")]


def _listed(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def wildcard_actions(document: Any) -> list[str]:
    """The wildcard grants in a policy document (JSON text or parsed); unknown documents have none."""
    if isinstance(document, str):
        try:
            document = json.loads(document)
        except json.JSONDecodeError:
            return []
    if not isinstance(document, Mapping):
        return []
    found = []
    for statement in _listed(document.get("Statement")):
        if not isinstance(statement, Mapping) or statement.get("Effect") == "Deny":
            continue  # a wildcard Deny is a guardrail, not a grant
        if "NotAction" in statement:
            found.append(f"NotAction {statement['NotAction']!r} (allows every other action)")
        found += [
            f"Action {action!r}"
            for action in _listed(statement.get("Action"))
            if action == "*" or str(action).endswith(":*")
        ]
    return found


def _iam(resource: Resource) -> Iterable[str]:
    for grant in (grant for document in _documents(resource) for grant in wildcard_actions(document)):
        yield f"{grant} is a wildcard grant: list the actions the principal needs (e.g. s3:GetObject)"


iam_no_wildcard_actions = resource_policy(
    "iam-no-wildcard-actions",
    "IAM policies allow named actions only: no `*`, no `service:*` and no Allow with NotAction, in "
    "managed policies, inline role/user/group policies and a role's inline policies.",
    dict.fromkeys(
        (
            "aws:iam/policy:Policy",
            "aws:iam/rolePolicy:RolePolicy",
            "aws:iam/userPolicy:UserPolicy",
            "aws:iam/groupPolicy:GroupPolicy",
            "aws:iam/role:Role",
        ),
        _iam,
    ),
)


# RDS and EKS ------------------------------------------------------------------------------------


def _database(resource: Resource) -> Iterable[str]:
    if resource.props.get("storageEncrypted") not in (True, UNKNOWN):
        yield "storage is not encrypted: set storageEncrypted=True (and kmsKeyId for a customer key)"
    if resource.props.get("publiclyAccessible") is True:
        yield "the database is publicly accessible: set publiclyAccessible=False and reach it from the VPC"


rds_encrypted_private = resource_policy(
    "rds-encrypted-private",
    "RDS instances and clusters have encrypted storage and are not publicly accessible.",
    dict.fromkeys(RDS_DATABASES, _database),
)


def _backups(resource: Resource) -> Iterable[str]:
    days = resource.props.get("backupRetentionPeriod")
    # Absent, RDS keeps a day of backups.
    if isinstance(days, int | float) and days < 1:
        yield "automated backups are off (backupRetentionPeriod=0): keep them 1-35 days"


def _force_ssl(resource: Resource) -> Iterable[str]:
    family = resource.props.get("family")
    parameters = resource.props.get("parameters")
    if not isinstance(family, str) or "postgres" not in family or UNKNOWN in (parameters or []):
        return
    values = {dig(parameter, "name"): dig(parameter, "value") for parameter in items(parameters)}
    value = values.get("rds.force_ssl")
    major = family.removeprefix("postgres")
    off_by_default = major.isdigit() and int(major) < FORCE_SSL_DEFAULT_SINCE
    if value is UNKNOWN or (value is None and not off_by_default):
        return
    if str(value) != "1":
        yield f"PostgreSQL accepts connections without TLS: set the parameter rds.force_ssl to 1 ({family})"


rds_backups_and_tls = resource_policy(
    "rds-backups-and-tls",
    "RDS instances and clusters keep automated backups (backupRetentionPeriod of at least 1), and PostgreSQL "
    "parameter groups do not turn rds.force_ssl off (nor leave it at its pre-15 default of off).",
    {**dict.fromkeys(RDS_DATABASES, _backups), **dict.fromkeys(RDS_PARAMETER_GROUPS, _force_ssl)},
)


def _eks_endpoint(resource: Resource) -> Iterable[str]:
    config = resource.props.get("vpcConfig")
    public = dig(config, "endpointPublicAccess")
    if public is UNKNOWN or public is False:
        return
    # EKS defaults to a public endpoint open to 0.0.0.0/0 when these are not set.
    cidrs = dig(config, "publicAccessCidrs")
    if cidrs is UNKNOWN:
        return
    open_cidrs = sorted(OPEN_CIDRS & set(items(cidrs))) if cidrs else ["0.0.0.0/0 (the default)"]
    if open_cidrs:
        yield (
            f"the public API endpoint is open to {', '.join(open_cidrs)}: set vpcConfig.endpointPublicAccess=False, "
            "or vpcConfig.publicAccessCidrs to the addresses that administer the cluster"
        )


eks_endpoint_restricted = resource_policy(
    "eks-endpoint-restricted",
    "An EKS cluster's public API endpoint, when on (the EKS default), is limited to listed CIDRs, never 0.0.0.0/0.",
    {EKS_CLUSTER: _eks_endpoint},
)

AWS_POLICIES = [
    s3_bucket_settings,
    s3_bucket_guards,
    iam_no_wildcard_actions,
    rds_encrypted_private,
    rds_backups_and_tls,
    eks_endpoint_restricted,
]
