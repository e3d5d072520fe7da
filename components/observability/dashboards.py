"""Dashboards as code, built with grafana-foundation-sdk and provisioned as JSON files.

The service overview answers the first three questions about any instrumented service:
how much traffic, how slow, what is failing. Rate and latency come from the span metrics
Tempo's metrics-generator writes to Mimir, so every service sending traces gets them free.
The LLM agents dashboard reads the OpenTelemetry GenAI metrics any instrumented LLM client
emits, the lab's agents or your own.
"""

from __future__ import annotations

import json
from collections.abc import Callable

from grafana_foundation_sdk.builders import (
    bargauge,
    dashboard,
    logs,
    loki,
    nodegraph,
    prometheus,
    stat,
    tempo,
    timeseries,
)
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models.common import BigValueTextMode, VizOrientation
from grafana_foundation_sdk.models.dashboard import DashboardCursorSync, VariableRefresh

from components.observability import genai
from components.observability.datasources import LOGS, METRICS, TRACES
from components.observability.tempo import SERVER_SPANS, SPAN_CALLS, SPAN_LATENCY
from components.serving.telemetry import MODEL_LABEL, PREDICT_SECONDS

SERVICE_FILTER = f'service=~"$service", {SERVER_SPANS}'


def _promql(ref_id: str, expr: str, legend: str) -> prometheus.Dataquery:
    return prometheus.Dataquery().ref_id(ref_id).datasource(METRICS.ref).expr(expr).legend_format(legend).range()


def _with_percentiles(panel: timeseries.Panel, quantile: Callable[[float], str], legend: str) -> timeseries.Panel:
    """p50 and p95 of a histogram, a line each per series."""
    return panel.with_target(_promql("A", quantile(0.5), f"{legend} p50")).with_target(
        _promql("B", quantile(0.95), f"{legend} p95")
    )


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
        board = board.with_row(panel) if isinstance(panel, dashboard.Row) else board.with_panel(panel)
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


def _legend(*labels: str) -> str:
    return " ".join(f"{{{{{label}}}}}" for label in labels)


def _rate(
    metric: str,
    selector: str = "",
    window: str = "$__rate_interval",
    by: tuple[str, ...] = (),
    scope: str = AGENT_FILTER,
) -> str:
    """sum [by (…)] (rate(metric{scope, selector}[window])); the scope is "" for series without an agent name."""
    matchers = ", ".join(m for m in (scope, selector) if m)
    series = f"{metric}{{{matchers}}}" if matchers else metric
    grouping = f" by ({', '.join(by)}) " if by else ""
    return f"sum{grouping}(rate({series}[{window}]))"


def _share(metric: str, selector: str, by: tuple[str, ...], scope: str = AGENT_FILTER) -> str:
    """The share of a counter's rate in the series matching selector, by (…): 0 rather than no data when none match."""
    part = _rate(metric, selector, by=by, scope=scope)
    whole = _rate(metric, by=by, scope=scope)
    return f"({part} or 0 * {whole}) / {whole}"


def _stat(title: str, description: str, unit: str, expr: str) -> stat.Panel:
    """A single figure over the last hour: the before/after numbers a learner quotes."""
    return stat.Panel().title(title).description(description).unit(unit).span(6).with_target(_promql("A", expr, title))


def llm_agents() -> dashboard.Dashboard:
    sections = {
        "Usage and cost": _usage_panels(),
        "Semantic cache": _cache_panels(),
        "Model routing": _routing_panels(),
        "Guardrails": _guardrail_panels(),
        "Grounding": _grounding_panels(),
        "Workflow": _workflow_panels(),
        "Model serving": model_server_panels(),
    }
    return _board(
        "LLM agents",
        "genai",
        _label_variable("agent", "Agent", f"{genai.TOKEN_USAGE}_count", genai.AGENT),
        [item for title, panels in sections.items() for item in (dashboard.Row(title), *panels)],
    )


