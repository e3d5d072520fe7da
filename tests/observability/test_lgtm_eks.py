"""The LGTM stack on EKS: pinned charts, S3 per store through IRSA, values from the Docker stack's config.

One mocked run builds the stack as the production phase wires it (retained data, the gp3-retain
class, the gateway with TLS) and every test reads the registered resources: buckets and their
guards, roles and their trust and policies, the Helm values each chart receives, the ConfigMaps
and Secret they read, Alloy's config and NetworkPolicy, and Grafana's route.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import re

import pulumi
import pytest

from components.gateway.traefik_gateway import ROUTES_LABEL
from components.observability import alerts, dashboards, grafana, log_alerts, loki, mimir
from components.observability import lgtm_eks_values as values
from components.observability.lgtm_eks import (
    CHARTS,
    STORES,
    LgtmOnEks,
    LgtmOnEksArgs,
    alloy_spec,
    memory_requests_mib,
    store_buckets,
    store_urls,
)
from components.runtime.kubernetes_service import Pods, namespace
from tests import alloy_view
from tests.aws.support import ACCOUNT, AwsRun, run_aws
from tests.conftest import evaluate
from tests.docker_view import services
from tests.gateway import DOMAIN, tls_gateway
from tests.k8s_view import manifests, of_kind, schema_errors

NAMESPACE = "observability"
PREFIX = "llm-infra-lab-dev"
REGION = "us-east-1"
BUDGET = 20.0
ISSUER = "oidc.eks.us-east-1.amazonaws.com/id/0123456789ABCDEF0123456789ABCDEF"
OIDC_ARN = f"arn:aws:iam::{ACCOUNT}:oidc-provider/{ISSUER}"
LOG_NAMESPACES = ("agents", "mlops-system")
RELEASE = "kubernetes:helm.sh/v3:Release"
BUCKET_GUARDS = (
    "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock",
    "aws:s3/bucketOwnershipControls:BucketOwnershipControls",
    "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration",
    "aws:s3/bucketVersioning:BucketVersioning",
    "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration",
    "aws:s3/bucketPolicy:BucketPolicy",
)
EXPECTED_MEMORY_MIB = 3168
EXPECTED_PODS = 12


def bucket_name(store: str) -> str:
    """What the shared mocks name a bucket made from `bucket_prefix`."""
    return f"{PREFIX}-{store}-mock"


def lgtm_args(**changes) -> LgtmOnEksArgs:
    """Arguments for a program that makes the stores' buckets first, as the production phase does."""
    opts = pulumi.ResourceOptions()
    observability = namespace(NAMESPACE, True, opts, **{ROUTES_LABEL: "true"})
    fields = {
        "target": dataclasses.replace(observability, storage_class="gp3-retain"),
        "gateway": tls_gateway(),
        "buckets": changes.pop("buckets", None) or store_buckets(PREFIX, True, opts),
        "role_name_prefix": PREFIX,
        "oidc_provider_arn": OIDC_ARN,
        "oidc_issuer": ISSUER,
        "region": REGION,
        "llm_monthly_budget_usd": BUDGET,
        "log_namespaces": tuple(namespace(name, True, opts) for name in LOG_NAMESPACES),
    }
    return LgtmOnEksArgs(**{**fields, **changes})


@functools.cache
def lab() -> AwsRun:
    def program():
        for space in ("agents", "mlops-system"):
            namespace(space, False, pulumi.ResourceOptions(), **{ROUTES_LABEL: "true"})
        stack = LgtmOnEks("lgtm", lgtm_args())
        stack.collect_from((Pods("agents"),))
        pulumi.export("grafanaUrl", stack.grafana_url)
        pulumi.export("grafanaAdminPassword", stack.grafana_admin_password)
        pulumi.export("otlp", stack.alloy_spec.url("otlp-grpc"))

    return run_aws(program)


@pytest.fixture(scope="module")
def run() -> AwsRun:
    return lab()


@pytest.fixture(scope="module")
def objects(run) -> list[dict]:
    return manifests(run.run)


