"""Phase `production` (stack dev): the whole program under mocks.

The components have their own tests (tests/aws, tests/gateway, tests/observability,
tests/serving); these check the composition: TLS on every host the gateway serves, MLflow
on the database only the cluster reaches, the agents on their ECR image with an autoscaler,
telemetry from the workloads into the in-cluster stores, the additions on their own nodes
and within their memory, secrets kept out of plain outputs, and the cost.
"""

from __future__ import annotations

import ipaddress
import json

import pytest

from components.aws import cluster_autoscaler, load_balancer_controller
from components.gateway import cert_manager
from components.observability import dashboards, lgtm_eks
from components.serving import kserve
from stacks import production
from tests import alloy_view
from tests.aws.support import NODE_ALLOCATABLE_MIB, SYSTEM_MIB_PER_NODE
from tests.conftest import evaluate
from tests.gateway_api_schema import SUPPORTED, gateway_api_errors
from tests.harness import REPO, ProgramRun
from tests.k8s_view import containers, manifests, of_kind, schema_errors, workloads

DOMAIN = "lab.example.com"
REGISTRY = "123456789012.dkr.ecr.us-east-1.amazonaws.com"
PODS_PER_NODE = 17
NUMBER_WORDS = {2: "two", 3: "three", 4: "four", 5: "five"}
"""The VPC CNI's limit for a t3.medium without prefix delegation."""
SYSTEM_PODS_PER_NODE = 5
TARGET_HOURLY_USD = 0.30


@pytest.fixture(scope="module")
def run() -> ProgramRun:
    return evaluate("dev", phase="production")


@pytest.fixture(scope="module")
def objects(run) -> list[dict]:
    return manifests(run)


def named(objects: list[dict], kind: str, name: str) -> dict:
    (found,) = [o for o in of_kind(objects, kind) if o["metadata"]["name"] == name]
    return found


def test_the_platform_nodes_stay_and_the_additions_get_a_group_of_their_own(run):
    groups = {g.name: g for g in run.of_type("aws:eks/nodeGroup:NodeGroup")}
    assert groups.keys() == {"eks-nodes", "eks-workloads"}
    assert groups["eks-nodes"]["scalingConfig"] == {"minSize": 1, "desiredSize": 1, "maxSize": 3}
    assert groups["eks-workloads"]["scalingConfig"] == {"minSize": 2, "desiredSize": 2, "maxSize": 4}
    same = ("launchTemplate", "capacityType", "subnetIds", "nodeRoleArn", "amiType")
    assert all(groups["eks-nodes"][key] == groups["eks-workloads"][key] for key in same)
    addons = {a["addonName"] for a in run.of_type("aws:eks/addon:Addon")}
    assert production.METRICS_SERVER in addons, "the autoscalers read CPU use from metrics-server"


def test_the_cluster_autoscaler_owns_the_node_counts(run):
    """Within each group's min and max; `pulumi up` must not undo what it decided."""
    assert all(g.ignore_changes == ("scalingConfig.desiredSize",) for g in run.of_type("aws:eks/nodeGroup:NodeGroup"))
    (release,) = [r for r in run.of_type("kubernetes:helm.sh/v3:Release") if r["name"] == "cluster-autoscaler"]
    assert (
        release["values"]["autoDiscovery"]["clusterName"] == run.named("aws:eks/cluster:Cluster", "eks-cluster")["name"]
    )
    platform_nodes = evaluate("dev", phase="platform").of_type("aws:eks/nodeGroup:NodeGroup")
    assert all(g.ignore_changes == () for g in platform_nodes), "without an autoscaler, the config sizes the nodes"


