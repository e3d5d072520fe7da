"""North-south traffic through the Kubernetes Gateway API, implemented by Traefik.

The Gateway API's standard CRDs come from their own pinned release manifest (Traefik's chart
stopped bundling them in 40.2.0), then Traefik's chart installs the controller and its
GatewayClass (ADR 0007). The Gateway itself is ours, not the chart's: its listeners, and
which namespaces may attach routes to it, are part of the lab's design.

With TLS (`GatewayTls`), every routed host gets its own HTTPS listener on Traefik's `websecure`
entry point: Let's Encrypt's HTTP-01 challenge cannot prove a wildcard, so cert-manager's
gateway-shim (annotation `cert-manager.io/cluster-issuer`) issues ONE certificate whose SANs are
the listeners' host names, since they all reference the same Secret. The plain-HTTP listener then
admits only routes from the Gateway's own namespace: a redirect of every host to HTTPS, and the
solver routes cert-manager creates there for `/.well-known/acme-challenge/<token>`. Those win over
the redirect by the Gateway API's route precedence: an exact host name beats a wildcard one, and
an Exact path match beats the redirect's implicit `PathPrefix /`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

import pulumi
import pulumi_kubernetes as k8s

from components.runtime import restricted
from components.runtime.helm import chart_release
from components.runtime.kubernetes_service import NAME_LABEL, PART_OF, KubernetesTarget, Pods, labels_for
from components.runtime.spec import ServiceSpec

CHART = "traefik"
CHART_REPOSITORY = "https://traefik.github.io/charts"
CHART_VERSION = "41.3.0"
"""Traefik v3.7.11; the version whose values and schema the tests check (../shared/charts)."""
GATEWAY_API_VERSION = "v1.5.1"
"""The last CRD set Traefik's chart shipped itself, so the one its controller was tested with."""
GATEWAY_API_CRDS = (
    f"https://github.com/kubernetes-sigs/gateway-api/releases/download/{GATEWAY_API_VERSION}/standard-install.yaml"
)
GATEWAY_CLASS = "traefik"
GATEWAY = "lab"
HTTP_LISTENER = "http"
NAME = "traefik"
WEB_PORT = 8000
"""Traefik's `web` entry point in the pod; a Gateway listener must use an entry point's port."""
SERVICE_PORT = 80
WEBSECURE_PORT = 8443
"""Traefik's `websecure` entry point in the pod: the port of every HTTPS listener."""
HTTPS_SERVICE_PORT = 443
ROUTES_LABEL = "llm-infra-lab/gateway-routes"
"""Namespaces carrying this label may attach HTTPRoutes to the lab's Gateway."""
MEMORY_MIB = 128
GATEWAY_API = "gateway.networking.k8s.io/v1"
HOST_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")


def https_listener(host: str) -> str:
    return f"https-{host}"


@dataclass(frozen=True)
class GatewayTls:
    """HTTPS for a fixed set of hosts, certified by one cert-manager ClusterIssuer."""

    cluster_issuer: str
    hosts: tuple[str, ...]
    """The names `route` will be called with; each gets the listener `https-<name>` for `<name>.<domain>`."""
    secret_name: str = "lab-tls"
    """The Secret every HTTPS listener references, so cert-manager issues one certificate for all hosts."""

    def __post_init__(self):
        if not self.cluster_issuer:
            raise ValueError("GatewayTls needs a cluster_issuer")
        if not self.hosts or len(set(self.hosts)) != len(self.hosts):
            raise ValueError(f"GatewayTls.hosts must be distinct and not empty, got {self.hosts}")
        invalid = [host for host in self.hosts if not HOST_LABEL.match(host)]
        if invalid:
            raise ValueError(f"GatewayTls.hosts must be DNS labels (a host is <name>.<domain>), got {invalid}")


@dataclass(frozen=True)
class LoadBalancer:
    """A cloud load balancer in front of Traefik, made by a controller for a Service of its class.

    The Service is then the gateway's own, not the chart's: Pulumi deletes it before the controller and waits
    until the controller has removed the load balancer (its finalizer), so nothing is left in the VPC.
    """

    class_name: str
    annotations: Mapping[str, pulumi.Input[str]]
    controller: pulumi.Resource
    """What reconciles the class: it must exist before the Service and outlive it."""


@dataclass
class TraefikGatewayArgs:
    target: KubernetesTarget
    domain: str | None
    """Routes are `<name>.<domain>`; None routes every host name (a cloud load balancer's own)."""
    load_balancer: LoadBalancer | None = None
    """None: the chart's ClusterIP Service (minikube, reached with `kubectl port-forward`)."""
    local_port: int | None = None
    """The port people reach it on when that is not 80 (minikube: `kubectl port-forward`'s)."""
    tls: GatewayTls | None = None
    """HTTPS on every routed host and HTTP redirected to it; needs a domain the certificate can name."""


