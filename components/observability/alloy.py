"""Grafana Alloy as the lab's OTLP gateway: one place applications send traces, metrics, logs.

Applications only ever know Alloy's address; where each signal is stored is Alloy's concern. Its
pipeline is a set of `.alloy` files (alloy_configs/), which Alloy loads from one directory as one
config: the OTLP intake, then either the exporters to the stores or the forward to a gateway, and on
Kubernetes the pod logs. Every address in them is an environment variable set here from the specs of
the services that exist, so the wiring stays derived.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from components.runtime.spec import (
    ConfigFile,
    DataVolume,
    HealthCheck,
    Image,
    Port,
    ServiceSpec,
    bash_http_probe,
    go_memory_limit,
)

IMAGE = Image("grafana/alloy", "v1.21.2")
UI_PORT = 12345
OTLP_GRPC_PORT = 4317
OTLP_HTTP_PORT = 4318
CONFIG_DIR = "/etc/alloy"
DATA_PATH = "/var/lib/alloy/data"
# The image creates user alloy (473) and owns the data directory with it, but defaults to root.
ALLOY_USER = "473:473"
MEMORY_MIB = 256


CONFIGS = Path(__file__).with_name("alloy_configs")
INTAKE = "otlp-intake.alloy"
TO_STORES = "to-stores.alloy"
TO_GATEWAY = "to-gateway.alloy"
POD_LOGS = "pod-logs.alloy"
MODEL_METRICS = "model-metrics.alloy"


def pipeline(*files: str) -> tuple[ConfigFile, ...]:
    """The named `.alloy` files, where Alloy reads its config directory."""
    return tuple(ConfigFile(f"{CONFIG_DIR}/{name}", (CONFIGS / name).read_text()) for name in files)


def intake_env() -> dict[str, str]:
    return {
        "OTLP_GRPC_LISTEN_ADDRESS": f"0.0.0.0:{OTLP_GRPC_PORT}",
        "OTLP_HTTP_LISTEN_ADDRESS": f"0.0.0.0:{OTLP_HTTP_PORT}",
    }


def stores_env(traces_otlp_grpc: str, metrics_remote_write: str, logs_otlp_http: str) -> dict[str, str]:
    return {
        "TEMPO_OTLP_GRPC_ENDPOINT": traces_otlp_grpc,
        "MIMIR_REMOTE_WRITE_URL": metrics_remote_write,
        "LOKI_OTLP_HTTP_ENDPOINT": logs_otlp_http,
    }


def alloy_service(traces_otlp_grpc: str, metrics_remote_write: str, logs_otlp_http: str) -> ServiceSpec:
    """The gateway of the Docker stack: OTLP in, each signal to its store."""
    return alloy_spec(pipeline(INTAKE, TO_STORES), stores_env(traces_otlp_grpc, metrics_remote_write, logs_otlp_http))


def alloy_spec(config_files: tuple[ConfigFile, ...], pipeline_env: Mapping[str, str]) -> ServiceSpec:
    """Alloy with a pipeline and the addresses it reads; the runtimes add their own storage."""
    return ServiceSpec(
        name="alloy",
        image=IMAGE,
        ports=(
            Port("otlp-grpc", OTLP_GRPC_PORT, published=True),
            Port("otlp-http", OTLP_HTTP_PORT, published=True),
            Port("http", UI_PORT),
        ),
        memory_mib=MEMORY_MIB,
        env={"GOMEMLIMIT": go_memory_limit(MEMORY_MIB), **intake_env(), **pipeline_env},
        args=(
            "run",
            f"--server.http.listen-addr=0.0.0.0:{UI_PORT}",
            f"--storage.path={DATA_PATH}",
            "--disable-reporting",
            CONFIG_DIR,
        ),
        config_files=config_files,
        volumes=(DataVolume("data", DATA_PATH),),
        user=ALLOY_USER,
        # The image has bash but neither curl nor wget.
        health=HealthCheck(port="http", path="/-/ready", command=bash_http_probe(UI_PORT, "/-/ready")),
    )