def test_every_exposed_host_is_served_over_tls_and_plain_http_only_redirects(objects):
    (gateway,) = of_kind(objects, "Gateway")
    listeners = {listener["name"]: listener for listener in gateway["spec"]["listeners"]}
    routes = [o for o in of_kind(objects, "HTTPRoute") if o["metadata"]["name"] != "https-redirect"]
    hosts = {host for route in routes for host in route["spec"]["hostnames"]}
    assert hosts == {f"{name}.{DOMAIN}" for name in production.HOSTS}, "a host without a route, or the reverse"
    for route in routes:
        (parent,) = route["spec"]["parentRefs"]
        listener = listeners[parent["sectionName"]]
        assert listener["protocol"] == "HTTPS" and listener["tls"]["mode"] == "Terminate"
        assert route["spec"]["hostnames"] == [listener["hostname"]]
    secrets = {
        ref["name"]
        for listener in listeners.values()
        if "tls" in listener
        for ref in listener["tls"]["certificateRefs"]
    }
    assert len(secrets) == 1, "one certificate names every host"
    issuer = gateway["metadata"]["annotations"]["cert-manager.io/cluster-issuer"]
    assert issuer == "letsencrypt-staging" and named(objects, "ClusterIssuer", issuer)
    redirect = named(objects, "HTTPRoute", "https-redirect")
    assert redirect["spec"]["parentRefs"][0]["sectionName"] == "http"
    (rule,) = redirect["spec"]["rules"]
    assert rule["filters"] == [{"type": "RequestRedirect", "requestRedirect": {"scheme": "https", "statusCode": 301}}]
    assert listeners["http"]["allowedRoutes"]["namespaces"]["from"] == "Same", "no service routes on plain HTTP"


def test_the_production_issuer_is_one_setting_away():
    chosen = evaluate("dev", phase="production", acmeEnvironment="production")
    (gateway,) = of_kind(manifests(chosen), "Gateway")
    assert gateway["metadata"]["annotations"]["cert-manager.io/cluster-issuer"] == "letsencrypt-production"
    assert chosen.outputs["certificateIssuer"] == "letsencrypt-production"


def test_mlflow_keeps_its_runs_in_postgresql_and_reaches_only_its_port(run, objects):
    mlflow = named(objects, "StatefulSet", "mlflow")
    (container,) = mlflow["spec"]["template"]["spec"]["containers"]
    assert not any(arg.startswith("--backend-store-uri") for arg in container["args"]), "no SQLite"
    assert any(arg.startswith(f"--allowed-hosts=mlflow.{DOMAIN},") for arg in container["args"])
    env = {e["name"]: e for e in container["env"]}
    uri_ref = env["MLFLOW_BACKEND_STORE_URI"]["valueFrom"]["secretKeyRef"]
    (secret,) = [s for s in run.of_type("kubernetes:core/v1:Secret") if s["metadata"]["name"] == uri_ref["name"]]
    assert secret.has_secret_inputs
    uri = secret["stringData"][uri_ref["key"]]
    instance = run.named("aws:rds/instance:Instance", "mlflow-db-instance")
    assert uri.startswith("postgresql://mlflow:") and uri.endswith(
        f"@{instance['identifier']}.c0mock0.us-east-1.rds.amazonaws.com:5432/mlflow?sslmode=require"
    )
    mounts = {m["mountPath"] for m in container["volumeMounts"]}
    assert "/mlflow/db" in mounts, "the platform phase's SQLite claim stays mounted for a migration"
    egress = named(objects, "NetworkPolicy", "mlflow")["spec"]["egress"]
    database_rules = [r for r in egress if r["ports"][0]["port"] == 5432]
    (rule,) = database_rules
    (peer,) = rule["to"]
    private = [
        ipaddress.ip_network(s["cidrBlock"])
        for s in run.of_type("aws:ec2/subnet:Subnet")
        if not s.get("mapPublicIpOnLaunch")
    ]
    assert all(subnet.subnet_of(ipaddress.ip_network(peer["ipBlock"]["cidr"])) for subnet in private)


def test_the_database_is_private_encrypted_kept_and_open_only_to_the_cluster(run):
    instance = run.named("aws:rds/instance:Instance", "mlflow-db-instance")
    assert instance["publiclyAccessible"] is False and instance["storageEncrypted"] is True
    assert instance["deletionProtection"] is True and instance.protect
    assert instance["backupRetentionPeriod"] == 7 and instance["skipFinalSnapshot"] is False
    assert instance["instanceClass"] == "db.t4g.micro" and instance["allocatedStorage"] == 20
    private = {f"{s.name}-id" for s in run.of_type("aws:ec2/subnet:Subnet") if not s.get("mapPublicIpOnLaunch")}
    assert set(run.named("aws:rds/subnetGroup:SubnetGroup", "mlflow-db-subnets")["subnetIds"]) == private
    (ingress,) = [
        rule
        for rule in run.of_type("aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule")
        if rule["securityGroupId"] == "mlflow-db-sg-id"
    ]
    assert ingress["referencedSecurityGroupId"] == "sg-mockcluster" and "cidrIpv4" not in ingress.inputs
    assert (ingress["fromPort"], ingress["toPort"], ingress["ipProtocol"]) == (5432, 5432, "tcp")
    params = {
        p["name"]: p["value"]
        for p in run.named("aws:rds/parameterGroup:ParameterGroup", "mlflow-db-params")["parameters"]
    }
    assert params["rds.force_ssl"] == "1"


