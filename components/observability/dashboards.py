"""Dashboards as code, built with grafana-foundation-sdk and provisioned as JSON files.

The service overview answers the first three questions about any instrumented service:
how much traffic, how slow, what is failing. Rate and latency come from the span metrics
Tempo's metrics-generator writes to Mimir, so every service sending traces gets them free.
The LLM agents dashboard reads the OpenTelemetry GenAI metrics any instrumented LLM client
emits, the lab's agents or your own.
"""

from __future__ import annotations

import json

from grafana_foundation_sdk.builders import dashboard, logs, loki, prometheus, stat, timeseries
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models.dashboard import DashboardCursorSync, VariableRefresh

from components.observability import genai
from components.observability.datasources import LOGS, METRICS
from components.observability.tempo import SERVER_SPANS, SPAN_CALLS, SPAN_LATENCY
from components.serving.telemetry import PREDICT_SECONDS

SERVICE_FILTER = f'service=~"$service", {SERVER_SPANS}'


def _promql(ref_id: str, expr: str, legend: str) -> prometheus.Dataquery:
    return prometheus.Dataquery().ref_id(ref_id).datasource(METRICS.ref).expr(expr).legend_format(legend).range()


def _label_variable(name: str, title: str, metric: str, label: str) -> dashboard.QueryVariable:
    """A multi-select over a label's values; "All" is .+ because Loki rejects empty matchers."""
    return (
        dashboard.QueryVariable(name)
        .label(title)
        .datasource(METRICS.ref)
        .query(f"label_values({metric}, {label})")
        .refresh(VariableRefresh.ON_TIME_RANGE_CHANGED)
        .multi(True)
        .include_all(True)
        .all_value(".+")
    )


def _board(title: str, tag: str, variable: dashboard.QueryVariable, panels: list) -> dashboard.Dashboard:
    """The lab's dashboard conventions: uid from the title, last hour, 30 s refresh, shared crosshair."""
    board = (
        dashboard.Dashboard(title)
        .uid(title.lower().replace(" ", "-"))
        .tags(["llm-infra-lab", tag])
        .tooltip(DashboardCursorSync.CROSSHAIR)
        .time("now-1h", "now")
        .refresh("30s")
        .with_variable(variable)
    )
    for panel in panels:
        board = board.with_panel(panel)
    return board.build()


