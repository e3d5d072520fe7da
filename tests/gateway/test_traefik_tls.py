"""TLS on every exposed host: each routed host has its own HTTPS listener on Traefik's exposed
`websecure` entry point with one cert-manager certificate, plain HTTP only redirects (and lets
Let's Encrypt's HTTP-01 challenges through), and without TLS the gateway is exactly what the
platform and kubernetes phases already run."""

from __future__ import annotations

import pulumi
import pytest

from components.gateway.cert_manager import CertManager
from components.gateway.traefik_gateway import GatewayTls, TraefikGateway, TraefikGatewayArgs
from components.runtime.kubernetes_service import namespace
from tests.aws.support import AwsRun, run_aws
from tests.gateway import DOMAIN, GATEWAY_NAMESPACE, HOSTS, MODEL_SERVICE, production_lab, spec, tls_gateway
from tests.gateway_api_schema import SUPPORTED, gateway_api_errors
from tests.k8s_view import manifests, of_kind, schema_errors

TRAEFIK = "kubernetes:helm.sh/v3:Release"
REDIRECT = "https-redirect"
TOKEN = "m3k9-token"
CHALLENGE = f"/.well-known/acme-challenge/{TOKEN}"
TODAY_ROUTE_SELECTOR = {
    "namespaces": {"from": "Selector", "selector": {"matchLabels": {"llm-infra-lab/gateway-routes": "true"}}}
}


@pytest.fixture(scope="module")
def lab() -> AwsRun:
    return production_lab()


@pytest.fixture(scope="module")
def objects(lab) -> list[dict]:
    return manifests(lab.run)


def the_gateway(objects: list[dict]) -> dict:
    (gateway,) = of_kind(objects, "Gateway")
    return gateway


def listeners(objects: list[dict]) -> dict[str, dict]:
    return {listener["name"]: listener for listener in the_gateway(objects)["spec"]["listeners"]}


def routes(objects: list[dict]) -> dict[str, dict]:
    return {route["metadata"]["name"]: route for route in of_kind(objects, "HTTPRoute")}


def host_matches(pattern: str, host: str) -> bool:
    """Gateway API hostname matching: `*.d` matches one or more labels in front of `d`."""
    if pattern.startswith("*."):
        return host.endswith(pattern[1:]) and host != pattern[2:]
    return pattern == host


def path_matches(match: dict, path: str) -> bool:
    kind, value = match.get("path", {}).get("type", "PathPrefix"), match.get("path", {}).get("value", "/")
    if kind == "Exact":
        return path == value
    return value in {"/", path} or path.startswith(value.rstrip("/") + "/")


def winner(candidates: list[dict], host: str, path: str) -> str:
    """The route a conformant implementation serves (host, path) from, by the Gateway API's precedence:
    most characters in a matching exact host name, then in any matching host name, then an Exact path
    over a prefix, then the longest prefix."""
    ranked = []
    for route in candidates:
        hosts = [pattern for pattern in route["spec"]["hostnames"] if host_matches(pattern, host)]
        for rule in route["spec"]["rules"]:
            for match in rule.get("matches", [{}]):
                if hosts and path_matches(match, path):
                    exact_host = max((len(p) for p in hosts if not p.startswith("*")), default=0)
                    path_rule = match.get("path", {})
                    is_exact = path_rule.get("type") == "Exact"
                    ranked.append(
                        ((exact_host, max(map(len, hosts)), is_exact, len(path_rule.get("value", "/"))), route)
                    )
    assert ranked, f"nothing serves {host}{path}"
    return max(ranked, key=lambda entry: entry[0])[1]["metadata"]["name"]


def test_every_exposed_host_is_served_over_tls(objects):
    """Each application route hangs off an HTTPS listener for exactly its host, terminating TLS."""
    found = listeners(objects)
    exposed = {name: route for name, route in routes(objects).items() if name != REDIRECT}
    assert {host for route in exposed.values() for host in route["spec"]["hostnames"]} == {
        f"{host}.{DOMAIN}" for host in HOSTS
    }
    for route in exposed.values():
        (parent,) = route["spec"]["parentRefs"]
        assert (parent["name"], parent["namespace"]) == ("lab", GATEWAY_NAMESPACE)
        listener = found[parent["sectionName"]]
        assert listener["protocol"] == "HTTPS"
        assert route["spec"]["hostnames"] == [listener["hostname"]]
        assert listener["tls"]["mode"] == "Terminate"
        assert listener["tls"]["certificateRefs"] == [{"group": "", "kind": "Secret", "name": "lab-tls"}]


