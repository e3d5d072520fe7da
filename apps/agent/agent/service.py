"""One review: retrieve guidelines, build the prompt, call the LLM, account for tokens and cost.

Telemetry is recorded here, around the two calls that leave the process, so every provider gets
the same spans and metrics. Retrieval failing is not a failed review: it is recorded (span status,
metric outcome, ERROR log line) and the review goes on without guidelines.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass

from opentelemetry.trace import SpanKind, Status, StatusCode

from agent import semconv as sc
from agent.config import Settings
from agent.pricing import usage_cost_usd
from agent.providers import ChatRequest, ChatResult, LLMProvider, ProviderError
from agent.retrieval import GuidelineStore, RetrievalError
from agent.roles import Guideline, system_prompt, user_message
from agent.telemetry import AgentMetrics, Telemetry

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Review:
    text: str
    model: str
    input_tokens: int
    output_tokens: int
    cost_usd: float | None
    guideline_ids: tuple[str, ...]
    retrieval: str
    """One of semconv's RETRIEVAL_* outcomes, or "disabled" without QDRANT_URL."""


class ReviewService:
    def __init__(
        self,
        settings: Settings,
        provider: LLMProvider,
        telemetry: Telemetry,
        store: GuidelineStore | None = None,
    ) -> None:
        self.settings = settings
        self.provider = provider
        self.store = store
        self.tracer = telemetry.tracer()
        self.metrics = AgentMetrics(telemetry.meter())
        self._unpriced: set[str] = set()

    async def review(self, text: str) -> Review:
        """Raises ProviderError when the LLM call fails; nothing else a caller should expect."""
        guidelines, outcome = await self._retrieve(text)
        request = ChatRequest(
            model=self.settings.model,
            system=system_prompt(self.settings.role, guidelines),
            user=user_message(self.settings.role, text),
            max_tokens=self.settings.max_output_tokens,
        )
        result, cost = await self._chat(request)
        logger.info(
            "review done: %d input + %d output tokens, cost %s, guidelines %s",
            result.input_tokens,
            result.output_tokens,
            "unknown" if cost is None else f"${cost:.6f}",
            ",".join(g.id for g in guidelines) or "none",
            extra={sc.AGENT_NAME: self.settings.role, sc.GEN_AI_REQUEST_MODEL: request.model},
        )
        return Review(
            text=result.text,
            model=result.model,
            input_tokens=result.input_tokens,
            output_tokens=result.output_tokens,
            cost_usd=cost,
            guideline_ids=tuple(g.id for g in guidelines),
            retrieval=outcome,
        )

    async def _retrieve(self, text: str) -> tuple[list[Guideline], str]:
        store = self.store
        if store is None:
            return [], "disabled"
        role, top_k = self.settings.role, self.settings.retrieval_top_k
        with self.tracer.start_as_current_span(
            sc.retrieval_span_name(store.collection),
            kind=SpanKind.CLIENT,
            attributes={
                sc.AGENT_NAME: role,
                sc.DB_SYSTEM_NAME: sc.DB_SYSTEM_QDRANT,
                sc.DB_COLLECTION_NAME: store.collection,
                sc.DB_OPERATION_NAME: sc.DB_OPERATION_QUERY_POINTS,
                sc.AGENT_RETRIEVAL_TOP_K: top_k,
            },
            record_exception=False,
            set_status_on_exception=False,
        ) as span:
            start = time.perf_counter()
            try:
                # The Qdrant client is synchronous; a thread keeps a slow Qdrant from stalling /healthz.
                guidelines = await asyncio.to_thread(store.search, text, top_k)
            except RetrievalError as exc:
                self.metrics.record_retrieval(
                    agent=role, duration_s=time.perf_counter() - start, outcome=sc.RETRIEVAL_ERROR
                )
                span.set_attribute(sc.AGENT_RETRIEVAL_OUTCOME, sc.RETRIEVAL_ERROR)
                span.set_attribute(sc.ERROR_TYPE, type(exc.__cause__ or exc).__name__)
                span.record_exception(exc)
                span.set_status(Status(StatusCode.ERROR, str(exc)))
                logger.error("retrieval failed, reviewing without guidelines: %s", exc, extra={sc.AGENT_NAME: role})
                return [], sc.RETRIEVAL_ERROR
            outcome = sc.RETRIEVAL_HIT if guidelines else sc.RETRIEVAL_EMPTY
            self.metrics.record_retrieval(agent=role, duration_s=time.perf_counter() - start, outcome=outcome)
            span.set_attribute(sc.AGENT_RETRIEVAL_OUTCOME, outcome)
            span.set_attribute(sc.AGENT_RETRIEVAL_GUIDELINE_IDS, [g.id for g in guidelines])
            return guidelines, outcome

    async def _chat(self, request: ChatRequest) -> tuple[ChatResult, float | None]:
        provider, role = self.provider, self.settings.role
        attributes: dict[str, str | int] = {
            sc.GEN_AI_OPERATION_NAME: sc.OPERATION_CHAT,
            sc.GEN_AI_SYSTEM: provider.system,
            sc.GEN_AI_PROVIDER_NAME: provider.system,
            sc.GEN_AI_REQUEST_MODEL: request.model,
            sc.GEN_AI_REQUEST_MAX_TOKENS: request.max_tokens,
            sc.AGENT_NAME: role,
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
                self.metrics.record_chat(
                    agent=role,
                    system=provider.system,
                    request_model=request.model,
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
            cost = usage_cost_usd(request.model, result.usage)
            if cost is None and request.model not in self._unpriced:
                self._unpriced.add(request.model)
                logger.warning("no price for model %s: its cost is not counted", request.model)
            self.metrics.record_chat(
                agent=role,
                system=provider.system,
                request_model=request.model,
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
