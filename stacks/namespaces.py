"""The lab's namespaces on a cluster: one name for each, the same on minikube and on EKS."""

from __future__ import annotations

import pulumi

from components.gateway.traefik_gateway import ROUTES_LABEL
from components.runtime.kubernetes_service import KubernetesTarget, namespace

AGENTS = "agents"
MLOPS = "mlops-system"
OBSERVABILITY = "observability"
GATEWAY = "gateway-system"
SERVING = "serving"
KSERVE = "kserve"
"""KServe's controller: the name its own manifests expect."""
CERT_MANAGER = "cert-manager"


def lab_namespace(
    name: str,
    opts: pulumi.ResourceOptions,
    *,
    retain_data: bool = False,
    holds_data: bool = False,
    routed: bool = False,
) -> KubernetesTarget:
    """A namespace of the lab; `routed` ones may attach HTTPRoutes to the lab's Gateway.

    On EKS nothing in the cluster is protected (it would hold the cluster back from a quickstop): claims keep
    their data through the StorageClass, so `retain_data` stays False there.
    """
    labels = {ROUTES_LABEL: "true"} if routed else {}
    return namespace(name, retain_data, opts, holds_data=holds_data, **labels)