def test_cert_manager_issues_one_certificate_naming_every_host(lab, objects):
    """The gateway-shim makes one Certificate per Secret with the hostnames of the listeners using it
    (cert-manager docs, "Two listeners with the same Secret name"): every host, none a wildcard,
    which HTTP-01 could not prove."""
    gateway = the_gateway(objects)
    issuer = gateway["metadata"]["annotations"]["cert-manager.io/cluster-issuer"]
    assert issuer == CertManager.issuer_name("production")
    assert issuer in {o["metadata"]["name"] for o in of_kind(objects, "ClusterIssuer")}
    certificates: dict[str, set[str]] = {}
    for listener in listeners(objects).values():
        for ref in listener.get("tls", {}).get("certificateRefs", []):
            assert "namespace" not in ref, "the shim only writes Secrets in the Gateway's namespace"
            certificates.setdefault(ref["name"], set()).add(listener["hostname"])
    assert certificates == {"lab-tls": {f"{host}.{DOMAIN}" for host in HOSTS}}


def test_https_listeners_use_traefiks_websecure_entry_point_exposed_on_443(lab, objects):
    ports = lab.named(TRAEFIK, "traefik")["values"]["ports"]
    assert ports["websecure"] == {"port": 8443, "exposedPort": 443, "expose": {"default": True}}
    assert ports["web"] == {"port": 8000, "exposedPort": 80}, "port 80 stays open for redirects and HTTP-01"
    by_protocol = {(listener["protocol"], listener["port"]) for listener in listeners(objects).values()}
    assert by_protocol == {("HTTP", ports["web"]["port"]), ("HTTPS", ports["websecure"]["port"])}


def test_plain_http_only_redirects_every_host_to_https(objects):
    http = listeners(objects)["http"]
    assert http["hostname"] == f"*.{DOMAIN}"
    assert http["allowedRoutes"] == {"namespaces": {"from": "Same"}}, "no application route can attach to it"
    on_http = [r for r in routes(objects).values() if any(p["sectionName"] == "http" for p in r["spec"]["parentRefs"])]
    assert [r["metadata"]["name"] for r in on_http] == [REDIRECT]
    (redirect,) = on_http
    assert redirect["metadata"]["namespace"] == GATEWAY_NAMESPACE
    assert redirect["spec"]["hostnames"] == [f"*.{DOMAIN}"]
    (rule,) = redirect["spec"]["rules"]
    assert "backendRefs" not in rule and "matches" not in rule
    # No port: with scheme https the Location gets 443, and leaves it out (Gateway API HTTPRequestRedirectFilter).
    assert rule["filters"] == [{"type": "RequestRedirect", "requestRedirect": {"scheme": "https", "statusCode": 301}}]


def test_let_s_encrypt_reaches_the_challenge_and_everything_else_is_redirected(objects):
    """cert-manager's solver route (as `generateHTTPRouteSpec` builds it) beats the redirect: exact host, Exact path."""
    (issuer, *_) = of_kind(objects, "ClusterIssuer")
    parent_refs = issuer["spec"]["acme"]["solvers"][0]["http01"]["gatewayHTTPRoute"]["parentRefs"]
    redirect = routes(objects)[REDIRECT]
    for host in HOSTS:
        solver = {
            "metadata": {"name": f"cm-acme-http-solver-{host}", "namespace": GATEWAY_NAMESPACE},
            "spec": {
                "parentRefs": parent_refs,
                "hostnames": [f"{host}.{DOMAIN}"],
                "rules": [{"matches": [{"path": {"type": "Exact", "value": CHALLENGE}}]}],
            },
        }
        assert host_matches(listeners(objects)["http"]["hostname"], f"{host}.{DOMAIN}")
        on_http = [redirect, solver]
        assert winner(on_http, f"{host}.{DOMAIN}", CHALLENGE) == solver["metadata"]["name"]
        assert winner(on_http, f"{host}.{DOMAIN}", "/") == REDIRECT
        assert winner(on_http, f"{host}.{DOMAIN}", "/.well-known/acme-challenge/another") == REDIRECT


def test_gateway_api_objects_are_valid_against_their_schemas(objects):
    checked = [o for o in objects if (o["apiVersion"], o["kind"]) in SUPPORTED]
    assert len(checked) == 1 + len(HOSTS) + 1, "the Gateway, one route per host and the redirect"
    assert {o["metadata"]["name"]: gateway_api_errors(o) for o in checked} == {
        o["metadata"]["name"]: [] for o in checked
    }
    errors = schema_errors(objects)
    assert {k.split("/")[0] for k, v in errors.items()} <= {"Gateway", "HTTPRoute", "ClusterIssuer"}
    assert set(errors.values()) == {"no schema"}


def test_urls_are_https_without_a_port(lab):
    assert lab.run.outputs["urls"] == {host: f"https://{host}.{DOMAIN}" for host in HOSTS}


