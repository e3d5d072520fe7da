"""What the Mimir and Tempo charts make of the lab's values, read against the charts' own values files.

Mimir's chart renders its `mimir.config` template, then merges `mimir.structuredConfig` over it: the test
renders that template the way the chart would for the lab's release (its conditionals and the handful of
names it inserts) and checks the paths the data takes: distributor to ingester on writes, query-frontend to
query-scheduler to querier on reads. Then what the charts deploy that the lab did not turn off must be
inside the phase's memory budget.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
import yaml

from components.observability import lgtm_eks_values as values
from components.observability import tempo
from components.observability.lgtm_eks import CHARTS, memory_requests_mib
from tests.chart_data import coalesce, merge_overwrite, user_values
from tests.conftest import evaluate
from tests.test_helm_values import DATA

NAMESPACE = "observability"
GRPC_PORT = 9095
"""The chart's `mimir.serverGrpcListenPort`: Mimir's default gRPC port."""
MIMIR = DATA[CHARTS["mimir"].name]
TEMPO = DATA[CHARTS["tempo"].name]
SIDECARS = {"memcachedExporter": "runs beside a memcached cache only; every cache is off by default"}
"""Chart sections with `enabled` that are not workloads of their own."""


@pytest.fixture(scope="module")
def releases() -> dict[str, dict]:
    run = evaluate("dev", phase="production")
    return {r.name: user_values(r) for r in run.of_type("kubernetes:helm.sh/v3:Release")}


def _lookup(tree: dict, path: list[str]) -> Any:
    for key in path:
        tree = tree.get(key) if isinstance(tree, dict) else None
    return tree


def _condition(expression: str, chart: dict) -> bool:
    """The conditions mimir.config uses: `.Values.a.b`, `index .Values "a" "b"`, and `or` of those."""
    if expression.startswith("or "):
        return any(_condition(part, chart) for part in re.findall(r"\(([^()]*)\)", expression))
    if expression.startswith("index .Values"):
        return bool(_lookup(chart, re.findall(r'"([^"]+)"', expression)))
    if expression.startswith(".Values."):
        return bool(_lookup(chart, expression.removeprefix(".Values.").split(".")))
    raise ValueError(f"mimir.config has a condition this renderer does not know: {expression}")


def render_mimir_config(chart: dict, release: str, namespace: str) -> dict:
    """The chart's `mimir.config` for a release, with its `structuredConfig` merged over it."""
    names = {
        'template "mimir.fullname" .': release,
        'include "mimir.fullname" .': release,
        'include "mimir.name" .': "mimir",
        ".Release.Namespace": namespace,
        'include "mimir.serverGrpcListenPort" .': str(GRPC_PORT),
    }
    rendered, taken = [], [True]
    for line in chart["mimir"]["config"].splitlines():
        if control := re.fullmatch(r"\s*\{\{-? *(if|else|end)\b *(.*?) *-?\}\}\s*", line):
            kind, expression = control.groups()
            if kind == "if":
                taken.append(taken[-1] and _condition(expression, chart))
            elif kind == "else":
                taken[-1] = not taken[-1] and taken[-2]
            else:
                taken.pop()
            continue
        if taken[-1]:
            rendered.append(re.sub(r"\{\{ *(.*?) *\}\}", lambda m: names.get(m.group(1).strip(), "<other>"), line))
    config = yaml.safe_load("\n".join(rendered))
    return merge_overwrite(config, chart["mimir"].get("structuredConfig") or {})


@pytest.fixture(scope="module")
def mimir_chart(releases) -> dict:
    return coalesce(MIMIR.values, releases["mimir"])


@pytest.fixture(scope="module")
def mimir_config(mimir_chart) -> dict:
    return render_mimir_config(mimir_chart, "mimir", NAMESPACE)


