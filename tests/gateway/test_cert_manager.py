"""cert-manager: a pinned release that keeps its CRDs, runs within the restricted Pod Security
Standard and a small memory budget, and two Let's Encrypt ClusterIssuers whose HTTP-01 solver
attaches to a listener the lab's Gateway really has."""

from __future__ import annotations

import re

import pytest

from components.gateway.cert_manager import CertManager, acme_contact_problem
from tests.aws.support import AwsRun
from tests.gateway import EMAIL, GATEWAY_NAMESPACE, production_lab
from tests.gateway_api_schema import gateway_api_errors
from tests.k8s_view import manifests, of_kind

RELEASE = "kubernetes:helm.sh/v3:Release"
CLUSTER_ISSUER = "kubernetes:cert-manager.io/v1:ClusterIssuer"
PODS = ("controller", "webhook", "cainjector")
"""The long-running pods; the startupapicheck Job runs once per install."""
ACME_FIELDS = {
    "email", "server", "privateKeySecretRef", "solvers", "skipTLSVerify", "externalAccountBinding",
    "preferredChain", "disableAccountKeyGeneration", "enableDurationFeature", "caBundle", "profile",
}  # fmt: skip
"""`ACMEIssuer` of cert-manager.io/v1 (cert-manager's CRD has no schema in kubernetes-validate)."""
GATEWAY_ROUTE_SOLVER_FIELDS = {"parentRefs", "labels", "serviceType", "podTemplate"}


@pytest.fixture(scope="module")
def lab() -> AwsRun:
    return production_lab()


@pytest.fixture(scope="module")
def values(lab) -> dict:
    return lab.named(RELEASE, "cert-manager")["values"]


def pod_values(values: dict, pod: str) -> dict:
    """The chart keeps the controller's settings at the top level, the other pods' under their name."""
    return values if pod == "controller" else values[pod]


def issuers(lab: AwsRun) -> dict[str, dict]:
    return {o["metadata"]["name"]: o for o in of_kind(manifests(lab.run), "ClusterIssuer")}


def test_the_release_is_the_pinned_jetstack_chart_in_its_namespace(lab):
    release = lab.named(RELEASE, "cert-manager")
    assert release["chart"] == "oci://quay.io/jetstack/charts/cert-manager"
    assert re.fullmatch(r"v\d+\.\d+\.\d+", release["version"]), "a pinned release, never a range or latest"
    # Which version: tests/test_helm_values.py ties the pin to the chart data its values are checked against.
    assert release["namespace"] == "cert-manager"
    assert release["atomic"] is True


def test_crds_come_with_the_chart_and_outlive_it(values):
    """`keep` puts helm.sh/resource-policy: keep on the CRDs: uninstalling never deletes a Certificate."""
    assert values["crds"] == {"enabled": True, "keep": True}
    assert "installCRDs" not in values


def test_gateway_api_support_is_on_and_starts_after_the_gateway_api_crds(lab, values):
    config = values["config"]
    assert (config["apiVersion"], config["kind"]) == (
        "controller.config.cert-manager.io/v1alpha1",
        "ControllerConfiguration",
    )
    assert config["gatewayAPI"] == {"enabled": True} and "enableGatewayAPI" not in config, "1.21's key"
    release = lab.named(RELEASE, "cert-manager")
    crds = lab.named("kubernetes:yaml/v2:ConfigFile", "gateway-api-crds")
    assert lab.depends_on(release, crds), "cert-manager checks for the Gateway API CRDs when it starts"


@pytest.mark.parametrize("pod", [*PODS, "startupapicheck"])
def test_every_pod_meets_the_restricted_pod_security_standard(values, pod):
    settings = pod_values(values, pod)
    assert settings["securityContext"] == {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}}
    container = settings["containerSecurityContext"]
    assert container["allowPrivilegeEscalation"] is False
    assert container["capabilities"] == {"drop": ["ALL"]}
    assert container["readOnlyRootFilesystem"] is True


@pytest.mark.parametrize("pod", [*PODS, "startupapicheck"])
def test_every_pod_has_a_memory_limit_equal_to_its_request_and_a_cpu_request(values, pod):
    resources = pod_values(values, pod)["resources"]
    assert resources["requests"]["memory"] == resources["limits"]["memory"]
    assert re.fullmatch(r"\d+m", resources["requests"]["cpu"])