def service_overview() -> dashboard.Dashboard:
    request_rate = (
        timeseries.Panel()
        .title("Request rate")
        .description("Requests per second by service: its server spans, from Tempo span metrics.")
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
        .description("95th percentile request duration by service (server spans), from Tempo span metrics.")
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
    return _board(
        "Service overview",
        "red",
        _label_variable("service", "Service", SPAN_CALLS, "service"),
        [request_rate, latency_p95, error_logs],
    )


AGENT_FILTER = f'{genai.AGENT}=~"$agent"'


def llm_agents() -> dashboard.Dashboard:
    calls = f"{genai.OPERATION_DURATION}_count"
    failed = f'{genai.ERROR_TYPE}!=""'
    tokens = (
        timeseries.Panel()
        .title("Tokens per second")
        .description("Input and output tokens per second by agent and model (gen_ai.client.token.usage).")
        .unit("short")
        .span(12)
        .with_target(
            _promql(
                "A",
                f"sum by ({genai.AGENT}, {genai.MODEL}, {genai.TOKEN_TYPE}) "
                f"(rate({genai.TOKEN_USAGE}_sum{{{AGENT_FILTER}}}[$__rate_interval]))",
                f"{{{{{genai.AGENT}}}}} {{{{{genai.MODEL}}}}} {{{{{genai.TOKEN_TYPE}}}}}",
            )
        )
    )
    cost_per_hour = (
        timeseries.Panel()
        .title("Cost per hour")
        .description("USD per hour by agent, from token counts and the agents' price table.")
        .unit("currencyUSD")
        .span(8)
        .with_target(
            _promql(
                "A",
                f"sum by ({genai.AGENT}) (rate({genai.COST}{{{AGENT_FILTER}}}[$__rate_interval])) * 3600",
                f"{{{{{genai.AGENT}}}}}",
            )
        )
    )
    projected_month = (
        stat.Panel()
        .title("Projected monthly cost")
        .description(f"The last hour's spend rate over a {genai.HOURS_PER_MONTH}-hour month.")
        .unit("currencyUSD")
        .span(4)
        .with_target(
            _promql(
                "A",
                f"sum(rate({genai.COST}{{{AGENT_FILTER}}}[1h])) * 3600 * {genai.HOURS_PER_MONTH}",
                "projected",
            )
        )
    )
    latency = (
        timeseries.Panel()
        .title("LLM call latency")
        .description("p50 and p95 of gen_ai.client.operation.duration by agent.")
        .unit("s")
        .span(12)
        .with_target(_promql("A", _quantile(0.5, genai.OPERATION_DURATION), f"{{{{{genai.AGENT}}}}} p50"))
        .with_target(_promql("B", _quantile(0.95, genai.OPERATION_DURATION), f"{{{{{genai.AGENT}}}}} p95"))
    )
    errors = (
        timeseries.Panel()
        .title("Error rate")
        .description("Share of LLM calls that failed (error.type set), by agent.")
        .unit("percentunit")
        .span(6)
        .with_target(
            _promql(
                "A",
                f"sum by ({genai.AGENT}) (rate({calls}{{{AGENT_FILTER}, {failed}}}[$__rate_interval]))"
                f" / sum by ({genai.AGENT}) (rate({calls}{{{AGENT_FILTER}}}[$__rate_interval]))",
                f"{{{{{genai.AGENT}}}}}",
            )
        )
    )
    retrieval = (
        timeseries.Panel()
        .title("Retrieval time p95")
        .description("Time to fetch guidelines from the vector database before each LLM call.")
        .unit("s")
        .span(6)
        .with_target(_promql("A", _quantile(0.95, genai.RETRIEVAL_DURATION), f"{{{{{genai.AGENT}}}}}"))
    )
    return _board(
        "LLM agents",
        "genai",
        _label_variable("agent", "Agent", f"{genai.TOKEN_USAGE}_count", genai.AGENT),
        [tokens, cost_per_hour, projected_month, latency, errors, retrieval, *model_server_panels()],
    )


def model_server_panels() -> list:
    """The model KServe serves (phase production), beside the agents: its predictions and their latency."""
    predictions = (
        timeseries.Panel()
        .title("Model predictions per second")
        .description("Requests the model server answered, by model (KServe's request_predict_seconds).")
        .unit("reqps")
        .span(12)
        .with_target(
            _promql("A", f"sum by (model_name) (rate({PREDICT_SECONDS}_count[$__rate_interval]))", "{{model_name}}")
        )
    )
    latency = (
        timeseries.Panel()
        .title("Model prediction latency")
        .description("p50 and p95 of the model server's prediction time, by model.")
        .unit("s")
        .span(12)
        .with_target(_promql("A", _model_quantile(0.5), "{{model_name}} p50"))
        .with_target(_promql("B", _model_quantile(0.95), "{{model_name}} p95"))
    )
    return [predictions, latency]


def _model_quantile(q: float) -> str:
    return f"histogram_quantile({q}, sum by (model_name, le) (rate({PREDICT_SECONDS}_bucket[$__rate_interval])))"


def _quantile(q: float, histogram: str) -> str:
    return (
        f"histogram_quantile({q}, sum by ({genai.AGENT}, le) "
        f"(rate({histogram}_bucket{{{AGENT_FILTER}}}[$__rate_interval])))"
    )


def dashboard_files() -> dict[str, str]:
    """File name to dashboard JSON, for Grafana's file provisioning."""
    boards = [service_overview(), llm_agents()]
    return {f"{board.uid}.json": json.dumps(board, cls=JSONEncoder, indent=2, sort_keys=True) for board in boards}
