"""Telemetry, read back from in-memory exporters: metric names, units, attributes; spans; logs.

These are the names the Grafana dashboards and alerts query, so a rename must fail here first.
"""

from __future__ import annotations

import logging
import re
from typing import Any, cast

import pytest
from opentelemetry.sdk.metrics.export import Histogram, HistogramDataPoint, Metric, NumberDataPoint, Sum
from opentelemetry.trace import SpanKind, StatusCode
from qdrant_client import QdrantClient

from agent import semconv as sc
from agent.pricing import PRICES, cost_usd, price_for
from agent.telemetry import Telemetry, build_resource
from agent_test_support import (
    CODE,
    PROMPT,
    Captured,
    client_for,
    failing_text,
    make_settings,
    passing_text,
    unreachable_qdrant,
)


def points(metric: Metric) -> list[HistogramDataPoint | NumberDataPoint]:
    return cast(list[HistogramDataPoint | NumberDataPoint], list(metric.data.data_points))


def attributes(point: HistogramDataPoint | NumberDataPoint) -> dict[str, Any]:
    return dict(point.attributes or {})


def chat_attributes(role: str, **extra: str) -> dict[str, str]:
    return {
        "gen_ai.system": "simulated",
        "gen_ai.provider.name": "simulated",
        "gen_ai.operation.name": "chat",
        "gen_ai.request.model": "simulated-small",
        "agent.name": role,
        "agent.route": "cheap",
        **extra,
    }


@pytest.fixture
def reviewed(captured: Captured, memory_qdrant: QdrantClient) -> dict[str, Any]:
    """One successful code-critic review; its response body."""
    with client_for(make_settings("code-critic"), captured, qdrant=memory_qdrant) as client:
        response = client.post("/review", json={"text": passing_text("code-critic", CODE)})
    assert response.status_code == 200
    return cast(dict[str, Any], response.json())


def test_token_usage_histogram(captured: Captured, reviewed: dict[str, Any]) -> None:
    metric = captured.metric("gen_ai.client.token.usage")
    assert metric.unit == "{token}"
    assert isinstance(metric.data, Histogram)
    by_type = {attributes(p)["gen_ai.token.type"]: p for p in points(metric)}
    assert set(by_type) == {"input", "output"}
    for token_type, tokens in (("input", reviewed["input_tokens"]), ("output", reviewed["output_tokens"])):
        point = by_type[token_type]
        assert isinstance(point, HistogramDataPoint)
        assert attributes(point) == chat_attributes(
            "code-critic", **{"gen_ai.response.model": "simulated-small", "gen_ai.token.type": token_type}
        )
        assert (point.count, point.sum) == (1, tokens)
        assert tuple(point.explicit_bounds) == sc.TOKEN_USAGE_BUCKETS


def test_operation_duration_histogram(captured: Captured, reviewed: dict[str, Any]) -> None:
    metric = captured.metric("gen_ai.client.operation.duration")
    assert metric.unit == "s"
    (point,) = points(metric)
    assert isinstance(point, HistogramDataPoint)
    assert attributes(point) == chat_attributes("code-critic", **{"gen_ai.response.model": "simulated-small"})
    assert point.count == 1 and 0 <= point.sum < 5
    assert tuple(point.explicit_bounds) == sc.OPERATION_DURATION_BUCKETS


def test_cost_counter_is_tokens_times_the_price_table(captured: Captured, reviewed: dict[str, Any]) -> None:
    metric = captured.metric("agent.llm.cost")
    assert metric.unit == "{USD}"
    assert isinstance(metric.data, Sum) and metric.data.is_monotonic
    (point,) = points(metric)
    assert attributes(point) == {
        "gen_ai.system": "simulated",
        "gen_ai.provider.name": "simulated",
        "gen_ai.request.model": "simulated-small",
        "agent.name": "code-critic",
        "agent.route": "cheap",
    }
    price = PRICES["simulated-small"]
    expected = (
        reviewed["input_tokens"] * price.input_per_mtok + reviewed["output_tokens"] * price.output_per_mtok
    ) / 1e6
    assert isinstance(point, NumberDataPoint)
    assert point.value == pytest.approx(expected)
    assert reviewed["cost_usd"] == pytest.approx(expected)


