"""An LLM call with what every caller records: the GenAI client span, metrics, cost, an error log.

The reviewers and the workflow call LLMs the same way, so both show up the same in Tempo and on
the dashboards (`chat {model}` spans, gen_ai.client.* histograms, agent.llm.cost).
"""

from __future__ import annotations

import logging
import time

from opentelemetry.trace import SpanKind, Status, StatusCode, Tracer

from agent import semconv as sc
from agent.pricing import Usage, usage_cost_usd
from agent.providers import ChatRequest, ChatResult, LLMProvider, ProviderError
from agent.routing import Route
from agent.telemetry import AgentMetrics

logger = logging.getLogger(__name__)


class InstrumentedChat:
    def __init__(self, role: str, tracer: Tracer, metrics: AgentMetrics) -> None:
        self.role = role
        self.tracer = tracer
        self.metrics = metrics
        self._unpriced: set[str] = set()

    def cost(self, model: str, provider: LLMProvider, usage: Usage) -> float | None:
        """Dollars for a call: 0 on a free (local) provider; None, with a warning once, if unpriced."""
        if getattr(provider, "free", False):
            return 0.0
        cost = usage_cost_usd(model, usage)
        if cost is None and model not in self._unpriced:
            self._unpriced.add(model)
            logger.warning("no price for model %s: its cost is not counted", model)
        return cost

    async def __call__(self, request: ChatRequest, route: Route) -> tuple[ChatResult, float | None]:
        """The provider's answer and its cost; a failure is recorded, logged and raised as it came."""
        provider, role = route.provider, self.role
        attributes: dict[str, str | int] = {
            sc.GEN_AI_OPERATION_NAME: sc.OPERATION_CHAT,
            sc.GEN_AI_SYSTEM: provider.system,
            sc.GEN_AI_PROVIDER_NAME: provider.system,
            sc.PEER_SERVICE: provider.system,
            sc.GEN_AI_REQUEST_MODEL: request.model,
            sc.GEN_AI_REQUEST_MAX_TOKENS: request.max_tokens,
            sc.AGENT_NAME: role,
            sc.AGENT_ROUTE: route.name,
        }
        if provider.server_address:
            attributes[sc.SERVER_ADDRESS] = provider.server_address
            if provider.server_port:
                attributes[sc.SERVER_PORT] = provider.server_port
        with self.tracer.start_as_current_span(
            sc.chat_span_name(request.model),
            kind=SpanKind.CLIENT,
            attributes=attributes,
            record_exception=False,
            set_status_on_exception=False,
        ) as span:
            start = time.perf_counter()
            try:
                result = await provider.chat(request)
            except Exception as exc:
                duration = time.perf_counter() - start
                error_type = exc.error_type if isinstance(exc, ProviderError) else type(exc).__qualname__
                if isinstance(exc, ProviderError):
                    exc.system = provider.system
                self.metrics.record_chat(
                    agent=role,
                    system=provider.system,
                    request_model=request.model,
                    route=route.name,
                    duration_s=duration,
                    error_type=error_type,
                    server_address=provider.server_address,
                    server_port=provider.server_port,
                    retries=exc.retries if isinstance(exc, ProviderError) else (),
                )
                span.set_attribute(sc.ERROR_TYPE, error_type)
                span.record_exception(exc)
                span.set_status(Status(StatusCode.ERROR, str(exc)))
                logger.error(
                    "LLM call to %s failed (%s): %s",
                    provider.system,
                    error_type,
                    exc,
                    extra={sc.AGENT_NAME: role, sc.GEN_AI_REQUEST_MODEL: request.model, sc.ERROR_TYPE: error_type},
                )
                raise
            duration = time.perf_counter() - start
            cost = self.cost(request.model, provider, result.usage)
            self.metrics.record_chat(
                agent=role,
                system=provider.system,
                request_model=request.model,
                route=route.name,
                duration_s=duration,
                response_model=result.model,
                input_tokens=result.input_tokens,
                output_tokens=result.output_tokens,
                cost_usd=cost,
                server_address=provider.server_address,
                server_port=provider.server_port,
                retries=result.retries,
            )
            span.set_attribute(sc.GEN_AI_RESPONSE_MODEL, result.model)
            span.set_attribute(sc.GEN_AI_USAGE_INPUT_TOKENS, result.input_tokens)
            span.set_attribute(sc.GEN_AI_USAGE_OUTPUT_TOKENS, result.output_tokens)
            if result.cache_read_tokens:
                span.set_attribute(sc.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS, result.cache_read_tokens)
            if result.cache_write_tokens or result.cache_write_1h_tokens:
                span.set_attribute(
                    sc.GEN_AI_USAGE_CACHE_CREATION_INPUT_TOKENS,
                    result.cache_write_tokens + result.cache_write_1h_tokens,
                )
            if result.response_id:
                span.set_attribute(sc.GEN_AI_RESPONSE_ID, result.response_id)
            if result.finish_reason:
                span.set_attribute(sc.GEN_AI_RESPONSE_FINISH_REASONS, [result.finish_reason])
            return result, cost
