"""The restricted Pod Security Standard and a memory budget, spelled as chart values and custom resources take them.

The lab's namespaces enforce `restricted`, and every chart's pods state these settings rather than trust the chart's
defaults, so a chart upgrade cannot loosen them unseen. Memory requested is memory limited: the scheduler's sums are
what the nodes really hold.
"""

from __future__ import annotations

RUNTIME_DEFAULT = {"type": "RuntimeDefault"}
CONTAINER = {
    "allowPrivilegeEscalation": False,
    "readOnlyRootFilesystem": True,
    "capabilities": {"drop": ["ALL"]},
}
"""A container's settings; some charts also want the pod's restated per container."""


def pod(uid: int | None = None, *, fs_group: bool = False) -> dict:
    """A pod's settings; `fs_group` gives `uid` the volumes too (a claim, or the projected IRSA token)."""
    user = {"runAsUser": uid, "runAsGroup": uid} if uid is not None else {}
    group = {"fsGroup": uid} if fs_group else {}
    return {"runAsNonRoot": True, **user, **group, "seccompProfile": RUNTIME_DEFAULT}


def resources(memory_mib: int, cpu_request: str, cpu_limit: str) -> dict:
    memory = f"{memory_mib}Mi"
    return {"requests": {"cpu": cpu_request, "memory": memory}, "limits": {"cpu": cpu_limit, "memory": memory}}
