"""learning-cycle: three services on loopback, one trace across them, a span per step, failures contained."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import httpx
import pytest
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind
from qdrant_client import QdrantClient

from agent import semconv as sc
from agent.app import create_app
from agent.config import ConfigError, Secret, Settings
from agent.providers import ChatRequest, ChatResult, ProviderError, SimulatedProvider
from agent.roles import CODE_CRITIC, LEARNING_CYCLE, PROMPT_REVIEWER
from agent.telemetry import Telemetry
from agent.workflow_app import create_workflow_app
from agent_test_support import CODE, Captured, TestClient, closed_port, listening_socket, make_settings, serving

TASK = "Write a function that loads a JSON config file"
KEY = "k" * 24


@contextlib.contextmanager
def lab(spans: InMemorySpanExporter, *, key: str | None = None, down: tuple[str, ...] = ()) -> Iterator[str]:
    """Both reviewers (with Qdrant in memory) and the workflow on loopback; yields the workflow's URL.

    Each service has its own resource (service.name), as in the lab, and all export to `spans`.
    """
    access = {"access_key": Secret(key)} if key else {}
    urls: dict[str, str] = {}
    with contextlib.ExitStack() as stack:
        for role in (PROMPT_REVIEWER, CODE_CRITIC):
            if role in down:
                urls[role] = f"http://127.0.0.1:{closed_port()}"
                continue
            qdrant = QdrantClient(":memory:")
            stack.callback(qdrant.close)
            app = create_app(
                make_settings(role, **access),
                telemetry=service_telemetry(role, spans),
                provider=SimulatedProvider(role, latency_s=0.02, error_rate=0.0),
                qdrant=qdrant,
            )
            listener = listening_socket()
            stack.enter_context(serving(app, listener))
            urls[role] = f"http://127.0.0.1:{listener.getsockname()[1]}"
        workflow = create_workflow_app(
            make_settings(LEARNING_CYCLE, reviewer_urls=urls, **access),
            telemetry=service_telemetry(LEARNING_CYCLE, spans),
            provider=SimulatedProvider(LEARNING_CYCLE, latency_s=0.02, error_rate=0.0),
        )
        listener = listening_socket()
        stack.enter_context(serving(workflow, listener))
        yield f"http://127.0.0.1:{listener.getsockname()[1]}"


def service_telemetry(service: str, spans: InMemorySpanExporter) -> Telemetry:
    return Telemetry(Resource.create({"service.name": service}), span_exporter=spans, synchronous=True)


def service_of(span: ReadableSpan) -> str:
    return str(span.resource.attributes["service.name"])


def tree(spans: list[ReadableSpan]) -> set[tuple[str, str, str]]:
    """(service, span name, parent as `service: name`) for every span but the HTTP plumbing."""
    by_id = {span.context.span_id: span for span in spans}
    rows = set()
    for span in spans:
        parent = by_id.get(span.parent.span_id) if span.parent else None
        rows.add((service_of(span), span.name, f"{service_of(parent)}: {parent.name}" if parent else "-"))
    return rows


def test_one_trace_spans_the_three_services_with_a_span_per_step() -> None:
    spans = InMemorySpanExporter()
    with lab(spans) as url:
        answer = httpx.post(f"{url}/cycle", json={"task": TASK, "code": CODE}, timeout=30)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["complete"] and body["assignment"].count(TASK) == 1
    assert body["code_review"]["agent"] == CODE_CRITIC and "> return eval(data)" in body["code_review"]["review"]
    assert body["prompt_review"]["agent"] == PROMPT_REVIEWER
    assert [s["name"] for s in body["steps"]] == list(sc.WORKFLOW_STEPS)
    finished = list(spans.get_finished_spans())
    assert {f"{span.context.trace_id:032x}" for span in finished} == {body["trace_id"]}
    assert {
        ("learning-cycle", "POST /cycle", "-"),
        ("learning-cycle", "step generate_assignment", "learning-cycle: POST /cycle"),
        ("learning-cycle", "chat simulated-small", "learning-cycle: step generate_assignment"),
        ("learning-cycle", "step review_prompt", "learning-cycle: POST /cycle"),
        ("learning-cycle", "POST /review", "learning-cycle: step review_prompt"),
        ("prompt-reviewer", "POST /review", "learning-cycle: POST /review"),
        ("prompt-reviewer", "retrieval review-guidelines", "prompt-reviewer: POST /review"),
        ("learning-cycle", "step review_code", "learning-cycle: POST /cycle"),
        ("learning-cycle", "POST /review", "learning-cycle: step review_code"),
        ("code-critic", "POST /review", "learning-cycle: POST /review"),
        ("code-critic", "chat simulated-small", "code-critic: POST /review"),
        ("learning-cycle", "step compose_report", "learning-cycle: POST /cycle"),
    } <= tree(finished)
    calls = [
        s
        for s in finished
        if service_of(s) == LEARNING_CYCLE and s.kind == SpanKind.CLIENT and s.name == "POST /review"
    ]
    assert sorted(str((s.attributes or {})[sc.PEER_SERVICE]) for s in calls) == [CODE_CRITIC, PROMPT_REVIEWER]
    leaves = {
        (service_of(s), str((s.attributes or {}).get(sc.PEER_SERVICE))) for s in finished if s.kind == SpanKind.CLIENT
    }
    # Qdrant and the LLM send no spans: Tempo's service graph draws them as virtual nodes by peer.service.
    assert {(CODE_CRITIC, "qdrant"), (CODE_CRITIC, "simulated"), (LEARNING_CYCLE, "simulated")} <= leaves
    step = {s.name: s for s in finished if s.name.startswith("step ")}
    # The code review does not wait for the assignment: it starts before the assignment is written.
    assert step["step review_code"].start_time < step["step generate_assignment"].end_time  # type: ignore[operator]
    assert step["step review_prompt"].start_time >= step["step generate_assignment"].end_time  # type: ignore[operator]


def test_a_reviewer_down_fails_its_step_and_the_rest_still_report(captured: Captured) -> None:
    settings = make_settings(
        LEARNING_CYCLE,
        reviewer_urls={
            PROMPT_REVIEWER: f"http://127.0.0.1:{closed_port()}",
            CODE_CRITIC: f"http://127.0.0.1:{closed_port()}",
        },
    )
    app = create_workflow_app(
        settings,
        telemetry=captured.telemetry,
        provider=SimulatedProvider(LEARNING_CYCLE, latency_s=0.0, error_rate=0.0),
    )
    with TestClient(app) as client:
        answer = client.post("/cycle", json={"task": TASK, "code": CODE})
    assert answer.status_code == 200
    body = answer.json()
    assert not body["complete"] and body["assignment"] and body["code_review"] is None
    assert {s["name"]: (s["status"], s["error_type"]) for s in body["steps"]} == {
        sc.STEP_GENERATE_ASSIGNMENT: ("ok", None),
        sc.STEP_REVIEW_PROMPT: ("failed", "ConnectError"),
        sc.STEP_REVIEW_CODE: ("failed", "ConnectError"),
        sc.STEP_COMPOSE_REPORT: ("ok", None),
    }
    assert "Code: not reviewed." in body["report"]
    points = [dict(p.attributes or {}) for p in captured.metric(sc.AGENT_WORKFLOW_STEP_DURATION).data.data_points]
    assert {(p[sc.AGENT_WORKFLOW_STEP], p.get(sc.ERROR_TYPE)) for p in points} == {
        (sc.STEP_GENERATE_ASSIGNMENT, None),
        (sc.STEP_REVIEW_PROMPT, "ConnectError"),
        (sc.STEP_REVIEW_CODE, "ConnectError"),
        (sc.STEP_COMPOSE_REPORT, None),
    }
    (run,) = captured.metric(sc.AGENT_WORKFLOW_DURATION).data.data_points
    assert dict(run.attributes or {}) == {sc.AGENT_WORKFLOW_NAME: LEARNING_CYCLE, sc.ERROR_TYPE: "ConnectError"}


class FailingProvider:
    system = "failing"
    server_address: str | None = None
    server_port: int | None = None

    async def chat(self, request: ChatRequest) -> ChatResult:
        raise ProviderError("down", error_type="overloaded_error", status_code=529)

    async def aclose(self) -> None:
        return None


def test_nothing_back_at_all_is_a_502_that_still_says_why() -> None:
    settings = make_settings(
        LEARNING_CYCLE,
        reviewer_urls={
            PROMPT_REVIEWER: f"http://127.0.0.1:{closed_port()}",
            CODE_CRITIC: f"http://127.0.0.1:{closed_port()}",
        },
    )
    with TestClient(create_workflow_app(settings, provider=FailingProvider())) as client:
        answer = client.post("/cycle", json={"task": TASK, "code": CODE})
    assert answer.status_code == 502
    assert {s["name"]: s["status"] for s in answer.json()["steps"]}[sc.STEP_REVIEW_PROMPT] == "skipped"


def test_the_workflow_asks_for_its_key_and_hands_it_on_to_the_reviewers() -> None:
    spans = InMemorySpanExporter()
    with lab(spans, key=KEY) as url:
        refused = httpx.post(f"{url}/cycle", json={"task": TASK, "code": CODE}, timeout=30)
        answer = httpx.post(
            f"{url}/cycle", json={"task": TASK, "code": CODE}, headers={"authorization": f"Bearer {KEY}"}, timeout=30
        )
    assert refused.status_code == 401
    assert answer.status_code == 200 and answer.json()["complete"], answer.text


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ({"task": TASK}, 422),
        ({"task": " ", "code": CODE}, 422),
        ({"task": TASK, "code": CODE, "extra": 1}, 422),
        ({"task": TASK, "code": "x" * 9000}, 413),
    ],
)
def test_bad_bodies_are_refused_before_any_step(body: dict[str, object], status: int) -> None:
    settings = make_settings(LEARNING_CYCLE, reviewer_urls={PROMPT_REVIEWER: "http://a:1", CODE_CRITIC: "http://b:1"})
    with TestClient(create_workflow_app(settings, provider=FailingProvider())) as client:
        assert client.post("/cycle", json=body).status_code == status
        assert client.post("/cycle", content=b"task", headers={"content-type": "text/plain"}).status_code == 415


def test_the_workflow_needs_both_reviewers_urls() -> None:
    with pytest.raises(ConfigError) as raised:
        Settings.from_env({"AGENT_ROLE": LEARNING_CYCLE, "CODE_CRITIC_URL": "code-critic:8082"})
    assert "PROMPT_REVIEWER_URL is required for AGENT_ROLE=learning-cycle" in str(raised.value)
    assert "CODE_CRITIC_URL is required for AGENT_ROLE=learning-cycle" in str(raised.value)
    settings = Settings.from_env(
        {"AGENT_ROLE": LEARNING_CYCLE, "PROMPT_REVIEWER_URL": "http://p:8081/", "CODE_CRITIC_URL": "http://c:8082"}
    )
    assert settings.reviewer_urls == {PROMPT_REVIEWER: "http://p:8081", CODE_CRITIC: "http://c:8082"}
