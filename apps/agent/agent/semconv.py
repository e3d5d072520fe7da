"""Every telemetry name the agent emits, in one place, so code, tests and dashboards agree.

Names follow the OpenTelemetry GenAI semantic conventions (metrics `gen_ai.client.*`, span
`chat {model}`, attributes `gen_ai.*`); names of our own are under `agent.`. Alloy converts
metrics to Prometheus with otelcol.exporter.prometheus (add_metric_suffixes on, the default):
dots become underscores, a unit in braces is dropped, `s` becomes `_seconds`, a monotonic sum
gets `_total` and a histogram `_bucket`/`_sum`/`_count`. METRICS spells the results out.
"""

from __future__ import annotations

import re

INSTRUMENTATION_SCOPE = "llm-infra-lab.agent"

# --- metric instruments -------------------------------------------------------------------
GEN_AI_CLIENT_TOKEN_USAGE = "gen_ai.client.token.usage"
GEN_AI_CLIENT_OPERATION_DURATION = "gen_ai.client.operation.duration"
AGENT_LLM_COST = "agent.llm.cost"
AGENT_LLM_RETRIES = "agent.llm.retries"
AGENT_LLM_COST_BASELINE = "agent.llm.cost.baseline"
AGENT_ROUTE_REQUESTS = "agent.route.requests"
AGENT_RETRIEVAL_DURATION = "agent.retrieval.duration"
AGENT_CACHE_LOOKUPS = "agent.cache.lookups"
AGENT_CACHE_LOOKUP_DURATION = "agent.cache.lookup.duration"
AGENT_CACHE_TOKENS_AVOIDED = "agent.cache.tokens.avoided"
AGENT_CACHE_COST_AVOIDED = "agent.cache.cost.avoided"
AGENT_GUARDRAIL_CHECKS = "agent.guardrail.checks"
AGENT_GUARDRAIL_REDACTIONS = "agent.guardrail.redactions"
AGENT_GROUNDING_CHECKS = "agent.grounding.checks"
AGENT_GROUNDING_PROBLEMS = "agent.grounding.problems"
AGENT_WORKFLOW_DURATION = "agent.workflow.duration"
AGENT_WORKFLOW_STEP_DURATION = "agent.workflow.step.duration"

UNIT_TOKEN = "{token}"
UNIT_SECONDS = "s"
UNIT_USD = "{USD}"
UNIT_RETRY = "{retry}"
UNIT_REQUEST = "{request}"
UNIT_LOOKUP = "{lookup}"
UNIT_CHECK = "{check}"
UNIT_REDACTION = "{redaction}"
UNIT_PROBLEM = "{problem}"

# Bucket boundaries the GenAI conventions recommend for the two gen_ai.client histograms.
TOKEN_USAGE_BUCKETS = (1, 4, 16, 64, 256, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304, 16777216, 67108864)
OPERATION_DURATION_BUCKETS = (0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92)
# A vector search on a small collection takes milliseconds; a dead Qdrant takes its timeout.
RETRIEVAL_DURATION_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
# A cache lookup embeds the text (well under a millisecond) and queries Qdrant.
CACHE_LOOKUP_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
# A workflow step is one LLM call or one call to another agent (which makes one): the LLM's range.
WORKFLOW_DURATION_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 7.5, 10.0, 15.0, 20.0, 30.0, 60.0)

COUNTER = "counter"
HISTOGRAM = "histogram"

# Every instrument: (kind, unit, series name in Mimir after Alloy's OTLP -> Prometheus conversion;
# a histogram's series are that name with _bucket, _sum and _count).
METRICS: dict[str, tuple[str, str, str]] = {
    GEN_AI_CLIENT_TOKEN_USAGE: (HISTOGRAM, UNIT_TOKEN, "gen_ai_client_token_usage"),
    GEN_AI_CLIENT_OPERATION_DURATION: (HISTOGRAM, UNIT_SECONDS, "gen_ai_client_operation_duration_seconds"),
    AGENT_LLM_COST: (COUNTER, UNIT_USD, "agent_llm_cost_total"),
    AGENT_LLM_RETRIES: (COUNTER, UNIT_RETRY, "agent_llm_retries_total"),
    AGENT_LLM_COST_BASELINE: (COUNTER, UNIT_USD, "agent_llm_cost_baseline_total"),
    AGENT_ROUTE_REQUESTS: (COUNTER, UNIT_REQUEST, "agent_route_requests_total"),
    AGENT_RETRIEVAL_DURATION: (HISTOGRAM, UNIT_SECONDS, "agent_retrieval_duration_seconds"),
    AGENT_CACHE_LOOKUPS: (COUNTER, UNIT_LOOKUP, "agent_cache_lookups_total"),
    AGENT_CACHE_LOOKUP_DURATION: (HISTOGRAM, UNIT_SECONDS, "agent_cache_lookup_duration_seconds"),
    AGENT_CACHE_TOKENS_AVOIDED: (COUNTER, UNIT_TOKEN, "agent_cache_tokens_avoided_total"),
    AGENT_CACHE_COST_AVOIDED: (COUNTER, UNIT_USD, "agent_cache_cost_avoided_total"),
    AGENT_GUARDRAIL_CHECKS: (COUNTER, UNIT_CHECK, "agent_guardrail_checks_total"),
    AGENT_GUARDRAIL_REDACTIONS: (COUNTER, UNIT_REDACTION, "agent_guardrail_redactions_total"),
    AGENT_GROUNDING_CHECKS: (COUNTER, UNIT_CHECK, "agent_grounding_checks_total"),
    AGENT_GROUNDING_PROBLEMS: (COUNTER, UNIT_PROBLEM, "agent_grounding_problems_total"),
    AGENT_WORKFLOW_DURATION: (HISTOGRAM, UNIT_SECONDS, "agent_workflow_duration_seconds"),
    AGENT_WORKFLOW_STEP_DURATION: (HISTOGRAM, UNIT_SECONDS, "agent_workflow_step_duration_seconds"),
}
PROMETHEUS_NAMES = {name: prometheus for name, (_, _, prometheus) in METRICS.items()}

