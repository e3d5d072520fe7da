"""Model serving: KServe's pinned charts in Standard mode, one iris model behind the gateway, fenced in.

The InferenceService and ServingRuntime are custom resources kubernetes-validate has no schema for:
their KServe-only fields are checked against the names KServe's API types define, and the Kubernetes
parts they embed (a PodSpec in the predictor, a Container in the model and the runtime) strictly
against Kubernetes' own schemas.
"""

from __future__ import annotations

import json

import pulumi
import pulumi_kubernetes as k8s
import pytest

from components.gateway.traefik_gateway import ROUTES_LABEL, GatewayTls, TraefikGateway, TraefikGatewayArgs
from components.runtime.kubernetes_service import namespace
from components.serving.kserve import KSERVE_VERSION, NO_MODEL_YET, ModelServing, ModelServingArgs, ServedModel
from tests.aws.support import AwsRun, run_aws
from tests.gateway_api_schema import gateway_api_errors
from tests.k8s_view import checkov, manifests, of_kind, schema_errors

DOMAIN = "lab.example.com"
MODEL_URI = "s3://llm-infra-lab-dev-artifacts-123456789012-us-east-1/mlflow/1/models/m-0123abcd/artifacts"
"""A promoted model as ml/scripts/model_uri.py prints it."""
RELEASE = "kubernetes:helm.sh/v3:Release"
ISVC = "kubernetes:serving.kserve.io/v1beta1:InferenceService"
RUNTIME = "kubernetes:serving.kserve.io/v1alpha1:ServingRuntime"
COMPONENT_EXTENSION_FIELDS = {
    "minReplicas", "maxReplicas", "scaleTarget", "scaleMetric", "scaleMetricType", "containerConcurrency",
    "timeout", "canaryTrafficPercent", "logger", "batcher", "labels", "annotations", "deploymentStrategy",
    "autoScaling",
}  # fmt: skip
"""KServe's ComponentExtensionSpec (pkg/apis/serving/v1beta1/component.go): the predictor's own fields."""
MODEL_FIELDS = {"modelFormat", "runtime", "storageUri", "protocolVersion", "storage"}
"""ModelSpec's fields beside the Container it embeds (pkg/apis/serving/v1beta1/predictor_model.go)."""
RUNTIME_FIELDS = {"annotations", "supportedModelFormats", "protocolVersions", "containers", "multiModel", "disabled"}
GATEWAY_PODS = {
    "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "gateway-system"}},
    "podSelector": {"matchLabels": {"app.kubernetes.io/name": "traefik"}},
}


def serve(model: ServedModel | None = None, **changes) -> AwsRun:
    """KServe and a model behind an HTTPS gateway for `models.lab.example.com`, as the production phase wires it."""
    if model is None and "no_model" not in changes:
        model = ServedModel(MODEL_URI, service_account="model-reader", **changes)
    changes.pop("no_model", None)

    def program():
        opts = pulumi.ResourceOptions()
        gateway = TraefikGateway(
            "gateway",
            TraefikGatewayArgs(
                target=namespace("gateway-system", False, opts),
                domain=DOMAIN,
                tls=GatewayTls(cluster_issuer="letsencrypt-staging", hosts=("models",)),
            ),
        )
        cert_manager = k8s.helm.v3.Release(
            "cert-manager",
            chart="cert-manager",
            version="v1.19.1",
            repository_opts={"repo": "https://charts.jetstack.io"},
        )
        ModelServing(
            "serving",
            ModelServingArgs(
                controller_target=namespace("kserve", False, opts),
                target=namespace("serving", False, opts, **{ROUTES_LABEL: "true"}),
                gateway=gateway,
                cert_manager=cert_manager,
                model=model,
            ),
        )

    return run_aws(program)


@pytest.fixture(scope="module")
def run() -> AwsRun:
    return serve()


@pytest.fixture(scope="module")
def objects(run) -> list[dict]:
    return manifests(run.run)


def predictor(run: AwsRun) -> dict:
    return run.named(ISVC, "iris")["spec"]["predictor"]


def values(run: AwsRun) -> dict:
    return run.named(RELEASE, "kserve")["values"]["kserve"]


def as_pod(pod_spec: dict, containers: list[dict]) -> dict:
    spec = {**pod_spec, "containers": containers}
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "check"}, "spec": spec}