def test_retrieval_histogram(captured: Captured, reviewed: dict[str, Any]) -> None:
    metric = captured.metric("agent.retrieval.duration")
    assert metric.unit == "s"
    (point,) = points(metric)
    assert attributes(point) == {"agent.name": "code-critic", "agent.retrieval.outcome": "hit"}
    assert tuple(point.explicit_bounds) == sc.RETRIEVAL_DURATION_BUCKETS  # type: ignore[union-attr]


def test_spans_of_one_review(captured: Captured, reviewed: dict[str, Any]) -> None:
    server = captured.span("POST /review")
    chat = captured.span("chat simulated-small")
    retrieval = captured.span("retrieval review-guidelines")
    assert server.kind == SpanKind.SERVER
    assert server.attributes is not None and server.attributes["agent.name"] == "code-critic"
    assert f"{server.context.trace_id:032x}" == reviewed["trace_id"]
    for child in (chat, retrieval):
        assert child.kind == SpanKind.CLIENT
        assert child.parent is not None and child.parent.span_id == server.context.span_id
        assert child.context.trace_id == server.context.trace_id

    assert dict(chat.attributes or {}) == {
        "gen_ai.operation.name": "chat",
        "gen_ai.system": "simulated",
        "gen_ai.provider.name": "simulated",
        "peer.service": "simulated",
        "gen_ai.request.model": "simulated-small",
        "gen_ai.request.max_tokens": 1024,
        "gen_ai.response.model": "simulated-small",
        "gen_ai.response.id": chat.attributes["gen_ai.response.id"],  # type: ignore[index]
        "gen_ai.response.finish_reasons": ("stop",),
        "gen_ai.usage.input_tokens": reviewed["input_tokens"],
        "gen_ai.usage.output_tokens": reviewed["output_tokens"],
        "agent.name": "code-critic",
        "agent.route": "cheap",
    }
    assert chat.status.status_code == StatusCode.UNSET

    assert retrieval.attributes is not None
    assert retrieval.attributes["agent.retrieval.outcome"] == "hit"
    assert retrieval.attributes["agent.retrieval.mode"] == "hybrid"
    assert retrieval.attributes["agent.retrieval.reranked"] is True
    assert retrieval.attributes["db.system.name"] == retrieval.attributes["peer.service"] == "qdrant"
    assert retrieval.attributes["db.collection.name"] == "review-guidelines"
    assert list(retrieval.attributes["agent.retrieval.guideline_ids"]) == reviewed["guideline_ids"]  # type: ignore[arg-type]


def test_the_retrieval_span_names_the_mode_it_ran(captured: Captured, memory_qdrant: QdrantClient) -> None:
    settings = make_settings("code-critic", retrieval_mode="sparse", retrieval_rerank=False)
    with client_for(settings, captured, qdrant=memory_qdrant) as client:
        review = client.post("/review", json={"text": passing_text("code-critic", CODE)}).json()
    assert review["guideline_ids"][0] == "cc-001"
    attributes_of_span = dict(captured.span("retrieval review-guidelines").attributes or {})
    assert attributes_of_span["agent.retrieval.mode"] == "sparse"
    assert attributes_of_span["agent.retrieval.reranked"] is False
    (point,) = points(captured.metric("agent.retrieval.duration"))
    assert attributes(point) == {"agent.name": "code-critic", "agent.retrieval.outcome": "hit"}


def test_logs_carry_the_trace_of_their_request(captured: Captured, reviewed: dict[str, Any]) -> None:
    done = [r.log_record for r in captured.log_records() if str(r.log_record.body).startswith("review done")]
    assert len(done) == 1
    record = done[0]
    assert f"{record.trace_id:032x}" == reviewed["trace_id"]
    assert record.span_id == captured.span("POST /review").context.span_id
    assert record.severity_text == "INFO"
    assert dict(record.attributes or {})["agent.name"] == "code-critic"


