"""The learning track: phases in order, where each may run, and the module that builds it.

A later phase on a stack is a superset of the earlier one; its module calls the earlier
phase's `build` and adds to it, so shared resources keep their URNs and inputs.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from stacks.settings import Settings


@dataclass(frozen=True)
class Phase:
    name: str
    stacks: tuple[str, ...]
    summary: str
    module: str
    """Module under stacks/ whose `build(settings)` composes the phase."""
    moved: tuple[str, ...] = ()
    """Services of the previous phase that run elsewhere from this one: their Docker containers
    and images go, their data volumes stay where they were."""
    updates: tuple[str, ...] = ()
    """Resources of the previous phase (`<type>::<name>`) this one changes in place, never
    replaces, because the change is the phase's point: TLS on the gateway, a database for MLflow."""
    needs: tuple[str, ...] = ()
    """What `pulumi up` of the phase needs on this machine besides Pulumi and the virtualenv, checked by
    `make quickstart` (scripts/lab.py): `docker` (a running engine), `minikube` (a running profile named by
    `kubeContext`, at least MINIKUBE), `aws` (credentials of the account)."""

    @property
    def builder(self) -> Callable[[Settings], Any]:
        return importlib.import_module(self.module).build


@dataclass(frozen=True)
class Minikube:
    """The minikube phase `kubernetes` runs on: room for a rolling update of every Deployment at once
    (docs/phases/kubernetes.md, "How big the minikube must be"), and Calico to enforce the NetworkPolicies."""

    memory_mib: int
    cpus: int
    cni: str

    def start_command(self, profile: str | None = None) -> str:
        named = f" -p {profile}" if profile else ""
        return f"minikube start{named} --memory {self.memory_mib} --cpus {self.cpus} --cni {self.cni}"


MINIKUBE = Minikube(memory_mib=5120, cpus=4, cni="calico")
"""The README's `minikube start` line, and what `make quickstart` checks a running profile against."""

PHASES: tuple[Phase, ...] = (
    Phase(
        "observability",
        ("local",),
        "Grafana LGTM on Docker: Loki, Tempo, Mimir, Grafana, Alloy",
        "stacks.observability",
        needs=("docker",),
    ),
    Phase(
        "agents",
        ("local",),
        "+ instrumented LLM agents, Qdrant and their traffic on Docker",
        "stacks.agents",
        needs=("docker",),
    ),
    Phase(
        "kubernetes",
        ("local",),
        "+ the agents and Qdrant moved to minikube, with MLflow, MinIO and Gateway API routing",
        "stacks.kubernetes",
        moved=("qdrant", "prompt-reviewer", "code-critic", "learning-cycle", "traffic"),
        # The LGTM stack stays on Docker, which also builds the agent image minikube loads.
        needs=("docker", "minikube"),
    ),
    Phase(
        "platform",
        ("dev",),
        "AWS: VPC, EKS, S3 artifact store, MLflow through IRSA",
        "stacks.platform",
        needs=("aws",),
    ),
    Phase(
        "production",
        ("dev",),
        "+ TLS, RDS PostgreSQL, LGTM on EKS, the agents with autoscaling, model serving",
        "stacks.production",
        updates=(
            # Traefik opens its HTTPS entry point, and its load balancer port 443; the Gateway gains a TLS
            # listener per host.
            "kubernetes:helm.sh/v3:Release::traefik",
            "kubernetes:core/v1:Service::traefik",
            "kubernetes:gateway.networking.k8s.io/v1:Gateway::lab",
            # MLflow moves to its https://mlflow.<domain> host and its runs to PostgreSQL, whose URI joins its
            # admin password in its Secret.
            "kubernetes:gateway.networking.k8s.io/v1:HTTPRoute::mlflow",
            "kubernetes:apps/v1:StatefulSet::mlflow",
            "kubernetes:core/v1:Secret::mlflow",
            "kubernetes:networking.k8s.io/v1:NetworkPolicy::mlflow",
        ),
        # Docker builds the agent image for the nodes and pushes it to ECR.
        needs=("aws", "docker"),
    ),
)

STACKS: tuple[str, ...] = tuple(dict.fromkeys(stack for phase in PHASES for stack in phase.stacks))


def phase_named(name: str) -> Phase | None:
    return next((phase for phase in PHASES if phase.name == name), None)


def phases_for(stack: str) -> tuple[Phase, ...]:
    return tuple(phase for phase in PHASES if stack in phase.stacks)
