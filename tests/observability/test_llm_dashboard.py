"""The LLM agents dashboard: its sections, and what its before/after figures compute, checked with promtool.

Panel queries are evaluated by `promtool test rules` over synthetic series named as the agents emit
them, so a wrong label, a missing `or vector(0)` or an inverted ratio shows as a wrong number.
"""

from __future__ import annotations

import json
import subprocess

import pytest
import yaml

from components.observability import dashboards, genai
from components.observability.datasources import METRICS, TRACES
from tests.observability.test_alert_rules import promtool

MINUTES = 120
EVALUATED_AT = "90m"


@pytest.fixture(scope="module")
def panels() -> dict[str, dict]:
    board = json.loads(dashboards.dashboard_files()["llm-agents.json"])
    return {panel["title"]: panel for panel in board["panels"]}


def concrete(expr: str) -> str:
    """A panel's query as Grafana sends it with every agent selected."""
    return expr.replace("$agent", ".+").replace("$__rate_interval", "5m")


def test_sections_put_cache_routing_and_guardrails_beside_usage(panels):
    rows = [title for title, panel in panels.items() if panel["type"] == "row"]
    assert rows == [
        "Usage and cost",
        "Semantic cache",
        "Model routing",
        "Guardrails",
        "Grounding",
        "Workflow",
        "Model serving",
    ]


