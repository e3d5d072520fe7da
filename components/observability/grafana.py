"""Grafana with provisioned datasources, cross-signal correlations and dashboards.

Datasource URLs come from the store specs, so a datasource can only point at a service
that exists. The correlations are what make LGTM more than three databases: a trace links
to its logs and RED metrics, a metric exemplar and a log line link back to the trace.
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_random as random

from components.observability import dashboards
from components.observability.datasources import LOGS, METRICS, TRACES
from components.observability.tempo import SERVER_SPANS, SPAN_CALLS, SPAN_LATENCY
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

IMAGE = Image("grafana/grafana", "13.2.3")
DATA_PATH = "/var/lib/grafana"
PROVISIONING_PATH = "/etc/grafana/provisioning"
DASHBOARDS_PATH = "/etc/grafana/dashboards"
MEMORY_MIB = 320
ADMIN_USER = "admin"
TRACE_ID = "trace_id"


def _escape(value: str) -> str:
    """Grafana expands $VARS in provisioning files; `$$` keeps a literal `$` for its macros."""
    return value.replace("$", "$$")


MANAGE_ALERTS = {"manageAlerts": True}
"""Alerting lists the rules of the datasource's ruler and their alerts beside its own: Mimir's at
`<url>/api/v1/rules`, Loki's at `<url>/prometheus/api/v1/rules` (Grafana adds the path)."""


def datasources(metrics_query_url: str, logs_url: str, traces_url: str) -> dict:
    tags_to_metrics = [{"key": "service.name", "value": "service"}]
    server = f"$__tags, {SERVER_SPANS}"
    red_queries = [
        ("Request rate", f"sum(rate({SPAN_CALLS}{{{server}}}[5m]))"),
        ("Error rate", f'sum(rate({SPAN_CALLS}{{{server}, status_code="STATUS_CODE_ERROR"}}[5m]))'),
        ("Latency p95", f"histogram_quantile(0.95, sum by (le) (rate({SPAN_LATENCY}{{{server}}}[5m])))"),
    ]
    return {
        "apiVersion": 1,
        "prune": True,
        "datasources": [
            {
                "name": METRICS.name,
                "type": METRICS.type,
                "uid": METRICS.uid,
                "access": "proxy",
                "url": metrics_query_url,
                "isDefault": True,
                "editable": False,
                "jsonData": {
                    **MANAGE_ALERTS,
                    "httpMethod": "POST",
                    "prometheusType": "Mimir",
                    "timeInterval": "15s",
                    "exemplarTraceIdDestinations": [
                        {"name": TRACE_ID, "datasourceUid": TRACES.uid, "urlDisplayLabel": "View trace"}
                    ],
                },
            },
            {
                "name": LOGS.name,
                "type": LOGS.type,
                "uid": LOGS.uid,
                "access": "proxy",
                "url": logs_url,
                "editable": False,
                "jsonData": {
                    **MANAGE_ALERTS,
                    "maxLines": 1000,
                    "derivedFields": [
                        {
                            # OTLP logs keep the trace id as structured metadata.
                            "name": "TraceID",
                            "matcherType": "label",
                            "matcherRegex": TRACE_ID,
                            "datasourceUid": TRACES.uid,
                            "url": _escape("${__value.raw}"),
                            "urlDisplayLabel": "View trace",
                        }
                    ],
                },
            },
            {
                "name": TRACES.name,
                "type": TRACES.type,
                "uid": TRACES.uid,
                "access": "proxy",
                "url": traces_url,
                "editable": False,
                "jsonData": {
                    "tracesToLogsV2": {
                        "datasourceUid": LOGS.uid,
                        "spanStartTimeShift": "-2m",
                        "spanEndTimeShift": "2m",
                        "tags": [{"key": "service.name", "value": "service_name"}],
                        "customQuery": True,
                        "query": _escape('{${__tags}} | trace_id="${__trace.traceId}"'),
                    },
                    "tracesToMetrics": {
                        "datasourceUid": METRICS.uid,
                        "spanStartTimeShift": "-2m",
                        "spanEndTimeShift": "2m",
                        "tags": tags_to_metrics,
                        "queries": [{"name": name, "query": _escape(query)} for name, query in red_queries],
                    },
                    "serviceMap": {"datasourceUid": METRICS.uid},
                    "nodeGraph": {"enabled": True},
                    "streamingEnabled": {"search": True, "metrics": True},
                },
            },
        ],
    }


