"""Grafana Alloy inside the cluster: the workloads' OTLP gateway and the collector of pod logs.

It stores nothing itself. On minikube everything goes, as OTLP, to the gateway of the LGTM
stack the earlier phases run on Docker, so one Grafana shows the Docker and the Kubernetes
workloads; on EKS it exports straight to the stores in the cluster, as the Docker gateway does.
Pod logs are read through the Kubernetes API (`loki.source.kubernetes`), which needs a token
allowed to read pods and their logs in the watched namespaces, and no host paths.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import pulumi
import pulumi_kubernetes as k8s

from components.observability.alloy import (
    DATA_PATH,
    INTAKE,
    MODEL_METRICS,
    OTLP_GRPC_PORT,
    POD_LOGS,
    TO_GATEWAY,
    TO_STORES,
    alloy_spec,
    pipeline,
    stores_env,
)
from components.runtime.kubernetes_service import (
    INTERNET,
    Allow,
    KubernetesService,
    KubernetesServiceArgs,
    KubernetesTarget,
    Pods,
    labels_for,
)
from components.runtime.spec import ConfigFile, ServiceSpec

NAME = "alloy"
# Kubernetes API server: 443 on its Service, 8443 on minikube's node after the Service's DNAT.
API_SERVER_PORTS = (443, 8443)


def cluster_alloy_service(namespace: str, gateway_host: str, log_namespaces: tuple[str, ...]) -> ServiceSpec:
    """OTLP from the workloads and pod logs from the API, forwarded to the LGTM gateway at `gateway_host`."""
    return _in_cluster(
        namespace,
        pipeline(INTAKE, POD_LOGS, TO_GATEWAY),
        {"GATEWAY_OTLP_GRPC_ENDPOINT": f"{gateway_host}:{OTLP_GRPC_PORT}"},
        log_namespaces,
    )


def cluster_alloy_to_stores(
    namespace: str,
    *,
    traces_otlp_grpc: str,
    metrics_remote_write: str,
    logs_otlp_http: str,
    log_namespaces: tuple[str, ...],
    model_metrics: Allow | None = None,
) -> ServiceSpec:
    """The Docker gateway's own pipeline and exporters, plus pod logs, for stores inside the cluster; with
    `model_metrics` (the model servers' pods and port) their metrics are scraped too."""
    files, exports = (INTAKE, POD_LOGS, TO_STORES), stores_env(traces_otlp_grpc, metrics_remote_write, logs_otlp_http)
    if model_metrics is not None:
        assert isinstance(model_metrics.peer, Pods), "model servers are pods of a namespace"
        files = (*files, MODEL_METRICS)
        exports |= {"MODEL_NAMESPACE": model_metrics.peer.namespace, "MODEL_METRICS_PORT": str(model_metrics.port)}
    return _in_cluster(namespace, pipeline(*files), exports, log_namespaces)


def _in_cluster(
    namespace: str, files: tuple[ConfigFile, ...], exports: dict[str, str], log_namespaces: tuple[str, ...]
) -> ServiceSpec:
    return replace(
        alloy_spec(files, {**exports, "LOG_NAMESPACES": ",".join(log_namespaces)}),
        # Only a write-ahead buffer lives here; losing it on a restart loses seconds of telemetry.
        volumes=(),
        scratch_paths=(DATA_PATH, "/tmp"),
        namespace=namespace,
    )


@dataclass
class AlloyOnKubernetesArgs:
    spec: ServiceSpec
    """From `cluster_alloy_service`."""
    target: KubernetesTarget
    log_namespaces: tuple[KubernetesTarget, ...]
    """Namespaces whose pod logs it collects."""
    senders: tuple[Pods, ...]
    """Pods allowed to send OTLP."""
    destinations: tuple[Allow, ...] = (Allow(INTERNET, OTLP_GRPC_PORT),)
    """Where it exports to; by default the LGTM gateway outside the cluster, at any address."""
    api_server_ports: tuple[int, ...] = API_SERVER_PORTS


class AlloyOnKubernetes(pulumi.ComponentResource):
    def __init__(self, name: str, args: AlloyOnKubernetesArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("llm-infra-lab:observability:AlloyOnKubernetes", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        target = args.target
        self.spec = args.spec
        self.service_account = k8s.core.v1.ServiceAccount(
            NAME,
            metadata={"name": NAME, "namespace": target.namespace.metadata.name, "labels": labels_for(NAME)},
            automount_service_account_token=False,
            opts=child,
        )
        self.log_readers = [self._log_reader(namespace) for namespace in args.log_namespaces]
        otlp_ports = [self.spec.port(name).number for name in ("otlp-grpc", "otlp-http")]
        self.service = KubernetesService(
            NAME,
            KubernetesServiceArgs(
                spec=self.spec,
                target=target,
                ingress=tuple(Allow(pods, port) for pods in args.senders for port in otlp_ports),
                egress=(
                    *args.destinations,
                    *(Allow(INTERNET, port) for port in args.api_server_ports),
                ),
                service_account=self.service_account.metadata.name,
                checkov_skips={
                    "CKV_K8S_40": f"the image's user alloy (uid {self.spec.uid}) owns its files",
                    "CKV_K8S_38": "Alloy reads pod logs through the API with its own service account",
                },
            ),
            opts=pulumi.ResourceOptions(parent=self, depends_on=self.log_readers),
        )
        self.register_outputs({"otlpGrpcUrl": self.spec.url("otlp-grpc")})

    def _log_reader(self, target: KubernetesTarget) -> k8s.rbac.v1.RoleBinding:
        """Read access to pods and their logs in one namespace: a Role there, not a ClusterRole."""
        child = pulumi.ResourceOptions(parent=self)
        metadata = {"name": f"{NAME}-pod-logs", "namespace": target.namespace.metadata.name, "labels": labels_for(NAME)}
        role = k8s.rbac.v1.Role(
            f"{NAME}-logs-{target.name}",
            metadata=metadata,
            rules=[{"api_groups": [""], "resources": ["pods", "pods/log"], "verbs": ["get", "list", "watch"]}],
            opts=child,
        )
        return k8s.rbac.v1.RoleBinding(
            f"{NAME}-logs-{target.name}",
            metadata=metadata,
            role_ref={"api_group": "rbac.authorization.k8s.io", "kind": "Role", "name": role.metadata.name},
            subjects=[
                {"kind": "ServiceAccount", "name": self.service_account.metadata.name, "namespace": self.spec.namespace}
            ],
            opts=child,
        )