def test_one_replica_of_each_pod_within_a_third_of_a_gibibyte_and_no_prometheus_operator_objects(values):
    assert [pod_values(values, pod)["replicaCount"] for pod in PODS] == [1, 1, 1]
    memory = sum(int(pod_values(values, pod)["resources"]["limits"]["memory"].removesuffix("Mi")) for pod in PODS)
    assert memory == 320
    assert values["prometheus"]["servicemonitor"]["enabled"] is False
    assert values["enableCertificateOwnerRef"] is False, "a deleted Certificate must not take its Secret"


def test_a_staging_and_a_production_issuer_for_the_configured_contact(lab):
    found = issuers(lab)
    assert set(found) == {"letsencrypt-staging", "letsencrypt-production"}
    servers = {name: issuer["spec"]["acme"]["server"] for name, issuer in found.items()}
    assert servers == {
        "letsencrypt-staging": "https://acme-staging-v02.api.letsencrypt.org/directory",
        "letsencrypt-production": "https://acme-v02.api.letsencrypt.org/directory",
    }
    assert {issuer["spec"]["acme"]["email"] for issuer in found.values()} == {EMAIL}
    keys = [issuer["spec"]["acme"]["privateKeySecretRef"]["name"] for issuer in found.values()]
    assert len(set(keys)) == 2, "each ACME account has its own key"
    assert CertManager.issuer_name("production") == "letsencrypt-production"


def test_issuers_are_created_once_the_release_has_installed_their_crd(lab):
    release = lab.named(RELEASE, "cert-manager")
    assert all(lab.depends_on(issuer, release) for issuer in lab.of_type(CLUSTER_ISSUER))


def test_the_http01_solver_attaches_to_the_gateways_plain_http_listener(lab):
    """Let's Encrypt asks on port 80: the solver's route must hang off a real HTTP listener admitting it."""
    (gateway,) = of_kind(manifests(lab.run), "Gateway")
    listeners = {listener["name"]: listener for listener in gateway["spec"]["listeners"]}
    for issuer in issuers(lab).values():
        (solver,) = issuer["spec"]["acme"]["solvers"]
        (parent,) = solver["http01"]["gatewayHTTPRoute"]["parentRefs"]
        assert (parent["name"], parent["namespace"]) == (gateway["metadata"]["name"], gateway["metadata"]["namespace"])
        listener = listeners[parent["sectionName"]]
        assert listener["protocol"] == "HTTP"
        # cert-manager creates the solver route in the Certificate's namespace: the Gateway's.
        assert listener["allowedRoutes"]["namespaces"]["from"] == "Same"
        assert gateway["metadata"]["namespace"] == GATEWAY_NAMESPACE


def test_issuers_have_the_cert_manager_v1_structure(lab):
    """No CRD schema is vendored for cert-manager: known fields only, and the solver's parentRefs
    checked against the Gateway API's own ParentReference schema."""
    for issuer in issuers(lab).values():
        assert issuer["apiVersion"] == "cert-manager.io/v1"
        assert set(issuer["metadata"]) == {"name", "labels"}, "ClusterIssuers are cluster-scoped"
        acme = issuer["spec"]["acme"]
        assert set(issuer["spec"]) == {"acme"}
        assert set(acme) <= ACME_FIELDS and {"server", "privateKeySecretRef"} <= set(acme)
        for solver in acme["solvers"]:
            assert set(solver) == {"http01"}
            route_solver = solver["http01"]["gatewayHTTPRoute"]
            assert set(route_solver) <= GATEWAY_ROUTE_SOLVER_FIELDS
            as_route = {
                "apiVersion": "gateway.networking.k8s.io/v1",
                "kind": "HTTPRoute",
                "metadata": {"name": "solver", "namespace": GATEWAY_NAMESPACE},
                "spec": {"parentRefs": route_solver["parentRefs"]},
            }
            assert gateway_api_errors(as_route) == []


@pytest.mark.parametrize(
    ("email", "problem"),
    [
        ("platform-team", "is not an e-mail address"),
        ("ops@localhost", "is not an e-mail address"),
        ("ops@lab.dev1", "is not an e-mail address"),
        ("ops@-lab.dev", "is not an e-mail address"),
        ("ops@example.com", "is at a domain Let's Encrypt refuses"),
        ("Ops@Example.ORG", "is at a domain Let's Encrypt refuses"),
        ("ops@llm-infra-lab.dev", None),
        ("first.last+lab@mail.example.co.uk", None),
        ("ops@xn--bcher-kva.example", None),
    ],
)
def test_the_one_rule_for_an_acme_contact(email, problem):
    found = acme_contact_problem(email)
    assert (found is None) if problem is None else (problem in found)


def test_only_the_two_let_s_encrypt_environments_have_issuers():
    with pytest.raises(ValueError, match="must be one of staging, production"):
        CertManager.issuer_name("dev")
