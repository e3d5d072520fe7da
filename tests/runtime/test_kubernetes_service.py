"""The Kubernetes renderer on its own: one ServiceSpec in, the objects a runtime needs out."""

from __future__ import annotations

import dataclasses

import pulumi
import pytest

from components.runtime.kubernetes_service import KubernetesService, KubernetesServiceArgs, Scaling, namespace
from components.runtime.spec import ConfigFile, DataVolume, HealthCheck, Image, Port, ServiceSpec
from tests.harness import ProgramRun, run_program
from tests.k8s_view import manifests, of_kind, schema_errors

SPEC = ServiceSpec(
    name="echo",
    image=Image("example/echo", "1.2.3"),
    ports=(Port("http", 8080),),
    memory_mib=64,
    health=HealthCheck(port="http", path="/ready", command=None),
    env={"MODE": "demo"},
    secret_env={"TOKEN": "s3cret"},
    config_files=(ConfigFile("/etc/echo/echo.yaml", "greeting: hello\n"),),
    user="10001:10001",
    scratch_paths=("/tmp",),
    namespace="lab",
)


def render(spec: ServiceSpec, target_namespace: str = "lab", scaling: Scaling | None = None) -> ProgramRun:
    def program():
        target = namespace(target_namespace, True, pulumi.ResourceOptions())
        KubernetesService(spec.name, KubernetesServiceArgs(spec=spec, target=target, scaling=scaling))

    return run_program(program, "local")


def workload(run: ProgramRun) -> dict:
    (rendered,) = [o for o in manifests(run) if o["kind"] in ("Deployment", "StatefulSet")]
    return rendered


def test_a_stateless_spec_is_a_deployment_with_its_config_secret_and_scratch_space():
    run = render(SPEC).raise_error()
    deployment = workload(run)
    assert deployment["kind"] == "Deployment"
    pod = deployment["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    env = {e["name"]: e for e in container["env"]}
    assert env["MODE"] == {"name": "MODE", "value": "demo"}
    assert env["TOKEN"]["valueFrom"]["secretKeyRef"] == {"name": "echo-env", "key": "TOKEN"}
    assert "s3cret" not in str(deployment)
    (secret,) = run.of_type("kubernetes:core/v1:Secret")
    assert secret.has_secret_inputs
    mounts = {m["mountPath"]: m for m in container["volumeMounts"]}
    assert (
        mounts["/etc/echo/echo.yaml"]["subPath"] == "etc_echo_echo.yaml" and mounts["/etc/echo/echo.yaml"]["readOnly"]
    )
    scratch = next(v for v in pod["volumes"] if v["name"] == mounts["/tmp"]["name"])
    assert scratch["emptyDir"] == {"sizeLimit": "64Mi"}


def test_a_new_config_rolls_the_pods():
    before = workload(render(SPEC).raise_error())["spec"]["template"]["metadata"]["annotations"]
    changed = dataclasses.replace(SPEC, config_files=(ConfigFile("/etc/echo/echo.yaml", "greeting: hi\n"),))
    after = workload(render(changed).raise_error())["spec"]["template"]["metadata"]["annotations"]
    assert before != after


def test_a_spec_with_data_is_a_stateful_set_over_kept_claims():
    stateful = dataclasses.replace(SPEC, volumes=(DataVolume("data", "/var/lib/echo", size_gib=3),))
    run = render(stateful).raise_error()
    statefulset = workload(run)
    assert statefulset["kind"] == "StatefulSet" and statefulset["spec"]["replicas"] == 1
    assert statefulset["spec"]["template"]["spec"]["securityContext"]["fsGroup"] == 10001
    (claim,) = run.of_type("kubernetes:core/v1:PersistentVolumeClaim")
    assert claim["spec"]["resources"]["requests"]["storage"] == "3Gi"
    assert claim.protect and claim.retain_on_delete
    (network_policy,) = of_kind(manifests(run), "NetworkPolicy")
    assert "ingress" not in network_policy["spec"] or network_policy["spec"]["ingress"] == []


@pytest.mark.parametrize(
    ("spec", "target_namespace", "message"),
    [
        (dataclasses.replace(SPEC, user=None), "lab", "needs a non-root user"),
        (dataclasses.replace(SPEC, user="0:0"), "lab", "needs a non-root user"),
        (SPEC, "elsewhere", "specified for namespace lab, rendered into elsewhere"),
    ],
    ids=["no-user", "root", "wrong-namespace"],
)
def test_what_cannot_run_safely_is_refused(spec, target_namespace, message):
    run = render(spec, target_namespace)
    assert isinstance(run.error, ValueError) and message in str(run.error)


def test_a_scaled_service_leaves_its_replicas_to_an_autoscaler_and_loses_one_pod_at_most():
    run = render(SPEC, scaling=Scaling(minimum=2, maximum=5, cpu_percent=60)).raise_error()
    objects = manifests(run)
    assert not schema_errors(objects)
    deployment = workload(run)
    assert "replicas" not in deployment["spec"], "a stated replica count would reset the autoscaler on every update"
    (spread,) = deployment["spec"]["template"]["spec"]["topologySpreadConstraints"]
    assert spread["topologyKey"] == "kubernetes.io/hostname" and spread["whenUnsatisfiable"] == "ScheduleAnyway"
    assert spread["labelSelector"] == deployment["spec"]["selector"]
    (autoscaler,) = of_kind(objects, "HorizontalPodAutoscaler")
    assert autoscaler["spec"]["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": "echo"}
    assert (autoscaler["spec"]["minReplicas"], autoscaler["spec"]["maxReplicas"]) == (2, 5)
    (metric,) = autoscaler["spec"]["metrics"]
    assert metric["resource"] == {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 60}}
    (budget,) = of_kind(objects, "PodDisruptionBudget")
    assert budget["spec"] == {"maxUnavailable": 1, "selector": deployment["spec"]["selector"]}


def test_an_unscaled_service_has_one_replica_and_no_autoscaler():
    objects = manifests(render(SPEC).raise_error())
    assert not of_kind(objects, "HorizontalPodAutoscaler") and not of_kind(objects, "PodDisruptionBudget")
    (deployment,) = of_kind(objects, "Deployment")
    assert deployment["spec"]["replicas"] == 1
    assert "topologySpreadConstraints" not in deployment["spec"]["template"]["spec"]


@pytest.mark.parametrize(("minimum", "maximum", "cpu"), [(1, 3, 70), (3, 2, 70), (2, 4, 5)])
def test_scaling_that_cannot_keep_a_service_up_is_refused(minimum, maximum, cpu):
    with pytest.raises(ValueError, match="scaling needs|cpu_percent"):
        Scaling(minimum=minimum, maximum=maximum, cpu_percent=cpu)


def test_a_service_with_data_cannot_scale_out():
    stateful = dataclasses.replace(SPEC, volumes=(DataVolume("data", "/var/lib/echo"),))
    run = render(stateful, scaling=Scaling(minimum=2, maximum=3))
    assert isinstance(run.error, ValueError) and "cannot scale out" in str(run.error)
