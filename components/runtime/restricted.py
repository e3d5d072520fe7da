"""The restricted Pod Security Standard and a memory budget: the one statement every pod of the lab uses.

The lab's namespaces enforce `restricted`. The Kubernetes renderer's pods and every chart's pods state these settings
rather than trust defaults, so a chart upgrade cannot loosen them unseen. Memory requested is memory limited: the
scheduler's sums are what the nodes really hold.
"""

from __future__ import annotations

RUNTIME_DEFAULT = {"type": "RuntimeDefault"}


def container(*, read_only_root: bool = True, restate_pod: bool = False) -> dict:
    """A container's settings. `restate_pod` repeats the pod's (non-root, seccomp) on the container, for charts
    whose containers take no pod-level context; `read_only_root` False for images that write beside their code."""
    settings: dict = {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}}
    if read_only_root:
        settings["readOnlyRootFilesystem"] = True
    if restate_pod:
        settings |= {"privileged": False, "runAsNonRoot": True, "seccompProfile": RUNTIME_DEFAULT}
    return settings


CONTAINER = container()


def pod(uid: int | None = None, *, gid: int | None = None, fs_group: bool = False) -> dict:
    """A pod's settings; `fs_group` gives the group the volumes too (a claim, or the projected IRSA token)."""
    group_id = uid if gid is None else gid
    user = {"runAsUser": uid, "runAsGroup": group_id} if uid is not None else {}
    group = {"fsGroup": group_id} if fs_group else {}
    return {"runAsNonRoot": True, **user, **group, "seccompProfile": RUNTIME_DEFAULT}


def resources(memory_mib: int, cpu_request: str, cpu_limit: str) -> dict:
    memory = f"{memory_mib}Mi"
    return {"requests": {"cpu": cpu_request, "memory": memory}, "limits": {"cpu": cpu_limit, "memory": memory}}
