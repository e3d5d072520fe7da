"""How the lab installs a chart: a pinned version, rolled back if it does not come up, never left half-installed."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from components.runtime.spec import to_yaml

TIMEOUT_SECONDS = 600
"""Time for a release's images to pull and its pods to turn ready on fresh nodes."""


def chart_release(
    resource_name: str,
    *,
    chart: str,
    version: str,
    namespace: pulumi.Input[str],
    opts: pulumi.ResourceOptions,
    release: str | None = None,
    repository: str | None = None,
    values: Mapping[str, Any] | None = None,
    deleted_defaults: Mapping[str, Any] | None = None,
    timeout: int | None = TIMEOUT_SECONDS,
) -> k8s.helm.v3.Release:
    """`release` names the Helm release (default: `resource_name`); `repository` None for an OCI chart reference.

    `deleted_defaults` names chart defaults to remove, as a tree whose leaves are None: Helm deletes a key set
    to null, but the Pulumi SDK drops None from `values` before Helm sees it, so these travel as a values file.
    A None in `values` is refused for that reason: it would silently do nothing.
    """
    if values is not None and (where := _first_none(values)):
        raise ValueError(f"{resource_name}: values.{where} is None, which never reaches Helm; use deleted_defaults")
    deletions = [pulumi.StringAsset(to_yaml(dict(deleted_defaults)))] if deleted_defaults else None
    return k8s.helm.v3.Release(
        resource_name,
        name=release or resource_name,
        chart=chart,
        version=version,
        repository_opts={"repo": repository} if repository else None,
        namespace=namespace,
        values=values,
        value_yaml_files=deletions,
        atomic=True,
        cleanup_on_fail=True,
        timeout=timeout,
        opts=opts,
    )


def _first_none(tree: Any, path: str = "") -> str:
    """The dotted path of the first None in nested dicts and lists, or ''."""
    if tree is None:
        return path or "(root)"
    children = tree.items() if isinstance(tree, Mapping) else enumerate(tree) if isinstance(tree, list) else ()
    for key, child in children:
        if found := _first_none(child, f"{path}.{key}" if path else str(key)):
            return found
    return ""
