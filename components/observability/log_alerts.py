"""Alert rules on the agents' logs: Prometheus rule format with LogQL expressions, evaluated by Loki's ruler.

How an agent's log record reaches a LogQL query (OTLP to Alloy to Loki 3.7's native OTLP endpoint):
- the LoggingHandler moves `extra={"otel.event.name": ...}` out of the attributes into the record's event
  name field, which Loki 3.7 drops; Alloy copies it into the attribute `event_name` (to-stores.alloy), the
  structured-metadata name Loki's later releases give the field themselves;
- resource attributes on Loki's default list become stream labels, among them service.name and
  service.namespace as `service_name` and `service_namespace`; all other attributes become structured
  metadata, named like Prometheus labels (`agent.name` is `agent_name`), lists as JSON text;
- severity becomes `severity_text` (WARN, ERROR) and `severity_number` (OpenTelemetry's 1-24) metadata,
  and the trace context `trace_id` and `span_id`.
Structured metadata filters after the first `|` like any label, and `sum by` groups by it.
"""

from __future__ import annotations

from components.observability.genai import semconv
from components.runtime.spec import to_yaml

SERVICE_NAMESPACE = "llm-infra-lab"
"""The agents' service.namespace (components/workloads/agent.py): the lab's own services."""
EVENT_NAME = "event_name"
SEVERITY_NUMBER = "severity_number"
SEVERITY_ERROR = 17
"""OpenTelemetry's SeverityNumber.ERROR: Python's ERROR is 17, CRITICAL 21, WARNING 13."""

# Only an LLM answer can be ungrounded, and the semantic cache answers the popular texts: an agent's
# LLM answers are about its new texts, a quarter of what the traffic sends it (code-critic gets about
# 400 texts in 10 minutes, half from learning-cycle). The simulated provider makes 3.6% of new code
# reviews and 2.6% of new prompt reviews ungrounded: about 4 in 10 minutes for code-critic, fewer for
# prompt-reviewer. 36, one in three answers, is a count a Poisson mean of 4 never reaches by chance,
# and a model that starts making things up reaches it within minutes. To watch it fire offline, send
# code-critic new code at 5 a second (apps/agent's traffic generator, TRAFFIC_NEW_FRACTION=1): about
# 100 ungrounded reviews in 10 minutes.
UNGROUNDED_WINDOW = "10m"
UNGROUNDED_NORMAL = 4
UNGROUNDED_PER_WINDOW = 36
# The simulated provider fails 2% of LLM calls, each logged at ERROR once its retries are spent: about 3
# lines per agent in 5 minutes. 30, one every 10 s, is a burst: Qdrant down alone logs one per review.
ERROR_WINDOW = "5m"
ERRORS_NORMAL = 3
ERRORS_PER_WINDOW = 30


def label(attribute: str) -> str:
    """The stream label or structured metadata an OpenTelemetry attribute becomes in Loki."""
    return semconv.prometheus_label(attribute)


AGENT = label(semconv.AGENT_NAME)
SERVICE = label("service.name")
LAB_STREAMS = f'{{{label("service.namespace")}="{SERVICE_NAMESPACE}"}}'


def _count(pipeline: str, window: str) -> str:
    return f"count_over_time({LAB_STREAMS} | {pipeline} [{window}])"


def log_agent_rules() -> dict:
    ungrounded = f'{EVENT_NAME}="{semconv.EVENT_UNGROUNDED}"'
    return {
        "groups": [
            {
                "name": "llm-agents-logs",
                "interval": "1m",
                "rules": [
                    {
                        "alert": "LLMAgentUngroundedAnswers",
                        "expr": (
                            f"sum by ({AGENT}) ({_count(ungrounded, UNGROUNDED_WINDOW)}) > {UNGROUNDED_PER_WINDOW}"
                        ),
                        "for": "10m",
                        "labels": {"severity": "warning"},
                        "annotations": {
                            "summary": f"Agent {{{{ $labels.{AGENT} }}}} gives too many ungrounded reviews",
                            "description": (
                                f"{{{{ $value }}}} reviews in {UNGROUNDED_WINDOW} cited guidelines retrieval did not "
                                "return, cited none, or quoted code the input lacks "
                                f"(normally about {UNGROUNDED_NORMAL}). Each "
                                f"{semconv.EVENT_UNGROUNDED} log event carries its review's trace id: run "
                                f"{LAB_STREAMS} | {ungrounded} in Explore (Loki) and follow a line's TraceID "
                                "link to the review's trace in Tempo."
                            ),
                        },
                    },
                    {
                        "alert": "LLMAgentErrorLogBurst",
                        "expr": (
                            f"sum by ({SERVICE}) ({_count(f'{SEVERITY_NUMBER} >= {SEVERITY_ERROR}', ERROR_WINDOW)})"
                            f" > {ERRORS_PER_WINDOW}"
                        ),
                        "for": "2m",
                        "labels": {"severity": "warning"},
                        "annotations": {
                            "summary": f"{{{{ $labels.{SERVICE} }}}} logs a burst of errors",
                            "description": (
                                f"{{{{ $value }}}} ERROR log lines in {ERROR_WINDOW} (normally about {ERRORS_NORMAL}); "
                                "in Explore (Loki) the lines say what failed, and each links to its trace."
                            ),
                        },
                    },
                ],
            }
        ]
    }


def rule_files() -> dict[str, str]:
    """Namespace (file) name to rule file text."""
    return {"llm-agents-logs.yaml": to_yaml(log_agent_rules(), width=1000)}
