"""The LGTM stack rendered to containers on the local Docker engine."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi

from components.observability.grafana import ADMIN_USER, GrafanaCredentials
from components.observability.lgtm import LgtmServices, lgtm_services
from components.runtime.docker_service import DockerTarget, render_services


@dataclass
class LgtmOnDockerArgs:
    target: DockerTarget
    grafana_port: int
    llm_monthly_budget_usd: float


class LgtmOnDocker(pulumi.ComponentResource):
    """Loki, Tempo, Mimir, Alloy and Grafana on one network, Grafana's credentials generated.

    It ships the LLM dashboard and alert rules from the first phase: they read the GenAI
    conventions any instrumented app emits, and adding the agents later must not change a
    resource this phase created.
    """

    def __init__(self, name: str, args: LgtmOnDockerArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("llm-infra-lab:observability:LgtmOnDocker", name, None, opts)

        # Grafana keeps the first admin password and its secret key in its database: they must
        # live exactly as long as the data volume, or a quickstop would lock you out.
        credentials = GrafanaCredentials.generate(pulumi.ResourceOptions(parent=self, **args.target.data_protection))
        self.services: LgtmServices = lgtm_services(
            grafana_port=args.grafana_port,
            grafana_admin_password=credentials.admin_password,
            grafana_secret_key=credentials.secret_key,
            llm_monthly_budget_usd=args.llm_monthly_budget_usd,
        )
        self.containers = render_services(self.services.all(), args.target, parent=self)

        host = args.target.host
        alloy = self.services.alloy
        self.grafana_url = f"http://{host}:{self.services.grafana.port('http').number}"
        self.grafana_admin_user = ADMIN_USER
        self.grafana_admin_password = credentials.admin_password
        self.otlp_grpc_endpoint = f"http://{host}:{alloy.port('otlp-grpc').number}"
        self.otlp_http_endpoint = f"http://{host}:{alloy.port('otlp-http').number}"
        self.register_outputs(
            {
                "grafanaUrl": self.grafana_url,
                "grafanaAdminPassword": self.grafana_admin_password,
                "otlpGrpcEndpoint": self.otlp_grpc_endpoint,
                "otlpHttpEndpoint": self.otlp_http_endpoint,
            }
        )
