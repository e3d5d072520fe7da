"""The learning-cycle service: POST /cycle runs the workflow; same health, limits and key as a reviewer."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated, Any

import httpx
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from opentelemetry import trace
from pydantic import BaseModel, ConfigDict, Field, field_validator

from agent import __version__
from agent import semconv as sc
from agent.app import (
    add_error_handlers,
    check_access,
    check_length,
    current_trace_id,
    instrument,
    json_body_docs,
    not_blank,
    read_json,
)
from agent.config import Settings
from agent.providers import LLMProvider, make_local_provider, make_provider
from agent.roles import LEARNING_CYCLE
from agent.telemetry import Telemetry
from agent.workflow import CycleReport, LearningCycle


class CycleRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    task: Annotated[str, Field(min_length=1, description="What the learner is practising, in a sentence.")]
    code: Annotated[str, Field(min_length=1, description="The learner's code for it.")]

    _not_blank = field_validator("task", "code")(not_blank)


class StepReport(BaseModel):
    name: str
    status: str = Field(description="ok, failed, or skipped (a step it needed failed).")
    duration_ms: float
    error_type: str | None


class CycleResponse(BaseModel):
    complete: bool = Field(description="Whether every step succeeded; false still carries what did.")
    assignment: str | None
    prompt_review: dict[str, Any] | None = Field(description="prompt-reviewer's answer on the assignment.")
    code_review: dict[str, Any] | None = Field(description="code-critic's answer on the code.")
    report: list[str]
    steps: list[StepReport]
    trace_id: str

    @classmethod
    def of(cls, report: CycleReport, trace_id: str) -> CycleResponse:
        return cls(
            complete=report.complete,
            assignment=report.assignment,
            prompt_review=report.prompt_review,
            code_review=report.code_review,
            report=report.summary,
            steps=[
                StepReport(
                    name=s.name, status=s.status, duration_ms=round(s.duration_s * 1000, 1), error_type=s.error_type
                )
                for s in report.steps
            ],
            trace_id=trace_id,
        )


class WorkflowHealth(BaseModel):
    status: str
    agent: str
    provider: str
    reviewers: dict[str, str]
    version: str


def create_workflow_app(
    settings: Settings,
    *,
    telemetry: Telemetry | None = None,
    provider: LLMProvider | None = None,
    transport: httpx.AsyncBaseTransport | None = None,
) -> FastAPI:
    """The workflow app; `transport` lets tests answer the calls to the reviewers in-process."""
    owns_telemetry = telemetry is None
    telemetry = telemetry or Telemetry.from_env(settings.role)
    owns_provider = provider is None
    provider = provider or make_provider(settings)
    local_provider = make_local_provider(settings)
    client = httpx.AsyncClient(transport=transport)
    cycle = LearningCycle(settings, provider, telemetry, client, cheap_provider=local_provider)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield
        await client.aclose()
        if owns_provider:
            await provider.aclose()
        if local_provider is not None:
            await local_provider.aclose()
        if owns_telemetry:
            telemetry.shutdown()

    app = FastAPI(title=f"LLM agent workflow {settings.role}", version=__version__, lifespan=lifespan)
    add_error_handlers(app, settings.role)

    @app.api_route("/healthz", methods=["GET", "HEAD"], response_model=WorkflowHealth)
    async def healthz() -> WorkflowHealth:
        """No call to the reviewers: a reviewer down fails its step, not this service's health."""
        return WorkflowHealth(
            status="ok",
            agent=settings.role,
            provider=provider.system,
            reviewers=dict(settings.reviewer_urls),
            version=__version__,
        )

    @app.post(
        "/cycle",
        response_model=CycleResponse,
        **json_body_docs(
            CycleRequest,
            too_large="Task, code or body too large",
            failed="Neither an assignment nor a code review came back (the body says why)",
        ),
    )
    async def run_cycle(request: Request) -> Any:
        """Write an assignment for `task`, have it and `code` reviewed, and report on both."""
        span = trace.get_current_span()
        span.set_attribute(sc.AGENT_NAME, settings.role)
        span.set_attribute(sc.AGENT_WORKFLOW_NAME, LEARNING_CYCLE)
        check_access(request, settings.access_key)
        body = await read_json(request, settings, CycleRequest)
        check_length("task", body.task, settings)
        check_length("code", body.code, settings)
        report = await cycle.run(body.task, body.code)
        span.set_attribute(sc.AGENT_WORKFLOW_COMPLETE, report.complete)
        answer = CycleResponse.of(report, current_trace_id())
        if report.assignment is None and report.code_review is None:
            return JSONResponse(status_code=502, content=answer.model_dump())
        return answer

    instrument(app, telemetry)
    return app