def _usage_panels() -> list:
    calls = f"{genai.OPERATION_DURATION}_count"
    tokens = (
        timeseries.Panel()
        .title("Tokens per second")
        .description("Input and output tokens per second by agent and model (gen_ai.client.token.usage).")
        .unit("short")
        .span(12)
        .with_target(
            _promql(
                "A",
                _rate(f"{genai.TOKEN_USAGE}_sum", by=(genai.AGENT, genai.MODEL, genai.TOKEN_TYPE)),
                _legend(genai.AGENT, genai.MODEL, genai.TOKEN_TYPE),
            )
        )
    )
    cost_per_hour = (
        timeseries.Panel()
        .title("Cost per hour")
        .description("USD per hour by agent, from token counts and the agents' price table.")
        .unit("currencyUSD")
        .span(8)
        .with_target(_promql("A", f"{_rate(genai.COST, by=(genai.AGENT,))} * 3600", _legend(genai.AGENT)))
    )
    projected_month = (
        stat.Panel()
        .title("Projected monthly cost")
        .description(f"The last hour's spend rate over a {genai.HOURS_PER_MONTH}-hour month.")
        .unit("currencyUSD")
        .span(4)
        .with_target(_promql("A", f"{_rate(genai.COST, window='1h')} * 3600 * {genai.HOURS_PER_MONTH}", "projected"))
    )
    latency = _with_percentiles(
        timeseries.Panel()
        .title("LLM call latency")
        .description("p50 and p95 of gen_ai.client.operation.duration by agent.")
        .unit("s")
        .span(12),
        lambda q: _quantile(q, genai.OPERATION_DURATION),
        _legend(genai.AGENT),
    )
    errors = (
        timeseries.Panel()
        .title("Error rate")
        .description("Share of LLM calls that failed after their retries (error.type set), by agent.")
        .unit("percentunit")
        .span(6)
        .with_target(
            _promql(
                "A",
                f"{_rate(calls, genai.FAILED, by=(genai.AGENT,))} / {_rate(calls, by=(genai.AGENT,))}",
                _legend(genai.AGENT),
            )
        )
    )
    retries = (
        timeseries.Panel()
        .title("LLM retries per second")
        .description("Attempts retried after a 429, 5xx, timeout or connection error, by the attempt's error.")
        .unit("short")
        .span(6)
        .with_target(
            _promql(
                "A", _rate(genai.RETRIES, by=(genai.AGENT, genai.ERROR_TYPE)), _legend(genai.AGENT, genai.ERROR_TYPE)
            )
        )
    )
    retrieval = (
        timeseries.Panel()
        .title("Retrieval time p95")
        .description("Time to fetch guidelines from the vector database before each LLM call.")
        .unit("s")
        .span(12)
        .with_target(_promql("A", _quantile(0.95, genai.RETRIEVAL_DURATION), _legend(genai.AGENT)))
    )
    return [tokens, cost_per_hour, projected_month, latency, errors, retries, retrieval]


