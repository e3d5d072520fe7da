"""Phase `agents`: everything of `observability`, plus the LLM agents, Qdrant and traffic."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi

from components.workloads.agents_docker import AgentsOnDocker, AgentsOnDockerArgs
from stacks import observability
from stacks.settings import Settings


@dataclass
class AgentsPhase:
    base: observability.ObservabilityPhase
    agents: AgentsOnDocker

    @property
    def outputs(self) -> dict[str, pulumi.Input]:
        return {**self.base.outputs, "agentUrls": self.agents.agent_urls}


def build(settings: Settings, *, running_on_docker: bool = True) -> AgentsPhase:
    """`running_on_docker=False` keeps the image build and Qdrant's volume for a later runtime."""
    base = observability.build(settings)
    agents = AgentsOnDocker(
        "agents",
        AgentsOnDockerArgs(
            target=base.target,
            llm=settings.llm.backend,
            otlp_grpc_url=base.lgtm.services.alloy.url("otlp-grpc"),
            running=running_on_docker,
        ),
        opts=pulumi.ResourceOptions(providers=[base.docker]),
    )
    return AgentsPhase(base=base, agents=agents)
