"""Phase `agents` on Docker: Qdrant, the reviewers, the learning-cycle workflow and their traffic."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi

from components.runtime.docker_service import DockerTarget, build_image, render_services
from components.workloads.agent import (
    ROLES,
    LlmBackend,
    agent_image,
    agent_service,
    traffic_service,
    workflow_service,
)
from components.workloads.qdrant import qdrant_service


@dataclass
class AgentsOnDockerArgs:
    target: DockerTarget
    llm: LlmBackend
    otlp_grpc_url: str
    """The OTLP gateway as the agents reach it on the lab network."""
    running: bool = True
    """False when the agents run on Kubernetes: the image is still built here, Qdrant's data kept."""


class AgentsOnDocker(pulumi.ComponentResource):
    """The agents' image, built on the local engine, and their containers and data volumes."""

    def __init__(self, name: str, args: AgentsOnDockerArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("llm-infra-lab:workloads:AgentsOnDocker", name, None, opts)
        image = agent_image()
        self.image_spec = image
        qdrant = qdrant_service()
        reviewers = [agent_service(role, image, args.llm, args.otlp_grpc_url, qdrant.url("http")) for role in ROLES]
        agents = [*reviewers, workflow_service(image, args.llm, args.otlp_grpc_url, reviewers)]
        urls = [agent.url("http") for agent in agents]
        traffic = traffic_service(image, urls, args.otlp_grpc_url, args.llm.provider)
        self.image = build_image("agent", image, pulumi.ResourceOptions(parent=self))
        self.containers = render_services(
            (qdrant, *agents, traffic), args.target, parent=self, built=self.image, running=args.running
        )
        host = args.target.host
        self.agent_urls = {agent.name: f"http://{host}:{agent.port('http').number}" for agent in agents if args.running}
        self.register_outputs({"agentUrls": self.agent_urls})
