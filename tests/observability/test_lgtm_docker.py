"""Phase `observability` on the local stack: the LGTM containers as Docker will run them."""

from __future__ import annotations

import re

import pytest

from tests.conftest import evaluate
from tests.docker_view import NETWORK, VOLUME, endpoints, one_shot_containers, services

LGTM = {"loki", "tempo", "mimir", "alloy", "grafana"}
PINNED = re.compile(r"^[a-z0-9./-]+:v?\d+\.\d+\.\d+$")
MEMORY_BUDGET_MIB = 2048


def test_every_lgtm_service_runs_one_container(observability):
    assert set(services(observability)) == LGTM


def test_images_are_pinned_to_a_release(observability):
    for service in services(observability).values():
        assert PINNED.match(service.image), f"{service.name} image {service.image} is not pinned to x.y.z"
    for init in one_shot_containers(observability):
        image = observability.named("docker:index/remoteImage:RemoteImage", init.name)["name"]
        assert PINNED.match(image), image


def test_every_container_has_a_memory_limit_without_swap(observability):
    for container in observability.of_type("docker:index/container:Container"):
        assert container["memory"] > 0, container.name
        assert container["memorySwap"] == container["memory"], f"{container.name} may swap"


def test_running_memory_fits_the_phase_budget(observability):
    total = sum(service.container["memory"] for service in services(observability).values())
    assert total <= MEMORY_BUDGET_MIB, f"LGTM needs {total} MiB, budget {MEMORY_BUDGET_MIB}"
    assert total >= 1024, "limits this low would starve Mimir and Tempo"


def test_go_runtimes_collect_garbage_before_the_memory_limit(observability):
    for service in services(observability).values():
        limit = int(service.env["GOMEMLIMIT"].removesuffix("MiB"))
        assert limit < service.container["memory"], service.name


def test_only_grafana_and_otlp_are_published_and_only_on_loopback(observability):
    published = {
        (service.name, int(port["external"]))
        for service in services(observability).values()
        for port in service.container.get("ports", [])
    }
    assert published == {("grafana", 3000), ("alloy", 4317), ("alloy", 4318)}
    for service in services(observability).values():
        for port in service.container.get("ports", []):
            assert port["ip"] == "127.0.0.1"
            assert port["internal"] == port["external"]


def test_bind_address_is_configurable():
    run = evaluate("local", bindAddress="0.0.0.0", grafanaPort="3300")
    grafana = services(run)["grafana"]
    assert grafana.container["ports"] == [{"internal": 3300, "external": 3300, "ip": "0.0.0.0", "protocol": "tcp"}]
    assert grafana.env["GF_SERVER_HTTP_PORT"] == "3300"
    assert run.outputs["grafanaUrl"] == "http://localhost:3300"


def test_all_services_share_one_private_network_under_their_own_names(observability):
    (network,) = observability.of_type(NETWORK)
    assert network["name"] == "llm-infra-lab-local"
    for service in services(observability).values():
        assert [net["name"] for net in service.container["networksAdvanced"]] == [network["name"]]
        assert service.aliases == [service.name]


def test_every_data_volume_is_retained_on_delete(observability):
    volumes = observability.of_type(VOLUME)
    assert {v["name"] for v in volumes} == {f"llm-infra-lab-local-{name}-data" for name in LGTM}
    assert all(v.retain_on_delete and v.protect for v in volumes)


def test_data_can_be_released_for_a_deliberate_teardown():
    run = evaluate("local", retainData="false")
    assert not any(v.retain_on_delete or v.protect for v in run.of_type(VOLUME))
    assert not any(p.protect for p in run.of_type("random:index/randomPassword:RandomPassword"))


def test_grafana_credentials_live_as_long_as_its_data(observability):
    """Grafana keeps its first admin password; a regenerated one after a quickstop would not log in."""
    for name in ("grafana-admin-password", "grafana-secret-key"):
        credential = observability.named("random:index/randomPassword:RandomPassword", name)
        assert credential.protect and credential.retain_on_delete


@pytest.mark.parametrize("name", sorted(LGTM))
def test_data_volume_is_mounted_where_the_config_writes(observability, name):
    service = services(observability)[name]
    (mount,) = service.container["volumes"]
    assert mount["volumeName"] == f"llm-infra-lab-local-{name}-data"
    config_text = "\n".join(service.container.get("command", [])) + "".join(
        upload["content"] for upload in service.container.get("uploads", [])
    )
    if name != "grafana":  # Grafana's data path is its image default, not configured
        assert mount["containerPath"] in config_text