def memory(resources: dict) -> int:
    requested, limit = resources["requests"]["memory"], resources["limits"]["memory"]
    assert requested == limit and requested.endswith("Mi"), "memory requested is memory guaranteed"
    assert resources["requests"]["cpu"], "a CPU request schedules and scales the pod"
    return int(requested.removesuffix("Mi"))


def test_pinned_charts_install_crds_then_the_controller_after_cert_manager(run):
    crds, controller = run.named(RELEASE, "kserve-crd"), run.named(RELEASE, "kserve")
    assert crds["chart"] == "oci://ghcr.io/kserve/charts/kserve-crd"
    assert controller["chart"] == "oci://ghcr.io/kserve/charts/kserve-resources"
    assert crds["version"] == controller["version"], "the CRDs of the controller's own release"
    (server,) = run.named(RUNTIME, "kserve-sklearnserver")["spec"]["containers"]
    assert server["image"] == f"kserve/sklearnserver:{controller['version']}", "the runtime of the same release"
    assert controller["namespace"] == crds["namespace"] == "kserve"
    assert controller["atomic"] and crds["atomic"]
    assert run.depends_on(controller, crds) and run.depends_on(controller, run.named(RELEASE, "cert-manager"))
    runtime, isvc = run.named(RUNTIME, "kserve-sklearnserver"), run.named(ISVC, "iris")
    assert run.depends_on(runtime, controller), "the controller's webhook validates ServingRuntimes"
    assert run.depends_on(isvc, controller) and run.depends_on(isvc, runtime)


def test_standard_mode_without_knative_istio_or_an_ingress_of_kserves(run):
    controller = values(run)["controller"]
    assert controller["deploymentMode"] == "Standard"
    assert run.named(ISVC, "iris")["metadata"]["annotations"] == {
        "serving.kserve.io/deploymentMode": "Standard",
        "serving.kserve.io/autoscalerClass": "hpa",
    }
    assert controller["gateway"] == {
        "disableIngressCreation": True,
        "ingressGateway": {"enableGatewayApi": False, "createGateway": False},
    }
    stated = json.dumps(run.named(RELEASE, "kserve")["values"]).lower()
    assert not any(word in stated for word in ("knative", "istio", "serverless", "rawdeployment"))


def test_controller_and_storage_initializer_are_small_and_restricted(run):
    kserve = values(run)
    controller = kserve["controller"]
    assert controller["securityContext"] == {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}}
    containers = {
        "manager": (controller["resources"], controller["containerSecurityContext"]),
        "kube-rbac-proxy": (controller["rbacProxy"]["resources"], controller["rbacProxy"]["securityContext"]),
        "storage-initializer": (kserve["storage"]["resources"], kserve["storage"]["containerSecurityContext"]),
    }
    for name, (resources, security) in containers.items():
        assert memory(resources) <= 256, name
        assert security["allowPrivilegeEscalation"] is False and security["privileged"] is False, name
        assert security["capabilities"] == {"drop": ["ALL"]} and security["runAsNonRoot"] is True, name
        assert security["seccompProfile"] == {"type": "RuntimeDefault"}, name
    assert controller["imagePullPolicy"] == "IfNotPresent"


def test_the_labs_model_runs_on_the_pinned_sklearn_runtime_read_as_its_service_account(run):
    spec = predictor(run)
    model = spec["model"]
    assert model["modelFormat"] == {"name": "sklearn"}
    assert model["storageUri"] == MODEL_URI, "the promoted model in the lab's bucket, not a public example"
    assert spec["serviceAccountName"] == "model-reader", "the IRSA role that may read it"
    runtime = run.named(RUNTIME, "kserve-sklearnserver")
    assert runtime["metadata"]["namespace"] == "serving" and model["runtime"] == runtime["metadata"]["name"]
    assert {"name": "sklearn", "version": "1", "autoSelect": True, "priority": 1} in runtime["spec"][
        "supportedModelFormats"
    ]
    (server,) = runtime["spec"]["containers"]
    assert server["image"] == "kserve/sklearnserver:v0.20.0"
    assert "--http_port=8080" in server["args"] and "--model_dir=/mnt/models" in server["args"]


