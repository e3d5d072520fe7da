"""Phase `agents` on Docker: Qdrant, the two agents and their traffic, on the lab network."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi

from components.workloads.agent import ROLES, LlmBackend, agent_image, agent_service, traffic_service
from components.workloads.docker_service import DockerService, DockerServiceArgs, build_image
from components.workloads.qdrant import qdrant_service
from components.workloads.spec import ServiceSpec


@dataclass
class AgentsOnDockerArgs:
    network_name: pulumi.Input[str]
    name_prefix: str
    bind_address: str
    retain_data: bool
    llm: LlmBackend
    otlp_grpc_url: str
    """The OTLP gateway as the agents reach it on the lab network."""


class AgentsOnDocker(pulumi.ComponentResource):
    def __init__(self, name: str, args: AgentsOnDockerArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("llm-infra-lab:workloads:AgentsOnDocker", name, None, opts)
        qdrant = qdrant_service()
        agents = [agent_service(role, args.llm, args.otlp_grpc_url, qdrant.url("http")) for role in ROLES]
        traffic = traffic_service([agent.url("http") for agent in agents], args.otlp_grpc_url)
        self.specs: tuple[ServiceSpec, ...] = (qdrant, *agents, traffic)
        self.image_spec = agent_image()
        self.image = build_image("agent", self.image_spec, pulumi.ResourceOptions(parent=self))
        self.containers = {
            spec.name: DockerService(
                spec.name,
                DockerServiceArgs(
                    spec=spec,
                    network_name=args.network_name,
                    name_prefix=args.name_prefix,
                    bind_address=args.bind_address,
                    retain_data=args.retain_data,
                    image=self.image if spec.image == self.image_spec else None,
                ),
                opts=pulumi.ResourceOptions(parent=self),
            )
            for spec in self.specs
        }
        host = "localhost" if args.bind_address in ("127.0.0.1", "0.0.0.0") else args.bind_address
        self.agent_urls = {agent.name: f"http://{host}:{agent.port('http').number}" for agent in agents}
        self.register_outputs({"agentUrls": self.agent_urls})
