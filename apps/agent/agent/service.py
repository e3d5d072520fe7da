"""One review: guardrails, retrieve guidelines, build the prompt, call the LLM, account for it.

Telemetry is recorded here, around the two calls that leave the process, so every provider gets
the same spans and metrics. Retrieval failing is not a failed review: it is recorded (span status,
metric outcome, ERROR log line) and the review goes on without guidelines.

The input guardrails run first, so only the redacted text goes on (to Qdrant, the LLM, any log);
the review passes the same redaction before it is answered. Then the router picks the model, and
the semantic cache is asked for an earlier review of the same meaning on that model: a hit answers
at once (no retrieval, no LLM call); a miss, or a cache error, goes on as before and stores the
review for next time.
"""

from __future__ import annotations

import asyncio
import logging
import time
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any

from opentelemetry import trace
from opentelemetry.trace import Span, SpanKind, Status, StatusCode

from agent import semconv as sc
from agent.cache import CachedReview, CacheError, SemanticCache
from agent.config import Settings
from agent.grounding import Grounding, check_grounding, cited_ids
from agent.guardrails import InputCheck, Redaction, check_input, redact
from agent.llm_call import InstrumentedChat
from agent.pricing import Usage, usage_cost_usd
from agent.providers import ChatRequest, LLMProvider
from agent.retrieval import GuidelineStore, RetrievalError
from agent.roles import Guideline, system_prompt, user_message
from agent.routing import ROUTE_STRONG, Route, Router
from agent.telemetry import AgentMetrics, Telemetry

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Review:
    text: str
    route: str
    """ROUTE_CHEAP or ROUTE_STRONG."""
    route_reason: str
    provider: str
    """The gen_ai.system that answered."""
    model: str
    input_tokens: int
    output_tokens: int
    cost_usd: float | None
    guideline_ids: tuple[str, ...]
    retrieval: str
    """One of semconv's RETRIEVAL_* outcomes, or "disabled" without QDRANT_URL."""
    input_pii: tuple[str, ...] = ()
    """PII types redacted from the text before anything else saw it."""
    injection: tuple[str, ...] = ()
    """Injection rules the text matched."""
    output_pii: tuple[str, ...] = ()
    """PII types redacted from the review."""
    cache: str = sc.CACHE_DISABLED
    """hit, miss, error or disabled."""
    cost_avoided_usd: float | None = None
    """On a hit: what the LLM call it made unnecessary cost."""
    cited_ids: tuple[str, ...] = ()
    """Guideline ids the review cites."""
    grounding_problems: tuple[str, ...] = ()
    """What makes the review ungrounded (grounding.py); a hit was grounded when it was stored."""