def _cache_panels() -> list:
    """Before/after: what the LLM calls cost, and what they would have cost without the cache's hits."""
    avoided_per_hour = f"{_rate(genai.CACHE_COST_AVOIDED, window='1h')} * 3600"
    hit_rate = _stat(
        "Cache hit rate",
        "Share of the last hour's cache lookups answered from an earlier review (no LLM call).",
        "percentunit",
        f"{_rate(genai.CACHE_LOOKUPS, genai.CACHE_HIT, window='1h')} / {_rate(genai.CACHE_LOOKUPS, window='1h')}",
    )
    avoided = _stat(
        "Cost avoided per hour",
        "What the hits of the last hour would have cost as LLM calls (the price of the call each answered for).",
        "currencyUSD",
        avoided_per_hour,
    )
    avoided_month = _stat(
        "Cost avoided, projected per month",
        f"The last hour's avoided cost over a {genai.HOURS_PER_MONTH}-hour month.",
        "currencyUSD",
        f"{avoided_per_hour} * {genai.HOURS_PER_MONTH}",
    )
    reduction = _stat(
        "Cost reduction by the cache",
        "Avoided cost over what the reviews would have cost without the cache, last hour.",
        "percentunit",
        f"{_rate(genai.CACHE_COST_AVOIDED, window='1h')} / "
        f"({_rate(genai.COST, window='1h')} + {_rate(genai.CACHE_COST_AVOIDED, window='1h')})",
    )
    with_and_without = (
        timeseries.Panel()
        .title("Cost per hour with and without the cache")
        .description(
            "The LLM calls' cost, and that cost plus what the cache's hits avoided: the gap is the cache's saving. "
            "`pulumi config set semanticCache false` and the two lines meet."
        )
        .unit("currencyUSD")
        .span(12)
        .with_target(_promql("A", f"{_rate(genai.COST)} * 3600", "with the cache"))
        .with_target(
            _promql("B", f"({_rate(genai.COST)} + ({_rate(genai.CACHE_COST_AVOIDED)} or vector(0))) * 3600", "without")
        )
    )
    lookups = (
        timeseries.Panel()
        .title("Cache lookups per second")
        .description("By outcome: hit, miss, or error (Qdrant failing: answered as a miss).")
        .unit("short")
        .span(6)
        .with_target(
            _promql(
                "A",
                _rate(genai.CACHE_LOOKUPS, by=(genai.AGENT, genai.CACHE_OUTCOME)),
                _legend(genai.AGENT, genai.CACHE_OUTCOME),
            )
        )
    )
    lookup_latency = _with_percentiles(
        timeseries.Panel()
        .title("Cache lookup latency")
        .description("p50 and p95 of what a lookup (embedding and Qdrant query) adds before the LLM call.")
        .unit("s")
        .span(6),
        lambda q: _quantile(q, genai.CACHE_LOOKUP_DURATION),
        _legend(genai.AGENT),
    )
    return [hit_rate, avoided, avoided_month, reduction, with_and_without, lookups, lookup_latency]


def _routing_panels() -> list:
    """Requests and cost by route, and the saving against sending everything to the strong model."""
    requests = (
        timeseries.Panel()
        .title("Requests per second by route")
        .description("Where the router sent each review, and why (agent.route.reason).")
        .unit("reqps")
        .span(8)
        .with_target(
            _promql(
                "A",
                _rate(genai.ROUTE_REQUESTS, by=(genai.AGENT, genai.ROUTE, genai.ROUTE_REASON)),
                _legend(genai.AGENT, genai.ROUTE, genai.ROUTE_REASON),
            )
        )
    )
    cost_by_route = (
        timeseries.Panel()
        .title("Cost per hour by route")
        .description("The LLM calls' cost by route and model.")
        .unit("currencyUSD")
        .span(8)
        .with_target(
            _promql(
                "A", f"{_rate(genai.COST, by=(genai.ROUTE, genai.MODEL))} * 3600", _legend(genai.ROUTE, genai.MODEL)
            )
        )
    )
    hour = "1h"
    routing_saving = _stat(
        "Saving by routing",
        "Against the same LLM calls all on the strong model, last hour.",
        "percentunit",
        f"1 - {_rate(genai.COST, window=hour)} / {_rate(genai.COST_BASELINE, genai.NOT_CACHE_HIT, window=hour)}",
    )
    total_saving = _stat(
        "Saving by the cache and routing",
        "Against every review on the strong model with no cache, last hour: the two levers together.",
        "percentunit",
        f"1 - {_rate(genai.COST, window=hour)} / {_rate(genai.COST_BASELINE, window=hour)}",
    )
    return [requests, cost_by_route, routing_saving.span(4), total_saving.span(4)]


def _guardrail_panels() -> list:
    outcomes = (
        timeseries.Panel()
        .title("Guardrail findings per second")
        .description("Checks that found something: PII redacted (input or output), prompt injection flagged.")
        .unit("short")
        .span(12)
        .with_target(
            _promql(
                "A",
                _rate(
                    genai.GUARDRAIL_CHECKS,
                    genai.NOT_PASSED,
                    by=(genai.AGENT, genai.GUARDRAIL_STAGE, genai.GUARDRAIL_CHECK),
                ),
                _legend(genai.AGENT, genai.GUARDRAIL_STAGE, genai.GUARDRAIL_CHECK),
            )
        )
    )
    redactions = (
        timeseries.Panel()
        .title("PII redactions per second by type")
        .description(
            "Values replaced before the text reached the LLM, a log or a span (input), or the caller (output)."
        )
        .unit("short")
        .span(12)
        .with_target(
            _promql(
                "A",
                _rate(genai.GUARDRAIL_REDACTIONS, by=(genai.PII_TYPE, genai.GUARDRAIL_STAGE)),
                _legend(genai.PII_TYPE, genai.GUARDRAIL_STAGE),
            )
        )
    )
    return [outcomes, redactions]


