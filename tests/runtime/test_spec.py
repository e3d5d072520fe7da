"""The service definition model refuses specs no runtime could run correctly."""

from __future__ import annotations

import pytest

from components.runtime.spec import HealthCheck, Image, Port, ServiceSpec, go_memory_limit


def spec(**changes) -> ServiceSpec:
    fields = {
        "name": "store",
        "image": Image("example/store", "1.2.3"),
        "ports": (Port("http", 8080), Port("grpc", 9090)),
        "memory_mib": 128,
        "health": HealthCheck(port="http", path="/ready", command=("/store", "-health")),
    }
    return ServiceSpec(**{**fields, **changes})


@pytest.mark.parametrize("tag", ["latest", ""])
def test_images_need_a_pinned_tag(tag):
    with pytest.raises(ValueError, match="pinned tag"):
        Image("example/store", tag)


def test_peers_address_a_service_by_name_and_named_port():
    store = spec()
    assert store.address("grpc") == "store:9090"
    assert store.url("http", "/api/v1/push") == "http://store:8080/api/v1/push"
    with pytest.raises(KeyError, match="no port named 'metrics'"):
        store.url("metrics")


def test_health_check_must_use_a_declared_port():
    with pytest.raises(KeyError, match="no port named 'admin'"):
        spec(health=HealthCheck(port="admin", path="/ready", command=None))


def test_port_names_are_unique():
    with pytest.raises(ValueError, match="duplicate port names"):
        spec(ports=(Port("http", 8080), Port("http", 8081)))


def test_memory_limit_is_required():
    with pytest.raises(ValueError, match="positive memory limit"):
        spec(memory_mib=0)


def test_uid_is_read_from_user():
    assert spec(user="10001:10001").uid == 10001
    assert spec().uid is None


def test_go_memory_limit_leaves_headroom():
    assert go_memory_limit(500) == "400MiB"
