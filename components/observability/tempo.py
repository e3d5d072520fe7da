"""Grafana Tempo 3 in monolithic mode (no Kafka), local storage: the lab's trace store.

Its metrics-generator turns spans into RED metrics and service-graph edges and
remote-writes them to the metrics store, which is what the service dashboards query.
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

IMAGE = Image("grafana/tempo", "3.0.3")
HTTP_PORT = 3200
OTLP_GRPC_PORT = 4317
OTLP_HTTP_PORT = 4318
CONFIG_PATH = "/etc/tempo/tempo.yaml"
DATA_PATH = "/var/tempo"
MEMORY_MIB = 448
# Exemplars carry the trace id under this label; the metrics datasource links it to Tempo.
TRACE_ID_LABEL = "trace_id"
SPAN_CALLS = "traces_spanmetrics_calls_total"
SPAN_LATENCY = "traces_spanmetrics_latency_bucket"
"""The span-metrics processor's series in Mimir, labelled service, span_name, span_kind and status_code."""
SERVER_SPANS = 'span_kind="SPAN_KIND_SERVER"'
"""A request is its server span: one review also makes client, LLM and retrieval spans, counted apart."""
RETENTION = "168h"
"""A week, as the lab keeps logs. Tempo 3's backend worker reads it from the tenant overrides (its own default
is 14 days); the block_retention of other config blocks no longer applies retention."""


def config(metrics_remote_write: str) -> dict:
    return {
        "stream_over_http_enabled": True,
        "server": {"http_listen_port": HTTP_PORT, "log_level": "info"},
        "distributor": {
            "receivers": {
                "otlp": {
                    "protocols": {
                        "grpc": {"endpoint": f"0.0.0.0:{OTLP_GRPC_PORT}"},
                        "http": {"endpoint": f"0.0.0.0:{OTLP_HTTP_PORT}"},
                    }
                }
            }
        },
        "metrics_generator": {
            "registry": {"external_labels": {"source": "tempo"}},
            "storage": {
                "path": f"{DATA_PATH}/generator/wal",
                "remote_write": [{"url": metrics_remote_write, "send_exemplars": True}],
            },
        },
        "storage": {
            "trace": {
                "backend": "local",
                "wal": {"path": f"{DATA_PATH}/wal"},
                "local": {"path": f"{DATA_PATH}/blocks"},
            }
        },
        "overrides": {
            "defaults": {
                "metrics_generator": {
                    "processors": ["service-graphs", "span-metrics"],
                    "trace_id_label_name": TRACE_ID_LABEL,
                },
                "compaction": {"block_retention": RETENTION},
            }
        },
        "usage_report": {"reporting_enabled": False},
    }


def tempo_service(metrics_remote_write: str) -> ServiceSpec:
    return ServiceSpec(
        name="tempo",
        image=IMAGE,
        ports=(Port("http", HTTP_PORT), Port("otlp-grpc", OTLP_GRPC_PORT), Port("otlp-http", OTLP_HTTP_PORT)),
        memory_mib=MEMORY_MIB,
        args=("-target=all", f"-config.file={CONFIG_PATH}"),
        env={"GOMEMLIMIT": go_memory_limit(MEMORY_MIB)},
        config_files=(ConfigFile(CONFIG_PATH, to_yaml(config(metrics_remote_write))),),
        volumes=(DataVolume("data", DATA_PATH),),
        user="10001:10001",
        # Distroless image: the binary's own -health flag probes localhost:3200/ready.
        health=HealthCheck(port="http", path="/ready", command=("/tempo", "-health")),
    )
