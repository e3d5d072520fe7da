"""Containers, wherever they run: pinned images, memory limits, no anonymous Grafana.

Docker containers and every Kubernetes pod template are read into one `Container` view, so
each policy below is written once for both runtimes (ADR 0002: one service, several runtimes).
"""

from __future__ import annotations

import configparser
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ._core import UNKNOWN, Check, Resource, dig, items, resource_policy, truthy

DOCKER_CONTAINER = "docker:index/container:Container"
DOCKER_IMAGE = "docker:index/remoteImage:RemoteImage"
HELM_TYPES = ("kubernetes:helm.sh/v3:Release", "kubernetes:helm.sh/v4:Chart")

_TEMPLATE = ("spec", "template", "spec")
POD_SPEC_PATHS: Mapping[str, tuple[str, ...]] = {
    "kubernetes:core/v1:Pod": ("spec",),
    "kubernetes:apps/v1:Deployment": _TEMPLATE,
    "kubernetes:apps/v1:StatefulSet": _TEMPLATE,
    "kubernetes:apps/v1:DaemonSet": _TEMPLATE,
    "kubernetes:apps/v1:ReplicaSet": _TEMPLATE,
    "kubernetes:batch/v1:Job": _TEMPLATE,
    "kubernetes:batch/v1:CronJob": ("spec", "jobTemplate", *_TEMPLATE),
}
"""Where each Kubernetes workload keeps its pod spec."""

CONTAINER_TYPES = (DOCKER_CONTAINER, *POD_SPEC_PATHS)


@dataclass(frozen=True)
class Container:
    label: str
    image: Any
    memory_limit: Any
    env: Mapping[str, Any] = field(default_factory=dict)
    files: Mapping[str, Any] = field(default_factory=dict)


def containers(resource: Resource) -> list[Container]:
    """The containers a Docker container or a Kubernetes workload runs, init containers included."""
    props = resource.props
    if resource.type == DOCKER_CONTAINER:
        env = dict(entry.split("=", 1) for entry in items(props.get("envs")) if "=" in entry)
        files = {upload.get("file"): upload.get("content") for upload in items(props.get("uploads"))}
        return [Container("container", props.get("image"), props.get("memory"), env, files)]
    spec = dig(props, *POD_SPEC_PATHS[resource.type])
    return [
        Container(
            f'{kind} "{container.get("name")}"',
            container.get("image"),
            dig(container, "resources", "limits", "memory"),
            {var.get("name"): var.get("value") for var in items(container.get("env"))},
        )
        for key, kind in (("initContainers", "init container"), ("containers", "container"))
        for container in items(dig(spec, key))
    ]


def _per_container(problem: Callable[[Container, bool], str | None]) -> Check:
    """A check applying `problem(container, is_docker)` to every container of a resource."""

    def check(resource: Resource) -> Iterable[str]:
        for container in containers(resource):
            message = problem(container, resource.type == DOCKER_CONTAINER)
            if message:
                yield f"{container.label}: {message}"

    return check


# Pinned images ---------------------------------------------------------------------------------


def image_problem(ref: Any) -> str | None:
    """Why an image reference floats, or None when it is pinned by tag or digest."""
    if ref is UNKNOWN or not isinstance(ref, str) or not ref:
        return None
    if "@sha256:" in ref or ref.startswith("sha256:"):
        return None  # a digest or a local image id: immutable
    last = ref.rsplit("/", 1)[-1]
    tag = last.split(":", 1)[1] if ":" in last else None
    if tag is None:
        return f"image {ref!r} has no tag and pulls `latest`: pin a version tag ({ref}:<version>) or a digest"
    if tag == "latest":
        base = ref.rsplit(":", 1)[0]
        return f"image {ref!r} floats with `latest`: pin a version tag ({base}:<version>) or a digest"
    return None


def _remote_image(resource: Resource) -> Iterable[str]:
    problem = image_problem(resource.props.get("name"))
    return [problem] if problem else []


pinned_images = resource_policy(
    "pinned-images",
    "Images are pinned by version tag or digest, never `latest` or untagged: a redeploy must "
    "run what was tested. Covers Docker images and containers and every Kubernetes pod template.",
    {
        DOCKER_IMAGE: _remote_image,
        **dict.fromkeys(CONTAINER_TYPES, _per_container(lambda c, _docker: image_problem(c.image))),
    },
)


# Memory limits ----------------------------------------------------------------------------------


def memory_problem(container: Container, docker: bool) -> str | None:
    limit = container.memory_limit
    if limit is UNKNOWN:
        return None
    if docker:
        if isinstance(limit, int | float) and limit > 0:
            return None
        return "no memory limit: set `memory` (MiB, > 0) so one service cannot starve the others"
    if limit not in (None, "", 0, "0"):
        return None
    return "no memory limit: set `resources.limits.memory` (e.g. 512Mi) so the pod cannot starve its node"


memory_limits = resource_policy(
    "memory-limits",
    "Every container has a memory limit: Docker `memory` > 0, Kubernetes `resources.limits.memory` "
    "on every container and init container.",
    dict.fromkeys(CONTAINER_TYPES, _per_container(memory_problem)),
)


# No anonymous Grafana ----------------------------------------------------------------------------

ANONYMOUS_ENV = "GF_AUTH_ANONYMOUS_ENABLED"
_FIX = f"set {ANONYMOUS_ENV}=false (or [auth.anonymous] enabled = false) and log in with the admin account"


def _ini_enables_anonymous(content: Any) -> bool:
    if not isinstance(content, str):
        return False
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    try:
        parser.read_string(content)
    except configparser.Error:
        return False
    return truthy(parser.get("auth.anonymous", "enabled", fallback="false"))


def anonymous_problem(container: Container, _docker: bool) -> str | None:
    role = container.env.get("GF_AUTH_ANONYMOUS_ORG_ROLE") or "Viewer"
    if truthy(container.env.get(ANONYMOUS_ENV)):
        return f"Grafana anonymous access is on (role {role}): {_FIX}"
    ini = [
        path
        for path, content in container.files.items()
        if str(path).endswith(".ini") and _ini_enables_anonymous(content)
    ]
    if ini:
        return f"Grafana anonymous access is on in {ini[0]}: {_FIX}"
    return None


def _helm_grafana(resource: Resource) -> Iterable[str]:
    values = resource.props.get("values")
    scopes = [values, dig(values, "grafana")]  # the grafana chart, or a chart embedding it
    for scope in (s for s in scopes if isinstance(s, Mapping)):
        if truthy(dig(scope, "grafana.ini", "auth.anonymous", "enabled")) or truthy(dig(scope, "env", ANONYMOUS_ENV)):
            yield f"Grafana anonymous access is on in the chart values: {_FIX}"


no_anonymous_grafana = resource_policy(
    "no-anonymous-grafana",
    "Grafana never allows anonymous access, whatever the role: an anonymous Viewer can still read "
    "every dashboard and query the logs and traces (prompts included) behind them.",
    {
        **dict.fromkeys(CONTAINER_TYPES, _per_container(anonymous_problem)),
        **dict.fromkeys(HELM_TYPES, _helm_grafana),
    },
)

WORKLOAD_POLICIES = [pinned_images, memory_limits, no_anonymous_grafana]
