"""Prometheus names of the LLM telemetry, as Mimir stores it after Alloy's OTLP conversion.

The agents emit OpenTelemetry GenAI semantic-convention metrics; Alloy's
`otelcol.exporter.prometheus` turns dots into underscores, drops `{annotation}` units,
appends unit and type suffixes (`_seconds`, `_total`), and histograms become `_bucket`
series. Dashboards and alert rules read these constants so the two cannot drift apart.
"""

TOKEN_USAGE = "gen_ai_client_token_usage"  # gen_ai.client.token.usage, unit {token}
OPERATION_DURATION = "gen_ai_client_operation_duration_seconds"  # gen_ai.client.operation.duration, s
COST = "agent_llm_cost_total"  # agent.llm.cost, unit {USD}
RETRIEVAL_DURATION = "agent_retrieval_duration_seconds"  # agent.retrieval.duration, s

AGENT = "agent_name"
MODEL = "gen_ai_request_model"
TOKEN_TYPE = "gen_ai_token_type"
ERROR_TYPE = "error_type"

HOURS_PER_MONTH = 730
