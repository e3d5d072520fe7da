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
    assert rows == ["Usage and cost", "Semantic cache", "Model routing", "Guardrails", "Model serving"]


def test_every_query_is_valid_promql(panels, tmp_path):
    rules = [
        {"record": f"panel:{n}:{target['refId']}", "expr": concrete(target["expr"])}
        for n, panel in enumerate(panels.values())
        for target in panel.get("targets", [])
    ]
    assert len(rules) >= 20
    (tmp_path / "panels.yaml").write_text(yaml.safe_dump({"groups": [{"name": "panels", "rules": rules}]}))
    result = subprocess.run(
        [promtool(), "check", "rules", str(tmp_path / "panels.yaml")], check=False, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr


def series(metric: str, per_minute: float, **labels: str) -> dict[str, str]:
    matchers = ", ".join(f'{key}="{value}"' for key, value in {genai.AGENT: "prompt-reviewer", **labels}.items())
    return {"series": f"{metric}{{{matchers}}}", "values": f"0+{per_minute}x{MINUTES}"}


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
                        "exp_samples": [{"labels": "{}", "value": round(value, 3)}],
                    }
                    for (title, ref), value in expected.items()
                ],
            }
        ],
    }


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