class ReviewService:
    def __init__(
        self,
        settings: Settings,
        provider: LLMProvider,
        telemetry: Telemetry,
        store: GuidelineStore | None = None,
        *,
        cheap_provider: LLMProvider | None = None,
        cache: SemanticCache | None = None,
    ) -> None:
        """`provider` serves the strong route, and the cheap one unless `cheap_provider` (a local model) does."""
        self.settings = settings
        self.provider = provider
        self.router = Router(settings, provider, cheap_provider)
        self.store = store
        self.cache = cache
        self.tracer = telemetry.tracer()
        self.metrics = AgentMetrics(telemetry.meter())
        self.chat = InstrumentedChat(settings.role, self.tracer, self.metrics)

    async def review(self, text: str) -> Review:
        """Raises ProviderError when the LLM call fails; nothing else a caller should expect."""
        role = self.settings.role
        checked = self._check_input(text)
        text = checked.text
        route = self._route(text, checked)
        cache_outcome, cached = await self._lookup(text, route)
        if cached is not None:
            return self._from_cache(cached, route, checked)
        guidelines, outcome = await self._retrieve(text)
        request = ChatRequest(
            model=route.model,
            system=system_prompt(role, guidelines),
            user=user_message(role, text),
            max_tokens=self.settings.max_output_tokens,
        )
        result, cost = await self.chat(request, route)
        self._record_baseline(route, result.usage, cost, cache_outcome)
        grounding = self._check_grounding(result.text, guidelines, text)
        output = self._check_output(result.text)
        logger.info(
            "review done: %s route (%s), cache %s, %d input + %d output tokens, cost %s, guidelines %s",
            route.name,
            route.reason,
            cache_outcome,
            result.input_tokens,
            result.output_tokens,
            "unknown" if cost is None else f"${cost:.6f}",
            ",".join(g.id for g in guidelines) or "none",
            extra={sc.AGENT_NAME: role, sc.GEN_AI_REQUEST_MODEL: request.model, sc.AGENT_ROUTE: route.name},
        )
        review = Review(
            text=output.text,
            route=route.name,
            route_reason=route.reason,
            provider=route.provider.system,
            model=result.model,
            input_tokens=result.input_tokens,
            output_tokens=result.output_tokens,
            cost_usd=cost,
            guideline_ids=tuple(g.id for g in guidelines),
            retrieval=outcome,
            input_pii=tuple(checked.pii.types),
            injection=tuple(checked.injection),
            output_pii=tuple(output.types),
            cache=cache_outcome,
            cited_ids=grounding.cited_ids,
            grounding_problems=grounding.problems,
        )
        # An ungrounded review is answered once but never served again from the cache.
        if cache_outcome != sc.CACHE_DISABLED and grounding.grounded:
            await self._store(text, review, route)
        return review

    def _check_grounding(self, review: str, guidelines: list[Guideline], text: str) -> Grounding:
        """Check citations and quotes; count the outcome; log an ungrounded review as an event for Loki."""
        role = self.settings.role
        retrieved = [g.id for g in guidelines]
        grounding = check_grounding(role, review, retrieved, text)
        self.metrics.record_grounding(agent=role, problems=grounding.problems)
        span = trace.get_current_span()
        span.set_attribute(
            sc.AGENT_GROUNDING_OUTCOME, sc.GROUNDING_GROUNDED if grounding.grounded else sc.GROUNDING_UNGROUNDED
        )
        if not grounding.grounded:
            span.set_attribute(sc.AGENT_GROUNDING_PROBLEMS_FOUND, grounding.problems)
            logger.warning(
                "review not grounded (%s): cites %s, retrieval returned %s",
                ", ".join(grounding.problems),
                ",".join(grounding.cited_ids) or "nothing",
                ",".join(retrieved) or "nothing",
                extra={
                    sc.OTEL_EVENT_NAME: sc.EVENT_UNGROUNDED,
                    sc.AGENT_NAME: role,
                    sc.AGENT_GROUNDING_PROBLEMS_FOUND: grounding.problems,
                    sc.AGENT_GROUNDING_CITED_IDS: grounding.cited_ids,
                    sc.AGENT_RETRIEVAL_GUIDELINE_IDS: retrieved,
                },
            )
        return grounding

    # --- semantic cache -----------------------------------------------------------------------

    async def _lookup(self, text: str, route: Route) -> tuple[str, CachedReview | None]:
        """(outcome, the hit or None); a failing Qdrant is outcome `error` and a miss."""
        cache, role = self.cache, self.settings.role
        if cache is None:
            return sc.CACHE_DISABLED, None
        with self._qdrant_span(
            sc.cache_lookup_span_name(cache.collection),
            cache.collection,
            sc.DB_OPERATION_QUERY_POINTS,
            {sc.GEN_AI_REQUEST_MODEL: route.model, sc.AGENT_CACHE_THRESHOLD: cache.threshold},
        ) as span:
            start = time.perf_counter()
            try:
                # Embedding and comparing are CPU work and the Qdrant client is synchronous: a thread.
                found = await asyncio.to_thread(cache.lookup, text, route.model)
            except CacheError as exc:
                duration = time.perf_counter() - start
                self.metrics.record_cache_lookup(
                    agent=role, model=route.model, outcome=sc.CACHE_ERROR, duration_s=duration
                )
                span.set_attribute(sc.AGENT_CACHE_OUTCOME, sc.CACHE_ERROR)
                span.set_attribute(sc.ERROR_TYPE, type(exc.__cause__ or exc).__name__)
                span.set_status(Status(StatusCode.ERROR, str(exc)))
                if exc.__cause__ is not None:  # not for the calls skipped while Qdrant is known to be down
                    span.record_exception(exc)
                    logger.warning(
                        "semantic cache lookup failed, answering without it: %s", exc, extra={sc.AGENT_NAME: role}
                    )
                return sc.CACHE_ERROR, None
            outcome = sc.CACHE_HIT if found.hit is not None else sc.CACHE_MISS
            self.metrics.record_cache_lookup(
                agent=role, model=route.model, outcome=outcome, duration_s=time.perf_counter() - start
            )
            span.set_attribute(sc.AGENT_CACHE_OUTCOME, outcome)
            if found.similarity is not None:
                span.set_attribute(sc.AGENT_CACHE_SIMILARITY, round(found.similarity, 4))
            return outcome, found.hit

    def _from_cache(self, cached: CachedReview, route: Route, checked: InputCheck) -> Review:
        """A hit's answer: no retrieval, no LLM call; what the call would have cost is counted as avoided."""
        role = self.settings.role
        usage = Usage(cached.input_tokens, cached.output_tokens)
        avoided = cached.cost_usd if cached.cost_usd is not None else usage_cost_usd(route.model, usage)
        self.metrics.record_cache_hit(
            agent=role,
            system=route.provider.system,
            model=route.model,
            route=route.name,
            input_tokens=cached.input_tokens,
            output_tokens=cached.output_tokens,
            cost_usd=avoided,
        )
        self._record_baseline(route, usage, avoided, sc.CACHE_HIT)
        output = self._check_output(cached.review)
        logger.info(
            "review answered from the semantic cache: %s route (%s), %d + %d tokens and %s avoided",
            route.name,
            route.reason,
            cached.input_tokens,
            cached.output_tokens,
            "unknown" if avoided is None else f"${avoided:.6f}",
            extra={sc.AGENT_NAME: role, sc.GEN_AI_REQUEST_MODEL: route.model, sc.AGENT_ROUTE: route.name},
        )
        return Review(
            text=output.text,
            route=route.name,
            route_reason=route.reason,
            provider=cached.provider,
            model=cached.response_model,
            input_tokens=0,
            output_tokens=0,
            cost_usd=0.0,
            guideline_ids=cached.guideline_ids,
            retrieval=sc.RETRIEVAL_SKIPPED,
            input_pii=tuple(checked.pii.types),
            injection=tuple(checked.injection),
            output_pii=tuple(output.types),
            cache=sc.CACHE_HIT,
            cost_avoided_usd=avoided,
            cited_ids=cited_ids(cached.review),
        )

    async def _store(self, text: str, review: Review, route: Route) -> None:
        """Keep the (redacted) text and review for later lookups; a failure is logged, not raised."""
        cache, role = self.cache, self.settings.role
        if cache is None:
            return
        entry = CachedReview(
            text=text,
            review=review.text,
            provider=review.provider,
            response_model=review.model,
            input_tokens=review.input_tokens,
            output_tokens=review.output_tokens,
            cost_usd=review.cost_usd,
            guideline_ids=review.guideline_ids,
            created_at=time.time(),
        )
        with self._qdrant_span(
            sc.cache_store_span_name(cache.collection),
            cache.collection,
            sc.DB_OPERATION_UPSERT,
            {sc.GEN_AI_REQUEST_MODEL: route.model},
        ) as span:
            try:
                await asyncio.to_thread(cache.store, entry, route.model)
            except CacheError as exc:
                span.set_attribute(sc.ERROR_TYPE, type(exc.__cause__ or exc).__name__)
                span.set_status(Status(StatusCode.ERROR, str(exc)))
                if exc.__cause__ is not None:
                    span.record_exception(exc)
                    logger.warning("semantic cache store failed: %s", exc, extra={sc.AGENT_NAME: role})

    def _record_baseline(self, route: Route, usage: Usage, cost: float | None, cache_outcome: str) -> None:
        """What this review would have cost on the strong model with no cache: the same tokens at its price."""
        strong, provider = self.router.strong_model, self.router.strong_provider
        baseline = cost if route.name == ROUTE_STRONG else self.chat.cost(strong, provider, usage)
        if baseline is not None:
            self.metrics.record_baseline_cost(
                agent=self.settings.role,
                system=provider.system,
                model=strong,
                route=route.name,
                cache=cache_outcome,
                cost=baseline,
            )

    def _route(self, text: str, checked: InputCheck) -> Route:
        route = self.router.route(text, injection=bool(checked.injection))
        self.metrics.record_route(agent=self.settings.role, route=route.name, reason=route.reason, model=route.model)
        span = trace.get_current_span()
        span.set_attribute(sc.AGENT_ROUTE, route.name)
        span.set_attribute(sc.AGENT_ROUTE_REASON, route.reason)
        return route

    def _check_input(self, text: str) -> InputCheck:
        """Redact PII and look for injection; count, log (ids and counts only) and tag the server span."""
        role = self.settings.role
        checked = check_input(text)
        self._record_redaction(sc.GUARDRAIL_STAGE_INPUT, checked.pii)
        span = trace.get_current_span()
        if checked.pii.counts:
            span.set_attribute(sc.AGENT_GUARDRAIL_PII_TYPES, checked.pii.types)
        self.metrics.record_guardrail(
            agent=role,
            stage=sc.GUARDRAIL_STAGE_INPUT,
            check=sc.GUARDRAIL_CHECK_INJECTION,
            outcome=sc.GUARDRAIL_FLAGGED if checked.injection else sc.GUARDRAIL_PASS,
        )
        if checked.injection:
            span.set_attribute(sc.AGENT_GUARDRAIL_RULES, checked.injection)
            logger.warning(
                "guardrail: likely prompt injection (%s)",
                ", ".join(checked.injection),
                extra={
                    sc.OTEL_EVENT_NAME: sc.EVENT_INJECTION_SUSPECTED,
                    sc.AGENT_NAME: role,
                    sc.AGENT_GUARDRAIL_RULES: checked.injection,
                },
            )
        return checked

    def _check_output(self, review: str) -> Redaction:
        redaction = redact(review)
        self._record_redaction(sc.GUARDRAIL_STAGE_OUTPUT, redaction)
        return redaction

    def _record_redaction(self, stage: str, redaction: Redaction) -> None:
        role = self.settings.role
        self.metrics.record_guardrail(
            agent=role,
            stage=stage,
            check=sc.GUARDRAIL_CHECK_PII,
            outcome=sc.GUARDRAIL_REDACTED if redaction.counts else sc.GUARDRAIL_PASS,
        )
        if not redaction.counts:
            return
        self.metrics.record_redactions(agent=role, stage=stage, counts=redaction.counts)
        logger.info(
            "guardrail: redacted %d PII item(s) (%s) from the %s",
            redaction.total,
            ", ".join(redaction.types),
            "text under review" if stage == sc.GUARDRAIL_STAGE_INPUT else "review",
            extra={
                sc.OTEL_EVENT_NAME: sc.EVENT_PII_REDACTED,
                sc.AGENT_NAME: role,
                sc.AGENT_GUARDRAIL_STAGE: stage,
                sc.AGENT_GUARDRAIL_PII_TYPES: redaction.types,
                sc.AGENT_GUARDRAIL_REDACTED_COUNT: redaction.total,
            },
        )

    def _qdrant_span(
        self, name: str, collection: str, operation: str, attributes: dict[str, Any]
    ) -> AbstractContextManager[Span]:
        """A client span for a call to Qdrant; the caller records failures on it, as it degrades gracefully."""
        return self.tracer.start_as_current_span(
            name,
            kind=SpanKind.CLIENT,
            attributes={
                sc.AGENT_NAME: self.settings.role,
                sc.DB_SYSTEM_NAME: sc.DB_SYSTEM_QDRANT,
                sc.PEER_SERVICE: sc.DB_SYSTEM_QDRANT,
                sc.DB_COLLECTION_NAME: collection,
                sc.DB_OPERATION_NAME: operation,
                **attributes,
            },
            record_exception=False,
            set_status_on_exception=False,
        )

    async def _retrieve(self, text: str) -> tuple[list[Guideline], str]:
        store = self.store
        if store is None:
            return [], "disabled"
        role, top_k = self.settings.role, self.settings.retrieval_top_k
        with self._qdrant_span(
            sc.retrieval_span_name(store.collection),
            store.collection,
            sc.DB_OPERATION_QUERY_POINTS,
            {sc.AGENT_RETRIEVAL_TOP_K: top_k, sc.AGENT_RETRIEVAL_MODE: store.mode},
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
            span.set_attribute(sc.AGENT_RETRIEVAL_RERANKED, store.reranker is not None)
            span.set_attribute(sc.AGENT_RETRIEVAL_GUIDELINE_IDS, [g.id for g in guidelines])
            return guidelines, outcome