def chart_values(run: AwsRun, release: str) -> dict:
    return run.named(RELEASE, release)["values"]


def named(objects: list[dict], kind: str, name: str) -> dict:
    (found,) = [o for o in of_kind(objects, kind) if o["metadata"]["name"] == name]
    return found


# --- charts ----------------------------------------------------------------------------------


def test_every_chart_is_pinned_from_its_repository_into_the_observability_namespace(run):
    releases = {r.name: r for r in run.of_type(RELEASE) if r.name in CHARTS}
    assert releases.keys() == {"loki", "tempo", "mimir", "grafana"}
    sources = {name: (r["chart"], r["repositoryOpts"]["repo"]) for name, r in releases.items()}
    assert sources == {
        "loki": ("loki", "https://grafana-community.github.io/helm-charts"),
        "tempo": ("tempo", "https://grafana-community.github.io/helm-charts"),
        "mimir": ("mimir-distributed", "https://grafana.github.io/helm-charts"),
        "grafana": ("grafana", "https://grafana-community.github.io/helm-charts"),
    }
    # Which version: tests/test_helm_values.py ties each pin to the chart data the values are checked against.
    assert all(re.fullmatch(r"\d+\.\d+\.\d+", r["version"]) for r in releases.values())
    for name, release in releases.items():
        assert (release["name"], release["namespace"], release["atomic"]) == (name, NAMESPACE, True)


def test_the_charts_run_the_docker_stacks_program_versions(run):
    """The images the Docker stack runs (the registered containers'), so both runtimes run one version."""
    docker = {name: service.image for name, service in services(evaluate("local", phase="observability")).items()}
    tag = {name: image.rsplit(":", 1)[1] for name, image in docker.items()}
    assert chart_values(run, "loki")["loki"]["image"]["tag"] == tag["loki"]
    assert chart_values(run, "tempo")["tempo"]["tag"] == tag["tempo"]
    assert chart_values(run, "mimir")["image"]["tag"] == tag["mimir"]
    repository, version = docker["grafana"].rsplit(":", 1)
    assert chart_values(run, "grafana")["image"] == {"repository": repository, "tag": f"{version}-distroless"}


# --- buckets and IRSA -------------------------------------------------------------------------


