"""What every policy here shares: plain property values, and one policy shape.

The engine hands a policy its resource's inputs behind proxies that raise on values unknown
during a preview (an id not created yet). `plain` turns them into ordinary dicts and lists with
`UNKNOWN` in those places, so a check can skip what it cannot judge yet: `pulumi up` runs the
same checks again with every input known, before anything is created.

A policy is a table from resource type to a check; a check reads one resource and yields one
message per violation, each saying what to change.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pulumi_policy import (
    EnforcementLevel,
    ReportViolation,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    Secret,
    proxy,
)
from pulumi_policy.proxy import UnknownValueError

# The placeholder strings the engine sends for values unknown during a preview.
_SENTINELS = frozenset(
    getattr(proxy, name) for name in dir(proxy) if name.startswith("UNKNOWN_") and name.endswith("_VALUE")
)


class _Unknown:
    def __repr__(self) -> str:
        return "UNKNOWN"


UNKNOWN: Any = _Unknown()
"""A value the engine does not know yet (preview only)."""


def plain(value: Any) -> Any:
    """Proxied or raw engine values as plain dicts and lists, unknowns as `UNKNOWN`."""
    if isinstance(value, Secret):
        return plain(value.value)
    if isinstance(value, str):
        return UNKNOWN if value in _SENTINELS else value
    if isinstance(value, Mapping):
        return {key: _item(value, key) for key in value}
    if isinstance(value, Sequence):
        return [_item(value, index) for index in range(len(value))]
    return value


def _item(container: Any, key: Any) -> Any:
    try:
        return plain(container[key])
    except UnknownValueError:
        return UNKNOWN


def dig(value: Any, *path: str) -> Any:
    """`value[a][b]…`; None where a level is missing, UNKNOWN where it is not known yet."""
    for key in path:
        if value is UNKNOWN or value is None:
            return value
        value = value.get(key) if isinstance(value, Mapping) else None
    return value


def items(value: Any) -> list[Any]:
    """A list property's known elements; an absent or unknown list has none."""
    return [item for item in value if item is not UNKNOWN] if isinstance(value, list) else []


def truthy(value: Any) -> bool:
    """A flag as the programs reading it parse booleans (`true`, `1`, `yes`, `on`)."""
    return value is True or (isinstance(value, str) and value.strip().lower() in {"true", "1", "yes", "on", "t"})


@dataclass(frozen=True)
class Resource:
    """One resource as a check sees it: plain inputs and the options policies can read."""

    type: str
    name: str
    urn: str
    props: Mapping[str, Any]
    protect: bool


Check = Callable[[Resource], Iterable[str]]


def resource_policy(name: str, description: str, checks: Mapping[str, Check]) -> ResourceValidationPolicy:
    """A mandatory policy applying `checks[type]` to each resource of those types."""

    def validate(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
        check = checks.get(args.resource_type)
        if check is None:
            return
        resource = Resource(args.resource_type, args.name, args.urn, plain(args.props), bool(args.opts.protect))
        for message in check(resource):
            report_violation(f"{args.name}: {message}", None)

    return ResourceValidationPolicy(
        name=name,
        description=description,
        validate=validate,
        enforcement_level=EnforcementLevel.MANDATORY,
    )
