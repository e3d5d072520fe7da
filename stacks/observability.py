"""Phase `observability`: the Grafana LGTM stack on the local Docker engine."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_docker as docker

from components.observability.lgtm_docker import LgtmOnDocker, LgtmOnDockerArgs
from components.runtime.docker_service import DockerTarget
from stacks.settings import Settings


@dataclass
class ObservabilityPhase:
    """What later local phases build on: the engine, the lab network, the LGTM stack."""

    docker: docker.Provider
    target: DockerTarget
    lgtm: LgtmOnDocker

    @property
    def outputs(self) -> dict[str, pulumi.Input]:
        return {
            "grafanaUrl": self.lgtm.grafana_url,
            "grafanaAdminUser": self.lgtm.grafana_admin_user,
            "grafanaAdminPassword": self.lgtm.grafana_admin_password,
            "otlpGrpcEndpoint": self.lgtm.otlp_grpc_endpoint,
            "otlpHttpEndpoint": self.lgtm.otlp_http_endpoint,
        }


def build(settings: Settings) -> ObservabilityPhase:
    local = settings.local
    assert local is not None, "the observability phase runs on the local stack"
    engine = docker.Provider("docker", host=local.docker_host)
    on_engine = pulumi.ResourceOptions(provider=engine)
    network = docker.Network(
        "lab",
        name=settings.name_prefix,
        driver="bridge",
        labels=[docker.NetworkLabelArgs(label="llm-infra-lab.stack", value=settings.stack)],
        opts=on_engine,
    )
    target = DockerTarget(
        network_name=network.name,
        name_prefix=settings.name_prefix,
        bind_address=local.bind_address,
        retain_data=settings.retain_data,
    )
    lgtm = LgtmOnDocker(
        "lgtm",
        LgtmOnDockerArgs(
            target=target,
            grafana_port=local.grafana_port,
            llm_monthly_budget_usd=settings.llm.monthly_budget_usd,
        ),
        opts=pulumi.ResourceOptions(providers=[engine]),
    )
    return ObservabilityPhase(docker=engine, target=target, lgtm=lgtm)