@pytest.mark.parametrize("store", STORES)
def test_each_store_has_its_own_bucket_with_every_artifact_bucket_guard_kept_and_protected(run, store):
    bucket = run.named("aws:s3/bucket:Bucket", f"{store}-bucket-bucket")
    assert bucket["bucketPrefix"] == f"{PREFIX}-{store}-"
    assert bucket["forceDestroy"] is False
    assert (bucket.protect, bucket.retain_on_delete) == (True, True)
    for type_ in BUCKET_GUARDS:
        (guard,) = [r for r in run.of_type(type_) if r.name.startswith(f"{store}-bucket-")]
        assert guard["bucket"] == f"{store}-bucket-bucket-id"
        assert guard.retain_on_delete
    encryption = run.named(BUCKET_GUARDS[2], f"{store}-bucket-encryption")
    assert encryption["rules"][0]["applyServerSideEncryptionByDefault"]["sseAlgorithm"] == "AES256"
    tls_only = json.loads(run.named(BUCKET_GUARDS[5], f"{store}-bucket-tls-only")["policy"])
    assert tls_only["Statement"][0]["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}


def test_a_prefix_too_long_for_a_store_bucket_is_refused():
    too_long = "a" * 31  # + "-mimir" passes S3's 37-character bucket_prefix budget

    with pytest.raises(ValueError, match="bucket name prefix"):
        run_aws(lambda: store_buckets(too_long, True, pulumi.ResourceOptions()))


def test_the_buckets_stand_apart_from_the_stack_so_a_quickstop_can_remove_the_cluster(run):
    """Protected children keep their parent and what it waits for (the nodes, on EKS)."""
    lgtm = run.named("llm-infra-lab:observability:LgtmOnEks", "lgtm")
    for store in STORES:
        assert run.named("llm-infra-lab:aws:ArtifactBucket", f"{store}-bucket").parent != lgtm.urn


def test_buckets_moved_out_of_the_stack_keep_their_identity():
    """A stack deployed when the buckets were the stack's children finds them under their old parent."""
    run = run_aws(
        lambda: LgtmOnEks(
            "lgtm", lgtm_args(buckets=store_buckets(PREFIX, True, pulumi.ResourceOptions(), moved_from="lgtm"))
        )
    )
    lgtm = run.named("llm-infra-lab:observability:LgtmOnEks", "lgtm")
    # The mocks put the root stack's type in a top-level resource's URN; the engine leaves it out.
    engine_urn = lgtm.urn.replace("pulumi:pulumi:Stack$", "")
    for store in STORES:
        assert run.named("llm-infra-lab:aws:ArtifactBucket", f"{store}-bucket").former_parents == (engine_urn,)


@pytest.mark.parametrize("store", STORES)
def test_each_role_trusts_exactly_its_stores_service_account(run, store):
    role = run.named("aws:iam/role:Role", f"{store}-role")
    assert role["namePrefix"] == f"{PREFIX}-{store}-" and len(role["namePrefix"]) <= 38
    (statement,) = json.loads(role["assumeRolePolicy"])["Statement"]
    assert statement["Principal"] == {"Federated": OIDC_ARN}
    assert statement["Condition"] == {
        "StringEquals": {
            f"{ISSUER}:sub": f"system:serviceaccount:{NAMESPACE}:{store}",
            f"{ISSUER}:aud": "sts.amazonaws.com",
        }
    }


@pytest.mark.parametrize("store", STORES)
def test_each_role_reaches_only_its_stores_bucket(run, store):
    arn = f"arn:aws:s3:::{bucket_name(store)}"
    policy = json.loads(run.named("aws:iam/rolePolicy:RolePolicy", f"{store}-policy")["policy"])
    resources = {
        (statement["Effect"], resource)
        for statement in policy["Statement"]
        for resource in ([statement["Resource"]] if isinstance(statement["Resource"], str) else statement["Resource"])
    }
    assert resources == {("Allow", arn), ("Allow", f"{arn}/*")}
    actions = {a for s in policy["Statement"] for a in ([s["Action"]] if isinstance(s["Action"], str) else s["Action"])}
    assert "s3:*" not in actions and not any(a.startswith("s3:PutBucket") for a in actions)
    assert {"s3:ListBucket", "s3:GetObject", "s3:PutObject", "s3:DeleteObject"} <= actions
    assert ("s3:PutObjectTagging" in actions) is (store == "tempo"), "Tempo's documented minimum, for Tempo only"


@pytest.mark.parametrize("store", STORES)
def test_each_charts_service_account_carries_its_stores_role(run, store):
    annotations = chart_values(run, store)["serviceAccount"]["annotations"]
    assert annotations == {"eks.amazonaws.com/role-arn": f"arn:aws:mock::{ACCOUNT}:{store}-role"}


# --- store values ----------------------------------------------------------------------------


def test_loki_is_one_monolithic_pod_on_tsdb_v13_in_its_bucket_without_minio_gateway_canary_or_caches(run):
    loki = chart_values(run, "loki")
    assert loki["deploymentMode"] == "Monolithic", "single binary, by the chart's current name"
    assert loki["singleBinary"]["replicas"] == 1
    assert all(loki[role]["replicas"] == 0 for role in ("read", "write", "backend"))
    config = loki["loki"]
    assert config["commonConfig"] == {"replication_factor": 1}
    assert config["storage"] == {
        "type": "s3",
        "bucketNames": {"chunks": bucket_name("loki")},
        "s3": {"region": REGION, "endpoint": f"s3.{REGION}.amazonaws.com"},
    }
    (period,) = config["schemaConfig"]["configs"]
    assert (period["store"], period["schema"], period["object_store"]) == ("tsdb", "v13", "s3")
    assert config["limits_config"]["allow_structured_metadata"] is True, "native OTLP ingestion"
    for disabled in ("gateway", "lokiCanary", "test", "chunksCache", "resultsCache", "minio"):
        assert loki[disabled]["enabled"] is False, disabled


def test_tempo_stores_traces_in_its_bucket_and_remote_writes_span_metrics_with_exemplars_to_mimir(run):
    tempo = chart_values(run, "tempo")["tempo"]
    assert tempo["storage"]["trace"]["backend"] == "s3"
    assert tempo["storage"]["trace"]["s3"] == {
        "bucket": bucket_name("tempo"),
        "endpoint": f"s3.{REGION}.amazonaws.com",
        "region": REGION,
    }
    generator = tempo["metricsGenerator"]
    assert generator["enabled"] is True
    (remote_write,) = generator["storage"]["remote_write"]
    assert remote_write == {
        "url": f"http://mimir-distributor.{NAMESPACE}:8080{mimir.PUSH_PATH}",
        "send_exemplars": True,
    }
    defaults = tempo["overrides"]["defaults"]["metrics_generator"]
    assert set(defaults["processors"]) == {"service-graphs", "span-metrics"}
    assert defaults["trace_id_label_name"] == "trace_id"
    assert tempo["receivers"]["otlp"]["protocols"]["grpc"]["endpoint"] == "0.0.0.0:4317"
    assert set(tempo["receivers"]) == {"otlp"}, "the chart's Jaeger receivers are left as the chart has them"


def test_mimir_runs_the_classic_architecture_one_replica_each_with_blocks_in_its_bucket(run):
    chart = chart_values(run, "mimir")
    config = chart["mimir"]["structuredConfig"]
    assert config["ingest_storage"]["enabled"] is False and chart["kafka"]["enabled"] is False
    assert config["ingester"]["ring"]["replication_factor"] == 1
    assert config["store_gateway"]["sharding_ring"]["replication_factor"] == 1
    assert config["common"]["storage"] == {
        "backend": "s3",
        "s3": {"bucket_name": bucket_name("mimir"), "endpoint": f"s3.{REGION}.amazonaws.com", "region": REGION},
    }
    assert config["blocks_storage"]["storage_prefix"] == "blocks"
    assert config["limits"]["max_global_exemplars_per_user"] > 0, "exemplars from Tempo are kept"
    for component in values.MIMIR_COMPONENTS_MIB:
        assert chart[component]["replicas"] == 1, component
    for zoned in ("ingester", "store_gateway"):
        assert chart[zoned]["zoneAwareReplication"]["enabled"] is False
    for disabled in ("minio", "rollout_operator", "alertmanager", "overrides_exporter", "gateway"):
        assert chart[disabled]["enabled"] is False, disabled


def test_every_store_expires_data_after_a_week(run):
    loki = chart_values(run, "loki")["loki"]
    assert loki["limits_config"]["retention_period"] == "168h"
    assert loki["compactor"] == {"retention_enabled": True, "delete_request_store": "s3"}
    overrides = chart_values(run, "tempo")["tempo"]["overrides"]["defaults"]
    assert overrides["compaction"]["block_retention"] == "168h", "where Tempo 3's backend worker reads it"
    limits = chart_values(run, "mimir")["mimir"]["structuredConfig"]["limits"]
    assert limits["compactor_blocks_retention_period"] == "7d"


def test_write_ahead_logs_sit_on_claims_of_the_retained_class(run):
    loki = chart_values(run, "loki")["singleBinary"]["persistence"]
    assert (loki["enabled"], loki["storageClass"]) == (True, "gp3-retain")
    assert loki["enableStatefulSetAutoDeletePVC"] is False, "the claim outlives the release"
    tempo = chart_values(run, "tempo")["persistence"]
    assert (tempo["enabled"], tempo["storageClassName"]) == (True, "gp3-retain")
    ingester = chart_values(run, "mimir")["ingester"]["persistentVolume"]
    assert (ingester["enabled"], ingester["storageClass"]) == (True, "gp3-retain")


def test_mimirs_ruler_evaluates_the_lab_rule_files_from_a_configmap(run, objects):
    rules = named(objects, "ConfigMap", "mimir-rules")
    assert rules["data"] == alerts.rule_files(BUDGET)
    assert f"> {BUDGET:g}" in rules["data"]["llm-agents.yaml"]
    chart = chart_values(run, "mimir")
    assert chart["mimir"]["structuredConfig"]["ruler_storage"] == {
        "backend": "local",
        "local": {"directory": mimir.RULES_PATH},
    }
    ruler = chart["ruler"]
    assert ruler["extraVolumes"] == [{"name": "rules", "configMap": {"name": "mimir-rules"}}]
    assert ruler["extraVolumeMounts"] == [
        {"name": "rules", "mountPath": f"{mimir.RULES_PATH}/{mimir.TENANT}", "readOnly": True}
    ]


def test_lokis_ruler_evaluates_the_docker_stacks_log_rules_from_a_configmap_in_the_single_binary(run, objects):
    rules = named(objects, "ConfigMap", "loki-rules")
    assert rules["data"] == log_alerts.rule_files()
    chart = chart_values(run, "loki")
    assert chart["loki"]["rulerConfig"] == loki.config()["ruler"], "local storage and the API, as on Docker"
    assert "ruler" not in chart["loki"]["storage"]["bucketNames"], "rules come from the ConfigMap, not the bucket"
    single_binary = chart["singleBinary"]
    assert single_binary["extraVolumes"] == [{"name": "rules", "configMap": {"name": "loki-rules"}}]
    assert single_binary["extraVolumeMounts"] == [
        {"name": "rules", "mountPath": f"{loki.RULES_PATH}/{loki.TENANT}", "readOnly": True}
    ]


# --- Grafana ---------------------------------------------------------------------------------


def test_grafanas_datasources_are_the_docker_stacks_with_in_cluster_urls(run):
    urls = store_urls(NAMESPACE)
    provisioned = chart_values(run, "grafana")["datasources"]["datasources.yaml"]
    assert provisioned == grafana.datasources(urls["metrics_query"], urls["logs"], urls["traces"])
    by_uid = {source["uid"]: source for source in provisioned["datasources"]}
    assert {uid: source["url"] for uid, source in by_uid.items()} == {
        "mimir": f"http://mimir-query-frontend.{NAMESPACE}:8080/prometheus",
        "loki": f"http://loki.{NAMESPACE}:3100",
        "tempo": f"http://tempo.{NAMESPACE}:3200",
    }
    traces = by_uid["tempo"]["jsonData"]
    assert traces["tracesToLogsV2"]["datasourceUid"] == "loki"
    assert traces["tracesToMetrics"]["datasourceUid"] == traces["serviceMap"]["datasourceUid"] == "mimir"
    assert by_uid["mimir"]["jsonData"]["exemplarTraceIdDestinations"][0]["datasourceUid"] == "tempo"
    assert by_uid["loki"]["jsonData"]["derivedFields"][0]["datasourceUid"] == "tempo"


def test_grafanas_dashboards_are_the_docker_stacks_files_mounted_where_its_provider_reads(run, objects):
    boards = named(objects, "ConfigMap", "grafana-dashboards")
    assert boards["data"] == dashboards.dashboard_files()
    chart = chart_values(run, "grafana")
    assert chart["dashboardsConfigMaps"] == {"llm-infra-lab": "grafana-dashboards"}
    (provider,) = chart["dashboardProviders"]["dashboardproviders.yaml"]["providers"]
    assert provider["options"]["path"] == "/var/lib/grafana/dashboards/llm-infra-lab", "the chart's mount path"
    assert (provider["disableDeletion"], provider["allowUiUpdates"]) == (True, False)


def test_grafanas_admin_password_is_generated_into_a_secret_and_anonymous_access_is_off(run, objects):
    chart = chart_values(run, "grafana")
    assert chart["admin"] == {
        "existingSecret": "grafana-admin",
        "userKey": "admin-user",
        "passwordKey": "admin-password",
    }
    assert "adminPassword" not in chart
    assert chart["envValueFrom"]["GF_SECURITY_SECRET_KEY"]["secretKeyRef"] == {
        "name": "grafana-admin",
        "key": "secret-key",
    }
    assert chart["env"]["GF_AUTH_ANONYMOUS_ENABLED"] == "false"
    assert chart["env"]["GF_USERS_ALLOW_SIGN_UP"] == "false"
    # The chart sets these itself: port 3000, the admin user from the Secret, GOMEMLIMIT from the limit.
    assert not {"GF_SERVER_HTTP_PORT", "GF_SECURITY_ADMIN_USER", "GOMEMLIMIT"} & chart["env"].keys()
    secret = run.named("kubernetes:core/v1:Secret", "grafana-admin")
    assert secret.has_secret_inputs
    assert secret["stringData"]["admin-password"].startswith("generated-grafana-admin-password-")
    assert "grafanaAdminPassword" in run.run.secret_outputs
    assert chart["persistence"]["enabled"] is False and chart["initChownData"]["enabled"] is False


def test_grafana_is_routed_through_the_lab_gateway_over_https(run, objects):
    (route,) = [r for r in run.of_type("kubernetes:gateway.networking.k8s.io/v1:HTTPRoute") if r.name == "grafana"]
    assert route["metadata"]["namespace"] == NAMESPACE
    assert route["spec"]["hostnames"] == [f"grafana.{DOMAIN}"]
    assert route["spec"]["rules"] == [{"backendRefs": [{"name": "grafana", "port": 80}]}]
    assert route["spec"]["parentRefs"][0]["sectionName"] == "https-grafana"
    assert run.run.outputs["grafanaUrl"] == f"https://grafana.{DOMAIN}"


# --- Alloy -----------------------------------------------------------------------------------


def test_alloy_exports_to_the_stores_in_the_cluster_and_collects_the_given_namespaces(objects):
    config = alloy_view.in_cluster(objects)
    assert f'endpoint = "tempo.{NAMESPACE}:4317"' in config
    assert f'url            = "http://mimir-distributor.{NAMESPACE}:8080/api/v1/push"' in config
    assert f'endpoint = "http://loki.{NAMESPACE}:3100/otlp"' in config
    assert "send_exemplars = true" in config
    assert 'names = string.split("agents,mlops-system", ",")' in config
    assert "otelcol.exporter.otlp.gateway" not in config


def test_alloys_spec_can_be_known_before_the_stack_for_the_agents(run):
    spec = alloy_spec(NAMESPACE, LOG_NAMESPACES)
    assert run.run.outputs["otlp"] == spec.url("otlp-grpc") == f"http://alloy.{NAMESPACE}:4317"


def test_alloy_may_reach_exactly_the_stores_and_the_api_server(objects):
    policy = named(objects, "NetworkPolicy", "alloy")["spec"]
    egress = {
        (json.dumps(rule["to"], sort_keys=True), port["port"], port["protocol"])
        for rule in policy["egress"]
        for port in rule["ports"]
    }

    def pods(space: str, label: str, app: str) -> str:
        peer = {
            "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": space}},
            "podSelector": {"matchLabels": {label: app}},
        }
        return json.dumps([peer], sort_keys=True)

    dns = pods("kube-system", "k8s-app", "kube-dns")
    assert egress == {
        (pods(NAMESPACE, "app.kubernetes.io/name", "tempo"), 4317, "TCP"),
        (pods(NAMESPACE, "app.kubernetes.io/name", "mimir"), 8080, "TCP"),
        (pods(NAMESPACE, "app.kubernetes.io/name", "loki"), 3100, "TCP"),
        (json.dumps([{"ipBlock": {"cidr": "0.0.0.0/0"}}]), 443, "TCP"),
        (dns, 53, "UDP"),
        (dns, 53, "TCP"),
    }, "the stores, the API server and DNS; no OTLP to anywhere"
    ingress_ports = {port["port"] for rule in policy["ingress"] for port in rule["ports"]}
    assert ingress_ports == {4317, 4318}


