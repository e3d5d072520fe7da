"""How the lab installs a chart: a pinned version, rolled back if it does not come up, never left half-installed."""

from __future__ import annotations

import pulumi
import pulumi_kubernetes as k8s

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
    values: pulumi.Input[dict] | None = None,
    timeout: int | None = TIMEOUT_SECONDS,
) -> k8s.helm.v3.Release:
    """`release` names the Helm release (default: `resource_name`); `repository` None for an OCI chart reference."""
    return k8s.helm.v3.Release(
        resource_name,
        name=release or resource_name,
        chart=chart,
        version=version,
        repository_opts={"repo": repository} if repository else None,
        namespace=namespace,
        values=values,
        atomic=True,
        cleanup_on_fail=True,
        timeout=timeout,
        opts=opts,
    )
