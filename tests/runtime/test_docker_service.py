"""The Docker renderer on its own, with specs chosen to reach each of its branches."""

from __future__ import annotations

from components.runtime.docker_service import DockerService, DockerServiceArgs, DockerTarget
from components.runtime.spec import ConfigFile, DataVolume, HealthCheck, Image, Port, ServiceSpec
from tests.harness import run_program

CONTAINER = "docker:index/container:Container"


def target(retain_data: bool = True) -> DockerTarget:
    return DockerTarget(network_name="lab", name_prefix="test", bind_address="127.0.0.1", retain_data=retain_data)


def render(spec: ServiceSpec, retain_data: bool = True):
    def program():
        DockerService(
            spec.name,
            DockerServiceArgs(spec=spec, target=target(retain_data)),
        )

    return run_program(program, "local").raise_error()


def root_service(**changes) -> ServiceSpec:
    fields = {
        "name": "cache",
        "image": Image("example/cache", "7.4.1"),
        "ports": (Port("tcp", 6379),),
        "memory_mib": 64,
        "health": HealthCheck(port="tcp", path="/", command=None),
    }
    return ServiceSpec(**{**fields, **changes})


def test_root_service_without_volumes_is_one_image_and_one_container():
    run = render(root_service())
    assert sorted((r.type, r.name) for r in run.resources) == [
        ("docker:index/container:Container", "cache"),
        ("docker:index/remoteImage:RemoteImage", "cache"),
        ("llm-infra-lab:workloads:DockerService", "cache"),
    ]
    container = run.named(CONTAINER, "cache")
    assert "healthcheck" not in container.inputs
    assert "ports" not in container.inputs or container["ports"] == []


def test_root_owned_volumes_need_no_chown():
    run = render(root_service(volumes=(DataVolume("data", "/data"),)))
    assert [c.name for c in run.of_type(CONTAINER)] == ["cache"]


def test_secret_env_reaches_the_container_as_a_secret():
    run = render(root_service(env={"MODE": "lab"}, secret_env={"TOKEN": "s3cr3t"}))
    container = run.named(CONTAINER, "cache")
    assert container["envs"] == ["MODE=lab", "TOKEN=s3cr3t"]
    assert container.has_secret_inputs


def test_config_files_are_uploaded_verbatim():
    run = render(root_service(config_files=(ConfigFile("/etc/cache.conf", "maxmemory 32mb\n"),)))
    assert run.named(CONTAINER, "cache")["uploads"] == [{"file": "/etc/cache.conf", "content": "maxmemory 32mb\n"}]


def test_published_ports_bind_to_the_given_address_only():
    run = render(root_service(ports=(Port("tcp", 6379, published=True),)))
    assert run.named(CONTAINER, "cache")["ports"] == [
        {"internal": 6379, "external": 6379, "ip": "127.0.0.1", "protocol": "tcp"}
    ]


def test_chown_runs_before_the_service_starts():
    run = render(root_service(user="999:999", volumes=(DataVolume("data", "/data"),)))
    init = run.named(CONTAINER, "cache-volume-owner")
    assert init["command"] == ["chown", "-R", "999:999", "/data"]
    assert init["memory"] == 32
    labels = {item["label"]: item["value"] for item in run.named(CONTAINER, "cache")["labels"]}
    assert labels["llm-infra-lab.volumes-owned-by"] == "999:999"


def test_a_failed_chown_stops_the_deployment_before_the_service():
    spec = root_service(user="999:999", volumes=(DataVolume("data", "/data"),))
    run = run_program(
        lambda: DockerService("cache", DockerServiceArgs(spec=spec, target=target())),
        "local",
        computed={"cache-volume-owner": {"exitCode": 1}},
    )
    assert "cache-volume-owner exited with 1" in str(run.error)
    assert [c.name for c in run.of_type(CONTAINER)] == ["cache-volume-owner"]


def test_volumes_follow_the_retain_setting():
    volumes = (DataVolume("data", "/data"),)
    kept = render(root_service(volumes=volumes)).named("docker:index/volume:Volume", "cache-data")
    assert kept.retain_on_delete and kept.protect
    released = render(root_service(volumes=volumes), retain_data=False).named(
        "docker:index/volume:Volume", "cache-data"
    )
    assert not released.retain_on_delete and not released.protect


def test_an_image_to_build_must_be_built_once_and_passed_in():
    built = root_service(image=Image("llm-infra-lab/cache", "0123456789ab", build_context="apps/cache"))
    run = run_program(
        lambda: DockerService(
            "cache",
            DockerServiceArgs(spec=built, target=target()),
        ),
        "local",
    )
    assert isinstance(run.error, ValueError)
    assert "pass the image built from apps/cache" in str(run.error)
