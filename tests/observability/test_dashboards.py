"""Provisioned dashboards: built with grafana-foundation-sdk, wired to the provisioned datasources."""

from __future__ import annotations

import json
import re

import pytest
import yaml

from components.observability import tempo
from tests.docker_view import services

SPAN_METRICS = {tempo.SPAN_CALLS, tempo.SPAN_LATENCY}


@pytest.fixture(scope="module")
def grafana(observability):
    return services(observability)["grafana"]


@pytest.fixture(scope="module")
def boards(grafana):
    provider = yaml.safe_load(grafana.upload("/etc/grafana/provisioning/dashboards/llm-infra-lab.yaml"))
    (source,) = provider["providers"]
    files = grafana.uploads_under(source["options"]["path"] + "/")
    assert files, "the dashboard provider's folder is empty"
    return {board["uid"]: board for board in map(json.loads, files.values())}


@pytest.fixture(scope="module")
def datasource_uids(grafana):
    (text,) = grafana.uploads_under("/etc/grafana/provisioning/datasources/").values()
    return {ds["uid"]: ds["type"] for ds in yaml.safe_load(text)["datasources"]}


def targets(board):
    return [(panel, target) for panel in board["panels"] for target in panel.get("targets", [])]


def test_service_overview_has_the_three_first_questions(boards):
    board = boards["service-overview"]
    assert [p["title"] for p in board["panels"]] == ["Request rate", "Latency p95", "Error logs"]
    assert [p["type"] for p in board["panels"]] == ["timeseries", "timeseries", "logs"]


def test_every_query_names_a_provisioned_datasource_of_its_type(boards, datasource_uids):
    for board in boards.values():
        for panel, target in targets(board):
            ref = target["datasource"]
            assert datasource_uids.get(ref["uid"]) == ref["type"], f"{board['uid']}/{panel['title']}: {ref}"
            assert target["refId"], f"{panel['title']} has a query without refId"


def test_metric_panels_query_tempo_span_metrics(boards):
    board = boards["service-overview"]
    panels = {p["title"]: p for p in board["panels"]}
    rate_exprs = [t["expr"] for t in panels["Request rate"]["targets"]]
    assert all(set(re.findall(r"\btraces_\w+", e)) <= SPAN_METRICS for e in rate_exprs)
    assert any('status_code="STATUS_CODE_ERROR"' in e for e in rate_exprs)
    (latency,) = panels["Latency p95"]["targets"]
    assert latency["expr"].startswith("histogram_quantile(0.95,")
    assert "traces_spanmetrics_latency_bucket" in latency["expr"] and "le)" in latency["expr"]
    assert panels["Latency p95"]["fieldConfig"]["defaults"]["unit"] == "s"


def test_error_logs_select_by_the_otlp_service_label(boards):
    (target,) = {p["title"]: p for p in boards["service-overview"]["panels"]}["Error logs"]["targets"]
    assert target["expr"].startswith('{service_name=~"$service"}')
    assert "error" in target["expr"]


def test_service_variable_never_matches_the_empty_string(boards):
    """Loki rejects selectors that can match empty, so "All" must be .+ not .*."""
    (variable,) = boards["service-overview"]["templating"]["list"]
    assert variable["name"] == "service" and variable["includeAll"] is True
    assert variable["allValue"] == ".+"
    assert variable["query"] == "label_values(traces_spanmetrics_calls_total, service)"


def test_dashboards_are_read_only_from_files(grafana):
    provider = yaml.safe_load(grafana.upload("/etc/grafana/provisioning/dashboards/llm-infra-lab.yaml"))
    (source,) = provider["providers"]
    assert source["allowUiUpdates"] is False and source["disableDeletion"] is True


def span_metric_queries(boards, grafana) -> list[str]:
    """Every query over Tempo's span metrics: dashboard panels, and the traces-to-metrics links."""
    (text,) = grafana.uploads_under("/etc/grafana/provisioning/datasources/").values()
    tempo = next(ds for ds in yaml.safe_load(text)["datasources"] if ds["type"] == "tempo")
    links = [query["query"] for query in tempo["jsonData"]["tracesToMetrics"]["queries"]]
    panels = [target.get("expr", "") for board in boards.values() for _, target in targets(board)]
    return [query for query in [*links, *panels] if re.search(r"\btraces_spanmetrics_", query)]


def test_request_rate_and_latency_count_requests_not_every_span(boards, grafana):
    """One review is a server span plus client, LLM and retrieval spans; only the first is a request."""
    queries = span_metric_queries(boards, grafana)
    assert len(queries) >= 5
    for query in queries:
        for selector in re.findall(r"traces_spanmetrics_\w+\{([^}]*)\}", query):
            assert 'span_kind="SPAN_KIND_SERVER"' in selector, query