def test_writes_go_from_distributors_to_ingesters_over_grpc_without_kafka(mimir_chart, mimir_config):
    assert mimir_config["ingest_storage"]["enabled"] is False
    assert mimir_chart["kafka"]["enabled"] is False
    # Null in the rendered config leaves Mimir's own default: ingesters accept pushes, no Kafka is dialled.
    assert mimir_config["ingester"].get("push_grpc_method_enabled") in (None, True)
    assert mimir_config["ingest_storage"]["kafka"].get("address") is None
    assert mimir_config["ingest_storage"]["kafka"].get("topic") is None
    assert mimir_config["distributor"].get("remote_timeout") is None, "Mimir's default for direct pushes"
    assert mimir_config["ingester"]["ring"]["replication_factor"] == 1


def test_reads_go_from_the_query_frontend_through_the_scheduler_to_the_queriers(mimir_chart, mimir_config):
    scheduler = f"mimir-query-scheduler-headless.{NAMESPACE}.svc:{GRPC_PORT}"
    assert mimir_config["frontend"]["scheduler_address"] == scheduler
    assert mimir_config["frontend_worker"]["scheduler_address"] == scheduler
    for component in ("query_frontend", "query_scheduler", "querier"):
        assert mimir_chart[component]["enabled"] is True and mimir_chart[component]["replicas"] == 1, component


def test_the_ruler_evaluates_without_notifying_an_alertmanager_the_lab_does_not_run(mimir_chart, mimir_config):
    assert mimir_chart["alertmanager"]["enabled"] is False
    assert mimir_config["ruler"].get("alertmanager_url") is None, "Mimir's default: no notifier"
    assert mimir_config["ruler"]["enable_api"] is True, "Grafana lists the rules and alerts through it"


def test_every_mimir_component_the_chart_deploys_is_budgeted(mimir_chart):
    deployed = {
        section
        for section, settings in mimir_chart.items()
        if isinstance(settings, dict) and settings.get("enabled") is True and section not in SIDECARS
    }
    workloads = {s for s in deployed if "replicas" in MIMIR.values.get(s, {}) or "resources" in MIMIR.values[s]}
    assert workloads == set(values.MIMIR_COMPONENTS_MIB), "the chart deploys what the budget does not count"
    budget = memory_requests_mib()
    for component in workloads:
        limit = mimir_chart[component]["resources"]["limits"]["memory"]
        assert limit == f"{budget[f'mimir-{component}']}Mi", component


def go_bytes(value: str) -> int:
    number, unit = re.fullmatch(r"(\d+)(MiB|GiB)", value).groups()
    return int(number) * 1024 ** (2 if unit == "MiB" else 3)


def test_every_mimir_component_gets_its_gomemlimit_and_the_ruler_no_ballast_above_it(mimir_chart):
    for component in values.MIMIR_COMPONENTS_MIB:
        env = {e["name"]: e["value"] for e in mimir_chart[component]["env"]}
        limit = int(mimir_chart[component]["resources"]["limits"]["memory"].removesuffix("Mi")) * 1024**2
        assert go_bytes(env["GOMEMLIMIT"]) < limit, component
    ruler = mimir_chart["ruler"]
    env = {e["name"]: e["value"] for e in ruler["env"]}
    assert ruler["memBallastSizeBytes"] < go_bytes(env["GOMEMLIMIT"])


def test_no_mimir_gateway_is_deployed(mimir_chart):
    assert mimir_chart["gateway"]["enabled"] is False


def test_tempos_worker_keeps_traces_a_week(releases):
    chart = coalesce(TEMPO.values, releases["tempo"])
    assert chart["tempo"]["overrides"]["defaults"]["compaction"]["block_retention"] == "168h"
    assert "retention" not in releases["tempo"]["tempo"], "tempo.retention reaches only the backend scheduler"
    docker = tempo.config("http://mimir:9009/api/v1/push")
    assert docker["overrides"]["defaults"]["compaction"]["block_retention"] == tempo.RETENTION == "168h"
