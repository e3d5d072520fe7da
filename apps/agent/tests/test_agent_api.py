"""The HTTP contract: /healthz, /review for both roles, validation, failures, degraded retrieval."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from opentelemetry.trace import StatusCode
from qdrant_client import QdrantClient

from agent.app import create_app
from agent.config import Secret
from agent.pricing import price_for
from agent.providers import ChatRequest, ChatResult, SimulatedProvider
from agent_test_support import (
    CODE,
    PROMPT,
    Captured,
    client_for,
    failing_text,
    make_settings,
    passing_text,
    unreachable_qdrant,
)


class ExplodingProvider:
    """A provider that fails the test if anything calls the LLM."""

    system = "exploding"
    server_address: str | None = None
    server_port: int | None = None

    async def chat(self, request: ChatRequest) -> ChatResult:
        raise AssertionError("the LLM must not be called")

    async def aclose(self) -> None:
        return None


def test_healthz_is_cheap_and_describes_the_agent(captured: Captured, memory_qdrant: QdrantClient) -> None:
    with client_for(make_settings("code-critic"), captured, qdrant=memory_qdrant, provider=ExplodingProvider()) as c:
        response = c.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {
        "status": "ok",
        "agent": "code-critic",
        "provider": "exploding",
        "model": "simulated-large",
        "cheap_model": "simulated-small",
        "routing": "on",
        "retrieval": "ready",
        "cache": "ready",
        "version": "0.1.0",
    }
    assert not [s for s in captured.finished_spans() if "healthz" in s.name], "health checks are not traced"


@pytest.mark.parametrize(("role", "base", "prefix"), [("prompt-reviewer", PROMPT, "pr-"), ("code-critic", CODE, "cc-")])
def test_review_answers_for_each_role(
    captured: Captured, memory_qdrant: QdrantClient, role: str, base: str, prefix: str
) -> None:
    text = passing_text(role, base)
    with client_for(make_settings(role), captured, qdrant=memory_qdrant) as client:
        response = client.post("/review", json={"text": text})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["agent"] == role
    assert body["provider"] == "simulated"
    assert body["model"] == "simulated-small"
    assert body["retrieval"] == "hit"
    assert len(body["guideline_ids"]) == 3
    assert all(g.startswith(prefix) for g in body["guideline_ids"])
    assert body["review"].startswith("Verdict: needs work")
    assert f"simulated review by {role}" in body["review"]
    assert body["input_tokens"] > 0 and body["output_tokens"] > 0
    price = price_for("simulated-small")
    assert price is not None
    assert body["cost_usd"] == pytest.approx(price.cost(body["input_tokens"], body["output_tokens"]))
    assert len(body["trace_id"]) == 32


@pytest.mark.parametrize("semantic_cache", [False, True])
def test_the_same_text_gets_the_same_review(
    captured: Captured, memory_qdrant: QdrantClient, semantic_cache: bool
) -> None:
    text = passing_text("code-critic", CODE)
    settings = make_settings("code-critic", semantic_cache=semantic_cache)
    with client_for(settings, captured, qdrant=memory_qdrant) as client:
        first, second = (client.post("/review", json={"text": text}).json() for _ in range(2))
        other = client.post("/review", json={"text": passing_text("code-critic", "x = 1")}).json()
    fields = ("review", "model", "guideline_ids")
    assert {f: first[f] for f in fields} == {f: second[f] for f in fields}
    assert first["trace_id"] != second["trace_id"]
    assert other["review"] != first["review"]
    if semantic_cache:
        assert (first["cache"], second["cache"], other["cache"]) == ("miss", "hit", "miss")
        assert (second["input_tokens"], second["output_tokens"], second["cost_usd"]) == (0, 0, 0.0)
        assert second["cost_avoided_usd"] == pytest.approx(first["cost_usd"])
    else:
        assert (first["cache"], second["cache"]) == ("disabled", "disabled")
        assert (first["input_tokens"], first["cost_usd"]) == (second["input_tokens"], second["cost_usd"])


def test_the_code_critic_finds_what_the_guidelines_describe(captured: Captured, memory_qdrant: QdrantClient) -> None:
    text = passing_text("code-critic", CODE)
    with client_for(make_settings("code-critic"), captured, qdrant=memory_qdrant) as client:
        body = client.post("/review", json={"text": text}).json()
    assert body["guideline_ids"][0] == "cc-001"
    assert "eval/exec" in body["review"]
    assert "cc-001" in body["review"]


@pytest.mark.parametrize(
    ("payload", "status"),
    [
        ({"text": ""}, 422),
        ({"text": "   \n\t "}, 422),
        ({}, 422),
        ({"text": 42}, 422),
        ({"text": "ok", "extra": 1}, 422),
        ({"text": "x" * 101}, 413),
    ],
)
def test_invalid_input_is_refused(captured: Captured, payload: dict[str, object], status: int) -> None:
    with client_for(make_settings(max_text_chars=100), captured, provider=ExplodingProvider()) as client:
        response = client.post("/review", json=payload)
    assert response.status_code == status, response.text


def test_bodies_that_are_not_json_or_too_large_are_refused(captured: Captured) -> None:
    settings = make_settings(max_text_chars=100)
    with client_for(settings, captured, provider=ExplodingProvider()) as client:
        assert (
            client.post("/review", content=b"{not json", headers={"content-type": "application/json"}).status_code
            == 422
        )
        big = b'{"text": "' + b"x" * settings.max_body_bytes + b'"}'
        response = client.post("/review", content=big, headers={"content-type": "application/json"})
    assert response.status_code == 413
    assert "larger than" in response.json()["detail"]


def test_a_failing_llm_call_answers_502_with_its_error_type(captured: Captured, memory_qdrant: QdrantClient) -> None:
    with client_for(make_settings("prompt-reviewer"), captured, qdrant=memory_qdrant) as client:
        response = client.post("/review", json={"text": failing_text("prompt-reviewer")})
    assert response.status_code == 502
    body = response.json()
    assert body["error_type"] == "overloaded_error"
    assert body["detail"] == "LLM provider simulated failed"
    assert len(body["trace_id"]) == 32


def test_simulated_failures_are_about_five_percent() -> None:
    provider = SimulatedProvider("code-critic")
    failures = sum(provider.fails("simulated-small", f"text {n}") for n in range(4000))
    assert 0.035 < failures / 4000 < 0.065


def test_review_still_works_when_qdrant_is_down(captured: Captured) -> None:
    text = passing_text("code-critic", CODE)
    with client_for(make_settings("code-critic"), captured, qdrant=unreachable_qdrant()) as client:
        health = client.get("/healthz").json()
        response = client.post("/review", json={"text": text})
    assert health["retrieval"] == "unavailable"
    assert response.status_code == 200
    body = response.json()
    assert body["retrieval"] == "error"
    assert body["guideline_ids"] == []
    assert "Guidelines considered" not in body["review"]


def test_without_qdrant_url_retrieval_is_disabled(captured: Captured) -> None:
    with client_for(make_settings("prompt-reviewer"), captured) as client:
        health = client.get("/healthz").json()
        body = client.post("/review", json={"text": passing_text("prompt-reviewer", PROMPT)}).json()
    assert health["retrieval"] == "disabled"
    assert (body["retrieval"], body["guideline_ids"]) == ("disabled", [])
    assert not [s for s in captured.finished_spans() if s.name.startswith("retrieval")]


MALFORMED_BODIES = {
    "invalid UTF-8": b'{"text": "caf\xe9 \xff"}',
    "UTF-16 with BOM": '{"text": "hello"}'.encode("utf-16"),
    "UTF-16 without BOM": '{"text": "hello"}'.encode("utf-16-le"),
    "NaN": b'{"text": NaN}',
    "Infinity": b'{"text": Infinity}',
    "-Infinity": b'{"text": -Infinity}',
    "1e999": b'{"text": 1e999}',
    "NaN in an unknown field": b'{"text": "ok", "x": NaN}',
}


@pytest.mark.parametrize("body", MALFORMED_BODIES.values(), ids=MALFORMED_BODIES.keys())
def test_malformed_bodies_answer_422_without_echoing_them(captured: Captured, body: bytes) -> None:
    with client_for(make_settings(), captured, provider=ExplodingProvider()) as client:
        response = client.post("/review", content=body, headers={"content-type": "application/json"})
    assert response.status_code == 422, response.text
    errors = response.json()["detail"]
    assert errors and all(set(error) <= {"type", "loc", "msg"} for error in errors), "no input echoed back"
    assert captured.span("POST /review").status.status_code != StatusCode.ERROR
    assert not [r for r in captured.log_records() if r.log_record.severity_text == "ERROR"]


@pytest.mark.parametrize(
    ("content_type", "status"),
    [
        ("text/plain", 415),
        ("application/x-www-form-urlencoded", 415),
        ("multipart/form-data; boundary=x", 415),
        ("application/json; charset=utf-8", 200),
        ("Application/JSON", 200),
        ("application/vnd.review+json", 200),
        (None, 200),
    ],
)
def test_only_json_bodies_are_accepted(captured: Captured, content_type: str | None, status: int) -> None:
    headers = {"content-type": content_type} if content_type else {}
    with client_for(make_settings(), captured) as client:
        body = json.dumps({"text": passing_text("prompt-reviewer", PROMPT)}).encode()
        response = client.post("/review", content=body, headers=headers)
    assert response.status_code == status, response.text


def test_head_healthz_answers_like_get(captured: Captured) -> None:
    with client_for(make_settings(), captured, provider=ExplodingProvider()) as client:
        response = client.head("/healthz")
    assert response.status_code == 200
    assert response.content == b""


def test_a_client_that_disconnects_mid_body_is_not_an_error(captured: Captured) -> None:
    """The ASGI server reports the disconnect while the body is read: 499, logged at INFO."""
    app = create_app(make_settings(), telemetry=captured.telemetry, provider=ExplodingProvider())
    messages = iter(
        [{"type": "http.request", "body": b'{"text": "hel', "more_body": True}, {"type": "http.disconnect"}]
    )
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return next(messages)

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/review",
        "raw_path": b"/review",
        "query_string": b"",
        "root_path": "",
        "headers": [(b"host", b"agent"), (b"content-type", b"application/json")],
        "client": ("127.0.0.1", 5000),
        "server": ("127.0.0.1", 8080),
    }
    asyncio.run(app(scope, receive, send))
    assert sent[0]["status"] == 499
    assert captured.span("POST /review").status.status_code != StatusCode.ERROR
    records = [r.log_record for r in captured.log_records()]
    assert not [r for r in records if r.severity_text == "ERROR"]
    assert any(str(r.body).startswith("client disconnected") and r.severity_text == "INFO" for r in records)


@pytest.mark.parametrize(
    "authorization",
    [None, "Bearer wrong-key-of-sufficient-size", "Basic c2VjcmV0LWFnZW50LWtleS0wMTIzNDU=", "secret-agent-key-012345"],
)
def test_an_agent_with_a_key_refuses_reviews_without_it(captured: Captured, authorization: str | None) -> None:
    settings = make_settings(access_key=Secret("secret-agent-key-012345"))
    headers = {"authorization": authorization} if authorization else {}
    with client_for(settings, captured, provider=ExplodingProvider()) as c:
        response = c.post("/review", json={"text": PROMPT}, headers=headers)
        assert c.get("/healthz").status_code == 200, "probes need no key"
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"
    assert "secret-agent-key" not in response.text


def test_an_agent_with_a_key_answers_reviews_that_carry_it(captured: Captured) -> None:
    settings = make_settings(access_key=Secret("secret-agent-key-012345"))
    with client_for(settings, captured) as c:
        response = c.post(
            "/review",
            json={"text": passing_text("prompt-reviewer", PROMPT)},
            headers={"authorization": "bearer secret-agent-key-012345"},
        )
    assert response.status_code == 200, response.text