# --- pods: security and budget -----------------------------------------------------------------


def security_contexts(run: AwsRun) -> list[tuple[str, dict, dict]]:
    """(where, pod security context, container security context) of every pod the charts run."""
    loki, tempo, chart, grafana_ = (chart_values(run, name) for name in ("loki", "tempo", "mimir", "grafana"))
    return [
        ("loki", loki["loki"]["podSecurityContext"], loki["loki"]["containerSecurityContext"]),
        ("tempo", tempo["securityContext"], tempo["tempo"]["securityContext"]),
        *(
            (f"mimir {c}", chart["rbac"]["podSecurityContext"], chart[c]["containerSecurityContext"])
            for c in values.MIMIR_COMPONENTS_MIB
        ),
        ("grafana", grafana_["securityContext"], grafana_["containerSecurityContext"]),
    ]


def test_every_chart_pod_meets_the_restricted_pod_security_standard(run):
    for where, pod, container in security_contexts(run):
        assert pod["runAsNonRoot"] is True and pod["runAsUser"] > 0, where
        assert pod["seccompProfile"] == {"type": "RuntimeDefault"}, where
        assert container["allowPrivilegeEscalation"] is False, where
        assert container["capabilities"] == {"drop": ["ALL"]}, where
        assert container["readOnlyRootFilesystem"] is True, where
    assert chart_values(run, "grafana")["testFramework"]["enabled"] is False, "its test pod sets no context"


