"""Data outlives its resource: volumes, claims, buckets and databases are kept on delete.

The project keeps data with `protect` and `retainOnDelete`. Only `protect` is visible here:
pulumi-policy 1.21.0 gives a policy `protect`, `ignore_changes`, `delete_before_replace`,
`aliases`, `custom_timeouts`, `additional_secret_outputs` and `parent`, because the engine's
`AnalyzerResourceOptions` message carries nothing else. So this policy wants `protect`, or for
buckets and databases a guard the provider itself enforces (`forceDestroy` off, deletion
protection, a final snapshot); the mocked stack runs in the tests check `retainOnDelete`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping

from ._core import UNKNOWN, Resource, resource_policy
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
    "kubernetes:core/v1:PersistentVolumeClaim": _unguarded,
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

RETENTION_POLICIES = [data_retained]