def test_route_to_reaches_a_service_an_operator_made(objects):
    space, service, port = MODEL_SERVICE
    models = routes(objects)["models"]
    assert models["metadata"]["namespace"] == space
    assert models["metadata"]["labels"] == {"app.kubernetes.io/name": "models"}
    assert models["spec"]["rules"] == [{"backendRefs": [{"name": service, "port": port}]}]
    assert models["spec"]["parentRefs"][0]["sectionName"] == "https-models"


@pytest.mark.parametrize(
    "expose",
    [
        lambda gateway: gateway.route_to("minio", "mlops-system", "minio", 9000, parent=gateway),
        lambda gateway: gateway.route("minio", spec("minio", 9000, "mlops-system"), "http", parent=gateway),
    ],
    ids=["route_to", "route"],
)
def test_a_host_without_an_https_listener_is_refused(expose):
    with pytest.raises(ValueError, match="minio has no HTTPS listener"):
        production_lab(extra=expose)


def test_tls_needs_a_domain_to_name_in_the_certificate():
    with pytest.raises(ValueError, match="TLS needs a domain"):
        run_aws(lambda: tls_gateway(domain=None))


@pytest.mark.parametrize(
    ("hosts", "message"),
    [((), "distinct and not empty"), (("mlflow", "mlflow"), "distinct"), (("mlflow.lab",), "DNS labels")],
)
def test_hosts_are_distinct_dns_labels(hosts, message):
    with pytest.raises(ValueError, match=message):
        GatewayTls(cluster_issuer="letsencrypt-staging", hosts=hosts)


@pytest.mark.parametrize(
    ("domain", "listener_host", "route_hosts", "url"),
    [
        (None, {}, {}, None),
        ("lab.localhost", {"hostname": "*.lab.localhost"}, {"hostnames": ["mlflow.lab.localhost"]}, "http://mlflow.lab.localhost:8080"),
    ],
    ids=["platform", "kubernetes"],
)  # fmt: skip
def test_without_tls_the_gateway_is_registered_as_the_earlier_phases_have_it(domain, listener_host, route_hosts, url):
    """The manifests the platform (no domain) and kubernetes (domain, port-forward) phases register today."""

    def program():
        target = namespace(GATEWAY_NAMESPACE, False, pulumi.ResourceOptions())
        gateway = TraefikGateway("gateway", TraefikGatewayArgs(target=target, domain=domain, local_port=8080))
        gateway.route("mlflow", spec("mlflow", 5000, "mlops-system"), "http", parent=gateway)
        pulumi.export("url", gateway.url("mlflow") if domain else None)

    run = run_aws(program)
    registered = {(r.type, r.name) for r in run.resources if r.type.startswith("kubernetes:")}
    assert registered == {
        ("kubernetes:core/v1:Namespace", GATEWAY_NAMESPACE),
        ("kubernetes:yaml/v2:ConfigFile", "gateway-api-crds"),
        (TRAEFIK, "traefik"),
        ("kubernetes:gateway.networking.k8s.io/v1:Gateway", "lab"),
        ("kubernetes:gateway.networking.k8s.io/v1:HTTPRoute", "mlflow"),
    }
    objects = manifests(run.run)
    assert the_gateway(objects) == {
        "apiVersion": "gateway.networking.k8s.io/v1",
        "kind": "Gateway",
        "metadata": {
            "name": "lab",
            "namespace": GATEWAY_NAMESPACE,
            "labels": {"app.kubernetes.io/part-of": "llm-infra-lab"},
        },
        "spec": {
            "gatewayClassName": "traefik",
            "listeners": [
                {
                    "name": "http",
                    "protocol": "HTTP",
                    "port": 8000,
                    **listener_host,
                    "allowedRoutes": TODAY_ROUTE_SELECTOR,
                }
            ],
        },
    }
    assert routes(objects) == {
        "mlflow": {
            "apiVersion": "gateway.networking.k8s.io/v1",
            "kind": "HTTPRoute",
            "metadata": {
                "name": "mlflow",
                "namespace": "mlops-system",
                "labels": {
                    "app.kubernetes.io/name": "mlflow",
                    "app.kubernetes.io/part-of": "llm-infra-lab",
                    "app.kubernetes.io/managed-by": "pulumi",
                },
            },
            "spec": {
                "parentRefs": [{"name": "lab", "namespace": GATEWAY_NAMESPACE, "sectionName": "http"}],
                **route_hosts,
                "rules": [{"backendRefs": [{"name": "mlflow", "port": 5000}]}],
            },
        }
    }
    assert run.named(TRAEFIK, "traefik")["values"]["ports"] == {
        "web": {"port": 8000, "exposedPort": 80},
        "websecure": {"expose": {"default": False}},
    }
    assert run.run.outputs["url"] == url
