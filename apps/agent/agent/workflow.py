"""learning-cycle: a workflow across three services, traced end to end.

Given a learning task and the learner's code, it writes an assignment prompt for the task (an LLM
call), asks prompt-reviewer to review that prompt and code-critic to review the code (over HTTP,
with W3C trace context), and combines both into a progress report. The code review does not
depend on the assignment, so it runs while the assignment is written and reviewed.

Every step is a span (`step review_code`, ...) and a sample of agent.workflow.step.duration, so
one trace and one dashboard panel answer "which agent is slow?". A failed step does not lose the
others: the report says which step failed and the run counts as failed (error.type) in metrics.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import httpx
from opentelemetry.trace import SpanKind, Status, StatusCode, Tracer

from agent import semconv as sc
from agent.config import Settings, agent_request_headers
from agent.llm_call import InstrumentedChat
from agent.providers import ChatRequest, LLMProvider, ProviderError, server_port
from agent.roles import CODE_CRITIC, LEARNING_CYCLE, PROMPT_REVIEWER, system_prompt, user_message
from agent.routing import REASON_SIMPLE, ROUTE_CHEAP, Route, Router
from agent.telemetry import AgentMetrics, Telemetry

logger = logging.getLogger(__name__)
T = TypeVar("T")

STEP_OK = "ok"
STEP_FAILED = "failed"
STEP_SKIPPED = "skipped"


class ReviewerError(Exception):
    """A reviewer could not be reached or did not answer 200; `error_type` is low-cardinality."""

    def __init__(self, message: str, error_type: str) -> None:
        super().__init__(message)
        self.error_type = error_type


@dataclass(frozen=True)
class StepResult:
    name: str
    status: str
    """ok, failed, or skipped (a step it needed failed)."""
    duration_s: float = 0.0
    error_type: str | None = None
    value: Any = None


@dataclass(frozen=True)
class CycleReport:
    assignment: str | None
    prompt_review: dict[str, Any] | None
    code_review: dict[str, Any] | None
    summary: list[str]
    steps: list[StepResult] = field(default_factory=list)

    @property
    def complete(self) -> bool:
        return all(step.status == STEP_OK for step in self.steps)


def _verdict(review: dict[str, Any] | None) -> str:
    if review is None:
        return "not reviewed"
    first_line = str(review.get("review", "")).splitlines()[:1]
    return first_line[0].removeprefix("Verdict:").strip().rstrip(".") if first_line else "no verdict"


def compose(
    assignment: str | None, prompt_review: dict[str, Any] | None, code_review: dict[str, Any] | None
) -> list[str]:
    """The progress report: one line per review, and what to look at next. No LLM: it only combines."""
    lines = [f"Code: {_verdict(code_review)}.", f"Assignment prompt: {_verdict(prompt_review)}."]
    for name, review in (("code", code_review), ("prompt", prompt_review)):
        if review is None:
            continue
        grounding = review.get("grounding") or {}
        if grounding and not grounding.get("grounded", True):
            lines.append(f"The {name} review cites or quotes what it was not given: check it before acting on it.")
        cited = ", ".join(grounding.get("cited_ids", []))
        if cited:
            lines.append(f"Guidelines behind the {name} review: {cited}.")
    if assignment is None:
        lines.append("No assignment this time: the tutor model did not answer.")
    return lines


class LearningCycle:
    def __init__(
        self,
        settings: Settings,
        provider: LLMProvider,
        telemetry: Telemetry,
        client: httpx.AsyncClient,
        *,
        cheap_provider: LLMProvider | None = None,
    ) -> None:
        self.settings = settings
        self.client = client
        self.tracer: Tracer = telemetry.tracer()
        self.metrics = AgentMetrics(telemetry.meter())
        self.chat = InstrumentedChat(settings.role, self.tracer, self.metrics)
        router = Router(settings, provider, cheap_provider)
        # Writing an assignment from a one-line task is easy work: the cheap model's.
        self.route = Route(ROUTE_CHEAP, REASON_SIMPLE, router.cheap_model, router.cheap_provider)

    async def run(self, task: str, code: str) -> CycleReport:
        start = time.perf_counter()
        code_step = asyncio.create_task(self._step(sc.STEP_REVIEW_CODE, lambda: self._ask(CODE_CRITIC, code)))
        try:
            assignment = await self._step(sc.STEP_GENERATE_ASSIGNMENT, lambda: self._assignment(task))
            if assignment.status == STEP_OK:
                prompt_step = await self._step(
                    sc.STEP_REVIEW_PROMPT, lambda: self._ask(PROMPT_REVIEWER, assignment.value)
                )
            else:
                prompt_step = StepResult(sc.STEP_REVIEW_PROMPT, STEP_SKIPPED)
        finally:
            code_result = await code_step
        report_step = await self._step(
            sc.STEP_COMPOSE_REPORT,
            lambda: compose(assignment.value, prompt_step.value, code_result.value),
        )
        steps = [assignment, prompt_step, code_result, report_step]
        report = CycleReport(assignment.value, prompt_step.value, code_result.value, report_step.value or [], steps)
        failed = next((step.error_type for step in steps if step.status != STEP_OK), None)
        self.metrics.record_workflow(workflow=LEARNING_CYCLE, duration_s=time.perf_counter() - start, error_type=failed)
        return report

    async def _step(self, name: str, work: Callable[[], Awaitable[T] | T]) -> StepResult:
        """Run one step in its own span; its duration and outcome go to agent.workflow.step.duration."""
        with self.tracer.start_as_current_span(
            sc.workflow_step_span_name(name),
            attributes={sc.AGENT_WORKFLOW_NAME: LEARNING_CYCLE, sc.AGENT_WORKFLOW_STEP: name},
            record_exception=False,
            set_status_on_exception=False,
        ) as span:
            start = time.perf_counter()
            try:
                value = work()
                if inspect.isawaitable(value):
                    value = await value
            except (ProviderError, ReviewerError) as exc:
                duration = time.perf_counter() - start
                self.metrics.record_workflow_step(
                    workflow=LEARNING_CYCLE, step=name, duration_s=duration, error_type=exc.error_type
                )
                span.set_attribute(sc.ERROR_TYPE, exc.error_type)
                span.set_status(Status(StatusCode.ERROR, str(exc)))
                logger.warning("workflow step %s failed: %s", name, exc, extra={sc.AGENT_NAME: LEARNING_CYCLE})
                return StepResult(name, STEP_FAILED, duration, exc.error_type)
            duration = time.perf_counter() - start
            self.metrics.record_workflow_step(workflow=LEARNING_CYCLE, step=name, duration_s=duration)
            return StepResult(name, STEP_OK, duration, value=value)

    async def _assignment(self, task: str) -> str:
        request = ChatRequest(
            model=self.route.model,
            system=system_prompt(LEARNING_CYCLE, ()),
            user=user_message(LEARNING_CYCLE, task),
            max_tokens=self.settings.max_output_tokens,
        )
        result, _ = await self.chat(request, self.route)
        return result.text

    async def _ask(self, reviewer: str, text: str) -> dict[str, Any]:
        """POST the text to a reviewer's /review in a client span whose context the request carries."""
        url = httpx.URL(f"{self.settings.reviewer_urls[reviewer]}/review")
        with self.tracer.start_as_current_span(
            "POST /review",
            kind=SpanKind.CLIENT,
            attributes={
                "http.request.method": "POST",
                "url.full": str(url),
                sc.SERVER_ADDRESS: url.host,
                sc.SERVER_PORT: server_port(url),
                sc.PEER_SERVICE: reviewer,
            },
            record_exception=False,
            set_status_on_exception=False,
        ) as span:
            try:
                response = await self.client.post(
                    url,
                    json={"text": text},
                    headers=agent_request_headers(self.settings.access_key),
                    timeout=self.settings.reviewer_timeout_s,
                )
                span.set_attribute("http.response.status_code", response.status_code)
                if response.status_code != 200:
                    raise ReviewerError(f"{reviewer} answered HTTP {response.status_code}", str(response.status_code))
                review = response.json()
                if not isinstance(review, dict):
                    raise ValueError("not a JSON object")
                return review
            except httpx.HTTPError as exc:
                error = ReviewerError(f"{reviewer} did not answer: {type(exc).__name__}", type(exc).__name__)
            except ValueError:
                error = ReviewerError(f"{reviewer} answered with something else than a review", "invalid_response")
            except ReviewerError as exc:
                error = exc
            span.set_attribute(sc.ERROR_TYPE, error.error_type)
            span.set_status(Status(StatusCode.ERROR, str(error)))
            raise error