# --- attributes ---------------------------------------------------------------------------
GEN_AI_SYSTEM = "gen_ai.system"
# Semantic conventions 1.37 renamed gen_ai.system to gen_ai.provider.name; both carry the same
# value so dashboards written against either version work.
GEN_AI_PROVIDER_NAME = "gen_ai.provider.name"
GEN_AI_OPERATION_NAME = "gen_ai.operation.name"
GEN_AI_REQUEST_MODEL = "gen_ai.request.model"
GEN_AI_REQUEST_MAX_TOKENS = "gen_ai.request.max_tokens"
GEN_AI_RESPONSE_MODEL = "gen_ai.response.model"
GEN_AI_RESPONSE_ID = "gen_ai.response.id"
GEN_AI_RESPONSE_FINISH_REASONS = "gen_ai.response.finish_reasons"
GEN_AI_USAGE_INPUT_TOKENS = "gen_ai.usage.input_tokens"
GEN_AI_USAGE_OUTPUT_TOKENS = "gen_ai.usage.output_tokens"
# Of gen_ai.usage.input_tokens, those read from / written to the provider's prompt cache.
GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS = "gen_ai.usage.cache_read.input_tokens"
GEN_AI_USAGE_CACHE_CREATION_INPUT_TOKENS = "gen_ai.usage.cache_creation.input_tokens"
GEN_AI_TOKEN_TYPE = "gen_ai.token.type"
ERROR_TYPE = "error.type"
SERVER_ADDRESS = "server.address"
SERVER_PORT = "server.port"
DB_SYSTEM_NAME = "db.system.name"
DB_COLLECTION_NAME = "db.collection.name"
DB_OPERATION_NAME = "db.operation.name"

AGENT_NAME = "agent.name"
AGENT_ROUTE = "agent.route"
AGENT_ROUTE_REASON = "agent.route.reason"
AGENT_RETRIEVAL_OUTCOME = "agent.retrieval.outcome"
AGENT_RETRIEVAL_TOP_K = "agent.retrieval.top_k"
AGENT_RETRIEVAL_GUIDELINE_IDS = "agent.retrieval.guideline_ids"
AGENT_RETRIEVAL_MODE = "agent.retrieval.mode"
AGENT_RETRIEVAL_RERANKED = "agent.retrieval.reranked"
"""Whether a reranker reordered the candidates Qdrant returned; set when the search succeeded."""
AGENT_RETRY_ATTEMPT = "agent.retry.attempt"
AGENT_RETRY_DELAY = "agent.retry.delay"
"""Seconds waited before the retry."""

AGENT_CACHE_OUTCOME = "agent.cache.outcome"
AGENT_CACHE_SIMILARITY = "agent.cache.similarity"
"""On the lookup span: the best candidate's similarity (a hit's, or the closest miss's)."""
AGENT_CACHE_THRESHOLD = "agent.cache.threshold"
AGENT_GUARDRAIL_STAGE = "agent.guardrail.stage"
AGENT_GUARDRAIL_CHECK = "agent.guardrail.check"
AGENT_GUARDRAIL_OUTCOME = "agent.guardrail.outcome"
AGENT_GUARDRAIL_PII_TYPE = "agent.guardrail.pii_type"
# On the server span and in the guardrail log events (lists of low-cardinality ids, never the text).
AGENT_GUARDRAIL_PII_TYPES = "agent.guardrail.pii_types"
AGENT_GUARDRAIL_REDACTED_COUNT = "agent.guardrail.redacted_count"
AGENT_GUARDRAIL_RULES = "agent.guardrail.rules"
AGENT_GROUNDING_OUTCOME = "agent.grounding.outcome"
AGENT_GROUNDING_PROBLEM = "agent.grounding.problem"
"""One of the GROUNDING_* problems below (on agent.grounding.problems)."""
# In the ungrounded log event: every problem found, and the guideline ids cited and retrieved.
AGENT_GROUNDING_PROBLEMS_FOUND = "agent.grounding.problems_found"
AGENT_GROUNDING_CITED_IDS = "agent.grounding.cited_ids"
AGENT_WORKFLOW_NAME = "agent.workflow.name"
AGENT_WORKFLOW_STEP = "agent.workflow.step"
AGENT_WORKFLOW_COMPLETE = "agent.workflow.complete"
"""On the workflow's server span: whether every step succeeded."""
PEER_SERVICE = "peer.service"
"""On every client span: the agent, Qdrant or LLM provider called. Tempo's service graph pairs a
call to another agent with that agent's server span, and draws Qdrant and the LLM, which send no
spans, as virtual nodes named by this attribute (one of its default peer attributes)."""