def chart_resources(run: AwsRun) -> dict[str, dict]:
    loki, tempo, chart, grafana_ = (chart_values(run, name) for name in ("loki", "tempo", "mimir", "grafana"))
    return {
        "loki": loki["singleBinary"]["resources"],
        "tempo": tempo["tempo"]["resources"],
        **{f"mimir-{c}": chart[c]["resources"] for c in values.MIMIR_COMPONENTS_MIB},
        "grafana": grafana_["resources"],
    }


def test_every_pod_requests_the_memory_it_is_limited_to_and_the_stack_fits_the_budget(run, objects):
    budget = memory_requests_mib()
    for pod, resources in chart_resources(run).items():
        assert resources["requests"]["memory"] == resources["limits"]["memory"] == f"{budget[pod]}Mi", pod
        assert resources["requests"]["cpu"], pod
    alloy = named(objects, "Deployment", "alloy")["spec"]["template"]["spec"]["containers"][0]["resources"]
    assert alloy["requests"]["memory"] == alloy["limits"]["memory"] == f"{budget['alloy']}Mi"
    assert len(budget) == EXPECTED_PODS
    assert sum(budget.values()) == EXPECTED_MEMORY_MIB


# --- network and schemas ------------------------------------------------------------------------


def test_chart_pods_admit_only_their_namespace_and_grafana_only_the_gateway(objects):
    stores = named(objects, "NetworkPolicy", "lgtm-stores")["spec"]
    (expression,) = stores["podSelector"]["matchExpressions"]
    assert (expression["key"], set(expression["values"])) == ("app.kubernetes.io/instance", set(STORES))
    assert stores["ingress"] == [
        {"from": [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": NAMESPACE}}}]}
    ]
    grafana_policy = named(objects, "NetworkPolicy", "grafana")["spec"]
    (rule,) = grafana_policy["ingress"]
    assert rule["from"] == [
        {
            "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "gateway-system"}},
            "podSelector": {"matchLabels": {"app.kubernetes.io/name": "traefik"}},
        }
    ]
    assert rule["ports"] == [{"port": 3000, "protocol": "TCP"}]


def test_the_stacks_own_kubernetes_objects_are_schema_valid(objects):
    ours = [o for o in objects if o["metadata"].get("namespace") == NAMESPACE and o["kind"] != "HTTPRoute"]
    assert {o["kind"] for o in ours} >= {"ConfigMap", "Secret", "NetworkPolicy", "Deployment", "Service"}
    assert schema_errors(ours) == {}
