"""Phase `kubernetes` (stack local): what minikube receives, checked as the manifests it is.

The Kubernetes objects of the mocked run are validated against the Kubernetes schemas
(strict) and scanned by checkov; then the wiring is checked as a graph: every Service selects
pods that exist, every probe and route points at a port a container declares, and the
NetworkPolicies admit exactly the connections the services are configured to make.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable

import pytest
import yaml

from components.gateway import traefik_gateway
from components.runtime.kubernetes_service import NAME_LABEL
from stacks.catalog import MINIKUBE, phase_named
from tests import alloy_view
from tests.conftest import evaluate
from tests.gateway_api_schema import BUNDLE_VERSION, SUPPORTED, gateway_api_errors
from tests.harness import REPO, ProgramRun
from tests.k8s_view import containers, key, manifests, of_kind, schema_errors, workloads

SYSTEM_RESERVE_MIB = 1024
"""kube-system (API server, etcd, scheduler, CoreDNS, Calico) on a default minikube."""
SYSTEM_CPU_MILLIS = 1000
"""What minikube's own pods request: kube-apiserver 250m, kube-controller-manager 200m, kube-scheduler 100m,
etcd 100m (kubeadm's static pods), CoreDNS 100m, calico-node 250m (minikube's Calico manifest)."""
CHECKOV_SKIPS = {"CKV_K8S_43", "CKV_K8S_15", "CKV_K8S_35", "CKV_K8S_40", "CKV_K8S_38"}
GATEWAY_POD = {"namespace": "gateway-system", "labels": {NAME_LABEL: traefik_gateway.NAME}}
EXTERNAL = "external"


@pytest.fixture(scope="module")
def run() -> ProgramRun:
    return evaluate("local", phase="kubernetes")


@pytest.fixture(scope="module")
def objects(run) -> list[dict]:
    return manifests(run)


def by_name(objects: Iterable[dict], kind: str) -> dict[str, dict]:
    return {o["metadata"]["name"]: o for o in of_kind(objects, kind)}


def pod_labels(workload: dict) -> dict:
    return workload["spec"]["template"]["metadata"]["labels"]


def container(workload: dict) -> dict:
    return workload["spec"]["template"]["spec"]["containers"][0]


def test_the_phase_runs_the_agents_qdrant_mlflow_minio_and_alloy_in_their_namespaces(objects):
    placed = {(w["metadata"]["namespace"], w["metadata"]["name"], w["kind"]) for w in workloads(objects)}
    assert placed == {
        ("agents", "qdrant", "StatefulSet"),
        ("agents", "prompt-reviewer", "Deployment"),
        ("agents", "code-critic", "Deployment"),
        ("agents", "learning-cycle", "Deployment"),
        ("agents", "traffic", "Deployment"),
        ("mlops-system", "minio", "StatefulSet"),
        ("mlops-system", "mlflow", "StatefulSet"),
        ("observability", "alloy", "Deployment"),
    }
    assert set(by_name(objects, "Namespace")) == {"agents", "mlops-system", "observability", "gateway-system"}


def test_every_object_is_valid_against_the_kubernetes_schemas(objects):
    errors = schema_errors(objects)
    custom = {k: v for k, v in errors.items() if v == "no schema"}
    assert {k.split("/")[0] for k in custom} <= {kind for _, kind in SUPPORTED}, custom
    invalid = {k: v for k, v in errors.items() if v != "no schema"}
    assert not invalid


def test_gateway_api_objects_are_valid_against_the_gateway_api_schemas(objects):
    """Schemas of Gateway API v1.4.1 (vendored); the cluster gets v1.5.1, a superset for these kinds."""
    assert BUNDLE_VERSION == "v1.4.1"
    gateway_api = [o for o in objects if (o["apiVersion"], o["kind"]) in SUPPORTED]
    assert len(gateway_api) == 7
    errors = {key(o): gateway_api_errors(o) for o in gateway_api}
    assert not any(errors.values()), errors


def test_checkov_finds_nothing_and_every_skip_has_a_reason(objects, checkov_reports):
    report = checkov_reports["local:kubernetes"]
    failed = [(f["check_id"], f["resource"]) for f in report["failed"]]
    assert not failed, failed
    assert report["summary"]["passed"] > 500
    skips = {
        value.split("=", 1)[0]: value.split("=", 1)[1]
        for w in workloads(objects)
        for name, value in w["metadata"].get("annotations", {}).items()
        if name.startswith("checkov.io/skip")
    }
    assert set(skips) <= CHECKOV_SKIPS
    assert all(len(reason) > 20 for reason in skips.values())


def test_pods_run_restricted(objects):
    for workload in workloads(objects):
        pod = workload["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert pod["securityContext"]["runAsUser"] > 0
        assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
        assert pod["automountServiceAccountToken"] is (workload["metadata"]["name"] == "alloy")
        for c in containers(workload):
            context = c["securityContext"]
            assert context["readOnlyRootFilesystem"] is True
            assert context["allowPrivilegeEscalation"] is False
            assert context["capabilities"] == {"drop": ["ALL"]}
            assert c["resources"]["requests"]["memory"] == c["resources"]["limits"]["memory"]
    for namespace in of_kind(objects, "Namespace"):
        assert namespace["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"


def mebibytes(quantity: str) -> int:
    assert quantity.endswith("Mi"), quantity
    return int(quantity[:-2])


def millicores(quantity: str) -> int:
    return int(quantity[:-1]) if quantity.endswith("m") else int(float(quantity) * 1000)


def test_requests_fit_the_documented_minikube_through_a_rolling_update(run, objects):
    """The pods, minikube's own, and one surge pod of every Deployment at once: Pulumi rolls them in parallel.

    StatefulSets replace a pod in place; a Deployment (and Traefik's) starts the new pod first.
    """
    memory_mib, cpus = MINIKUBE.memory_mib, MINIKUBE.cpus
    gateway = run.named("kubernetes:helm.sh/v3:Release", "traefik")["values"]["resources"]["requests"]
    pods = [(w["kind"], container(w)["resources"]["requests"]) for w in workloads(objects)] + [("Deployment", gateway)]
    surging = [requests for kind, requests in pods if kind == "Deployment"]
    table = minikube_table()
    for unit, parse, system, size, column, suffix in (
        ("memory", mebibytes, SYSTEM_RESERVE_MIB, memory_mib, 2, " MiB"),
        ("cpu", millicores, SYSTEM_CPU_MILLIS, cpus * 1000, 1, "m"),
    ):
        steady = sum(parse(requests[unit]) for _, requests in pods)
        surge = sum(parse(requests[unit]) for requests in surging)
        assert system + steady + surge <= size, f"{unit}: {system} + {steady} + {surge} > {size}"
        documented = [table[row][column] for row in ("the lab's pods and Traefik", "one surge pod per Deployment")]
        assert documented == [f"{steady}{suffix}", f"{surge}{suffix}"], "docs/phases/kubernetes.md's table"
        assert table["**total**"][column].startswith(f"**{system + steady + surge}{suffix} of {size}{suffix}**")


def minikube_table() -> dict[str, list[str]]:
    """docs/phases/kubernetes.md's sizing table, by the start of each row's first cell."""
    rows = {}
    for line in (REPO / "docs" / "phases" / "kubernetes.md").read_text().splitlines():
        cells = [cell.strip() for cell in line.strip("|").split("|")]
        if line.startswith("| ") and len(cells) == 3:
            rows[re.split(r"[:(]", cells[0])[0].strip()] = cells
    return rows


def test_the_readme_starts_minikube_as_the_catalog_sizes_it():
    """One size, stated once: the README's start line is what `make quickstart` checks a profile against."""
    readme = (REPO / "README.md").read_text()
    assert f"{MINIKUBE.start_command()}   #" in readme
    assert MINIKUBE.cni == "calico", "the NetworkPolicies need a CNI that enforces them"


def test_services_select_existing_pods_on_declared_ports(objects):
    pods = {(w["metadata"]["namespace"], w["metadata"]["name"]): w for w in workloads(objects)}
    for service in of_kind(objects, "Service"):
        namespace = service["metadata"]["namespace"]
        selected = [
            w
            for (ns, _), w in pods.items()
            if ns == namespace and service["spec"]["selector"].items() <= pod_labels(w).items()
        ]
        assert len(selected) == 1, key(service)
        declared = {p["name"]: p["containerPort"] for p in container(selected[0])["ports"]}
        for port in service["spec"]["ports"]:
            assert declared[port["targetPort"]] == port["port"], key(service)


def test_probes_point_at_declared_ports(objects):
    for workload in workloads(objects):
        c = container(workload)
        declared = {p["name"] for p in c["ports"]}
        assert c["readinessProbe"]["httpGet"]["port"] in declared
        assert c["startupProbe"]["httpGet"]["port"] in declared
        assert c["livenessProbe"]["tcpSocket"]["port"] in declared


def test_claims_are_kept_and_mounted(run, objects):
    claims = run.of_type("kubernetes:core/v1:PersistentVolumeClaim")
    assert {c["metadata"]["name"] for c in claims} == {"qdrant-storage", "minio-data", "mlflow-db"}
    assert all(c.protect and c.retain_on_delete for c in claims)
    mounted = {
        volume["persistentVolumeClaim"]["claimName"]
        for w in of_kind(objects, "StatefulSet")
        for volume in w["spec"]["template"]["spec"]["volumes"]
        if "persistentVolumeClaim" in volume
    }
    assert mounted == {c["metadata"]["name"] for c in claims}
    # Deleting a namespace deletes its claims: the namespaces holding them are kept as well.
    kept = {n.name for n in run.of_type("kubernetes:core/v1:Namespace") if n.protect and n.retain_on_delete}
    assert kept == {c["metadata"]["namespace"] for c in claims} == {"agents", "mlops-system"}


# --- the network: which pod may open a connection to which pod, on which port --------------


def _selects(peer: dict, pod: dict) -> bool:
    if "ipBlock" in peer:
        return pod is EXTERNAL and peer["ipBlock"]["cidr"] == "0.0.0.0/0"
    if pod is EXTERNAL:
        return False
    namespace_ok = peer["namespaceSelector"]["matchLabels"] == {"kubernetes.io/metadata.name": pod["namespace"]}
    labels = peer.get("podSelector", {}).get("matchLabels", {})
    return namespace_ok and labels.items() <= pod["labels"].items()


def _admits(rules: list[dict] | None, direction: str, other: dict, port: int) -> bool:
    """No policy (None) admits everything; a policy admits what one of its rules lists."""
    if rules is None:
        return True
    return any(
        any(_selects(peer, other) for peer in rule[direction]) and any(p["port"] == port for p in rule["ports"])
        for rule in rules
    )


def allowed_connections(objects: list[dict]) -> set[tuple[str, str, int]]:
    pods = {
        w["metadata"]["name"]: {"namespace": w["metadata"]["namespace"], "labels": pod_labels(w)}
        for w in workloads(objects)
    }
    pods[traefik_gateway.NAME] = GATEWAY_POD
    policies = {
        (p["metadata"]["namespace"], p["metadata"]["name"]): p["spec"] for p in of_kind(objects, "NetworkPolicy")
    }

    def policy(name: str) -> dict | None:
        pod = pods[name]
        matches = [
            spec
            for (ns, _), spec in policies.items()
            if ns == pod["namespace"] and spec["podSelector"]["matchLabels"].items() <= pod["labels"].items()
        ]
        return matches[0] if matches else None

    ports = {w["metadata"]["name"]: {p["containerPort"] for p in container(w)["ports"]} for w in workloads(objects)}
    allowed = set()
    for client, client_pod in pods.items():
        client_policy = policy(client)
        egress = client_policy["egress"] if client_policy else None
        for server, server_ports in ports.items():
            ingress = policy(server)["ingress"]
            for port in server_ports:
                if (
                    client != server
                    and _admits(egress, "to", pods[server], port)
                    and _admits(ingress, "from", client_pod, port)
                ):
                    allowed.add((client, server, port))
        if egress is not None:
            for rule in egress:
                if any(_selects(peer, EXTERNAL) for peer in rule["to"]):
                    allowed |= {(client, EXTERNAL, p["port"]) for p in rule["ports"]}
    return allowed


AGENTS = ("prompt-reviewer", "code-critic", "learning-cycle")
WIRED = {
    ("traffic", "prompt-reviewer", 8081),
    ("traffic", "code-critic", 8082),
    ("traffic", "learning-cycle", 8083),
    ("learning-cycle", "prompt-reviewer", 8081),
    ("learning-cycle", "code-critic", 8082),
    ("prompt-reviewer", "qdrant", 6333),
    ("code-critic", "qdrant", 6333),
    *((sender, "alloy", 4317) for sender in (*AGENTS, "traffic")),
    ("mlflow", "minio", 9000),
    ("traefik", "prompt-reviewer", 8081),
    ("traefik", "code-critic", 8082),
    ("traefik", "learning-cycle", 8083),
    ("traefik", "mlflow", 5000),
    ("traefik", "minio", 9000),
    ("traefik", "minio", 9001),
    # Alloy forwards to the LGTM gateway on the host and reads pod logs from the API server.
    ("alloy", EXTERNAL, 4317),
    ("alloy", EXTERNAL, 443),
    ("alloy", EXTERNAL, 8443),
}


def test_network_policies_admit_exactly_the_wired_connections(objects):
    assert allowed_connections(objects) == WIRED


def test_an_agent_with_a_paid_provider_may_also_reach_the_internet_on_https():
    paid = manifests(evaluate("local", phase="kubernetes", llmProvider="openai", openaiApiKey="sk-test"))
    extra = allowed_connections(paid) - WIRED
    assert extra == {(agent, EXTERNAL, 443) for agent in AGENTS}


URL = re.compile(r"^(?:[a-z]+://)?([a-z0-9-]+)(?:\.([a-z0-9-]+))?(?:\.svc[a-z.]*)?:(\d+)(?:/.*)?$")


def test_every_address_a_program_is_given_is_a_connection_the_policies_admit(objects):
    """Wiring and policies agree: the env URLs pointing into the cluster are admitted connections."""
    services = {(s["metadata"]["namespace"], s["metadata"]["name"]) for s in of_kind(objects, "Service")}
    allowed = allowed_connections(objects)
    dialled = set()
    for workload in workloads(objects):
        namespace = workload["metadata"]["namespace"]
        for variable in container(workload).get("env", []):
            for value in str(variable.get("value", "")).split(","):
                match = URL.match(value)
                if match and (match[2] or namespace, match[1]) in services:
                    dialled.add((workload["metadata"]["name"], match[1], int(match[3])))
    assert dialled
    assert dialled <= allowed, dialled - allowed


# --- the gateway, MLflow, MinIO, Alloy ------------------------------------------------------


def test_gateway_is_traefik_from_its_pinned_chart_with_the_gateway_api_only(run):
    release = run.named("kubernetes:helm.sh/v3:Release", "traefik")
    assert (release["chart"], release["version"]) == ("traefik", traefik_gateway.CHART_VERSION)
    assert release["repositoryOpts"]["repo"] == "https://traefik.github.io/charts"
    assert release["namespace"] == "gateway-system"
    values = release["values"]
    assert values["providers"]["kubernetesGateway"]["enabled"] is True
    assert values["providers"]["kubernetesIngress"]["enabled"] is False
    assert values["gateway"]["enabled"] is False, "the lab's own Gateway, not the chart's"
    assert values["service"]["spec"]["type"] == "ClusterIP", "minikube has no load balancer to wait for"
    crds = run.named("kubernetes:yaml/v2:ConfigFile", "gateway-api-crds")
    assert crds["file"].endswith(f"/{traefik_gateway.GATEWAY_API_VERSION}/standard-install.yaml")
    assert "ingress-nginx" not in json.dumps([r.inputs for r in run.resources])


def test_every_route_hangs_off_the_lab_gateway_and_reaches_a_service_port(objects):
    gateway = by_name(objects, "Gateway")["lab"]
    (listener,) = gateway["spec"]["listeners"]
    assert (listener["port"], listener["hostname"]) == (traefik_gateway.WEB_PORT, "*.localhost")
    allowed_label = listener["allowedRoutes"]["namespaces"]["selector"]["matchLabels"]
    namespaces = by_name(objects, "Namespace")
    services = {(s["metadata"]["namespace"], s["metadata"]["name"]): s for s in of_kind(objects, "Service")}
    routes = of_kind(objects, "HTTPRoute")
    assert {r["spec"]["hostnames"][0] for r in routes} == {
        f"{name}.localhost"
        for name in ("prompt-reviewer", "code-critic", "learning-cycle", "mlflow", "minio", "minio-console")
    }
    for route in routes:
        namespace = route["metadata"]["namespace"]
        assert allowed_label.items() <= namespaces[namespace]["metadata"]["labels"].items()
        assert route["spec"]["parentRefs"] == [{"name": "lab", "namespace": "gateway-system", "sectionName": "http"}]
        (backend,) = route["spec"]["rules"][0]["backendRefs"]
        service = services[(namespace, backend["name"])]
        assert backend["port"] in {p["port"] for p in service["spec"]["ports"]}


def test_mlflow_serves_artifacts_from_minio_and_accepts_its_gateway_host(objects):
    mlflow = by_name(objects, "StatefulSet")["mlflow"]
    c = container(mlflow)
    args = c["args"]
    assert "--serve-artifacts" in args
    assert "--artifacts-destination=s3://lab-artifacts/mlflow" in args
    assert "--backend-store-uri=sqlite:////mlflow/db/mlflow.db" in args
    allowed_hosts = next(a for a in args if a.startswith("--allowed-hosts=")).split("=", 1)[1].split(",")
    assert {"mlflow.localhost", "mlflow.localhost:*", "mlflow.mlops-system:*"} <= set(allowed_hosts)
    env = {e["name"]: e for e in c["env"]}
    assert env["MLFLOW_S3_ENDPOINT_URL"]["value"] == "http://minio.mlops-system:9000"
    assert env["AWS_SECRET_ACCESS_KEY"]["valueFrom"]["secretKeyRef"] == {
        "name": "mlflow-env",
        "key": "AWS_SECRET_ACCESS_KEY",
    }
    (init,) = mlflow["spec"]["template"]["spec"]["initContainers"]
    assert init["image"] == c["image"] and "create_bucket" in init["args"][-1]


def test_credentials_are_generated_secrets_and_kept_with_the_data(run):
    password = run.named("random:index/randomPassword:RandomPassword", "minio-root-password")
    assert password.protect and password.retain_on_delete
    secrets = run.of_type("kubernetes:core/v1:Secret")
    assert {s["metadata"]["name"] for s in secrets} == {"minio-env", "mlflow-env"}
    assert all(s.has_secret_inputs for s in secrets)
    assert {"minioPassword", "grafanaAdminPassword"} <= run.secret_outputs
    generated = f"generated-minio-root-password-{'x' * 32}"
    assert generated not in json.dumps({k: v for k, v in run.outputs.items() if k not in run.secret_outputs})


def test_alloy_forwards_to_the_lgtm_gateway_on_the_host_and_reads_logs_through_the_api(run, objects):
    config = alloy_view.in_cluster(objects)
    assert 'endpoint = "host.minikube.internal:4317"' in config
    assert 'names = string.split("agents,mlops-system,gateway-system", ",")' in config
    roles = of_kind(objects, "Role")
    assert {r["metadata"]["namespace"] for r in roles} == {"agents", "mlops-system", "gateway-system"}
    for role in roles:
        assert role["rules"] == [
            {"apiGroups": [""], "resources": ["pods", "pods/log"], "verbs": ["get", "list", "watch"]}
        ]
    bindings = of_kind(objects, "RoleBinding")
    assert all(
        b["subjects"] == [{"kind": "ServiceAccount", "name": "alloy", "namespace": "observability"}] for b in bindings
    )


def test_the_agents_leave_docker_but_their_image_and_qdrants_volume_stay(run):
    containers_left = {c["name"] for c in run.of_type("docker:index/container:Container")}
    moved = phase_named("kubernetes").moved
    assert not {f"llm-infra-lab-local-{name}" for name in moved} & containers_left
    volume = run.named("docker:index/volume:Volume", "qdrant-storage")
    assert volume.protect and volume.retain_on_delete
    image = run.named("docker:index/remoteImage:RemoteImage", "agent")["name"]
    load = run.named("command:local:Command", "agent-image-into-minikube")
    assert load["create"] == f"minikube --profile minikube image load {image}"
    deployed = {
        container(w)["image"] for w in of_kind(manifests(run), "Deployment") if w["metadata"]["namespace"] == "agents"
    }
    assert deployed == {image}


def test_outputs_tell_how_to_reach_the_lab(run):
    outputs = run.outputs
    assert outputs["mlflowUrl"] == "http://mlflow.localhost:8080"
    assert outputs["agentUrls"] == {
        "prompt-reviewer": "http://prompt-reviewer.localhost:8080",
        "code-critic": "http://code-critic.localhost:8080",
        "learning-cycle": "http://learning-cycle.localhost:8080",
    }
    assert "port-forward service/traefik 8080:80" in outputs["gatewayPortForward"]
    dvc = outputs["dvcRemoteCommands"]
    assert "s3://lab-artifacts/dvc" in dvc and "endpointurl http://minio.localhost:8080" in dvc
    assert "pulumi stack output minioPassword --show-secrets" in dvc


def test_manifests_render_as_yaml(objects):
    assert list(yaml.safe_load_all(yaml.safe_dump_all(objects))) == objects