def test_every_query_is_valid_promql(panels, tmp_path):
    rules = [
        {"record": f"panel:{n}:{target['refId']}", "expr": concrete(target["expr"])}
        for n, panel in enumerate(panels.values())
        for target in panel.get("targets", [])
        if target["datasource"]["uid"] == METRICS.uid
    ]
    assert len(rules) >= 20
    (tmp_path / "panels.yaml").write_text(yaml.safe_dump({"groups": [{"name": "panels", "rules": rules}]}))
    result = subprocess.run(
        [promtool(), "check", "rules", str(tmp_path / "panels.yaml")], check=False, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr


def label_set(labels: dict[str, str]) -> str:
    return "{" + ", ".join(f'{key}="{value}"' for key, value in labels.items()) + "}"


def counter(metric: str, per_minute: float, labels: dict[str, str]) -> dict[str, str]:
    return {"series": f"{metric}{label_set(labels)}", "values": f"0+{per_minute:g}x{MINUTES}"}


def series(metric: str, per_minute: float, **labels: str) -> dict[str, str]:
    """An agent's counter: prompt-reviewer's unless labels name another."""
    return counter(metric, per_minute, {genai.AGENT: "prompt-reviewer", **labels})


# A minute of the agents' telemetry: 4 lookups, 3 of them hits; the miss's call on the cheap route costs
# 0.01 where the strong model would have cost 0.05; the three hits avoided 0.03 (cheap-route calls that
# would have cost 0.15 on the strong model).
CHEAP = {genai.ROUTE: "cheap", genai.MODEL: "simulated-small"}
INPUT_SERIES = [
    series(genai.CACHE_LOOKUPS, 3, **{genai.CACHE_OUTCOME: "hit"}),
    series(genai.CACHE_LOOKUPS, 1, **{genai.CACHE_OUTCOME: "miss"}),
    series(genai.COST, 0.01, **CHEAP),
    series(genai.CACHE_COST_AVOIDED, 0.03, **CHEAP),
    series(genai.COST_BASELINE, 0.05, **{genai.ROUTE: "cheap", genai.CACHE_OUTCOME: "miss"}),
    series(genai.COST_BASELINE, 0.15, **{genai.ROUTE: "cheap", genai.CACHE_OUTCOME: "hit"}),
]
EXPECTED = {
    ("Cache hit rate", "A"): 0.75,
    ("Cost avoided per hour", "A"): 1.8,
    ("Cost avoided, projected per month", "A"): 1.8 * genai.HOURS_PER_MONTH,
    ("Cost reduction by the cache", "A"): 0.75,
    ("Cost per hour with and without the cache", "A"): 0.6,
    ("Cost per hour with and without the cache", "B"): 2.4,
    ("Saving by routing", "A"): 0.8,
    ("Saving by the cache and routing", "A"): 0.95,
    ("Projected monthly cost", "A"): 0.6 * genai.HOURS_PER_MONTH,
}


def promtool_cases(panels: dict[str, dict], input_series: list[dict], expected: dict) -> dict:
    def query(title: str, ref: str) -> str:
        (target,) = [t for t in panels[title]["targets"] if t["refId"] == ref]
        return concrete(target["expr"])

    return {
        "rule_files": [],
        "evaluation_interval": "1m",
        "tests": [
            {
                "interval": "1m",
                "input_series": input_series,
                "promql_expr_test": [
                    {
                        # promtool compares exactly; a thousandth is the dashboards' precision.
                        "expr": f"round({query(title, ref)}, 0.001)",
                        "eval_time": EVALUATED_AT,
                        "exp_samples": samples(value),
                    }
                    for (title, ref), value in expected.items()
                ],
            }
        ],
    }


def samples(expected: float | dict[str, float]) -> list[dict]:
    """One figure, or one per label set (a panel's lines or bars)."""
    by_labels = expected if isinstance(expected, dict) else {"{}": expected}
    return [{"labels": labels, "value": round(value, 3)} for labels, value in by_labels.items()]


def run_promtool(cases: dict, tmp_path) -> subprocess.CompletedProcess:
    (tmp_path / "panels.test.yaml").write_text(yaml.safe_dump(cases, width=1000))
    return subprocess.run(
        [promtool(), "test", "rules", str(tmp_path / "panels.test.yaml")], check=False, capture_output=True, text=True
    )


def test_before_and_after_figures_compute_what_their_titles_say(panels, tmp_path):
    result = run_promtool(promtool_cases(panels, INPUT_SERIES, EXPECTED), tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr


def test_with_the_cache_off_both_lines_show_the_same_cost(panels, tmp_path):
    """semanticCache=false: no avoided-cost series at all, and the "without" line must not vanish."""
    cache_off = [series(genai.COST, 0.04, **{genai.ROUTE: "strong"})]
    expected = {
        ("Cost per hour with and without the cache", "A"): 2.4,
        ("Cost per hour with and without the cache", "B"): 2.4,
    }
    result = run_promtool(promtool_cases(panels, cache_off, expected), tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr


def test_guardrail_panels_show_findings_not_passes(panels):
    (findings,) = panels["Guardrail findings per second"]["targets"]
    assert genai.NOT_PASSED in findings["expr"] and genai.GUARDRAIL_CHECKS in findings["expr"]
    (redactions,) = panels["PII redactions per second by type"]["targets"]
    assert f"by ({genai.PII_TYPE}, {genai.GUARDRAIL_STAGE})" in redactions["expr"]


# A minute of reviews: prompt-reviewer's grounding checks find 2 of 10 ungrounded, with 3 problems between them
# (2 citations of guidelines retrieval did not return, 1 review citing none); code-critic's find none of 6.
GROUNDING_SERIES = [
    series(genai.GROUNDING_CHECKS, 8, **{genai.GROUNDING_OUTCOME: "grounded"}),
    series(genai.GROUNDING_CHECKS, 2, **{genai.GROUNDING_OUTCOME: "ungrounded"}),
    series(genai.GROUNDING_CHECKS, 6, **{genai.AGENT: "code-critic", genai.GROUNDING_OUTCOME: "grounded"}),
    series(genai.GROUNDING_PROBLEMS, 2, **{genai.GROUNDING_PROBLEM: "cited_unretrieved"}),
    series(genai.GROUNDING_PROBLEMS, 1, **{genai.GROUNDING_PROBLEM: "no_citation"}),
]


def test_grounding_panels_give_each_agents_ungrounded_share_and_its_problems(panels, tmp_path):
    """code-critic has no ungrounded series at all: its ratio must read 0, not vanish."""
    reviewer = {genai.AGENT: "prompt-reviewer"}
    expected = {
        ("Ungrounded review ratio", "A"): {label_set(reviewer): 0.2, label_set({genai.AGENT: "code-critic"}): 0},
        ("Grounding problems per minute", "A"): {
            label_set({**reviewer, genai.GROUNDING_PROBLEM: "cited_unretrieved"}): 2,
            label_set({**reviewer, genai.GROUNDING_PROBLEM: "no_citation"}): 1,
        },
    }
    result = run_promtool(promtool_cases(panels, GROUNDING_SERIES, expected), tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr


def histogram(metric: str, durations: list[float], labels: dict[str, str]) -> list[dict[str, str]]:
    """A histogram's _bucket, _sum and _count series, observing the same durations every minute."""
    bounds = {f"{le:g}": le for le in genai.semconv.WORKFLOW_DURATION_BUCKETS} | {"+Inf": float("inf")}
    cumulative = [
        counter(f"{metric}_bucket", sum(d <= bound for d in durations), {**labels, "le": le})
        for le, bound in bounds.items()
    ]
    return [
        *cumulative,
        counter(f"{metric}_sum", sum(durations), labels),
        counter(f"{metric}_count", len(durations), labels),
    ]


# A minute of the learning-cycle workflow: 12 runs of 3.5 s. One branch generates the assignment (0.5 s) and
# reviews its prompt (1 s), the other reviews the code (3 s, 3 of 12 failing), then the report (0.5 s): the
# runs with a failed code review finish partial. Workflow series carry no agent name.
WORKFLOW = {genai.WORKFLOW: "learning-cycle"}
STEP_SECONDS = {"generate_assignment": 0.5, "review_prompt": 1.0, "review_code": 3.0, "compose_report": 0.5}
FAILED = {genai.ERROR_TYPE: "timeout"}


def step(name: str, runs: int, **labels: str) -> list[dict[str, str]]:
    return histogram(
        genai.WORKFLOW_STEP_DURATION, [STEP_SECONDS[name]] * runs, {**WORKFLOW, genai.WORKFLOW_STEP: name, **labels}
    )


WORKFLOW_SERIES = [
    *histogram(genai.WORKFLOW_DURATION, [3.5] * 9, WORKFLOW),
    *histogram(genai.WORKFLOW_DURATION, [3.5] * 3, {**WORKFLOW, **FAILED}),
    *step("generate_assignment", 12),
    *step("review_prompt", 12),
    *step("review_code", 9),
    *step("review_code", 3, **FAILED),
    *step("compose_report", 12),
]


def by_step(**values: float) -> dict[str, float]:
    return {label_set({genai.WORKFLOW_STEP: name}): value for name, value in values.items()}


def test_workflow_panels_name_the_step_that_dominates(panels, tmp_path):
    """Quantiles interpolate within a bucket: 3.5 s lies in (2.5, 5], so p50 is 3.75 and p95 4.875; 0.5 s in
    (0.25, 0.5], p95 0.4875, which PromQL's round() shows as 0.488."""
    workflow = label_set(WORKFLOW)
    expected = {
        ("Workflow runs per second", "A"): {workflow: 0.2},
        ("Workflow failure ratio", "A"): {workflow: 0.25},
        ("Workflow failure ratio", "B"): by_step(
            generate_assignment=0, review_prompt=0, review_code=0.25, compose_report=0
        ),
        ("Workflow latency", "A"): {workflow: 3.75},
        ("Workflow latency", "B"): {workflow: 4.875},
        ("Step latency", "A"): by_step(
            generate_assignment=0.375, review_prompt=0.75, review_code=3.75, compose_report=0.375
        ),
        ("Step latency", "B"): by_step(
            generate_assignment=0.488, review_prompt=0.975, review_code=4.875, compose_report=0.488
        ),
        ("Share of step time", "A"): by_step(
            generate_assignment=0.1, review_prompt=0.2, review_code=0.6, compose_report=0.1
        ),
        ("Slowest step (p95)", "A"): by_step(review_code=4.875),
    }
    result = run_promtool(promtool_cases(panels, WORKFLOW_SERIES, expected), tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr


def test_slowest_step_is_one_figure_named_by_its_step(panels):
    slowest = panels["Slowest step (p95)"]
    (target,) = slowest["targets"]
    assert target["instant"] is True and target["legendFormat"] == f"{{{{{genai.WORKFLOW_STEP}}}}}"
    assert slowest["options"]["textMode"] == "value_and_name"


def test_service_graph_is_tempos_service_map(panels):
    graph = panels["Service graph"]
    (target,) = graph["targets"]
    assert graph["type"] == "nodeGraph" and target["queryType"] == "serviceMap"
    assert target["datasource"]["uid"] == graph["datasource"]["uid"] == TRACES.uid
