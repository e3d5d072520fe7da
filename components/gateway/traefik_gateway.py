"""North-south traffic through the Kubernetes Gateway API, implemented by Traefik.

The Gateway API's standard CRDs come from their own pinned release manifest (Traefik's chart
stopped bundling them in 40.2.0), then Traefik's chart installs the controller and its
GatewayClass (ADR 0007). The Gateway itself is ours, not the chart's: its listeners, and
which namespaces may attach routes to it, are part of the lab's design, and a later phase
adds TLS listeners to it without touching the release.
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_kubernetes as k8s

from components.workloads.kubernetes_service import PART_OF, KubernetesTarget, Pods, labels_for
from components.workloads.spec import ServiceSpec

CHART = "traefik"
CHART_REPOSITORY = "https://traefik.github.io/charts"
CHART_VERSION = "41.5.0"
"""Traefik v3.7."""
GATEWAY_API_VERSION = "v1.5.1"
"""The last CRD set Traefik's chart shipped itself, so the one its controller was tested with."""
GATEWAY_API_CRDS = (
    f"https://github.com/kubernetes-sigs/gateway-api/releases/download/{GATEWAY_API_VERSION}/standard-install.yaml"
)
GATEWAY_CLASS = "traefik"
NAME = "traefik"
WEB_PORT = 8000
"""Traefik's `web` entry point in the pod; a Gateway listener must use an entry point's port."""
SERVICE_PORT = 80
ROUTES_LABEL = "llm-infra-lab/gateway-routes"
"""Namespaces carrying this label may attach HTTPRoutes to the lab's Gateway."""
MEMORY_MIB = 128


@dataclass
class TraefikGatewayArgs:
    target: KubernetesTarget
    domain: str | None
    """Routes are `<name>.<domain>`; None routes every host name (a cloud load balancer's own)."""
    service_type: str = "ClusterIP"
    """ClusterIP on minikube (reached with `kubectl port-forward`); LoadBalancer on a cloud."""
    service_annotations: dict[str, str] | None = None
    local_port: int | None = None
    """The port people reach it on when that is not 80 (minikube: `kubectl port-forward`'s)."""


class TraefikGateway(pulumi.ComponentResource):
    """The Traefik release and the lab's Gateway; `route` attaches a Service to it by host name."""

    def __init__(self, name: str, args: TraefikGatewayArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("llm-infra-lab:gateway:TraefikGateway", name, None, opts)
        self.domain = args.domain
        self.local_port = args.local_port
        self.namespace = args.target.name
        self.pods = Pods(self.namespace, NAME)
        self.values = _values(args)
        self.crds = k8s.yaml.v2.ConfigFile(
            "gateway-api-crds", file=GATEWAY_API_CRDS, opts=pulumi.ResourceOptions(parent=self)
        )
        self.release = k8s.helm.v3.Release(
            NAME,
            name=NAME,
            chart=CHART,
            version=CHART_VERSION,
            repository_opts={"repo": CHART_REPOSITORY},
            namespace=args.target.namespace.metadata.name,
            values=self.values,
            atomic=True,
            cleanup_on_fail=True,
            timeout=600,
            opts=pulumi.ResourceOptions(parent=self, depends_on=[self.crds]),
        )
        self.gateway = k8s.apiextensions.CustomResource(
            "lab",
            api_version="gateway.networking.k8s.io/v1",
            kind="Gateway",
            metadata={"name": "lab", "namespace": self.namespace, "labels": {"app.kubernetes.io/part-of": PART_OF}},
            spec={
                "gatewayClassName": GATEWAY_CLASS,
                "listeners": [
                    {
                        "name": "http",
                        "protocol": "HTTP",
                        "port": WEB_PORT,
                        **({"hostname": f"*.{args.domain}"} if args.domain else {}),
                        "allowedRoutes": {
                            "namespaces": {"from": "Selector", "selector": {"matchLabels": {ROUTES_LABEL: "true"}}}
                        },
                    }
                ],
            },
            opts=pulumi.ResourceOptions(parent=self, depends_on=[self.release]),
        )
        self.register_outputs({"gateway": "lab", "domain": args.domain})

    def host(self, name: str) -> str:
        return f"{name}.{self.domain}"

    def url(self, name: str) -> str:
        port = f":{self.local_port}" if self.local_port else ""
        return f"http://{self.host(name)}{port}"

    def route(
        self, name: str, spec: ServiceSpec, port_name: str, parent: pulumi.Resource
    ) -> k8s.apiextensions.CustomResource:
        """An HTTPRoute from `<name>.<domain>` to a service's port, owned by the service's component."""
        return k8s.apiextensions.CustomResource(
            name,
            api_version="gateway.networking.k8s.io/v1",
            kind="HTTPRoute",
            metadata={"name": name, "namespace": spec.namespace, "labels": labels_for(spec.name)},
            spec={
                "parentRefs": [{"name": "lab", "namespace": self.namespace, "sectionName": "http"}],
                **({"hostnames": [self.host(name)]} if self.domain else {}),
                "rules": [{"backendRefs": [{"name": spec.name, "port": spec.port(port_name).number}]}],
            },
            opts=pulumi.ResourceOptions(parent=parent, depends_on=[self.gateway]),
        )

    def load_balancer_url(self) -> pulumi.Output[str]:
        """http://<host> of the load balancer the cloud gave Traefik's Service, once it has one."""
        service = k8s.core.v1.Service.get(
            "traefik-service",
            f"{self.namespace}/{NAME}",
            opts=pulumi.ResourceOptions(parent=self, depends_on=[self.release]),
        )
        return service.status.apply(lambda status: _load_balancer_url(status, self.namespace))


def _load_balancer_url(status, namespace: str) -> str:
    ingress = (status.load_balancer.ingress or []) if status and status.load_balancer else []
    if not ingress:
        return f"(pending: kubectl -n {namespace} get service {NAME})"
    return f"http://{ingress[0].hostname or ingress[0].ip}"


def _values(args: TraefikGatewayArgs) -> dict:
    """Gateway API only (no Ingress, no Traefik CRDs), our own Gateway, a small footprint."""
    return {
        "providers": {
            "kubernetesGateway": {"enabled": True},
            "kubernetesIngress": {"enabled": False},
            "kubernetesCRD": {"enabled": False},
        },
        "gatewayClass": {"enabled": True, "name": GATEWAY_CLASS},
        "gateway": {"enabled": False},
        "ingressClass": {"enabled": False},
        "ingressRoute": {"dashboard": {"enabled": False}},
        "service": {"type": args.service_type, "annotations": args.service_annotations or {}},
        "ports": {"web": {"port": WEB_PORT, "exposedPort": SERVICE_PORT}, "websecure": {"expose": {"default": False}}},
        # Stated, not inherited from the chart's defaults: the namespace enforces `restricted`.
        "podSecurityContext": {
            "runAsNonRoot": True,
            "runAsUser": 65532,
            "runAsGroup": 65532,
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "securityContext": {
            "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": True,
            "capabilities": {"drop": ["ALL"]},
        },
        "resources": {
            "requests": {"cpu": "100m", "memory": f"{MEMORY_MIB}Mi"},
            "limits": {"cpu": "1", "memory": f"{MEMORY_MIB}Mi"},
        },
        "logs": {"general": {"format": "json"}, "access": {"enabled": True, "format": "json"}},
        "globalArguments": ["--global.checknewversion=false", "--global.sendanonymoususage=false"],
    }
