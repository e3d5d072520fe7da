"""The Kubernetes renderer on its own: one ServiceSpec in, the objects a runtime needs out."""

from __future__ import annotations

import dataclasses

import pulumi
import pytest

from components.workloads.kubernetes_service import KubernetesService, KubernetesServiceArgs, namespace
from components.workloads.spec import ConfigFile, DataVolume, HealthCheck, Image, Port, ServiceSpec
from tests.harness import ProgramRun, run_program
from tests.k8s_view import manifests, of_kind

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


def render(spec: ServiceSpec, target_namespace: str = "lab") -> ProgramRun:
    def program():
        target = namespace(target_namespace, True, pulumi.ResourceOptions())
        KubernetesService(spec.name, KubernetesServiceArgs(spec=spec, target=target))

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