def test_the_agents_run_the_ecr_image_scale_out_and_survive_a_drain(run, objects):
    for agent in ("prompt-reviewer", "code-critic"):
        deployment = named(objects, "Deployment", agent)
        (container,) = deployment["spec"]["template"]["spec"]["containers"]
        assert container["image"].startswith(f"{REGISTRY}/llm-infra-lab-dev/agent:")
        autoscaler = named(objects, "HorizontalPodAutoscaler", agent)
        assert (autoscaler["spec"]["minReplicas"], autoscaler["spec"]["maxReplicas"]) == (2, 3)
        assert named(objects, "PodDisruptionBudget", agent)["spec"]["maxUnavailable"] == 1
    (pushed,) = run.of_type("docker:index/registryImage:RegistryImage")
    assert (
        pushed["name"]
        == named(objects, "Deployment", "prompt-reviewer")["spec"]["template"]["spec"]["containers"][0]["image"]
    )
    qdrant = named(objects, "StatefulSet", "qdrant")
    claim = named(objects, "PersistentVolumeClaim", "qdrant-storage")
    assert claim["spec"]["storageClassName"] == "gp3-retain" and qdrant["spec"]["replicas"] == 1


def test_the_workloads_send_telemetry_to_the_stores_in_the_cluster(objects):
    alloy = named(objects, "Deployment", "alloy")
    senders = {
        peer["podSelector"]["matchLabels"]["app.kubernetes.io/name"]
        for rule in named(objects, "NetworkPolicy", "alloy")["spec"]["ingress"]
        for peer in rule["from"]
    }
    assert senders == {"prompt-reviewer", "code-critic", "learning-cycle", "traffic"}
    readers = {
        b["metadata"]["namespace"] for b in of_kind(objects, "RoleBinding") if b["metadata"]["name"] == "alloy-pod-logs"
    }
    assert readers == {"agents", "mlops-system", "gateway-system", "serving"}, (
        "Alloy reads the pod logs of every workload"
    )
    agent_env = {
        e["name"]: e.get("value")
        for e in named(objects, "Deployment", "code-critic")["spec"]["template"]["spec"]["containers"][0]["env"]
    }
    assert agent_env["OTEL_EXPORTER_OTLP_ENDPOINT"] == "http://alloy.observability:4317"
    text = alloy_view.in_cluster(objects)
    for store in ("tempo.observability", "mimir-distributor.observability", "loki.observability"):
        assert store in text
    assert "host.minikube.internal" not in text and alloy["metadata"]["namespace"] == "observability"


def test_kubernetes_objects_are_schema_valid_and_checkov_clean(objects, checkov_reports):
    errors = {k: v for k, v in schema_errors(objects).items() if v != "no schema"}
    assert errors == {}
    custom = {k for k, v in schema_errors(objects).items() if v == "no schema"}
    assert {k.split("/")[0] for k in custom} <= {
        "Gateway",
        "HTTPRoute",
        "ClusterIssuer",
        "ServingRuntime",
        "InferenceService",
    }
    assert all(gateway_api_errors(o) == [] for o in objects if (o["apiVersion"], o["kind"]) in SUPPORTED)
    report = checkov_reports["dev:production"]
    assert not report["failed"], [(f["check_id"], f["resource"]) for f in report["failed"]]


def pod_memory(objects: list[dict], replicas_field: str) -> dict[str, tuple[int, int]]:
    """Each pod's memory request (MiB) and how many of it run, with the autoscalers at one end."""
    replicas = {
        o["spec"]["scaleTargetRef"]["name"]: o["spec"][replicas_field]
        for o in of_kind(objects, "HorizontalPodAutoscaler")
    }

    def memory(workload: dict) -> int:
        return max(int(c["resources"]["requests"]["memory"].removesuffix("Mi")) for c in containers(workload))

    rendered = {w["metadata"]["name"]: (memory(w), replicas.get(w["metadata"]["name"], 1)) for w in workloads(objects)}
    charts = {
        **{f"lgtm-{pod}": (mib, 1) for pod, mib in lgtm_eks.memory_requests_mib().items() if pod != "alloy"},
        **{f"cert-manager-{pod}": (mib, 1) for pod, mib in cert_manager.MEMORY_MIB.items() if pod != "startupapicheck"},
        "kserve-controller": (kserve.CONTROLLER_MEMORY_MIB + kserve.RBAC_PROXY_MEMORY_MIB, 1),
        **{
            f"{isvc['metadata']['name']}-predictor": (
                kserve.MODEL_MEMORY_MIB,
                isvc["spec"]["predictor"][replicas_field],
            )
            for isvc in of_kind(objects, "InferenceService")
        },
        "traefik": (128, 1),
        "cluster-autoscaler": (cluster_autoscaler.MEMORY_MIB, 1),
        "aws-load-balancer-controller": (load_balancer_controller.MEMORY_MIB, 1),
    }
    return {**rendered, **charts}


