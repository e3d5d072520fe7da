"""Phase `agents`: everything of `observability`, plus the LLM agents, Qdrant and traffic."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi

from components.workloads.agent import LlmBackend
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


def build(settings: Settings) -> AgentsPhase:
    base = observability.build(settings)
    agents = AgentsOnDocker(
        "agents",
        AgentsOnDockerArgs(
            target=base.target,
            llm=LlmBackend(provider=settings.llm.provider, model=settings.llm.model, api_key=settings.llm.api_key),
            otlp_grpc_url=base.lgtm.services.alloy.url("otlp-grpc"),
        ),
        opts=pulumi.ResourceOptions(providers=[base.docker]),
    )
    return AgentsPhase(base=base, agents=agents)
