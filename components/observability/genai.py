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

AGENT = semconv.prometheus_label(semconv.AGENT_NAME)
MODEL = semconv.prometheus_label(semconv.GEN_AI_REQUEST_MODEL)
TOKEN_TYPE = semconv.prometheus_label(semconv.GEN_AI_TOKEN_TYPE)
ERROR_TYPE = semconv.prometheus_label(semconv.ERROR_TYPE)

HOURS_PER_MONTH = 730
