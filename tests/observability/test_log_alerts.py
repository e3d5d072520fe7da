"""The LogQL alert rules Loki's ruler evaluates: loaded the same on every runtime, well-formed, and counting
what the agents actually log.

promtool cannot read LogQL: the rule files are checked by promtool with each expression swapped for a PromQL
stand-in (Loki loads rule files with Prometheus' rules), and each expression is parsed with Grafana's own
LogQL grammar (tests/logql.py). Then records are logged the way an agent does (its LoggingHandler, a resource
from the agent's own OTEL_* environment in every phase that runs agents, the OTLP encoding its exporter
sends), passed through Alloy's event-name copy and Loki's OTLP mapping (tests/loki_otlp.py), and each rule's
selector and filters must count the records it is about and no others.
"""

from __future__ import annotations

import logging
import os
import re
import subprocess
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from unittest import mock

import pytest
import yaml
from opentelemetry.exporter.otlp.proto.common._log_encoder import encode_logs
from opentelemetry.instrumentation.logging.handler import LoggingHandler
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter, SimpleLogRecordProcessor
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider

from components.observability import grafana, log_alerts, loki
from components.observability.genai import semconv as sc
from components.workloads.agent import ROLES
from stacks.catalog import PHASES
from tests import logql, loki_otlp
from tests.alloy_view import resolved
from tests.conftest import evaluate
from tests.docker_view import services
from tests.k8s_view import manifests
from tests.observability.test_alert_rules import promtool

ALERTS = {"LLMAgentUngroundedAnswers", "LLMAgentErrorLogBurst"}
EVENT_NAME_COPY = re.compile(r'set\(log\.attributes\["([^"]+)"\], log\.event_name\)')
"""Alloy's statement that copies a record's event name into an attribute (to-stores.alloy)."""


@pytest.fixture(scope="module")
def rule_files(observability) -> dict[str, dict[str, str]]:
    """File name to text, as the Docker Loki reads them and as the EKS ConfigMap holds them."""
    uploads = services(observability)["loki"].uploads_under(f"{loki.RULES_PATH}/{loki.TENANT}/")
    (config_map,) = [
        o
        for o in manifests(evaluate("dev", phase="production"))
        if o["kind"] == "ConfigMap" and o["metadata"]["name"] == "loki-rules"
    ]
    return {"docker": {Path(path).name: text for path, text in uploads.items()}, "eks": config_map["data"]}


@pytest.fixture(scope="module")
def rules(rule_files) -> dict[str, dict]:
    return {
        rule["alert"]: rule
        for text in rule_files["docker"].values()
        for group in yaml.safe_load(text)["groups"]
        for rule in group["rules"]
    }


@pytest.fixture(scope="module")
def queries(rules) -> dict[str, logql.Query]:
    return dict(zip(rules, logql.parse(*(rule["expr"] for rule in rules.values())), strict=True))


@pytest.fixture(scope="module")
def alloy_config(observability) -> str:
    """The gateway Alloy every phase's logs reach Loki through (on EKS, the cluster Alloy runs the same file)."""
    alloy = services(observability)["alloy"]
    return resolved(alloy.uploads_under("/etc/alloy/"), alloy.env)


def agent_environments() -> Iterator[tuple[str, str, dict[str, str]]]:
    """(where, role, environment) of every agent container of every phase, Docker or Kubernetes."""
    for phase in PHASES:
        for stack in phase.stacks:
            run = evaluate(stack, phase=phase.name)
            for name, service in services(run).items():
                if name in ROLES:
                    yield f"{stack}:{phase.name}", name, dict(service.env)
            for o in manifests(run):
                if o["kind"] == "Deployment" and o["metadata"]["name"] in ROLES:
                    (container,) = o["spec"]["template"]["spec"]["containers"]
                    env = {e["name"]: e["value"] for e in container.get("env", []) if "value" in e}
                    yield f"{stack}:{phase.name}", o["metadata"]["name"], env


AGENTS = sorted(agent_environments(), key=lambda agent: agent[:2])
"""In one order in every pytest-xdist worker, which must collect the same tests."""


def sent(env: Mapping[str, str], emit: Callable[[logging.Logger], None]) -> ExportLogsServiceRequest:
    """What an agent with this environment sends for the records `emit` logs, inside a request's span: the
    resource the SDK builds from its OTEL_* variables, the agent's LoggingHandler, the OTLP exporter's encoding."""
    identity = {key: env.get(key, "") for key in ("OTEL_SERVICE_NAME", "OTEL_RESOURCE_ATTRIBUTES")}
    with mock.patch.dict(os.environ, identity):
        provider = LoggerProvider(resource=Resource.create())
    exporter = InMemoryLogRecordExporter()
    provider.add_log_record_processor(SimpleLogRecordProcessor(exporter))
    logger = logging.getLogger("llm-infra-lab.agent.test")
    logger.propagate = False
    logger.setLevel(logging.DEBUG)
    handler = LoggingHandler(logger_provider=provider)
    logger.addHandler(handler)
    try:
        with TracerProvider().get_tracer("test").start_as_current_span("review"):
            emit(logger)
    finally:
        logger.removeHandler(handler)
    return encode_logs(exporter.get_finished_logs())


