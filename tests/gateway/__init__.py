"""The lab's gateway with TLS as the production phase composes it, evaluated under mocks.

Every host of the phase is routed: four Services described by a ServiceSpec through `route`, and
a model server whose Service an operator makes through `route_to`.
"""

from __future__ import annotations

from collections.abc import Callable

import pulumi

from components.gateway.cert_manager import CertManager, CertManagerArgs
from components.gateway.traefik_gateway import (
    ROUTES_LABEL,
    GatewayTls,
    LoadBalancer,
    TraefikGateway,
    TraefikGatewayArgs,
)
from components.runtime.kubernetes_service import namespace
from components.runtime.spec import HealthCheck, Image, Port, ServiceSpec
from tests.aws.support import AwsRun, run_aws

DOMAIN = "lab.example.com"
HOSTS = ("mlflow", "grafana", "prompt-reviewer", "code-critic", "models")
EMAIL = "platform-team@llm-lab.dev"
GATEWAY_NAMESPACE = "gateway-system"
MODEL_SERVICE = ("serving", "models-predictor", 80)
"""Namespace, name and port of the Service KServe makes for the model server."""


def spec(name: str, port: int, namespace_: str) -> ServiceSpec:
    return ServiceSpec(
        name=name,
        image=Image(f"example/{name}", "1.0.0"),
        ports=(Port("http", port),),
        memory_mib=64,
        health=HealthCheck(port="http", path="/", command=None),
        namespace=namespace_,
    )


ROUTED_SPECS = (
    spec("mlflow", 5000, "mlops-system"),
    spec("grafana", 3000, "observability"),
    spec("prompt-reviewer", 8080, "agents"),
    spec("code-critic", 8080, "agents"),
)


def tls_gateway(**changes) -> TraefikGateway:
    target = namespace(GATEWAY_NAMESPACE, False, pulumi.ResourceOptions())
    fields = {
        "target": target,
        "domain": DOMAIN,
        "load_balancer": LoadBalancer(
            class_name="service.k8s.aws/nlb",
            annotations={},
            controller=pulumi.ComponentResource("tests:index:LoadBalancerController", "controller"),
        ),
        "tls": GatewayTls(cluster_issuer=CertManager.issuer_name("production"), hosts=HOSTS),
    }
    return TraefikGateway("gateway", TraefikGatewayArgs(**{**fields, **changes}))


def production_lab(extra: Callable[[TraefikGateway], object] | None = None) -> AwsRun:
    """The gateway with TLS, cert-manager and every host routed; `extra` runs against the gateway last."""

    def program():
        for space in ("mlops-system", "observability", "agents", "serving"):
            namespace(space, False, pulumi.ResourceOptions(), **{ROUTES_LABEL: "true"})
        gateway = tls_gateway()
        CertManager(
            "cert-manager",
            CertManagerArgs(
                target=namespace("cert-manager", False, pulumi.ResourceOptions()),
                email=EMAIL,
                gateway_namespace=GATEWAY_NAMESPACE,
                gateway_api_crds=gateway.crds,
            ),
        )
        for service in ROUTED_SPECS:
            gateway.route(service.name, service, "http", parent=gateway)
        space, service, port = MODEL_SERVICE
        gateway.route_to("models", space, service, port, parent=gateway, labels={"app.kubernetes.io/name": "models"})
        pulumi.export("urls", {host: gateway.url(host) for host in HOSTS})
        if extra is not None:
            extra(gateway)

    return run_aws(program)