def dashboard_provider() -> dict:
    return {
        "apiVersion": 1,
        "providers": [
            {
                "name": "llm-infra-lab",
                "type": "file",
                "disableDeletion": True,
                "allowUiUpdates": False,
                "updateIntervalSeconds": 60,
                "options": {"path": DASHBOARDS_PATH, "foldersFromFilesStructure": False},
            }
        ],
    }


SETTINGS = {
    "GF_AUTH_ANONYMOUS_ENABLED": "false",
    "GF_USERS_ALLOW_SIGN_UP": "false",
    "GF_SECURITY_DISABLE_GRAVATAR": "true",
    "GF_SECURITY_COOKIE_SAMESITE": "strict",
    "GF_ANALYTICS_REPORTING_ENABLED": "false",
    "GF_ANALYTICS_CHECK_FOR_UPDATES": "false",
    "GF_ANALYTICS_CHECK_FOR_PLUGIN_UPDATES": "false",
    # Keep the bundled datasource plugins at the versions this image ships.
    "GF_PLUGINS_PREINSTALL_AUTO_UPDATE": "false",
}
"""How the lab runs Grafana on every runtime: a login for everyone, nothing reported, plugins pinned."""


@dataclass(frozen=True)
class GrafanaCredentials:
    """The admin's generated password and the key that encrypts Grafana's stored secrets (both secret)."""

    admin_password: pulumi.Output[str]
    secret_key: pulumi.Output[str]

    @staticmethod
    def generate(opts: pulumi.ResourceOptions) -> GrafanaCredentials:
        """Grafana keeps the first pair it starts with in its database: `opts` ties them to that data."""
        password = random.RandomPassword("grafana-admin-password", length=32, special=False, opts=opts)
        secret_key = random.RandomPassword("grafana-secret-key", length=40, special=False, opts=opts)
        return GrafanaCredentials(pulumi.Output.secret(password.result), pulumi.Output.secret(secret_key.result))


def grafana_service(
    *,
    http_port: int,
    metrics_query_url: str,
    logs_url: str,
    traces_url: str,
    admin_password: pulumi.Input[str],
    secret_key: pulumi.Input[str],
) -> ServiceSpec:
    provisioning = [
        ConfigFile(
            f"{PROVISIONING_PATH}/datasources/llm-infra-lab.yaml",
            to_yaml(datasources(metrics_query_url, logs_url, traces_url)),
        ),
        ConfigFile(f"{PROVISIONING_PATH}/dashboards/llm-infra-lab.yaml", to_yaml(dashboard_provider(), sort_keys=True)),
    ]
    boards = [ConfigFile(f"{DASHBOARDS_PATH}/{name}", body) for name, body in dashboards.dashboard_files().items()]
    return ServiceSpec(
        name="grafana",
        image=IMAGE,
        ports=(Port("http", http_port, published=True),),
        memory_mib=MEMORY_MIB,
        env={
            "GF_SERVER_HTTP_PORT": str(http_port),
            "GF_SECURITY_ADMIN_USER": ADMIN_USER,
            **SETTINGS,
            "GOMEMLIMIT": go_memory_limit(MEMORY_MIB),
        },
        secret_env={"GF_SECURITY_ADMIN_PASSWORD": admin_password, "GF_SECURITY_SECRET_KEY": secret_key},
        config_files=(*provisioning, *boards),
        volumes=(DataVolume("data", DATA_PATH),),
        user="472:0",
        health=HealthCheck(
            port="http", path="/api/health", command=("curl", "-fsS", f"http://localhost:{http_port}/api/health")
        ),
    )
