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
    module: str | None
    """Module under stacks/ whose `build(settings)` composes the phase; None while planned."""
    moved: tuple[str, ...] = ()
    """Services of the previous phase that run elsewhere from this one: their Docker containers
    and images go, their data volumes stay where they were."""
    updates: tuple[str, ...] = ()
    """Resources of the previous phase (`<type>::<name>`) this one changes in place, never
    replaces, because the change is the phase's point: TLS on the gateway, a database for MLflow."""

    @property
    def builder(self) -> Callable[[Settings], Any]:
        if self.module is None:
            raise LookupError(f"phase {self.name} has no builder yet")
        return importlib.import_module(self.module).build


PHASES: tuple[Phase, ...] = (
    Phase(
        "observability",
        ("local",),
        "Grafana LGTM on Docker: Loki, Tempo, Mimir, Grafana, Alloy",
        "stacks.observability",
    ),
    Phase("agents", ("local",), "+ instrumented LLM agents, Qdrant and their traffic on Docker", "stacks.agents"),
    Phase(
        "kubernetes",
        ("local",),
        "+ the agents and Qdrant moved to minikube, with MLflow, MinIO and Gateway API routing",
        "stacks.kubernetes",
        moved=("qdrant", "prompt-reviewer", "code-critic", "traffic"),
    ),
    Phase("platform", ("dev",), "AWS: VPC, EKS, S3 artifact store, MLflow through IRSA", "stacks.platform"),
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
    ),
)

STACKS: tuple[str, ...] = tuple(dict.fromkeys(stack for phase in PHASES for stack in phase.stacks))


def phase_named(name: str) -> Phase | None:
    return next((phase for phase in PHASES if phase.name == name), None)


def phases_for(stack: str) -> tuple[Phase, ...]:
    return tuple(phase for phase in PHASES if stack in phase.stacks)