def test_the_pods_fit_the_nodes_at_their_largest(run, objects):
    """Requests at the autoscalers' maximum, the charts' own and the system's, against the nodes' room."""
    pods = pod_memory(objects, "maxReplicas")
    nodes = sum(g["scalingConfig"]["desiredSize"] for g in run.of_type("aws:eks/nodeGroup:NodeGroup"))
    requested = sum(mib * count for mib, count in pods.values())
    assert requested <= nodes * (NODE_ALLOCATABLE_MIB - SYSTEM_MIB_PER_NODE), f"{requested} MiB on {nodes} nodes"
    assert sum(count for _, count in pods.values()) <= nodes * (PODS_PER_NODE - SYSTEM_PODS_PER_NODE)


def test_the_readme_states_the_steady_requests(run, objects):
    pods = pod_memory(objects, "minReplicas")
    requested = sum(mib * count for mib, count in pods.values())
    count = sum(count for _, count in pods.values())
    lgtm = lgtm_eks.memory_requests_mib()
    nodes = sum(g["scalingConfig"]["desiredSize"] for g in run.of_type("aws:eks/nodeGroup:NodeGroup"))
    readme = " ".join((REPO / "README.md").read_text().split())
    assert (
        f"About {requested / 1024:.1f} GiB of memory requests ({requested:,} MiB in {count} pods, requests equal to "
        f"limits) share {NUMBER_WORDS[int(nodes)]} t3.medium nodes" in readme
    )
    assert f"The LGTM stack takes {sum(lgtm.values()):,} MiB of it ({len(lgtm)} pods)" in readme


def test_outputs_point_at_https_hosts_and_keep_secrets_secret(run):
    outputs = run.outputs
    urls = [outputs["mlflowUrl"], outputs["grafanaUrl"], outputs["modelUrl"], *outputs["agentUrls"].values()]
    assert all(url.startswith("https://") and DOMAIN in url for url in urls)
    assert {"kubeconfig", "grafanaAdminPassword"} <= run.secret_outputs
    plain = json.dumps({k: v for k, v in outputs.items() if k not in run.secret_outputs})
    assert "generated-" not in plain, "a generated password leaked into a plain output"
    assert outputs["dnsRecord"].startswith("(pending: kubectl"), "no record to copy before the load balancer has a name"


def test_cost_covers_the_additions_and_stays_under_the_target(run):
    outputs = run.outputs
    breakdown = outputs["costBreakdown"]
    assert {"RDS PostgreSQL db.t4g.micro single-AZ", "EC2 t3.medium spot (workloads)", "EBS gp3 GiB (claims)"} <= set(
        breakdown
    )
    assert breakdown["EC2 t3.medium spot (workloads)"] == pytest.approx(2 * 0.015)
    assert outputs["estimatedHourlyCostUsd"] == pytest.approx(sum(breakdown.values()), abs=1e-3)
    assert outputs["estimatedHourlyCostUsd"] < TARGET_HOURLY_USD
    platform = evaluate("dev", phase="platform").outputs["estimatedHourlyCostUsd"]
    assert outputs["estimatedHourlyCostUsd"] > platform


def test_the_agents_on_the_internet_ask_for_a_generated_key_the_traffic_sends(run, objects):
    """The gateway puts the agents on a network: /review and /cycle need the key, which only a secret
    output shows; learning-cycle hands it on to the reviewers."""
    for name in ("prompt-reviewer", "code-critic", "learning-cycle", "traffic"):
        (container,) = named(objects, "Deployment", name)["spec"]["template"]["spec"]["containers"]
        reference = {e["name"]: e for e in container["env"]}["AGENT_API_KEY"]["valueFrom"]["secretKeyRef"]
        (secret,) = [s for s in run.of_type("kubernetes:core/v1:Secret") if s["metadata"]["name"] == reference["name"]]
        assert secret.has_secret_inputs and len(secret["stringData"][reference["key"]]) >= 16
    key = run.named("random:index/randomPassword:RandomPassword", "agent-api-key")
    assert (key["length"], key["special"]) == (40, False)
    assert "agentApiKey" in run.secret_outputs