def _grounding_panels() -> list:
    """Whether the reviews rest on what retrieval returned: how often not, and why."""
    semconv = genai.semconv
    ungrounded = (
        timeseries.Panel()
        .title("Ungrounded review ratio")
        .description(
            "Share of grounding checks that found the review ungrounded, by agent. Each such review logs an "
            f"{semconv.EVENT_UNGROUNDED} event with its trace id and the guideline ids it cited and retrieval returned."
        )
        .unit("percentunit")
        .span(12)
        .with_target(
            _promql("A", _share(genai.GROUNDING_CHECKS, genai.UNGROUNDED, by=(genai.AGENT,)), _legend(genai.AGENT))
        )
    )
    problems = (
        timeseries.Panel()
        .title("Grounding problems per minute")
        .description(
            f"By problem: {semconv.GROUNDING_CITED_UNRETRIEVED} (cites a guideline retrieval did not return), "
            f"{semconv.GROUNDING_NO_CITATION} (cites none of those it got), {semconv.GROUNDING_QUOTE_NOT_IN_INPUT} "
            "(quotes code the input does not have). One ungrounded review can have several."
        )
        .unit("short")
        .span(12)
        .with_target(
            _promql(
                "A",
                f"{_rate(genai.GROUNDING_PROBLEMS, by=(genai.AGENT, genai.GROUNDING_PROBLEM))} * 60",
                _legend(genai.AGENT, genai.GROUNDING_PROBLEM),
            )
        )
    )
    return [ungrounded, problems]


