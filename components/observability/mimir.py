"""Grafana Mimir 3, monolithic in the classic architecture (no Kafka): the lab's metric store.

It stores application metrics from Alloy and the span metrics from Tempo, with exemplars
switched on so a latency spike links straight to a trace, and its ruler evaluates the lab's
alert rules.
"""

from __future__ import annotations

from components.runtime.spec import (
    ConfigFile,
    DataVolume,
    HealthCheck,
    Image,
    Port,
    ServiceSpec,
    go_memory_limit,
    to_yaml,
)

IMAGE = Image("grafana/mimir", "3.2.1")
HTTP_PORT = 9009
GRPC_PORT = 9095
CONFIG_PATH = "/etc/mimir/mimir.yaml"
DATA_PATH = "/data"
MEMORY_MIB = 576
PUSH_PATH = "/api/v1/push"
QUERY_PATH = "/prometheus"
RULES_PATH = "/etc/mimir/rules"
# With multitenancy off every request belongs to this tenant; the ruler reads <rules>/<tenant>/.
TENANT = "anonymous"


def config() -> dict:
    single_node_ring = {"instance_addr": "127.0.0.1", "kvstore": {"store": "memberlist"}}
    return {
        "multitenancy_enabled": False,
        # Mimir 3 defaults to ingest storage through Kafka; the lab's single process is the classic architecture.
        "ingest_storage": {"enabled": False},
        "server": {"http_listen_port": HTTP_PORT, "grpc_listen_port": GRPC_PORT, "log_level": "warn"},
        "blocks_storage": {
            "backend": "filesystem",
            "bucket_store": {"sync_dir": f"{DATA_PATH}/tsdb-sync"},
            "filesystem": {"dir": f"{DATA_PATH}/blocks"},
            "tsdb": {"dir": f"{DATA_PATH}/tsdb"},
        },
        "compactor": {"data_dir": f"{DATA_PATH}/compactor", "sharding_ring": {"kvstore": {"store": "memberlist"}}},
        "distributor": {"ring": single_node_ring},
        "ingester": {"ring": {**single_node_ring, "replication_factor": 1}},
        "store_gateway": {"sharding_ring": {"replication_factor": 1}},
        "ruler": {"rule_path": f"{DATA_PATH}/ruler"},
        # Rules are code: plain Prometheus rule files shipped with the config, read-only.
        "ruler_storage": {"backend": "local", "local": {"directory": RULES_PATH}},
        "limits": {"max_global_exemplars_per_user": 100000, "max_global_series_per_user": 50000},
        "activity_tracker": {"filepath": f"{DATA_PATH}/metrics-activity.log"},
        "usage_stats": {"enabled": False},
    }


def mimir_service(rule_files: dict[str, str]) -> ServiceSpec:
    return ServiceSpec(
        name="mimir",
        image=IMAGE,
        ports=(Port("http", HTTP_PORT), Port("grpc", GRPC_PORT)),
        memory_mib=MEMORY_MIB,
        args=("-target=all", f"-config.file={CONFIG_PATH}"),
        env={"GOMEMLIMIT": go_memory_limit(MEMORY_MIB)},
        config_files=(
            ConfigFile(CONFIG_PATH, to_yaml(config())),
            *(ConfigFile(f"{RULES_PATH}/{TENANT}/{name}", text) for name, text in rule_files.items()),
        ),
        volumes=(DataVolume("data", DATA_PATH),),
        user="10001:10001",
        # Distroless and no health flag: Docker cannot probe it; Kubernetes probes /ready.
        health=HealthCheck(port="http", path="/ready", command=None),
    )
