"""Phase `kubernetes`: the agents and Qdrant move to minikube, joined by MLflow, MinIO and a gateway.

The LGTM stack stays on Docker, unchanged; an Alloy inside the cluster forwards the
workloads' telemetry and pod logs to it. The agent image is still built on the local engine
and then loaded into minikube; the agents' Docker containers go (the catalog names them),
Qdrant's Docker volume stays with its data.
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_command as command
import pulumi_kubernetes as k8s

from components.gateway.traefik_gateway import ROUTES_LABEL, TraefikGateway, TraefikGatewayArgs
from components.mlops.mlops_kubernetes import MlopsOnKubernetes, MlopsOnKubernetesArgs
from components.observability.alloy_kubernetes import AlloyOnKubernetes, AlloyOnKubernetesArgs, cluster_alloy_service
from components.workloads.agents_kubernetes import AgentsOnKubernetes, AgentsOnKubernetesArgs
from components.workloads.kubernetes_service import namespace
from stacks import agents
from stacks.settings import Settings

AGENTS_NAMESPACE = "agents"
MLOPS_NAMESPACE = "mlops-system"
OBSERVABILITY_NAMESPACE = "observability"
GATEWAY_NAMESPACE = "gateway-system"
GATEWAY_LOCAL_PORT = 8080
"""`kubectl port-forward`'s local port for the gateway (README)."""


@dataclass
class KubernetesPhase:
    base: agents.AgentsPhase
    context: str
    gateway: TraefikGateway
    agents: AgentsOnKubernetes
    mlops: MlopsOnKubernetes
    alloy: AlloyOnKubernetes

    @property
    def outputs(self) -> dict[str, pulumi.Input]:
        mlops = self.mlops
        return {
            **self.base.base.outputs,
            "agentUrls": {agent.name: self.gateway.url(agent.name) for agent in self.agents.agents},
            "mlflowUrl": mlops.mlflow_url,
            "minioConsoleUrl": mlops.console_url,
            "minioUser": mlops.minio_user,
            "minioPassword": mlops.minio_password,
            "gatewayPortForward": (
                f"kubectl --context {self.context} -n {GATEWAY_NAMESPACE} "
                f"port-forward service/traefik {GATEWAY_LOCAL_PORT}:80"
            ),
            "dvcRemoteCommands": (
                f"dvc remote add -d lab {mlops.dvc_remote} && "
                f"dvc remote modify lab endpointurl {mlops.s3_endpoint} && "
                f"dvc remote modify --local lab access_key_id {mlops.minio_user} && "
                "dvc remote modify --local lab secret_access_key "
                '"$(pulumi stack output minioPassword --show-secrets)"'
            ),
        }


def build(settings: Settings) -> KubernetesPhase:
    local = settings.local
    assert local is not None, "the kubernetes phase runs on the local stack"
    base = agents.build(settings, running_on_docker=False)
    image = base.agents.image_spec

    # The engine built the image; the cluster's runtime gets it from there, not from a registry.
    image_in_cluster = command.local.Command(
        "agent-image-into-minikube",
        create=f"minikube --profile {local.kube_context} image load {image.ref}",
        triggers=[base.agents.image.image_id],
    )
    cluster = k8s.Provider("minikube", context=local.kube_context)
    on_cluster = pulumi.ResourceOptions(provider=cluster)

    def lab_namespace(name: str, holds_data: bool = False, **labels: str):
        return namespace(name, settings.retain_data, on_cluster, holds_data=holds_data, **labels)

    routed = {ROUTES_LABEL: "true"}
    agents_ns = lab_namespace(AGENTS_NAMESPACE, holds_data=True, **routed)
    mlops_ns = lab_namespace(MLOPS_NAMESPACE, holds_data=True, **routed)
    observability_ns = lab_namespace(OBSERVABILITY_NAMESPACE)
    gateway_ns = lab_namespace(GATEWAY_NAMESPACE)

    gateway = TraefikGateway(
        "gateway",
        TraefikGatewayArgs(target=gateway_ns, domain=local.gateway_domain, local_port=GATEWAY_LOCAL_PORT),
        opts=on_cluster,
    )
    alloy_spec = cluster_alloy_service(
        OBSERVABILITY_NAMESPACE, local.cluster_host_address, (AGENTS_NAMESPACE, MLOPS_NAMESPACE, GATEWAY_NAMESPACE)
    )
    workloads = AgentsOnKubernetes(
        "agents",
        AgentsOnKubernetesArgs(
            target=agents_ns,
            image=image,
            image_ready=image_in_cluster,
            llm=settings.llm.backend,
            otlp=alloy_spec,
            gateway=gateway.pods,
        ),
        opts=on_cluster,
    )
    for agent in workloads.agents:
        gateway.route(agent.name, agent, "http", parent=workloads)
    mlops = MlopsOnKubernetes("mlops", MlopsOnKubernetesArgs(target=mlops_ns, gateway=gateway), opts=on_cluster)
    alloy = AlloyOnKubernetes(
        "alloy",
        AlloyOnKubernetesArgs(
            spec=alloy_spec,
            target=observability_ns,
            log_namespaces=(agents_ns, mlops_ns, gateway_ns),
            senders=workloads.senders,
        ),
        opts=on_cluster,
    )
    return KubernetesPhase(
        base=base, context=local.kube_context, gateway=gateway, agents=workloads, mlops=mlops, alloy=alloy
    )
