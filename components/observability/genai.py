"""Prometheus names of the LLM telemetry, read from the agent's own telemetry names.

The agents emit OpenTelemetry GenAI semantic-convention metrics, named in
`apps/agent/agent/semconv.py` with what Alloy's `otelcol.exporter.prometheus` makes of each
(dots to underscores, `{annotation}` units dropped, `_seconds` and `_total` suffixes). Dashboards
and alert rules read these constants, taken from that module, so the agent and what queries it
cannot drift apart. The module is loaded by path: the agent is an application of this repository,
not a package installed beside the program.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

SEMCONV_PATH = Path(__file__).resolve().parents[2] / "apps" / "agent" / "agent" / "semconv.py"


def _agent_semconv() -> ModuleType:
    spec = importlib.util.spec_from_file_location("llm_infra_lab_agent_semconv", SEMCONV_PATH)
    assert spec is not None and spec.loader is not None, f"the agent's telemetry names are missing: {SEMCONV_PATH}"
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


semconv = _agent_semconv()

TOKEN_USAGE = semconv.PROMETHEUS_NAMES[semconv.GEN_AI_CLIENT_TOKEN_USAGE]
OPERATION_DURATION = semconv.PROMETHEUS_NAMES[semconv.GEN_AI_CLIENT_OPERATION_DURATION]
COST = semconv.PROMETHEUS_NAMES[semconv.AGENT_LLM_COST]
RETRIEVAL_DURATION = semconv.PROMETHEUS_NAMES[semconv.AGENT_RETRIEVAL_DURATION]
RETRIES = semconv.PROMETHEUS_NAMES[semconv.AGENT_LLM_RETRIES]
COST_BASELINE = semconv.PROMETHEUS_NAMES[semconv.AGENT_LLM_COST_BASELINE]
"""What every answered review would have cost on the strong model without the cache."""
ROUTE_REQUESTS = semconv.PROMETHEUS_NAMES[semconv.AGENT_ROUTE_REQUESTS]
CACHE_LOOKUPS = semconv.PROMETHEUS_NAMES[semconv.AGENT_CACHE_LOOKUPS]
CACHE_LOOKUP_DURATION = semconv.PROMETHEUS_NAMES[semconv.AGENT_CACHE_LOOKUP_DURATION]
CACHE_COST_AVOIDED = semconv.PROMETHEUS_NAMES[semconv.AGENT_CACHE_COST_AVOIDED]
GUARDRAIL_CHECKS = semconv.PROMETHEUS_NAMES[semconv.AGENT_GUARDRAIL_CHECKS]
GUARDRAIL_REDACTIONS = semconv.PROMETHEUS_NAMES[semconv.AGENT_GUARDRAIL_REDACTIONS]
GROUNDING_CHECKS = semconv.PROMETHEUS_NAMES[semconv.AGENT_GROUNDING_CHECKS]
GROUNDING_PROBLEMS = semconv.PROMETHEUS_NAMES[semconv.AGENT_GROUNDING_PROBLEMS]
WORKFLOW_DURATION = semconv.PROMETHEUS_NAMES[semconv.AGENT_WORKFLOW_DURATION]
WORKFLOW_STEP_DURATION = semconv.PROMETHEUS_NAMES[semconv.AGENT_WORKFLOW_STEP_DURATION]
"""Labelled by workflow and step, not by agent: a step may call an agent, or an LLM directly."""

AGENT = semconv.prometheus_label(semconv.AGENT_NAME)
MODEL = semconv.prometheus_label(semconv.GEN_AI_REQUEST_MODEL)
TOKEN_TYPE = semconv.prometheus_label(semconv.GEN_AI_TOKEN_TYPE)
ERROR_TYPE = semconv.prometheus_label(semconv.ERROR_TYPE)
ROUTE = semconv.prometheus_label(semconv.AGENT_ROUTE)
ROUTE_REASON = semconv.prometheus_label(semconv.AGENT_ROUTE_REASON)
CACHE_OUTCOME = semconv.prometheus_label(semconv.AGENT_CACHE_OUTCOME)
GUARDRAIL_STAGE = semconv.prometheus_label(semconv.AGENT_GUARDRAIL_STAGE)
GUARDRAIL_CHECK = semconv.prometheus_label(semconv.AGENT_GUARDRAIL_CHECK)
GUARDRAIL_OUTCOME = semconv.prometheus_label(semconv.AGENT_GUARDRAIL_OUTCOME)
PII_TYPE = semconv.prometheus_label(semconv.AGENT_GUARDRAIL_PII_TYPE)
GROUNDING_OUTCOME = semconv.prometheus_label(semconv.AGENT_GROUNDING_OUTCOME)
GROUNDING_PROBLEM = semconv.prometheus_label(semconv.AGENT_GROUNDING_PROBLEM)
WORKFLOW = semconv.prometheus_label(semconv.AGENT_WORKFLOW_NAME)
WORKFLOW_STEP = semconv.prometheus_label(semconv.AGENT_WORKFLOW_STEP)

FAILED = f'{ERROR_TYPE}!=""'
CACHE_HIT = f'{CACHE_OUTCOME}="{semconv.CACHE_HIT}"'
NOT_CACHE_HIT = f'{CACHE_OUTCOME}!="{semconv.CACHE_HIT}"'
INJECTION_FLAGGED = (
    f'{GUARDRAIL_CHECK}="{semconv.GUARDRAIL_CHECK_INJECTION}", {GUARDRAIL_OUTCOME}="{semconv.GUARDRAIL_FLAGGED}"'
)
NOT_PASSED = f'{GUARDRAIL_OUTCOME}!="{semconv.GUARDRAIL_PASS}"'
UNGROUNDED = f'{GROUNDING_OUTCOME}="{semconv.GROUNDING_UNGROUNDED}"'

HOURS_PER_MONTH = 730