def test_the_dns_record_names_the_load_balancer_once_it_has_a_name():
    host = "k8s-gateway-traefik-0123456789.elb.us-east-1.amazonaws.com"
    assert production.dns_record(DOMAIN, f"http://{host}") == f"*.{DOMAIN} CNAME {host}"
    pending = "(pending: kubectl -n gateway-system get service traefik)"
    assert production.dns_record(DOMAIN, pending) == pending


def test_the_promoted_model_is_served_from_the_labs_bucket_by_a_role_that_reads_only_its_directory(run, objects):
    uri = run.config["llm-infra-lab:servedModelUri"]
    (isvc,) = run.of_type("kubernetes:serving.kserve.io/v1beta1:InferenceService")
    assert isvc["spec"]["predictor"]["model"]["storageUri"] == uri
    assert isvc["spec"]["predictor"]["serviceAccountName"] == "model-reader"
    account = named(objects, "ServiceAccount", "model-reader")
    role = run.named("aws:iam/role:Role", "model-reader-role")
    assert account["metadata"]["annotations"]["eks.amazonaws.com/role-arn"] == f"arn:aws:mock::123456789012:{role.name}"
    trust = json.loads(role["assumeRolePolicy"])["Statement"][0]["Condition"]["StringEquals"]
    assert "system:serviceaccount:serving:model-reader" in trust.values()
    policy = json.loads(run.named("aws:iam/rolePolicy:RolePolicy", "model-reader-policy")["policy"])
    prefix = uri.split("/", 3)[3]
    bucket = uri.split("/")[2]
    assert {(s["Action"], json.dumps(s["Resource"])) for s in policy["Statement"]} == {
        ("s3:ListBucket", json.dumps(f"arn:aws:s3:::{bucket}")),
        ("s3:GetObject", json.dumps(f"arn:aws:s3:::{bucket}/{prefix}/*")),
    }, "read, and only the model's directory"
    (listing,) = [s for s in policy["Statement"] if s["Action"] == "s3:ListBucket"]
    assert listing["Condition"] == {"StringLikeIfExists": {"s3:prefix": [prefix, f"{prefix}/*"]}}


def test_until_a_model_is_promoted_kserve_waits_and_the_output_says_how_to_serve_one():
    waiting = evaluate("dev", phase="production", servedModelUri="")
    assert not waiting.of_type("kubernetes:serving.kserve.io/v1beta1:InferenceService")
    assert not [r for r in waiting.of_type("aws:iam/role:Role") if r.name.startswith("model-reader")]
    assert "servedModelUri" in waiting.outputs["modelUrl"]


def test_the_model_servers_metrics_reach_mimir_and_a_panel_beside_the_agents(objects):
    config = alloy_view.in_cluster(objects)
    assert 'prometheus.scrape "models"' in config and 'names = ["serving"]' in config
    assert "forward_to      = [prometheus.remote_write.mimir.receiver]" in config
    alloy_egress = named(objects, "NetworkPolicy", "alloy")["spec"]["egress"]
    serving = {"kubernetes.io/metadata.name": "serving"}
    to_models = [r for r in alloy_egress if r["to"][0].get("namespaceSelector", {}).get("matchLabels") == serving]
    assert [rule["ports"] for rule in to_models] == [[{"port": 8080, "protocol": "TCP"}]]
    predictor = named(objects, "NetworkPolicy", "iris-predictor")["spec"]["ingress"]
    sources = [rule["from"][0].get("podSelector", {}).get("matchLabels") for rule in predictor]
    assert {"app.kubernetes.io/name": "alloy"} in sources, "Alloy may scrape the model server"
    board = json.loads(dashboards.dashboard_files()["llm-agents.json"])
    exprs = [t.get("expr", "") for p in board["panels"] for t in p.get("targets", [])]
    assert any("request_predict_seconds_count" in e for e in exprs)
    assert any("request_predict_seconds_bucket" in e for e in exprs)
