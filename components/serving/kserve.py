"""Model serving with KServe in Standard mode (plain Deployments), behind the lab's gateway (ADR 0011).

KServe's CRDs and its controller come from their pinned OCI charts; the controller's webhooks
take their certificate from cert-manager, so the controller waits for it. Standard mode needs
neither Knative nor Istio: an InferenceService becomes a Deployment, a Service
`<name>-predictor` (port 80 to the model server's 8080) and a CPU HorizontalPodAutoscaler.
KServe's own Ingress creation is off; the gateway routes `models.<domain>` to that Service, and
a NetworkPolicy admits only the gateway's pods to the model server.

Since v0.17 the controller chart ships no serving runtimes, so the scikit-learn runtime is a
namespaced ServingRuntime of ours, pinned to the controller's release.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import pulumi
import pulumi_kubernetes as k8s

from components.gateway.traefik_gateway import TraefikGateway
from components.runtime import restricted
from components.runtime.helm import chart_release
from components.runtime.kubernetes_service import (
    DNS_RULE,
    INTERNET,
    Allow,
    KubernetesTarget,
    Pods,
    labels_for,
    policy_rule,
)

KSERVE_VERSION = "v0.20.0"
"""The newest release whose charts are confirmed on ghcr.io (v0.21.0's were seen only as -rc1)."""
CHARTS = "oci://ghcr.io/kserve/charts"
CRD_CHART = f"{CHARTS}/kserve-crd"
CONTROLLER_CHART = f"{CHARTS}/kserve-resources"
"""Renamed from `kserve` in v0.17."""
DEPLOYMENT_MODE = "Standard"
"""The raw-Deployment mode ("RawDeployment" before v0.17); the chart defaults to "Knative"."""
SERVING_API = "serving.kserve.io"
RUNTIME = "kserve-sklearnserver"
RUNTIME_IMAGE = f"kserve/sklearnserver:{KSERVE_VERSION}"
MODEL_FORMAT = "sklearn"
HTTPS_SCHEMES = ("gs://", "s3://", "hf://", "https://")
"""Storage the initializer downloads over HTTPS, the only way out the NetworkPolicy allows."""
MODEL_PORT = 8080
"""The model server's port in the pod (`--http_port`), and of its Prometheus metrics (`/metrics`)."""
SERVICE_PORT = 80
"""The port of the predictor Service KServe creates."""
HTTPS_PORT = 443
ROUTE = "models"
KSERVE_UID = 1000
"""The user KServe's model server and storage initializer images run as."""
ISVC_LABEL = f"{SERVING_API}/inferenceservice"
COMPONENT_LABEL = "component"
"""With ISVC_LABEL, what KServe puts on an InferenceService's predictor pods."""
MODEL_NAME = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
NO_MODEL_YET = "(no model yet: promote one with ml/, then pulumi config set servedModelUri; README)"
CONTROLLER_MEMORY_MIB = 256
RBAC_PROXY_MEMORY_MIB = 64
STORAGE_INITIALIZER_MEMORY_MIB = 256
MODEL_MEMORY_MIB = 384
CPU_TARGET_PERCENT = 80
RESTRICTED_CONTAINER = restricted.container(read_only_root=False, restate_pod=True)
"""The restricted Pod Security Standard, per container, on a writable root: KServe's Python servers are not
known to run on a read-only one."""


@dataclass(frozen=True)
class ServedModel:
    storage_uri: str
    """A directory holding one scikit-learn model file (model.joblib or model.pkl), under gs://, s3://, hf:// or
    https://: the lab's own promoted model in its artifact bucket (ml/scripts/model_uri.py prints it)."""
    service_account: pulumi.Input[str] | None = None
    """The predictor's service account: the IRSA role that may read the model, for a private bucket."""
    name: str = "iris"
    min_replicas: int = 1
    max_replicas: int = 2

    def __post_init__(self) -> None:
        if not MODEL_NAME.match(self.name):
            raise ValueError(f"model name {self.name!r} must be a DNS label starting with a letter")
        if not self.storage_uri.startswith(HTTPS_SCHEMES):
            raise ValueError(f"storage URI {self.storage_uri!r} must be one of {', '.join(HTTPS_SCHEMES)}")
        if not 1 <= self.min_replicas <= self.max_replicas:
            raise ValueError(f"replicas need 1 <= min <= max, got {self.min_replicas}..{self.max_replicas}")


@dataclass
class ModelServingArgs:
    controller_target: KubernetesTarget
    """The KServe controller's namespace (`kserve`: the names KServe's manifests expect)."""
    target: KubernetesTarget
    """Where models run; it must carry the gateway's routes label."""
    gateway: TraefikGateway
    cert_manager: pulumi.Resource
    """cert-manager's release: the controller's webhook certificate is a cert-manager Certificate."""
    model: ServedModel | None = None
    """None: KServe and its runtime wait for a model (promote one, then name it in the stack's settings)."""
    scraper: Pods | None = None
    """Who reads the model server's metrics (`/metrics` on its port): Alloy."""


class ModelServing(pulumi.ComponentResource):
    """KServe's CRDs and controller, one InferenceService, its NetworkPolicy and its route."""

    def __init__(self, name: str, args: ModelServingArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("llm-infra-lab:serving:ModelServing", name, None, opts)
        controller_namespace = args.controller_target.namespace.metadata.name
        self.crds = chart_release(
            "kserve-crd",
            chart=CRD_CHART,
            version=KSERVE_VERSION,
            namespace=controller_namespace,
            timeout=None,
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.values = controller_values()
        self.release = chart_release(
            "kserve",
            chart=CONTROLLER_CHART,
            version=KSERVE_VERSION,
            namespace=controller_namespace,
            values=self.values,
            opts=pulumi.ResourceOptions(parent=self, depends_on=[self.crds, args.cert_manager]),
        )
        # The controller's webhooks validate both the runtime and a model: they must be serving first.
        self._after_controller = pulumi.ResourceOptions(parent=self, depends_on=[self.release])
        self.runtime = k8s.apiextensions.CustomResource(
            RUNTIME,
            api_version=f"{SERVING_API}/v1alpha1",
            kind="ServingRuntime",
            metadata={"namespace": args.target.namespace.metadata.name, "labels": labels_for(RUNTIME), "name": RUNTIME},
            spec=_sklearn_runtime(),
            opts=self._after_controller,
        )
        self.model = args.model
        self.url = self._serve(args, args.model) if args.model else NO_MODEL_YET
        self.register_outputs({"url": self.url})

    def _serve(self, args: ModelServingArgs, model: ServedModel) -> str:
        """The InferenceService, a NetworkPolicy admitting only the gateway, and the route; returns the URL."""
        self.predictor_service = f"{model.name}-predictor"
        metadata = {"namespace": args.target.namespace.metadata.name, "labels": labels_for(model.name)}
        self.inference_service = k8s.apiextensions.CustomResource(
            model.name,
            api_version=f"{SERVING_API}/v1beta1",
            kind="InferenceService",
            metadata={
                **metadata,
                "name": model.name,
                "annotations": {
                    f"{SERVING_API}/deploymentMode": DEPLOYMENT_MODE,
                    f"{SERVING_API}/autoscalerClass": "hpa",
                },
            },
            spec={"predictor": _predictor(model)},
            opts=pulumi.ResourceOptions.merge(
                self._after_controller, pulumi.ResourceOptions(depends_on=[self.runtime])
            ),
        )
        self.network_policy = k8s.networking.v1.NetworkPolicy(
            self.predictor_service,
            metadata={**metadata, "name": self.predictor_service},
            spec={
                "pod_selector": {"match_labels": predictor_pod_labels(model.name)},
                "policy_types": ["Ingress", "Egress"],
                "ingress": [
                    policy_rule("from", Allow(peer, MODEL_PORT)) for peer in (args.gateway.pods, args.scraper) if peer
                ],
                # The storage initializer downloads the model (S3 and STS over the internet); nothing else.
                "egress": [policy_rule("to", Allow(INTERNET, HTTPS_PORT)), DNS_RULE],
            },
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.route = args.gateway.route_to(
            ROUTE,
            args.target.name,
            self.predictor_service,
            SERVICE_PORT,
            parent=self,
            labels=labels_for(model.name),
        )
        # KServe's v1 protocol: POST {"instances": [[...features]]}.
        return f"{args.gateway.url(ROUTE)}/v1/models/{model.name}:predict"


def predictor_pod_labels(model_name: str) -> dict[str, str]:
    """The labels KServe gives the predictor pods of InferenceService `model_name`."""
    return {ISVC_LABEL: model_name, COMPONENT_LABEL: "predictor"}


def controller_values() -> dict:
    """Standard mode, no Ingress of KServe's own, small pinned pods meeting `restricted`."""
    return {
        "kserve": {
            "controller": {
                "deploymentMode": DEPLOYMENT_MODE,
                "gateway": {
                    # We route `models.<domain>` ourselves; KServe would make an Ingress for Istio.
                    "disableIngressCreation": True,
                    "ingressGateway": {"enableGatewayApi": False, "createGateway": False},
                },
                "imagePullPolicy": "IfNotPresent",
                "resources": _resources(50, 500, CONTROLLER_MEMORY_MIB),
                "securityContext": restricted.pod(),
                "containerSecurityContext": {**RESTRICTED_CONTAINER, "readOnlyRootFilesystem": True},
                "rbacProxy": {
                    "resources": _resources(10, 100, RBAC_PROXY_MEMORY_MIB),
                    "securityContext": {**RESTRICTED_CONTAINER, "readOnlyRootFilesystem": True},
                },
            },
            # The default ClusterStorageContainer: the init container that downloads each model.
            "storage": {
                "resources": _resources(100, 1000, STORAGE_INITIALIZER_MEMORY_MIB),
                "containerSecurityContext": RESTRICTED_CONTAINER,
            },
        }
    }


def _resources(cpu_millis: int, cpu_limit_millis: int, memory_mib: int) -> dict:
    return restricted.resources(memory_mib, f"{cpu_millis}m", f"{cpu_limit_millis}m")


def _sklearn_runtime() -> dict:
    """KServe's scikit-learn runtime (its chart's ClusterServingRuntime), for one namespace."""
    return {
        "annotations": {"prometheus.kserve.io/port": str(MODEL_PORT), "prometheus.kserve.io/path": "/metrics"},
        "supportedModelFormats": [{"name": MODEL_FORMAT, "version": "1", "autoSelect": True, "priority": 1}],
        "protocolVersions": ["v1", "v2"],
        "containers": [
            {
                "name": "kserve-container",
                "image": RUNTIME_IMAGE,
                "args": ["--model_name={{.Name}}", "--model_dir=/mnt/models", f"--http_port={MODEL_PORT}"],
                "securityContext": RESTRICTED_CONTAINER,
            }
        ],
    }


def _predictor(model: ServedModel) -> dict:
    """One model server: scaled on CPU between the bounds, probed, no API token, restricted pods."""
    return {
        "minReplicas": model.min_replicas,
        "maxReplicas": model.max_replicas,
        "scaleMetric": "cpu",
        "scaleTarget": CPU_TARGET_PERCENT,
        # The IRSA webhook still projects the web identity token the downloader reads.
        **({"serviceAccountName": model.service_account} if model.service_account else {}),
        "automountServiceAccountToken": False,
        "securityContext": restricted.pod(KSERVE_UID),
        "model": {
            "modelFormat": {"name": MODEL_FORMAT},
            "runtime": RUNTIME,
            "storageUri": model.storage_uri,
            "resources": _resources(100, 1000, MODEL_MEMORY_MIB),
            "securityContext": RESTRICTED_CONTAINER,
            # Ready once the model is loaded, not merely started; alive while it listens.
            "readinessProbe": {
                "httpGet": {"path": f"/v1/models/{model.name}", "port": MODEL_PORT},
                "periodSeconds": 10,
                "timeoutSeconds": 3,
            },
            "livenessProbe": {"tcpSocket": {"port": MODEL_PORT}, "periodSeconds": 20, "failureThreshold": 6},
        },
    }