def test_non_root_services_get_their_volumes_chowned_before_start(observability):
    running = services(observability)
    inits = {init.name.removesuffix("-volume-owner"): init for init in one_shot_containers(observability)}
    assert set(inits) == LGTM
    for name, init in inits.items():
        user = running[name].container["user"]
        assert not user.startswith("0"), f"{name} runs as root"
        assert init["command"] == ["chown", "-R", user, running[name].container["volumes"][0]["containerPath"]]
        assert init["networkMode"] == "none"
        assert init["capabilities"] == {"drops": ["ALL"], "adds": ["CHOWN", "DAC_READ_SEARCH"]}
        assert init["attach"] is True and init["mustRun"] is False


def test_containers_are_hardened_and_restart(observability):
    for service in services(observability).values():
        container = service.container
        assert container["restart"] == "unless-stopped"
        assert container["capabilities"] == {"drops": ["ALL"]}
        assert "no-new-privileges:true" in container["securityOpts"]
        assert container.get("privileged") in (None, False)
        assert container["logDriver"] == "json-file"
        assert container["logOpts"]["max-size"] == "10m"


@pytest.mark.parametrize(
    ("name", "probe"),
    [
        ("loki", ["CMD", "/usr/bin/loki", "-health"]),
        ("tempo", ["CMD", "/tempo", "-health"]),
        ("grafana", ["CMD", "curl", "-fsS", "http://localhost:3000/api/health"]),
    ],
)
def test_health_checks_use_what_each_image_ships(observability, name, probe):
    assert services(observability)[name].container["healthcheck"]["tests"] == probe


def test_alloy_health_check_asks_its_ready_endpoint(observability):
    alloy = services(observability)["alloy"]
    (test,) = [arg for arg in alloy.container["healthcheck"]["tests"] if "/dev/tcp" in arg]
    port = alloy.listening_ports["http"]
    assert f"/dev/tcp/127.0.0.1/{port}" in test and "GET /-/ready" in test
    assert f"--server.http.listen-addr=0.0.0.0:{port}" in alloy.container["command"]


def test_only_mimir_goes_without_a_docker_health_check(observability):
    """The Mimir image is distroless with no health flag; nothing inside it can probe."""
    unchecked = {s.name for s in services(observability).values() if not s.container.get("healthcheck")}
    assert unchecked == {"mimir"}


def test_grafana_admin_is_generated_and_anonymous_access_is_off(observability):
    grafana = services(observability)["grafana"]
    assert grafana.env["GF_AUTH_ANONYMOUS_ENABLED"] == "false"
    assert grafana.env["GF_USERS_ALLOW_SIGN_UP"] == "false"
    assert grafana.env["GF_SECURITY_ADMIN_USER"] == "admin"
    password = grafana.env["GF_SECURITY_ADMIN_PASSWORD"]
    assert password == observability.outputs["grafanaAdminPassword"]
    assert password.startswith("generated-") and len(password) >= 32
    assert grafana.env["GF_SECURITY_SECRET_KEY"] not in (password, "SW2YcwTIb9zpOOhoPsMm")
    assert grafana.container.has_secret_inputs, "the container's env must be stored as a secret"


def test_grafana_password_is_generated_without_special_characters(observability):
    password = observability.named("random:index/randomPassword:RandomPassword", "grafana-admin-password")
    assert password["length"] >= 32 and password["special"] is False


def test_only_grafana_holds_secrets(observability):
    holders = {s.name for s in services(observability).values() if s.container.has_secret_inputs}
    assert holders == {"grafana"}


def test_stack_outputs(observability):
    assert observability.outputs == {
        "grafanaUrl": "http://localhost:3000",
        "grafanaAdminUser": "admin",
        "grafanaAdminPassword": observability.outputs["grafanaAdminPassword"],
        "otlpGrpcEndpoint": "http://localhost:4317",
        "otlpHttpEndpoint": "http://localhost:4318",
    }
    assert observability.secret_outputs == {"grafanaAdminPassword"}


def test_every_docker_resource_uses_the_explicit_provider(observability):
    (provider,) = observability.of_type("pulumi:providers:docker")
    docker_resources = [r for r in observability.resources if r.type.startswith("docker:")]
    assert docker_resources
    for resource in docker_resources:
        assert resource.provider.startswith(provider.urn), f"{resource.name} uses {resource.provider!r}"


def test_every_resource_is_parented_under_a_component_or_the_stack(observability):
    component_urns = {r.urn for r in observability.resources if r.type.startswith("llm-infra-lab:")}
    for resource in observability.resources:
        if resource.type.startswith("docker:index/container") or resource.type.startswith("random:"):
            assert resource.parent in component_urns, resource.name


def test_network_topology(observability):
    """The names and ports peers can dial, read from the rendered containers."""
    assert endpoints(observability) == {
        "loki": {3100, 9096},
        "tempo": {3200, 4317, 4318},
        "mimir": {9009, 9095},
        "alloy": {4317, 4318, 12345},
        "grafana": {3000},
    }