def test_a_failed_call_records_error_type_and_no_tokens(captured: Captured, memory_qdrant: QdrantClient) -> None:
    with client_for(make_settings("prompt-reviewer"), captured, qdrant=memory_qdrant) as client:
        assert client.post("/review", json={"text": failing_text("prompt-reviewer")}).status_code == 502

    (point,) = points(captured.metric("gen_ai.client.operation.duration"))
    assert attributes(point) == chat_attributes("prompt-reviewer", **{"error.type": "overloaded_error"})
    metrics_data = captured.metrics.get_metrics_data()
    names = {m.name for rm in metrics_data.resource_metrics for sm in rm.scope_metrics for m in sm.metrics}  # type: ignore[union-attr]
    assert "gen_ai.client.token.usage" not in names and "agent.llm.cost" not in names

    chat = captured.span("chat simulated-small")
    assert chat.status.status_code == StatusCode.ERROR
    assert chat.attributes is not None and chat.attributes["error.type"] == "overloaded_error"
    assert [e.name for e in chat.events] == ["exception"]
    assert captured.span("POST /review").status.status_code == StatusCode.ERROR

    errors = [r.log_record for r in captured.log_records() if r.log_record.severity_text == "ERROR"]
    assert len(errors) == 1 and "LLM call to simulated failed (overloaded_error)" in str(errors[0].body)
    assert errors[0].span_id == chat.context.span_id


def test_qdrant_down_is_recorded_on_the_span_metric_and_log(captured: Captured) -> None:
    with client_for(make_settings("code-critic"), captured, qdrant=unreachable_qdrant()) as client:
        assert client.post("/review", json={"text": passing_text("code-critic", CODE)}).status_code == 200

    retrieval = captured.span("retrieval review-guidelines")
    assert retrieval.status.status_code == StatusCode.ERROR
    assert retrieval.attributes is not None and retrieval.attributes["agent.retrieval.outcome"] == "error"
    assert retrieval.attributes["agent.retrieval.mode"] == "hybrid"
    assert "agent.retrieval.reranked" not in retrieval.attributes, "nothing was reranked"
    (point,) = points(captured.metric("agent.retrieval.duration"))
    assert attributes(point) == {"agent.name": "code-critic", "agent.retrieval.outcome": "error"}
    errors = [str(r.log_record.body) for r in captured.log_records() if r.log_record.severity_text == "ERROR"]
    assert any(e.startswith("retrieval failed, reviewing without guidelines") for e in errors)
    assert any(e.startswith("Qdrant not available at startup") for e in errors)
    assert captured.span("chat simulated-small").status.status_code == StatusCode.UNSET


def test_both_roles_are_separate_series(captured: Captured, memory_qdrant: QdrantClient) -> None:
    for role, base in (("prompt-reviewer", PROMPT), ("code-critic", CODE)):
        with client_for(make_settings(role), captured, qdrant=memory_qdrant) as client:
            assert client.post("/review", json={"text": passing_text(role, base)}).status_code == 200
    agents = {attributes(p)["agent.name"] for p in points(captured.metric("agent.llm.cost"))}
    assert agents == {"prompt-reviewer", "code-critic"}


# --- names as they reach Mimir -----------------------------------------------------------------


def prometheus_name(name: str, unit: str, monotonic_sum: bool) -> str:
    """The OTel -> Prometheus compatibility spec's rules, as Alloy applies them by default.

    Invalid characters become `_`; a unit in braces is dropped; `s` becomes `seconds` and is
    appended unless already in the name; monotonic sums end in `_total`.
    """
    result = re.sub(r"[^a-zA-Z0-9_:]+", "_", name)
    unit = re.sub(r"\{[^}]*\}", "", unit)
    unit = {"s": "seconds", "ms": "milliseconds", "By": "bytes", "1": "ratio"}.get(unit, unit)
    if unit and not result.endswith(unit):
        result = f"{result}_{unit}"
    if monotonic_sum and not result.endswith("_total"):
        result += "_total"
    return result


def test_prometheus_names_follow_the_conversion_rules() -> None:
    for name, (kind, unit, expected) in sc.METRICS.items():
        assert prometheus_name(name, unit, kind == sc.COUNTER) == expected, name
    assert sc.PROMETHEUS_NAMES[sc.AGENT_LLM_COST] == "agent_llm_cost_total"
    labels = {sc.prometheus_label(a) for a in (sc.GEN_AI_REQUEST_MODEL, sc.AGENT_NAME, sc.GEN_AI_TOKEN_TYPE)}
    assert labels == {"gen_ai_request_model", "agent_name", "gen_ai_token_type"}


