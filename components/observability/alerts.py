"""Alert rules for LLM agents, in Prometheus rule format, evaluated by Mimir's ruler.

The same rendered file is what `promtool test rules` checks in the test suite.
"""

from __future__ import annotations

from components.observability import genai
from components.runtime.spec import to_yaml

ERROR_RATIO_THRESHOLD = 0.05
LATENCY_P95_THRESHOLD_SECONDS = 10
# The traffic generator's mix flags about one prompt a minute (its injection topic); a burst is
# several times that, sustained: someone probing the agent.
INJECTION_BURST_PER_MINUTE = 6
# The learning-cycle workflow's longest path is three LLM-backed steps in a row (generate_assignment, review_prompt,
# compose_report; review_code runs beside the first two). The simulated provider answers a call in 0.15-0.9 s: under
# 3 s for the path, about 4 s with a retry's backoff. A real provider takes a couple of seconds for a short review:
# about 6 s. A p95 past 8 s is a step slower than the model's ordinary pace, or retrying.
WORKFLOW_P95_BUDGET_SECONDS = 8


def _error_ratio() -> str:
    calls = f"{genai.OPERATION_DURATION}_count"
    return (
        f'sum by ({genai.AGENT}) (rate({calls}{{{genai.ERROR_TYPE}!=""}}[5m]))'
        f" / sum by ({genai.AGENT}) (rate({calls}[5m]))"
    )


def _p95(histogram: str, by: str, selector: str = "") -> str:
    """p95 over 5 minutes, by one label."""
    series = f"{histogram}_bucket{{{selector}}}" if selector else f"{histogram}_bucket"
    return f"histogram_quantile(0.95, sum by ({by}, le) (rate({series}[5m])))"


def _workflow_slow() -> dict:
    """The run's p95 over budget; the description queries which step is slowest, the place to look first."""
    # The template's printf puts the alert's workflow in place of %q, quoted.
    slowest_step = f"topk(1, {_p95(genai.WORKFLOW_STEP_DURATION, genai.WORKFLOW_STEP, f'{genai.WORKFLOW}=%q')})"
    return {
        "alert": "LLMWorkflowSlow",
        "expr": f"{_p95(genai.WORKFLOW_DURATION, genai.WORKFLOW)} > {WORKFLOW_P95_BUDGET_SECONDS}",
        "for": "5m",
        "labels": {"severity": "warning"},
        "annotations": {
            "summary": (
                f"Workflow {{{{ $labels.{genai.WORKFLOW} }}}} runs past its {WORKFLOW_P95_BUDGET_SECONDS} s budget"
            ),
            "description": (
                "p95 of a run is {{ $value | humanizeDuration }} over 5 minutes."
                f'{{{{ with printf "{slowest_step}" $labels.{genai.WORKFLOW} | query }}}}'
                f' Its slowest step is {{{{ . | first | label "{genai.WORKFLOW_STEP}" }}}}'
                " (p95 {{ . | first | value | humanizeDuration }}): look there first.{{ end }}"
                " The Workflow section of the LLM agents dashboard shows every step's latency and failures."
            ),
        },
    }


def llm_agent_rules(monthly_budget_usd: float) -> dict:
    projected_month = f"sum(rate({genai.COST}[1h])) * 3600 * {genai.HOURS_PER_MONTH}"
    return {
        "groups": [
            {
                "name": "llm-agents",
                "interval": "1m",
                "rules": [
                    {
                        "alert": "LLMCostBudgetBurn",
                        "expr": f"{projected_month} > {monthly_budget_usd:g}",
                        "for": "15m",
                        "labels": {"severity": "warning"},
                        "annotations": {
                            "summary": "LLM spend is on course to exceed the monthly budget",
                            "description": (
                                "At the last hour's rate the agents would spend "
                                '{{ $value | printf "%.2f" }} USD a month; '
                                f"the budget is {monthly_budget_usd:g} USD."
                            ),
                        },
                    },
                    {
                        "alert": "LLMAgentHighErrorRate",
                        "expr": f"{_error_ratio()} > {ERROR_RATIO_THRESHOLD:g}",
                        "for": "10m",
                        "labels": {"severity": "critical"},
                        "annotations": {
                            "summary": "Agent {{ $labels.agent_name }} fails over 5% of its LLM calls",
                            "description": "{{ $value | humanizePercentage }} of LLM calls failed over 5 minutes.",
                        },
                    },
                    {
                        "alert": "LLMAgentPromptInjectionBurst",
                        "expr": (
                            f"sum by ({genai.AGENT}) (rate({genai.GUARDRAIL_CHECKS}{{{genai.INJECTION_FLAGGED}}}[5m]))"
                            f" * 60 > {INJECTION_BURST_PER_MINUTE}"
                        ),
                        "for": "2m",
                        "labels": {"severity": "warning"},
                        "annotations": {
                            "summary": "Agent {{ $labels.agent_name }} receives a burst of likely prompt injections",
                            "description": (
                                '{{ $value | printf "%.1f" }} requests a minute flagged by the injection guardrail '
                                "over 5 minutes; the agent.guardrail.injection_suspected log events name the rules."
                            ),
                        },
                    },
                    {
                        "alert": "LLMAgentSlowResponses",
                        "expr": f"{_p95(genai.OPERATION_DURATION, genai.AGENT)} > {LATENCY_P95_THRESHOLD_SECONDS}",
                        "for": "10m",
                        "labels": {"severity": "warning"},
                        "annotations": {
                            "summary": "Agent {{ $labels.agent_name }} LLM calls are slow",
                            "description": "p95 LLM call latency is {{ $value | humanizeDuration }}.",
                        },
                    },
                    _workflow_slow(),
                ],
            }
        ]
    }


def rule_files(monthly_budget_usd: float) -> dict[str, str]:
    """Namespace (file) name to rule file text."""
    return {"llm-agents.yaml": to_yaml(llm_agent_rules(monthly_budget_usd), width=1000)}
