"""The HTTP service: GET /healthz and POST /review, with a server span per request.

`create_app` takes its collaborators (telemetry, provider, Qdrant client) as arguments so tests
build the same app with in-memory exporters, an httpx mock transport and an in-memory Qdrant.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated, Any, TypeVar

from fastapi import FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from opentelemetry import trace
from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from qdrant_client import QdrantClient
from starlette.requests import ClientDisconnect

from agent import __version__
from agent import semconv as sc
from agent.cache import CacheError, SemanticCache
from agent.config import Secret, Settings
from agent.providers import LLMProvider, ProviderError, make_local_provider, make_provider
from agent.rerank import make_reranker
from agent.retrieval import GuidelineStore, RetrievalError
from agent.roles import CODE_CRITIC, prompt_version
from agent.semantic import CODE, PROSE, EmbeddingUnavailableError, Matcher, shared_model
from agent.service import Review, ReviewService
from agent.telemetry import Telemetry

logger = logging.getLogger(__name__)


BodyT = TypeVar("BodyT", bound=BaseModel)


def not_blank(value: str) -> str:
    if not value.strip():
        raise ValueError("must not be blank")
    return value


class ReviewRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    text: Annotated[str, Field(min_length=1, description="The prompt or code to review.")]

    _not_blank = field_validator("text")(not_blank)


class Guardrails(BaseModel):
    input_pii: list[str] = Field(description="PII types redacted from the text before it was reviewed.")
    injection: list[str] = Field(description="Prompt-injection rules the text matched (flagged, not blocked).")
    output_pii: list[str] = Field(description="PII types redacted from the review.")


class GroundingReport(BaseModel):
    grounded: bool = Field(description="False when the review cites or quotes what it was not given.")
    problems: list[str] = Field(description="cited_unretrieved, no_citation, quote_not_in_input.")
    cited_ids: list[str] = Field(description="The guideline ids the review cites.")


class ReviewResponse(BaseModel):
    agent: str
    review: str
    provider: str
    model: str = Field(description="The model that answered (gen_ai.response.model).")
    route: str = Field(description="cheap or strong: the model route the router chose.")
    route_reason: str = Field(description="Why: simple, length, code_in_prompt, complexity, injection, routing_off.")
    input_tokens: int
    output_tokens: int
    cost_usd: float | None = Field(description="From the price table; null for a model not in it.")
    guideline_ids: list[str]
    retrieval: str = Field(
        description="hit, empty, error (reviewed without guidelines), skipped (answered from the cache) or disabled."
    )
    cache: str = Field(description="hit (no LLM call), miss, error (Qdrant failing: a miss) or disabled.")
    cost_avoided_usd: float | None = Field(description="On a hit: the cost of the LLM call it made unnecessary.")
    guardrails: Guardrails
    grounding: GroundingReport
    trace_id: str

    @classmethod
    def of(cls, agent: str, result: Review, trace_id: str) -> ReviewResponse:
        return cls(
            agent=agent,
            review=result.text,
            provider=result.provider,
            model=result.model,
            route=result.route,
            route_reason=result.route_reason,
            input_tokens=result.input_tokens,
            output_tokens=result.output_tokens,
            cost_usd=result.cost_usd,
            guideline_ids=list(result.guideline_ids),
            retrieval=result.retrieval,
            cache=result.cache,
            cost_avoided_usd=result.cost_avoided_usd,
            guardrails=Guardrails(
                input_pii=list(result.input_pii), injection=list(result.injection), output_pii=list(result.output_pii)
            ),
            grounding=GroundingReport(
                grounded=not result.grounding_problems,
                problems=list(result.grounding_problems),
                cited_ids=list(result.cited_ids),
            ),
            trace_id=trace_id,
        )


class Health(BaseModel):
    status: str
    agent: str
    provider: str
    model: str = Field(description="The strong model (LLM_MODEL).")
    cheap_model: str = Field(description="The cheap route's model (LLM_CHEAP_MODEL or LLM_LOCAL_MODEL).")
    routing: str = Field(description="on or off.")
    retrieval: str
    cache: str = Field(description="ready, unavailable (Qdrant failing), off (SEMANTIC_CACHE=off) or disabled.")
    version: str


def current_trace_id() -> str:
    context = trace.get_current_span().get_span_context()
    return f"{context.trace_id:032x}" if context.is_valid else ""


# The status nginx logs for a client that closed the connection before the answer: nobody reads it,
# but the server span records it as a client-side (4xx) outcome rather than a server error.
CLIENT_CLOSED_REQUEST = 499


class ClientGoneError(Exception):
    """The client closed the connection before its request body arrived."""


def is_json(content_type: str | None) -> bool:
    """application/json or application/*+json; no content type at all is taken as JSON too."""
    if content_type is None:
        return True
    media_type = content_type.split(";", 1)[0].strip().lower()
    return media_type == "application/json" or (media_type.startswith("application/") and media_type.endswith("+json"))


def validation_errors(exc: ValidationError | RequestValidationError) -> list[dict[str, Any]]:
    """Type, location and message of each error, never the input.

    Echoing the input fails for what cannot be encoded back (bytes that are not UTF-8, NaN and
    infinities, which strict JSON has no spelling for) and would copy the caller's text, PII
    included, into the answer.
    """
    errors = (
        exc.errors(include_url=False, include_context=False, include_input=False)
        if isinstance(exc, ValidationError)
        else exc.errors()
    )
    return [{key: error[key] for key in ("type", "loc", "msg") if key in error} for error in errors]


async def read_body(request: Request, limit: int) -> bytes:
    """The request body, refusing (413) one larger than `limit` without reading it all."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise HTTPException(413, f"request body is larger than {limit} bytes")
    body = bytearray()
    try:
        async for chunk in request.stream():
            body += chunk
            if len(body) > limit:
                raise HTTPException(413, f"request body is larger than {limit} bytes")
    except ClientDisconnect:
        raise ClientGoneError from None
    return bytes(body)


def make_cache(settings: Settings, qdrant: QdrantClient | None) -> SemanticCache | None:
    """The semantic cache, if SEMANTIC_CACHE is on, Qdrant is configured and the embedding model loads."""
    if qdrant is None or not settings.semantic_cache:
        return None
    try:
        model = shared_model()
    except EmbeddingUnavailableError as exc:
        logger.error("semantic cache off: no embedding model (%s)", exc)
        return None
    return SemanticCache(
        qdrant,
        settings.cache_collection,
        settings.role,
        Matcher(model, CODE if settings.role == CODE_CRITIC else PROSE),
        prompt_version=prompt_version(settings.role),
        threshold=settings.cache_threshold,
        ttl_s=settings.cache_ttl_s,
        max_entries=settings.cache_max_entries,
    )


def make_store(settings: Settings, qdrant: QdrantClient | None) -> GuidelineStore | None:
    """The guideline store, if Qdrant is configured; reranking only where the embedding model loads."""
    if qdrant is None:
        return None
    reranker = make_reranker() if settings.retrieval_rerank else None
    return GuidelineStore(
        qdrant, settings.qdrant_collection, settings.role, mode=settings.retrieval_mode, reranker=reranker
    )


async def prepare_qdrant(role: str, store: GuidelineStore | None, cache: SemanticCache | None) -> None:
    """Seed the guidelines and create the cache's collection; Qdrant down is logged, and retried later."""
    if store is not None:
        try:
            count = await asyncio.to_thread(store.ensure_seeded)
            logger.info("seeded %d guidelines for %s into %s", count, role, store.collection)
        except RetrievalError as exc:
            logger.error("Qdrant not available at startup, will retry on requests: %s", exc)
    if cache is not None:
        try:
            await asyncio.to_thread(cache.ensure_collection)
        except CacheError as exc:
            logger.warning("semantic cache not available at startup, will retry on requests: %s", exc)


def cache_state(cache: SemanticCache | None, qdrant: QdrantClient | None) -> str:
    if cache is None:
        return "off" if qdrant is not None else "disabled"
    return "ready" if cache.ready else "unavailable"


def check_access(request: Request, key: Secret | None) -> None:
    """401 unless the request carries the agent's key as a bearer token (when the agent has one)."""
    if key is None:
        return
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(token.strip().encode(), key.reveal().encode()):
        raise HTTPException(401, "send the agent's key: Authorization: Bearer <key>", {"WWW-Authenticate": "Bearer"})


async def read_json(request: Request, settings: Settings, model: type[BodyT]) -> BodyT:
    """The body as `model`: 415, 413 or 422 (RequestValidationError) unless it is usable."""
    if not is_json(request.headers.get("content-type")):
        raise HTTPException(415, "the body must be JSON (content-type: application/json)")
    body = await read_body(request, settings.max_body_bytes)
    try:
        return model.model_validate_json(body)
    except ValidationError as exc:
        raise RequestValidationError(validation_errors(exc)) from None


def json_body_docs(model: type[BaseModel], *, too_large: str, failed: str) -> dict[str, Any]:
    """The OpenAPI of an endpoint that reads its body with read_json: the body's schema and each refusal."""
    return {
        "responses": {
            401: {"description": "The agent has a key and the request does not carry it"},
            413: {"description": too_large},
            415: {"description": "Body is not JSON (content-type)"},
            422: {"description": "Invalid request"},
            502: {"description": failed},
        },
        "openapi_extra": {
            "requestBody": {"required": True, "content": {"application/json": {"schema": model.model_json_schema()}}}
        },
    }


def check_length(field: str, text: str, settings: Settings) -> None:
    if len(text) > settings.max_text_chars:
        raise HTTPException(413, f"{field} has {len(text)} characters; the limit is {settings.max_text_chars}")


def add_error_handlers(app: FastAPI, role: str) -> None:
    @app.exception_handler(RequestValidationError)
    async def invalid_request(_: Request, exc: RequestValidationError) -> JSONResponse:
        return JSONResponse(status_code=422, content={"detail": validation_errors(exc)})

    @app.exception_handler(ClientGoneError)
    async def client_gone(_: Request, __: ClientGoneError) -> Response:
        # Not an error of this service: the caller gave up (a timeout, a closed tab).
        logger.info("client disconnected before sending its whole request", extra={sc.AGENT_NAME: role})
        return Response(status_code=CLIENT_CLOSED_REQUEST)


def instrument(app: FastAPI, telemetry: Telemetry) -> None:
    """A server span per request (health checks aside), and the HTTP server metrics."""
    FastAPIInstrumentor.instrument_app(
        app,
        tracer_provider=telemetry.tracer_provider,
        meter_provider=telemetry.meter_provider,
        excluded_urls="/healthz",
        exclude_spans=["receive", "send"],
    )


def create_app(
    settings: Settings,
    *,
    telemetry: Telemetry | None = None,
    provider: LLMProvider | None = None,
    qdrant: QdrantClient | None = None,
    local_provider: LLMProvider | None = None,
) -> FastAPI:
    """The agent app; what it is not given, it builds from `settings` and owns (and closes)."""
    owns_telemetry = telemetry is None
    telemetry = telemetry or Telemetry.from_env(settings.role)
    owns_provider = provider is None
    provider = provider or make_provider(settings)
    owns_local = local_provider is None
    local_provider = local_provider or make_local_provider(settings)
    owns_qdrant = qdrant is None
    if qdrant is None and settings.qdrant_url:
        qdrant = QdrantClient(
            url=settings.qdrant_url, timeout=max(1, round(settings.qdrant_timeout_s)), check_compatibility=False
        )
    store = make_store(settings, qdrant)
    cache = make_cache(settings, qdrant)
    service = ReviewService(settings, provider, telemetry, store, cheap_provider=local_provider, cache=cache)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        logger.info(
            "agent %s starting: provider %s, model %s, cheap model %s%s, routing %s, retrieval %s%s, semantic cache %s",
            settings.role,
            provider.system,
            settings.model,
            service.router.cheap_model,
            f" on {local_provider.system}" if local_provider is not None else "",
            "on" if settings.routing else "off",
            settings.qdrant_url or ("in-process" if store else "disabled"),
            f" ({store.mode}, rerank {'on' if store.reranker else 'off'})" if store is not None else "",
            f"threshold {cache.threshold:g}" if cache is not None else "off",
        )
        await prepare_qdrant(settings.role, store, cache)
        yield
        if owns_provider:
            await provider.aclose()
        if owns_local and local_provider is not None:
            await local_provider.aclose()
        if owns_qdrant and qdrant is not None:
            qdrant.close()
        if owns_telemetry:
            telemetry.shutdown()

    app = FastAPI(title=f"LLM agent {settings.role}", version=__version__, lifespan=lifespan)
    add_error_handlers(app, settings.role)

    # HEAD too: load balancers and uptime checkers probe with it.
    @app.api_route("/healthz", methods=["GET", "HEAD"], response_model=Health)
    async def healthz() -> Health:
        """Liveness and readiness in one: no LLM or Qdrant call, just the last known state."""
        return Health(
            status="ok",
            agent=settings.role,
            provider=provider.system,
            model=settings.model,
            cheap_model=service.router.cheap_model,
            routing="on" if settings.routing else "off",
            retrieval="disabled" if store is None else ("ready" if store.ready else "unavailable"),
            cache=cache_state(cache, qdrant),
            version=__version__,
        )

    @app.post(
        "/review",
        response_model=ReviewResponse,
        **json_body_docs(ReviewRequest, too_large="Text or body too large", failed="The LLM provider failed"),
    )
    async def review(request: Request) -> Any:
        """Review `text` as this agent's role; the body is read by hand to cap its size first."""
        trace.get_current_span().set_attribute(sc.AGENT_NAME, settings.role)
        check_access(request, settings.access_key)
        text = (await read_json(request, settings, ReviewRequest)).text
        check_length("text", text, settings)
        try:
            result = await service.review(text)
        except ProviderError as exc:
            return JSONResponse(
                status_code=502,
                content={
                    "detail": f"LLM provider {exc.system or provider.system} failed",
                    "error_type": exc.error_type,
                    "trace_id": current_trace_id(),
                },
            )
        return ReviewResponse.of(settings.role, result, current_trace_id())

    instrument(app, telemetry)
    return app