def test_emitted_instruments_have_the_declared_kind_and_unit(captured: Captured, reviewed: dict[str, Any]) -> None:
    data = captured.metrics.get_metrics_data()
    emitted = [
        metric
        for resource_metrics in data.resource_metrics  # type: ignore[union-attr]
        for scope_metrics in resource_metrics.scope_metrics
        if scope_metrics.scope.name == sc.INSTRUMENTATION_SCOPE
        for metric in scope_metrics.metrics
    ]
    assert emitted
    for metric in emitted:
        kind, unit, _ = sc.METRICS[metric.name]
        assert metric.unit == unit, metric.name
        if kind == sc.COUNTER:
            assert isinstance(metric.data, Sum) and metric.data.is_monotonic, metric.name
        else:
            assert isinstance(metric.data, Histogram), metric.name


# --- resource and setup ------------------------------------------------------------------------


def test_service_name_defaults_to_the_role(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OTEL_SERVICE_NAME", raising=False)
    monkeypatch.setenv("OTEL_RESOURCE_ATTRIBUTES", "deployment.environment.name=local")
    attrs = build_resource("code-critic").attributes
    assert attrs["service.name"] == "code-critic"
    assert attrs["deployment.environment.name"] == "local"
    assert attrs["service.instance.id"]


def test_otel_service_name_and_resource_attributes_win(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTEL_SERVICE_NAME", "critic-blue")
    monkeypatch.setenv("OTEL_RESOURCE_ATTRIBUTES", "service.instance.id=critic-1")
    attrs = build_resource("code-critic").attributes
    assert (attrs["service.name"], attrs["service.instance.id"]) == ("critic-blue", "critic-1")


def test_without_an_otlp_endpoint_nothing_is_exported(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OTEL_SERVICE_NAME", raising=False)
    telemetry = Telemetry.from_env("code-critic", environ={})
    assert telemetry.service_name == "code-critic"
    assert not telemetry.exporting
    telemetry.tracer().start_span("nothing").end()
    telemetry.shutdown()


def test_an_otlp_endpoint_sets_up_plaintext_grpc_exporters(monkeypatch: pytest.MonkeyPatch) -> None:
    telemetry = Telemetry.from_env(
        "code-critic",
        environ={
            "OTEL_EXPORTER_OTLP_ENDPOINT": "http://alloy:4317",
            "OTEL_EXPORTER_OTLP_LOGS_ENDPOINT": "http://logs:4317",
        },
    )
    try:
        assert telemetry.exporting
        # Private attributes of the pinned SDK: the only way to see where spans and logs would go.
        span_exporter = telemetry.tracer_provider._active_span_processor._span_processors[0]._batch_processor._exporter  # type: ignore[attr-defined]  # noqa: SLF001
        log_processor = telemetry.logger_provider._multi_log_record_processor._log_record_processors[0]  # noqa: SLF001
        assert (span_exporter._endpoint, span_exporter._insecure) == ("alloy:4317", True)  # noqa: SLF001
        assert log_processor._batch_processor._exporter._endpoint == "logs:4317"  # type: ignore[attr-defined]  # noqa: SLF001
    finally:
        telemetry.shutdown()  # nothing was recorded, so nothing is sent


def test_sdk_warnings_are_not_exported_by_the_exporter_that_fails(captured: Captured) -> None:
    logging.getLogger("opentelemetry.sdk.test").warning("exporting failed")
    logging.getLogger("agent.test").warning("a real warning")
    bodies = [str(r.log_record.body) for r in captured.log_records()]
    assert "a real warning" in bodies and "exporting failed" not in bodies


def test_prices_are_found_for_snapshots_and_missing_for_unknown_models() -> None:
    assert price_for("claude-haiku-4-5-20251001") == PRICES["claude-haiku-4-5"]
    assert cost_usd("gpt-5.6-luna", 1_000_000, 1_000_000) == pytest.approx(0.20 + 1.20)
    assert cost_usd("unknown-model", 10, 10) is None