def _workflow_panels() -> list:
    """The multi-agent workflow: how often it runs and fails, how long it and its steps take, which step to look at.

    Workflow series carry the workflow and step, not an agent name: their scope is "" (every series).
    """
    semconv = genai.semconv
    runs = f"{genai.WORKFLOW_DURATION}_count"
    steps = genai.WORKFLOW_STEP_DURATION
    throughput = (
        timeseries.Panel()
        .title("Workflow runs per second")
        .description("Runs finished per second, complete or not, by workflow.")
        .unit("short")
        .span(8)
        .with_target(_promql("A", _rate(runs, by=(genai.WORKFLOW,), scope=""), _legend(genai.WORKFLOW)))
    )
    failures = (
        timeseries.Panel()
        .title("Workflow failure ratio")
        .description(
            "Share of runs that failed or finished partial (error.type set), and of each step's runs that failed: "
            "the failing step is the cause."
        )
        .unit("percentunit")
        .span(8)
        .with_target(_promql("A", _share(runs, genai.FAILED, by=(genai.WORKFLOW,), scope=""), _legend(genai.WORKFLOW)))
        .with_target(
            _promql(
                "B",
                _share(f"{steps}_count", genai.FAILED, by=(genai.WORKFLOW_STEP,), scope=""),
                _legend(genai.WORKFLOW_STEP),
            )
        )
    )
    latency = _with_percentiles(
        timeseries.Panel()
        .title("Workflow latency")
        .description("p50 and p95 of a whole run, by workflow.")
        .unit("s")
        .span(8),
        lambda q: _quantile(q, genai.WORKFLOW_DURATION, by=(genai.WORKFLOW,), scope=""),
        _legend(genai.WORKFLOW),
    )
    step_latency = _with_percentiles(
        timeseries.Panel()
        .title("Step latency")
        .description(
            f"p50 and p95 of each step. The steps do not add up to the run: one branch runs {semconv.STEP_REVIEW_CODE} "
            f"while the other runs {semconv.STEP_GENERATE_ASSIGNMENT} then {semconv.STEP_REVIEW_PROMPT}; "
            f"{semconv.STEP_COMPOSE_REPORT} follows the slower branch."
        )
        .unit("s")
        .span(12),
        lambda q: _quantile(q, steps, by=(genai.WORKFLOW_STEP,), scope=""),
        _legend(genai.WORKFLOW_STEP),
    )
    step_time = f"{steps}_sum"
    share = (
        bargauge.Panel()
        .title("Share of step time")
        .description(
            "Each step's part of the time all steps took over the last hour: where the workflow's LLM time goes. "
            "Branches overlap, so this is work done, not waiting: a large share does not by itself delay a run."
        )
        .unit("percentunit")
        .min(0)
        .max(1)
        .orientation(VizOrientation.HORIZONTAL)
        .span(6)
        .with_target(
            _promql(
                "A",
                f"{_rate(step_time, window='1h', by=(genai.WORKFLOW_STEP,), scope='')}"
                f" / ignoring({genai.WORKFLOW_STEP}) group_left {_rate(step_time, window='1h', scope='')}",
                _legend(genai.WORKFLOW_STEP),
            )
        )
    )
    slowest = (
        stat.Panel()
        .title("Slowest step (p95)")
        .description(
            "The step with the highest p95 over the last hour, the first to look at. It delays a run when its branch "
            f"is the slower: {semconv.STEP_REVIEW_CODE} against {semconv.STEP_GENERATE_ASSIGNMENT} plus "
            f"{semconv.STEP_REVIEW_PROMPT}. A review step calls an agent: the service graph below shows that call, "
            "Usage and cost the agent's LLM calls."
        )
        .unit("s")
        .text_mode(BigValueTextMode.VALUE_AND_NAME)
        .span(6)
        .with_target(
            # Instant: a range query's topk names whichever step led at each point, several steps at once.
            _promql(
                "A",
                f"topk(1, {_quantile(0.95, steps, by=(genai.WORKFLOW_STEP,), scope='', window='1h')})",
                _legend(genai.WORKFLOW_STEP),
            ).instant()
        )
    )
    service_graph = (
        nodegraph.Panel()
        .title("Service graph")
        .description(
            "Tempo's service graph (from the span pairs its metrics-generator writes to Mimir): which service calls "
            "which, each edge with its rate, errors and latency. Click a node for its traces."
        )
        .datasource(TRACES.ref)
        .span(24)
        .height(12)
        .with_target(tempo.TempoQuery().ref_id("A").datasource(TRACES.ref).query_type("serviceMap"))
    )
    return [throughput, failures, latency, step_latency, share, slowest, service_graph]


def model_server_panels() -> list:
    """The model KServe serves (phase production), beside the agents: its predictions and their latency."""
    predictions = (
        timeseries.Panel()
        .title("Model predictions per second")
        .description("Requests the model server answered, by model (KServe's request_predict_seconds).")
        .unit("reqps")
        .span(12)
        .with_target(_promql("A", _rate(f"{PREDICT_SECONDS}_count", by=(MODEL_LABEL,), scope=""), _legend(MODEL_LABEL)))
    )
    latency = _with_percentiles(
        timeseries.Panel()
        .title("Model prediction latency")
        .description("p50 and p95 of the model server's prediction time, by model.")
        .unit("s")
        .span(12),
        lambda q: _quantile(q, PREDICT_SECONDS, by=(MODEL_LABEL,), scope=""),
        _legend(MODEL_LABEL),
    )
    return [predictions, latency]


def _quantile(
    q: float,
    histogram: str,
    by: tuple[str, ...] = (genai.AGENT,),
    scope: str = AGENT_FILTER,
    window: str = "$__rate_interval",
) -> str:
    return f"histogram_quantile({q}, {_rate(f'{histogram}_bucket', window=window, by=(*by, 'le'), scope=scope)})"


def dashboard_files() -> dict[str, str]:
    """File name to dashboard JSON, for Grafana's file provisioning."""
    boards = [service_overview(), llm_agents()]
    return {f"{board.uid}.json": json.dumps(board, cls=JSONEncoder, indent=2, sort_keys=True) for board in boards}