def test_the_predictor_scales_on_cpu_between_its_bounds(run):
    spec = predictor(run)
    assert (spec["minReplicas"], spec["maxReplicas"]) == (1, 2)
    assert (spec["scaleMetric"], spec["scaleTarget"]) == ("cpu", 80)
    assert memory(spec["model"]["resources"]) == 384
    wider = predictor(serve(ServedModel(MODEL_URI, min_replicas=2, max_replicas=4)))
    assert (wider["minReplicas"], wider["maxReplicas"]) == (2, 4)


def test_predictor_pods_meet_the_restricted_standard_without_an_api_token(run):
    spec = predictor(run)
    assert spec["automountServiceAccountToken"] is False
    assert spec["securityContext"] == {
        "runAsNonRoot": True,
        "runAsUser": 1000,
        "runAsGroup": 1000,
        "seccompProfile": {"type": "RuntimeDefault"},
    }
    security = spec["model"]["securityContext"]
    assert security["allowPrivilegeEscalation"] is False and security["capabilities"] == {"drop": ["ALL"]}


def test_custom_resources_use_kserves_fields_and_valid_kubernetes_parts(run):
    spec = predictor(run)
    pod_fields = {key: value for key, value in spec.items() if key not in COMPONENT_EXTENSION_FIELDS | {"model"}}
    assert set(spec) - set(pod_fields) - {"model"} <= COMPONENT_EXTENSION_FIELDS
    model = spec["model"]
    container = {key: value for key, value in model.items() if key not in MODEL_FIELDS}
    runtime = run.named(RUNTIME, "kserve-sklearnserver")["spec"]
    assert set(runtime) <= RUNTIME_FIELDS
    pods = [
        as_pod(pod_fields, [{"name": "kserve-container", "image": "kserve/sklearnserver:v0.20.0", **container}]),
        as_pod({}, runtime["containers"]),
    ]
    assert schema_errors(pods) == {}
    assert set(model) - set(container) == {"modelFormat", "runtime", "storageUri"}


def test_models_host_routes_to_the_predictor_service_over_https(run, objects):
    route = run.named("kubernetes:gateway.networking.k8s.io/v1:HTTPRoute", "models")
    assert route["metadata"]["namespace"] == "serving"
    assert route["spec"]["hostnames"] == [f"models.{DOMAIN}"]
    assert route["spec"]["rules"] == [{"backendRefs": [{"name": "iris-predictor", "port": 80}]}]
    (parent,) = route["spec"]["parentRefs"]
    assert parent == {"name": "lab", "namespace": "gateway-system", "sectionName": "https-models"}
    (rendered,) = [o for o in of_kind(objects, "HTTPRoute") if o["metadata"]["name"] == "models"]
    assert gateway_api_errors(rendered) == []


def test_the_url_is_the_v1_predict_endpoint_of_the_model():
    urls = []

    def program():
        gateway = TraefikGateway(
            "gateway",
            TraefikGatewayArgs(
                target=namespace("gateway-system", False, pulumi.ResourceOptions()),
                domain=DOMAIN,
                tls=GatewayTls(cluster_issuer="letsencrypt-staging", hosts=("models",)),
            ),
        )
        serving = ModelServing(
            "serving",
            ModelServingArgs(
                controller_target=namespace("kserve", False, pulumi.ResourceOptions()),
                target=namespace("serving", False, pulumi.ResourceOptions()),
                gateway=gateway,
                cert_manager=gateway.release,
                model=ServedModel(MODEL_URI, name="flowers"),
            ),
        )
        urls.append(serving.url)

    run_aws(program)
    assert urls == [f"https://models.{DOMAIN}/v1/models/flowers:predict"]


def test_only_the_gateway_reaches_the_model_server_which_reaches_only_dns_and_https(objects):
    (policy,) = of_kind(objects, "NetworkPolicy")
    assert policy["metadata"] == {
        "name": "iris-predictor",
        "namespace": "serving",
        "labels": {
            "app.kubernetes.io/name": "iris",
            "app.kubernetes.io/part-of": "llm-infra-lab",
            "app.kubernetes.io/managed-by": "pulumi",
        },
    }
    spec = policy["spec"]
    assert spec["podSelector"] == {
        "matchLabels": {"serving.kserve.io/inferenceservice": "iris", "component": "predictor"}
    }
    assert spec["policyTypes"] == ["Ingress", "Egress"]
    assert spec["ingress"] == [{"from": [GATEWAY_PODS], "ports": [{"port": 8080, "protocol": "TCP"}]}]
    https, dns = spec["egress"]
    assert https == {"to": [{"ipBlock": {"cidr": "0.0.0.0/0"}}], "ports": [{"port": 443, "protocol": "TCP"}]}
    assert {port["port"] for port in dns["ports"]} == {53}
    assert dns["to"][0]["podSelector"] == {"matchLabels": {"k8s-app": "kube-dns"}}


