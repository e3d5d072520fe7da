"""Dashboards as code, built with grafana-foundation-sdk and provisioned as JSON files.

The service overview answers the first three questions about any instrumented service:
how much traffic, how slow, what is failing. Rate and latency come from the span metrics
Tempo's metrics-generator writes to Mimir, so every service sending traces gets them free.
"""

from __future__ import annotations

import json

from grafana_foundation_sdk.builders import dashboard, logs, loki, prometheus, timeseries
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models.dashboard import DashboardCursorSync, VariableRefresh

from components.observability.datasources import LOGS, METRICS

SPAN_CALLS = "traces_spanmetrics_calls_total"
SPAN_LATENCY = "traces_spanmetrics_latency_bucket"
SERVICE_FILTER = 'service=~"$service"'


def _promql(ref_id: str, expr: str, legend: str) -> prometheus.Dataquery:
    return prometheus.Dataquery().ref_id(ref_id).datasource(METRICS.ref).expr(expr).legend_format(legend).range()


def _service_variable() -> dashboard.QueryVariable:
    return (
        dashboard.QueryVariable("service")
        .label("Service")
        .datasource(METRICS.ref)
        .query(f"label_values({SPAN_CALLS}, service)")
        .refresh(VariableRefresh.ON_TIME_RANGE_CHANGED)
        .multi(True)
        .include_all(True)
        .all_value(".+")
    )


def service_overview() -> dashboard.Dashboard:
    request_rate = (
        timeseries.Panel()
        .title("Request rate")
        .description("Spans per second by service, from Tempo span metrics.")
        .unit("reqps")
        .span(12)
        .with_target(
            _promql("A", f"sum by (service) (rate({SPAN_CALLS}{{{SERVICE_FILTER}}}[$__rate_interval]))", "{{service}}")
        )
        .with_target(
            _promql(
                "B",
                f'sum by (service) (rate({SPAN_CALLS}{{{SERVICE_FILTER}, status_code="STATUS_CODE_ERROR"}}'
                "[$__rate_interval]))",
                "{{service}} errors",
            )
        )
    )
    latency_p95 = (
        timeseries.Panel()
        .title("Latency p95")
        .description("95th percentile span duration by service, from Tempo span metrics.")
        .unit("s")
        .span(12)
        .with_target(
            _promql(
                "A",
                "histogram_quantile(0.95, sum by (service, le) "
                f"(rate({SPAN_LATENCY}{{{SERVICE_FILTER}}}[$__rate_interval])))",
                "{{service}} p95",
            )
        )
    )
    error_logs = (
        logs.Panel()
        .title("Error logs")
        .description("Error-level log lines; the trace id links to the trace in Tempo.")
        .span(24)
        .height(10)
        .with_target(
            loki.Dataquery()
            .ref_id("A")
            .datasource(LOGS.ref)
            .expr('{service_name=~"$service"} | detected_level=~"(?i)error|fatal|critical"')
        )
    )
    return (
        dashboard.Dashboard("Service overview")
        .uid("service-overview")
        .tags(["llm-infra-lab", "red"])
        .tooltip(DashboardCursorSync.CROSSHAIR)
        .time("now-1h", "now")
        .refresh("30s")
        .with_variable(_service_variable())
        .with_panel(request_rate)
        .with_panel(latency_p95)
        .with_panel(error_logs)
        .build()
    )


def dashboard_files() -> dict[str, str]:
    """File name to dashboard JSON, for Grafana's file provisioning."""
    boards = [service_overview()]
    return {f"{board.uid}.json": json.dumps(board, cls=JSONEncoder, indent=2, sort_keys=True) for board in boards}
