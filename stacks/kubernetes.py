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

from components.gateway.traefik_gateway import TraefikGateway, TraefikGatewayArgs
from components.mlops.mlops_minikube import MlopsOnMinikube, MlopsOnMinikubeArgs
from components.observability.alloy_kubernetes import AlloyOnKubernetes, AlloyOnKubernetesArgs, cluster_alloy_service
from components.workloads.agents_kubernetes import AgentsOnKubernetes, AgentsOnKubernetesArgs
from stacks import agents, namespaces
from stacks.namespaces import lab_namespace
from stacks.settings import Settings

GATEWAY_LOCAL_PORT = 8080
"""`kubectl port-forward`'s local port for the gateway (README)."""


@dataclass
class KubernetesPhase:
    base: agents.AgentsPhase
    context: str
    gateway: TraefikGateway
    agents: AgentsOnKubernetes
    mlops: MlopsOnMinikube
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
                f"kubectl --context {self.context} -n {namespaces.GATEWAY} "
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

    # Claims hold data here, on minikube: their namespaces are kept as they are.
    kept = {"retain_data": settings.retain_data, "holds_data": True}
    agents_ns = lab_namespace(namespaces.AGENTS, on_cluster, routed=True, **kept)
    mlops_ns = lab_namespace(namespaces.MLOPS, on_cluster, routed=True, **kept)
    observability_ns = lab_namespace(namespaces.OBSERVABILITY, on_cluster, retain_data=settings.retain_data)
    gateway_ns = lab_namespace(namespaces.GATEWAY, on_cluster, retain_data=settings.retain_data)

    gateway = TraefikGateway(
        "gateway",
        TraefikGatewayArgs(target=gateway_ns, domain=local.gateway_domain, local_port=GATEWAY_LOCAL_PORT),
        opts=on_cluster,
    )
    alloy_spec = cluster_alloy_service(
        namespaces.OBSERVABILITY, local.cluster_host_address, (namespaces.AGENTS, namespaces.MLOPS, namespaces.GATEWAY)
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
    mlops = MlopsOnMinikube("mlops", MlopsOnMinikubeArgs(target=mlops_ns, gateway=gateway), opts=on_cluster)
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