def predictor_deployment(run: AwsRun) -> dict:
    """The Deployment KServe renders for the predictor: our pod fields, runtime and model merged, initializer first."""
    spec = predictor(run)
    (server,) = run.named(RUNTIME, "kserve-sklearnserver")["spec"]["containers"]
    storage = values(run)["storage"]
    initializer = {
        "name": "storage-initializer",
        "image": f"kserve/storage-initializer:{KSERVE_VERSION}",
        "args": [spec["model"]["storageUri"], "/mnt/models"],
        "resources": storage["resources"],
        "securityContext": storage["containerSecurityContext"],
    }
    model = {key: value for key, value in spec["model"].items() if key not in MODEL_FIELDS}
    pod = {key: value for key, value in spec.items() if key not in COMPONENT_EXTENSION_FIELDS | {"model"}}
    labels = {"serving.kserve.io/inferenceservice": "iris", "component": "predictor", "app": "isvc.iris-predictor"}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "iris-predictor", "namespace": "serving", "labels": labels},
        "spec": {
            "selector": {"matchLabels": {"app": "isvc.iris-predictor"}},
            "template": {
                "metadata": {"labels": labels},
                "spec": {**pod, "initContainers": [initializer], "containers": [{**server, **model}]},
            },
        },
    }


BY_DESIGN = {
    "CKV_K8S_15": "KServe sets the pull policy; tags are pinned",
    "CKV_K8S_43": "images are pinned by version tag, as everywhere in the lab",
    "CKV_K8S_22": "KServe's Python servers are not known to run on a read-only root; no scratch volume is mounted",
    "CKV_K8S_40": "uid 1000 is the user KServe's images are built for",
}


def test_objects_are_schema_valid_and_the_predictor_pod_checkov_clean_but_for_pinned_images(objects, run):
    policies = of_kind(objects, "NetworkPolicy")
    deployment = predictor_deployment(run)
    assert schema_errors([*policies, deployment]) == {}
    report = checkov([*policies, deployment])
    failed = {f["check_id"] for f in report["failed"]}
    assert failed <= set(BY_DESIGN), [(f["check_id"], f["check_name"]) for f in report["failed"]]
    assert report["summary"]["passed"] > 0 and report["summary"]["parsing_errors"] == 0


def test_memory_at_minimum_scale_fits_a_third_of_a_node(run):
    kserve = values(run)
    controller = memory(kserve["controller"]["resources"]) + memory(kserve["controller"]["rbacProxy"]["resources"])
    # Init containers run first: a pod reserves the larger of the initializer and the model server.
    model_pod = max(memory(kserve["storage"]["resources"]), memory(predictor(run)["model"]["resources"]))
    assert controller + model_pod * predictor(run)["minReplicas"] == 704


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"name": "Iris"}, "DNS label"),
        ({"name": "9iris"}, "DNS label"),
        ({"storage_uri": "http://example.com/model"}, "must be one of"),
        ({"storage_uri": "pvc://models/iris"}, "must be one of"),
        ({"min_replicas": 0}, "1 <= min <= max"),
        ({"min_replicas": 3, "max_replicas": 2}, "1 <= min <= max"),
    ],
    ids=["uppercase", "leading-digit", "plain-http", "pvc", "zero-replicas", "min-above-max"],
)
def test_what_cannot_serve_behind_the_policy_is_refused(changes, message):
    with pytest.raises(ValueError, match=message):
        ServedModel(**{"storage_uri": MODEL_URI, **changes})


def test_without_a_model_kserve_waits_with_its_runtime_and_nothing_is_routed():
    run = serve(no_model=True)
    routes = [r.name for r in run.of_type("kubernetes:gateway.networking.k8s.io/v1:HTTPRoute")]
    assert not run.of_type(ISVC) and "models" not in routes
    assert not run.of_type("kubernetes:networking.k8s.io/v1:NetworkPolicy")
    assert run.of_type(RUNTIME), "the runtime is ready for the first promoted model"
    assert "servedModelUri" in NO_MODEL_YET, "the URL output says what to set"
