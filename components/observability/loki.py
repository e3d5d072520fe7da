"""Grafana Loki, single binary with filesystem storage: the lab's log store.

Its ruler evaluates the lab's LogQL alert rules (log_alerts.py), shipped with the config like Mimir's.
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

IMAGE = Image("grafana/loki", "3.7.8")
HTTP_PORT = 3100
GRPC_PORT = 9096
CONFIG_PATH = "/etc/loki/config.yaml"
DATA_PATH = "/loki"
MEMORY_MIB = 384
RETENTION = "168h"
RULES_PATH = "/etc/loki/rules"
# With auth off every request belongs to this tenant; the ruler reads <rules>/<tenant>/.
TENANT = "fake"


def config() -> dict:
    """Single tenant, TSDB schema v13 (required for structured metadata and native OTLP)."""
    return {
        "auth_enabled": False,
        "server": {"http_listen_port": HTTP_PORT, "grpc_listen_port": GRPC_PORT, "log_level": "info"},
        "common": {
            "instance_addr": "127.0.0.1",
            "path_prefix": DATA_PATH,
            "storage": {"filesystem": {"chunks_directory": f"{DATA_PATH}/chunks"}},
            "replication_factor": 1,
            "ring": {"kvstore": {"store": "inmemory"}},
        },
        "schema_config": {
            "configs": [
                {
                    "from": "2024-01-01",
                    "store": "tsdb",
                    "object_store": "filesystem",
                    "schema": "v13",
                    "index": {"prefix": "index_", "period": "24h"},
                }
            ]
        },
        # Rules are code: read-only files in local storage. No alertmanager_url: alerts are evaluated and
        # listed through the API (Grafana shows them), and notified nowhere, as with Mimir.
        "ruler": {"storage": {"type": "local", "local": {"directory": RULES_PATH}}, "enable_api": True},
        "limits_config": {"allow_structured_metadata": True, "retention_period": RETENTION},
        "compactor": {
            "working_directory": f"{DATA_PATH}/compactor",
            "retention_enabled": True,
            "delete_request_store": "filesystem",
        },
        "query_range": {"results_cache": {"cache": {"embedded_cache": {"enabled": True, "max_size_mb": 50}}}},
        "analytics": {"reporting_enabled": False},
    }


def loki_service(rule_files: dict[str, str]) -> ServiceSpec:
    return ServiceSpec(
        name="loki",
        image=IMAGE,
        ports=(Port("http", HTTP_PORT), Port("grpc", GRPC_PORT)),
        memory_mib=MEMORY_MIB,
        args=(f"-config.file={CONFIG_PATH}",),
        env={"GOMEMLIMIT": go_memory_limit(MEMORY_MIB)},
        config_files=(
            ConfigFile(CONFIG_PATH, to_yaml(config())),
            *(ConfigFile(f"{RULES_PATH}/{TENANT}/{name}", text) for name, text in rule_files.items()),
        ),
        volumes=(DataVolume("data", DATA_PATH),),
        user="10001:10001",
        # Distroless image: the binary's own -health flag probes localhost:3100/ready.
        health=HealthCheck(port="http", path="/ready", command=("/usr/bin/loki", "-health")),
    )