# --- span events --------------------------------------------------------------------------
EVENT_LLM_RETRY = "agent.llm.retry"
"""On the chat span, once per retry: agent.retry.attempt, error.type, agent.retry.delay."""

# --- log events (the OpenTelemetry log record's event name, set through this `extra` key) ---
OTEL_EVENT_NAME = "otel.event.name"
EVENT_PII_REDACTED = "agent.guardrail.pii_redacted"
"""INFO: agent.name, agent.guardrail.stage, agent.guardrail.pii_types, agent.guardrail.redacted_count."""
EVENT_INJECTION_SUSPECTED = "agent.guardrail.injection_suspected"
"""WARNING: agent.name, agent.guardrail.rules."""
EVENT_UNGROUNDED = "agent.grounding.ungrounded"
"""WARNING: agent.name, agent.grounding.problems_found, agent.grounding.cited_ids,
agent.retrieval.guideline_ids; the record carries the review's trace and span ids."""

# --- values -------------------------------------------------------------------------------
OPERATION_CHAT = "chat"
TOKEN_TYPE_INPUT = "input"
TOKEN_TYPE_OUTPUT = "output"
RETRIEVAL_HIT = "hit"  # at least one guideline came back
RETRIEVAL_EMPTY = "empty"  # Qdrant answered with nothing for this role
RETRIEVAL_ERROR = "error"  # Qdrant unreachable or failing; the review goes on without context
CACHE_HIT = "hit"
CACHE_MISS = "miss"
CACHE_ERROR = "error"  # Qdrant failing: answered as a miss
CACHE_DISABLED = "disabled"  # no lookup: SEMANTIC_CACHE=off, no QDRANT_URL or no embedding model
RETRIEVAL_SKIPPED = "skipped"  # answered from the cache: no retrieval
RETRIEVAL_MODE_HYBRID = "hybrid"  # dense and sparse, fused by Qdrant
RETRIEVAL_MODE_DENSE = "dense"
RETRIEVAL_MODE_SPARSE = "sparse"
RETRIEVAL_MODES = (RETRIEVAL_MODE_HYBRID, RETRIEVAL_MODE_DENSE, RETRIEVAL_MODE_SPARSE)
GUARDRAIL_STAGE_INPUT = "input"
GUARDRAIL_STAGE_OUTPUT = "output"
GUARDRAIL_CHECK_PII = "pii"
GUARDRAIL_CHECK_INJECTION = "injection"
GUARDRAIL_PASS = "pass"
GUARDRAIL_REDACTED = "redacted"  # PII found and replaced
GUARDRAIL_FLAGGED = "flagged"  # an injection rule matched
DB_SYSTEM_QDRANT = "qdrant"
DB_OPERATION_QUERY_POINTS = "query_points"
DB_OPERATION_UPSERT = "upsert"
GROUNDING_GROUNDED = "grounded"
GROUNDING_UNGROUNDED = "ungrounded"
GROUNDING_CITED_UNRETRIEVED = "cited_unretrieved"  # cites a guideline id retrieval did not return
GROUNDING_NO_CITATION = "no_citation"  # retrieval returned guidelines and the review cites none
GROUNDING_QUOTE_NOT_IN_INPUT = "quote_not_in_input"  # code-critic quotes code the input does not have
WORKFLOW_LEARNING_CYCLE = "learning-cycle"
STEP_GENERATE_ASSIGNMENT = "generate_assignment"
STEP_REVIEW_PROMPT = "review_prompt"
STEP_REVIEW_CODE = "review_code"
STEP_COMPOSE_REPORT = "compose_report"
WORKFLOW_STEPS = (STEP_GENERATE_ASSIGNMENT, STEP_REVIEW_PROMPT, STEP_REVIEW_CODE, STEP_COMPOSE_REPORT)


def chat_span_name(model: str) -> str:
    """`{gen_ai.operation.name} {gen_ai.request.model}`, as the GenAI span conventions name it."""
    return f"{OPERATION_CHAT} {model}"


def workflow_step_span_name(step: str) -> str:
    return f"step {step}"


def retrieval_span_name(collection: str) -> str:
    return f"retrieval {collection}"


def cache_lookup_span_name(collection: str) -> str:
    return f"cache lookup {collection}"


def cache_store_span_name(collection: str) -> str:
    return f"cache store {collection}"


def prometheus_label(attribute: str) -> str:
    """The label an attribute becomes in Mimir: other characters than [a-zA-Z0-9_] become one `_`."""
    return re.sub(r"[^a-zA-Z0-9_]+", "_", attribute)
