"""Grafana Alloy as the lab's OTLP gateway: one place applications send traces, metrics, logs.

Applications only ever know Alloy's address; where each signal is stored is Alloy's concern,
derived here from the specs of the stores that exist.
"""

from __future__ import annotations

from components.workloads.spec import (
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
CONFIG_PATH = "/etc/alloy/config.alloy"
DATA_PATH = "/var/lib/alloy/data"
# The image creates user alloy (473) and owns the data directory with it, but defaults to root.
ALLOY_USER = "473:473"
MEMORY_MIB = 256


def otlp_intake(next_input: str) -> str:
    """OTLP on both ports into a memory limiter, which hands every signal to `next_input`."""
    return f"""\
logging {{
  level  = "info"
  format = "logfmt"
}}

otelcol.receiver.otlp "default" {{
  grpc {{
    endpoint = "0.0.0.0:{OTLP_GRPC_PORT}"
  }}

  http {{
    endpoint = "0.0.0.0:{OTLP_HTTP_PORT}"
  }}

  output {{
    metrics = [otelcol.processor.memory_limiter.default.input]
    logs    = [otelcol.processor.memory_limiter.default.input]
    traces  = [otelcol.processor.memory_limiter.default.input]
  }}
}}

// Refuse data before the container's memory limit is reached, instead of being killed.
otelcol.processor.memory_limiter "default" {{
  check_interval         = "1s"
  limit_percentage       = 75
  spike_limit_percentage = 20

  output {{
    metrics = [{next_input}]
    logs    = [{next_input}]
    traces  = [{next_input}]
  }}
}}
"""


def batch(*, metrics: str, logs: str, traces: str) -> str:
    """A batch processor handing each signal to its exporter."""
    return f"""
otelcol.processor.batch "default" {{
  timeout = "1s"

  output {{
    metrics = [{metrics}]
    logs    = [{logs}]
    traces  = [{traces}]
  }}
}}
"""


def otlp_exporter(label: str, endpoint: str) -> str:
    """An OTLP gRPC exporter in plain text: every peer of the lab runs on this machine."""
    return f"""
otelcol.exporter.otlp "{label}" {{
  client {{
    endpoint = "{endpoint}"

    tls {{
      insecure = true
    }}
  }}
}}
"""


def config(traces_otlp_grpc: str, metrics_remote_write: str, logs_otlp_http: str) -> str:
    """The gateway's pipeline: OTLP in, memory limiter, batch, one exporter per signal.

    Metrics go through Prometheus remote write so exemplars reach Mimir; logs use Loki's
    native OTLP endpoint, which keeps trace_id as structured metadata for Grafana's links.
    """
    return (
        otlp_intake("otelcol.processor.batch.default.input")
        + batch(
            metrics="otelcol.exporter.prometheus.mimir.input",
            logs="otelcol.exporter.otlphttp.loki.input",
            traces="otelcol.exporter.otlp.tempo.input",
        )
        + otlp_exporter("tempo", traces_otlp_grpc)
        + f"""
otelcol.exporter.otlphttp "loki" {{
  client {{
    endpoint = "{logs_otlp_http}"
  }}
}}

otelcol.exporter.prometheus "mimir" {{
  forward_to = [prometheus.remote_write.mimir.receiver]
}}

prometheus.remote_write "mimir" {{
  endpoint {{
    url            = "{metrics_remote_write}"
    send_exemplars = true
  }}
}}
"""
    )


def alloy_service(traces_otlp_grpc: str, metrics_remote_write: str, logs_otlp_http: str) -> ServiceSpec:
    return ServiceSpec(
        name="alloy",
        image=IMAGE,
        ports=(
            Port("otlp-grpc", OTLP_GRPC_PORT, published=True),
            Port("otlp-http", OTLP_HTTP_PORT, published=True),
            Port("http", UI_PORT),
        ),
        memory_mib=MEMORY_MIB,
        env={"GOMEMLIMIT": go_memory_limit(MEMORY_MIB)},
        args=(
            "run",
            f"--server.http.listen-addr=0.0.0.0:{UI_PORT}",
            f"--storage.path={DATA_PATH}",
            "--disable-reporting",
            CONFIG_PATH,
        ),
        config_files=(ConfigFile(CONFIG_PATH, config(traces_otlp_grpc, metrics_remote_write, logs_otlp_http)),),
        volumes=(DataVolume("data", DATA_PATH),),
        user=ALLOY_USER,
        # The image has bash but neither curl nor wget.
        health=HealthCheck(port="http", path="/-/ready", command=bash_http_probe(UI_PORT, "/-/ready")),
    )