def through_alloy(request: ExportLogsServiceRequest, alloy_config: str) -> ExportLogsServiceRequest:
    """Alloy's copies of each record's event name into the attributes its statements name."""
    for resource_logs in request.resource_logs:
        for scope_logs in resource_logs.scope_logs:
            for record in scope_logs.log_records:
                for attribute in EVENT_NAME_COPY.findall(alloy_config) if record.event_name else ():
                    record.attributes.add(key=attribute).value.string_value = record.event_name
    return request


def in_loki(env: Mapping[str, str], alloy_config: str, emit: Callable[[logging.Logger], None]) -> list:
    return loki_otlp.entries(through_alloy(sent(env, emit), alloy_config))


# --- loaded the same everywhere, well-formed --------------------------------------------------


def test_docker_and_eks_load_the_same_rule_files(rule_files):
    assert rule_files["docker"] == rule_files["eks"] == log_alerts.rule_files()


def test_the_rule_files_are_rule_groups_lokis_ruler_loads(rule_files, tmp_path):
    """Loki reads rule files as Prometheus does (strict fields, durations, label names, annotation templates),
    then parses each expression as LogQL: promtool checks all but the expressions."""
    for name, text in rule_files["docker"].items():
        groups = yaml.safe_load(text)
        for group in groups["groups"]:
            for rule in group["rules"]:
                rule["expr"] = "vector(1)"
        (tmp_path / name).write_text(yaml.safe_dump(groups))
    files = sorted(str(path) for path in tmp_path.iterdir())
    result = subprocess.run([promtool(), "check", "rules", *files], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_alert_has_a_severity_a_wait_and_what_to_do(rules):
    assert set(rules) == ALERTS
    for name, rule in rules.items():
        assert rule["labels"] == {"severity": "warning"}, name
        assert rule["for"], f"{name} fires on one evaluation"
        assert set(rule["annotations"]) == {"summary", "description"}, name


def test_every_expression_is_a_logql_metric_query_compared_with_a_threshold(queries):
    for name, query in queries.items():
        assert not query.errors, f"{name}: LogQL syntax errors at {query.errors}"
        comparison = query.tree.child("Expr").child("MetricExpr").child("BinOpExpr")
        assert comparison.child("Gtr"), name
        assert query.tree.all("CountOverTime") and query.grouping, f"{name}: counts log lines, by some label"


def test_the_grammar_finds_a_broken_expression():
    (broken,) = logql.parse('sum(count_over_time({service_name="x"} | [5m])) > 1')
    assert broken.errors


def test_annotations_only_name_labels_the_aggregated_series_keeps(rules, queries):
    """`sum by (...)` drops every other label: a template naming one would print nothing."""
    for name, rule in rules.items():
        named = set(re.findall(r"\$labels\.(\w+)", " ".join(rule["annotations"].values())))
        assert named <= set(queries[name].grouping), name


# --- counting what the agents log -------------------------------------------------------------


def test_agents_run_in_several_phases():
    assert {where for where, _, _ in AGENTS} >= {"local:agents", "local:kubernetes", "dev:production"}


@pytest.mark.parametrize(("where", "role", "env"), AGENTS, ids=[f"{r}@{w}" for w, r, _ in AGENTS])
def test_the_ungrounded_rule_counts_the_agents_ungrounded_events_and_nothing_else(
    where, role, env, queries, alloy_config
):
    ungrounded, injection, other = in_loki(
        env,
        alloy_config,
        lambda log: (
            log.warning(
                "review not grounded: no_citation",
                extra={
                    sc.OTEL_EVENT_NAME: sc.EVENT_UNGROUNDED,
                    sc.AGENT_NAME: role,
                    sc.AGENT_GROUNDING_PROBLEMS_FOUND: [sc.GROUNDING_NO_CITATION],
                    sc.AGENT_GROUNDING_CITED_IDS: [],
                    sc.AGENT_RETRIEVAL_GUIDELINE_IDS: ["g1", "g2"],
                },
            ),
            log.warning(
                "guardrail: likely prompt injection",
                extra={sc.OTEL_EVENT_NAME: sc.EVENT_INJECTION_SUSPECTED, sc.AGENT_NAME: role},
            ),
            log.warning("semantic cache store failed", extra={sc.AGENT_NAME: role}),
        ),
    )
    query = queries["LLMAgentUngroundedAnswers"]
    assert query.selects(ungrounded.stream, ungrounded.metadata), f"{where}: {ungrounded}"
    assert not query.selects(injection.stream, injection.metadata)
    assert not query.selects(other.stream, other.metadata)
    assert {label: ungrounded.metadata.get(label) for label in query.grouping} == {log_alerts.AGENT: role}
    # The description sends the reader from the event to its trace: Grafana's derived field reads trace_id.
    assert ungrounded.metadata[grafana.TRACE_ID]


@pytest.mark.parametrize(("where", "role", "env"), AGENTS, ids=[f"{r}@{w}" for w, r, _ in AGENTS])
def test_the_error_rule_counts_error_and_critical_lines_not_warnings(where, role, env, queries, alloy_config):
    logged = in_loki(
        env,
        alloy_config,
        lambda log: (log.error("LLM call failed"), log.critical("down"), log.warning("slow"), log.info("ok")),
    )
    query = queries["LLMAgentErrorLogBurst"]
    assert [query.selects(entry.stream, entry.metadata) for entry in logged] == [True, True, False, False], where
    assert {label: logged[0].stream.get(label) for label in query.grouping} == {log_alerts.SERVICE: role}
