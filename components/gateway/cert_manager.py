"""cert-manager and the lab's Let's Encrypt ClusterIssuers: certificates for the Gateway's HTTPS listeners.

One pinned Helm release installs cert-manager with its CRDs (kept when the release goes, so
uninstalling never garbage-collects a Certificate) and its Gateway API support on: the
gateway-shim turns the Gateway's `cert-manager.io/cluster-issuer` annotation into a Certificate.
Two ACME ClusterIssuers, Let's Encrypt staging (untrusted, generous rate limits: for trying a
new domain) and production, prove each host over HTTP-01 with an HTTPRoute on the Gateway's
plain-HTTP listener; wildcards would need DNS-01, hence one HTTPS listener per host.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import pulumi
import pulumi_kubernetes as k8s

from components.gateway.traefik_gateway import GATEWAY, HTTP_LISTENER
from components.runtime import restricted
from components.runtime.helm import chart_release
from components.runtime.kubernetes_service import PART_OF, KubernetesTarget

CHART = "oci://quay.io/jetstack/charts/cert-manager"
"""cert-manager's OCI chart registry, which its install docs use since 1.16 (charts.jetstack.io serves the same)."""
CHART_VERSION = "v1.21.3"
NAME = "cert-manager"
ACME_SERVERS = {
    "staging": "https://acme-staging-v02.api.letsencrypt.org/directory",
    "production": "https://acme-v02.api.letsencrypt.org/directory",
}
MEMORY_MIB = {"controller": 128, "webhook": 64, "cainjector": 128, "startupapicheck": 64}
"""Per pod; startupapicheck is a post-install Job that exits once the webhook answers."""
JSON_LOGS = {"format": "json"}
"""Each component's logging block (Kubernetes' LoggingConfiguration), so Loki parses its lines."""
CPU_REQUEST = "20m"
CPU_LIMIT = "500m"
_MAILBOX = re.compile(
    r"[^@\s]+@(?P<domain>([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+(?P<tld>[a-z]{2,63}|xn--[a-z0-9-]{1,59}))",
    re.IGNORECASE,
)
"""A mailbox at a DNS name whose top-level label is a real TLD's shape: letters, or an IDN's xn-- form."""
REFUSED_EMAIL_DOMAINS = ("example.com", "example.net", "example.org")
"""Let's Encrypt refuses to register an account with a contact address at these (RFC 2606)."""


def acme_contact_problem(email: str) -> str | None:
    """Why Let's Encrypt would refuse `email` as an ACME account's contact, or None.

    The one rule the settings check before anything is created; the account is registered much later,
    by cert-manager in the cluster, where a refusal only shows in a ClusterIssuer's status.
    """
    match = _MAILBOX.fullmatch(email)
    if match is None:
        return "is not an e-mail address at a public domain"
    if match["domain"].lower() in REFUSED_EMAIL_DOMAINS:
        return "is at a domain Let's Encrypt refuses"
    return None


@dataclass
class CertManagerArgs:
    target: KubernetesTarget
    email: str
    """Let's Encrypt's contact for the ACME account; see `acme_contact_problem`."""
    gateway_namespace: str
    """Where the lab's Gateway is: the HTTP-01 solver's routes attach to it."""
    gateway_name: str = GATEWAY
    http_listener: str = HTTP_LISTENER
    """The Gateway listener the HTTP-01 solver routes attach to: port 80 from outside."""
    gateway_api_crds: pulumi.Resource | None = None
    """The Gateway API CRDs' resource: cert-manager looks for them once, when it starts."""


class CertManager(pulumi.ComponentResource):
    """The cert-manager release and one ACME ClusterIssuer per Let's Encrypt environment."""

    def __init__(self, name: str, args: CertManagerArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("llm-infra-lab:gateway:CertManager", name, None, opts)
        self.namespace = args.target.name
        self.values = _values()
        self.release = chart_release(
            NAME,
            chart=CHART,
            version=CHART_VERSION,
            namespace=args.target.namespace.metadata.name,
            values=self.values,
            opts=pulumi.ResourceOptions(
                parent=self, depends_on=[args.gateway_api_crds] if args.gateway_api_crds else None
            ),
        )
        self.issuers = {environment: self._issuer(environment, args) for environment in ACME_SERVERS}
        self.register_outputs({"issuers": [self.issuer_name(environment) for environment in ACME_SERVERS]})

    @staticmethod
    def issuer_name(environment: str) -> str:
        """The ClusterIssuer of a Let's Encrypt environment, `staging` or `production`."""
        if environment not in ACME_SERVERS:
            raise ValueError(f"Let's Encrypt environment must be one of {', '.join(ACME_SERVERS)}, got {environment!r}")
        return f"letsencrypt-{environment}"

    def _issuer(self, environment: str, args: CertManagerArgs) -> k8s.apiextensions.CustomResource:
        """After the release: the ClusterIssuer kind is one of the CRDs it installs."""
        name = self.issuer_name(environment)
        solver_parent = {
            "name": args.gateway_name,
            "namespace": args.gateway_namespace,
            "sectionName": args.http_listener,
        }
        return k8s.apiextensions.CustomResource(
            name,
            api_version="cert-manager.io/v1",
            kind="ClusterIssuer",
            metadata={"name": name, "labels": {"app.kubernetes.io/part-of": PART_OF}},
            spec={
                "acme": {
                    "email": args.email,
                    "server": ACME_SERVERS[environment],
                    "privateKeySecretRef": {"name": f"{name}-account-key"},
                    "solvers": [{"http01": {"gatewayHTTPRoute": {"parentRefs": [solver_parent]}}}],
                }
            },
            opts=pulumi.ResourceOptions(parent=self, depends_on=[self.release]),
        )


def _component(memory_mib: int) -> dict:
    """One cert-manager pod: its budget (memory request = limit) and the restricted Pod Security settings.

    The settings are the chart's defaults, stated so a chart upgrade cannot loosen them unseen.
    """
    return {
        "resources": restricted.resources(memory_mib, CPU_REQUEST, CPU_LIMIT),
        "securityContext": restricted.pod(),
        "containerSecurityContext": restricted.CONTAINER,
    }


def _values() -> dict:
    """CRDs installed and kept, Gateway API on, one replica of each pod, no Prometheus Operator objects."""
    return {
        "crds": {"enabled": True, "keep": True},
        "config": {
            "apiVersion": "controller.config.cert-manager.io/v1alpha1",
            "kind": "ControllerConfiguration",
            "logging": JSON_LOGS,
            # 1.21's key (its values.yaml documents it); the older `enableGatewayAPI` is deprecated.
            "gatewayAPI": {"enabled": True},
        },
        # A deleted Certificate leaves its Secret: re-issuing would spend Let's Encrypt's rate limits.
        "enableCertificateOwnerRef": False,
        "prometheus": {"servicemonitor": {"enabled": False}},
        "replicaCount": 1,
        **_component(MEMORY_MIB["controller"]),
        "webhook": {
            "replicaCount": 1,
            "config": {
                "apiVersion": "webhook.config.cert-manager.io/v1alpha1",
                "kind": "WebhookConfiguration",
                "logging": JSON_LOGS,
            },
            **_component(MEMORY_MIB["webhook"]),
        },
        "cainjector": {
            "replicaCount": 1,
            "config": {
                "apiVersion": "cainjector.config.cert-manager.io/v1alpha1",
                "kind": "CAInjectorConfiguration",
                "logging": JSON_LOGS,
            },
            **_component(MEMORY_MIB["cainjector"]),
        },
        "startupapicheck": _component(MEMORY_MIB["startupapicheck"]),
    }
