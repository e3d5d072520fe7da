"""Data outlives its resource: volumes, claims, buckets and databases are kept on delete.

A Kubernetes claim may instead rely on its StorageClass: with `reclaimPolicy: Retain` the
volume outlives the claim, which lets a cloud cluster (and everything in it) be destroyed
while the disks stay. That needs the stack's StorageClasses, so claims have a stack policy.

The project keeps data with `protect` and `retainOnDelete`. Only `protect` is visible here:
pulumi-policy 1.21.0 gives a policy `protect`, `ignore_changes`, `delete_before_replace`,
`aliases`, `custom_timeouts`, `additional_secret_outputs` and `parent`, because the engine's
`AnalyzerResourceOptions` message carries nothing else. So this policy wants `protect`, or for
buckets and databases a guard the provider itself enforces (`forceDestroy` off, deletion
protection, a final snapshot); the mocked stack runs in the tests check `retainOnDelete`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping

from pulumi_policy import EnforcementLevel, ReportViolation, StackValidationArgs, StackValidationPolicy

from ._core import UNKNOWN, Resource, dig, plain, resource_policy
from .aws import BUCKETS, RDS_DATABASES


def _bucket(resource: Resource) -> str | None:
    if resource.props.get("forceDestroy") is True:
        return "forceDestroy=True deletes every object with the bucket: leave forceDestroy off or set protect=True"
    return None


def _database(resource: Resource) -> str | None:
    props = resource.props
    if props.get("deletionProtection") in (True, UNKNOWN) or props.get("skipFinalSnapshot") in (False, None, UNKNOWN):
        return None
    return (
        "deleting it drops the data (skipFinalSnapshot=True, no deletionProtection): set deletionProtection=True, "
        "or skipFinalSnapshot=False with a finalSnapshotIdentifier, or protect=True"
    )


def _unguarded(_resource: Resource) -> str | None:
    return "nothing but protect keeps this data when the resource is deleted: set protect=True (and retainOnDelete)"


DATA_RESOURCES: Mapping[str, Callable[[Resource], str | None]] = {
    "docker:index/volume:Volume": _unguarded,
    **dict.fromkeys(BUCKETS, _bucket),
    **dict.fromkeys(RDS_DATABASES, _database),
}
"""Resources holding data, with the guard visible to policies when `protect` is not set."""


def _retained(guard: Callable[[Resource], str | None]) -> Callable[[Resource], Iterable[str]]:
    def check(resource: Resource) -> Iterable[str]:
        if resource.protect:
            return []
        problem = guard(resource)
        return [problem] if problem else []

    return check


data_retained = resource_policy(
    "data-retained",
    "Resources holding data are protected or guarded against deletion: protect=True, or for S3 no "
    "forceDestroy and for RDS deletion protection or a final snapshot.",
    {type_: _retained(guard) for type_, guard in DATA_RESOURCES.items()},
)

CLAIM = "kubernetes:core/v1:PersistentVolumeClaim"
STORAGE_CLASS = "kubernetes:storage.k8s.io/v1:StorageClass"


def validate_claims(args: StackValidationArgs, report_violation: ReportViolation) -> None:
    retaining = {
        dig(plain(r.props), "metadata", "name")
        for r in args.resources
        if r.resource_type == STORAGE_CLASS and plain(r.props).get("reclaimPolicy") == "Retain"
    }
    for claim in (r for r in args.resources if r.resource_type == CLAIM and not r.opts.protect):
        storage_class = dig(plain(claim.props), "spec", "storageClassName")
        if storage_class is UNKNOWN or storage_class in retaining:
            continue
        report_violation(
            f"{claim.name}: deleting the claim deletes its volume: set protect=True, or use a StorageClass "
            "of this stack with reclaimPolicy Retain",
            claim.urn,
        )


claims_retained = StackValidationPolicy(
    name="claims-retained",
    description="Kubernetes claims are protected, or their StorageClass (declared in the stack) retains volumes.",
    validate=validate_claims,
    enforcement_level=EnforcementLevel.MANDATORY,
)

RETENTION_POLICIES = [data_retained, claims_retained]