class TraefikGateway(pulumi.ComponentResource):
    """The Traefik release and the lab's Gateway; `route` attaches a Service to it by host name."""

    def __init__(self, name: str, args: TraefikGatewayArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("llm-infra-lab:gateway:TraefikGateway", name, None, opts)
        if args.tls is not None and not args.domain:
            raise ValueError("TLS needs a domain: each host is certified as <name>.<domain>")
        self.domain = args.domain
        self.local_port = args.local_port
        self.tls = args.tls
        self.namespace = args.target.name
        self.pods = Pods(self.namespace, NAME)
        self.values = _values(args)
        self.crds = k8s.yaml.v2.ConfigFile(
            "gateway-api-crds", file=GATEWAY_API_CRDS, opts=pulumi.ResourceOptions(parent=self)
        )
        self.release = chart_release(
            NAME,
            chart=CHART,
            version=CHART_VERSION,
            repository=CHART_REPOSITORY,
            namespace=args.target.namespace.metadata.name,
            values=self.values,
            opts=pulumi.ResourceOptions(parent=self, depends_on=[self.crds]),
        )
        self.service = self._load_balancer_service(args) if args.load_balancer else None
        self.gateway = k8s.apiextensions.CustomResource(
            GATEWAY,
            api_version=GATEWAY_API,
            kind="Gateway",
            metadata={
                "name": GATEWAY,
                "namespace": self.namespace,
                "labels": {"app.kubernetes.io/part-of": PART_OF},
                **({"annotations": {"cert-manager.io/cluster-issuer": args.tls.cluster_issuer}} if args.tls else {}),
            },
            spec={"gatewayClassName": GATEWAY_CLASS, "listeners": _listeners(args)},
            opts=pulumi.ResourceOptions(parent=self, depends_on=[self.release]),
        )
        self.redirect = self._redirect_to_https() if args.tls else None
        self.register_outputs({"gateway": GATEWAY, "domain": args.domain})

    def _load_balancer_service(self, args: TraefikGatewayArgs) -> k8s.core.v1.Service:
        """Traefik's entry points behind the controller's load balancer, selecting the chart's pods."""
        balancer = args.load_balancer
        assert balancer is not None
        ports = [{"name": "web", "port": SERVICE_PORT, "target_port": "web", "protocol": "TCP"}]
        if args.tls:
            ports.append(
                {"name": "websecure", "port": HTTPS_SERVICE_PORT, "target_port": "websecure", "protocol": "TCP"}
            )
        return k8s.core.v1.Service(
            NAME,
            metadata={
                "name": NAME,
                "namespace": self.namespace,
                "labels": labels_for(NAME),
                "annotations": dict(balancer.annotations),
            },
            spec={
                "type": "LoadBalancer",
                "load_balancer_class": balancer.class_name,
                # The chart's selector: its name, and the instance it names `<release>-<namespace>`.
                "selector": {NAME_LABEL: NAME, "app.kubernetes.io/instance": f"{NAME}-{self.namespace}"},
                "ports": ports,
            },
            opts=pulumi.ResourceOptions(parent=self, depends_on=[self.release, balancer.controller]),
        )

    def _redirect_to_https(self) -> k8s.apiextensions.CustomResource:
        """301 from http:// to https:// for every host; no port, so the Location uses 443 (Gateway API spec)."""
        return k8s.apiextensions.CustomResource(
            "https-redirect",
            api_version=GATEWAY_API,
            kind="HTTPRoute",
            metadata={"name": "https-redirect", "namespace": self.namespace, "labels": labels_for(GATEWAY)},
            spec={
                "parentRefs": [self.parent_ref(HTTP_LISTENER)],
                "hostnames": [f"*.{self.domain}"],
                "rules": [
                    {
                        "filters": [
                            {"type": "RequestRedirect", "requestRedirect": {"scheme": "https", "statusCode": 301}}
                        ]
                    }
                ],
            },
            opts=pulumi.ResourceOptions(parent=self, depends_on=[self.gateway]),
        )

    def parent_ref(self, listener: str) -> dict[str, str]:
        """A route's reference to one listener of the lab's Gateway."""
        return {"name": GATEWAY, "namespace": self.namespace, "sectionName": listener}

    def host(self, name: str) -> str:
        return f"{name}.{self.domain}"

    def url(self, name: str) -> str:
        if self.tls:
            return f"https://{self.host(name)}"
        port = f":{self.local_port}" if self.local_port else ""
        return f"http://{self.host(name)}{port}"

    def route(
        self, name: str, spec: ServiceSpec, port_name: str, parent: pulumi.Resource
    ) -> k8s.apiextensions.CustomResource:
        """An HTTPRoute from `<name>.<domain>` to a service's port, owned by the service's component."""
        return self.route_to(name, spec.namespace, spec.name, spec.port(port_name).number, parent)

    def route_to(
        self,
        name: str,
        namespace: str,
        service: str,
        port: int,
        parent: pulumi.Resource,
        *,
        labels: dict[str, str] | None = None,
    ) -> k8s.apiextensions.CustomResource:
        """An HTTPRoute from `<name>.<domain>` to any Service's port (one an operator made, say).

        With TLS it attaches to the host's HTTPS listener, and a name without one is refused:
        an exposed host is never served over plain HTTP.
        """
        return k8s.apiextensions.CustomResource(
            name,
            api_version=GATEWAY_API,
            kind="HTTPRoute",
            metadata={
                "name": name,
                "namespace": namespace,
                "labels": labels_for(service) if labels is None else labels,
            },
            spec={
                "parentRefs": [self.parent_ref(self._listener_for(name))],
                **({"hostnames": [self.host(name)]} if self.domain else {}),
                "rules": [{"backendRefs": [{"name": service, "port": port}]}],
            },
            opts=pulumi.ResourceOptions(parent=parent, depends_on=[self.gateway]),
        )

    def _listener_for(self, name: str) -> str:
        if self.tls is None:
            return HTTP_LISTENER
        if name not in self.tls.hosts:
            raise ValueError(f"{name} has no HTTPS listener; GatewayTls.hosts are {', '.join(self.tls.hosts)}")
        return https_listener(name)

    def load_balancer_url(self) -> pulumi.Output[str]:
        """http://<host> of the load balancer the controller gave Traefik's Service, once it has one."""
        if self.service is None:
            raise ValueError("the gateway has no load balancer: it is reached with kubectl port-forward")
        return self.service.status.apply(lambda status: _load_balancer_url(status, self.namespace))


def _load_balancer_url(status, namespace: str) -> str:
    ingress = (status.load_balancer.ingress or []) if status and status.load_balancer else []
    if not ingress:
        return f"(pending: kubectl -n {namespace} get service {NAME})"
    return f"http://{ingress[0].hostname or ingress[0].ip}"


def _listeners(args: TraefikGatewayArgs) -> list[dict]:
    """The HTTP listener; with TLS, one HTTPS listener per host and HTTP left to redirects and ACME."""
    routed_namespaces = {"namespaces": {"from": "Selector", "selector": {"matchLabels": {ROUTES_LABEL: "true"}}}}
    http = {
        "name": HTTP_LISTENER,
        "protocol": "HTTP",
        "port": WEB_PORT,
        **({"hostname": f"*.{args.domain}"} if args.domain else {}),
        "allowedRoutes": routed_namespaces,
    }
    if args.tls is None:
        return [http]
    https = [
        {
            "name": https_listener(host),
            "protocol": "HTTPS",
            "port": WEBSECURE_PORT,
            "hostname": f"{host}.{args.domain}",
            "tls": {
                "mode": "Terminate",
                "certificateRefs": [{"group": "", "kind": "Secret", "name": args.tls.secret_name}],
            },
            "allowedRoutes": routed_namespaces,
        }
        for host in args.tls.hosts
    ]
    return [{**http, "allowedRoutes": {"namespaces": {"from": "Same"}}}, *https]


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
        # Behind a load balancer the Service is the gateway's own (`LoadBalancer`), not the chart's.
        "service": {"enabled": args.load_balancer is None, "spec": {"type": "ClusterIP"}},
        "ports": {
            "web": {"port": WEB_PORT, "exposedPort": SERVICE_PORT},
            "websecure": (
                {"port": WEBSECURE_PORT, "exposedPort": HTTPS_SERVICE_PORT, "expose": {"default": True}}
                if args.tls
                else {"expose": {"default": False}}
            ),
        },
        # Stated, not inherited from the chart's defaults: the namespace enforces `restricted`.
        "podSecurityContext": restricted.pod(65532),
        "securityContext": restricted.CONTAINER,
        "resources": restricted.resources(MEMORY_MIB, "100m", "1"),
        "log": {"format": "json"},
        "accessLog": {"enabled": True, "format": "json"},
        "global": {"checkNewVersion": False, "sendAnonymousUsage": False},
    }
