"""Retries of the real providers: which failures, how long to wait, one deadline, telemetry.

Waits go through an injected sleep (recorded, not slept) except where the deadline itself is
tested, which takes well under a second.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest
from opentelemetry.trace import StatusCode

from agent.config import Secret, Settings
from agent.providers import (
    AnthropicProvider,
    ChatRequest,
    OpenAIProvider,
    ProviderError,
    RetryPolicy,
    make_provider,
    retry_after_seconds,
)
from agent_test_support import Captured, client_for

REQUEST = ChatRequest(model="claude-haiku-5-5", system="s", user="<prompt>\nhi\n</prompt>", max_tokens=64)
ANTHROPIC_OK = {
    "id": "msg_1",
    "model": "claude-haiku-5-5",
    "content": [{"type": "text", "text": "Verdict: fine."}],
    "stop_reason": "end_turn",
    "usage": {"input_tokens": 10, "output_tokens": 5},
}
OVERLOADED = {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}
RATE_LIMITED = {"type": "error", "error": {"type": "rate_limit_error", "message": "slow down"}}
SERVER_ERROR = {"type": "error", "error": {"type": "api_error", "message": "Internal server error"}}


def answers(*responses: httpx.Response | Exception) -> tuple[httpx.MockTransport, list[httpx.Request]]:
    """A transport answering each request with the next response (or raising the next exception)."""
    seen: list[httpx.Request] = []
    queue = list(responses)

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        answer = queue.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    return httpx.MockTransport(handler), seen


def provider(
    transport: httpx.AsyncBaseTransport,
    *,
    waits: list[float] | None = None,
    timeout_s: float = 30.0,
    retry: RetryPolicy | None = None,
    cls: type[AnthropicProvider] | type[OpenAIProvider] = AnthropicProvider,
) -> AnthropicProvider | OpenAIProvider:
    async def record(seconds: float) -> None:
        if waits is not None:
            waits.append(seconds)

    return cls(
        Secret("sk-test-key-000000"),
        base_url="https://api.anthropic.com",
        timeout_s=timeout_s,
        retry=retry or RetryPolicy(max_retries=3),
        transport=transport,
        sleep=record,
        rand=lambda: 0.0,
    )


def test_429_waits_the_retry_after_then_succeeds() -> None:
    transport, seen = answers(
        httpx.Response(429, json=RATE_LIMITED, headers={"retry-after": "2"}), httpx.Response(200, json=ANTHROPIC_OK)
    )
    waits: list[float] = []
    result = asyncio.run(provider(transport, waits=waits).chat(REQUEST))
    assert result.text == "Verdict: fine."
    assert result.retries == ("rate_limit_error",)
    assert waits == [2.0] and len(seen) == 2


def test_5xx_and_529_back_off_exponentially() -> None:
    transport, seen = answers(
        httpx.Response(500, json=SERVER_ERROR),
        httpx.Response(529, json=OVERLOADED),
        httpx.Response(503, text="<html>unavailable</html>"),
        httpx.Response(200, json=ANTHROPIC_OK),
    )
    waits: list[float] = []
    result = asyncio.run(provider(transport, waits=waits).chat(REQUEST))
    assert result.retries == ("api_error", "overloaded_error", "503")
    assert waits == [0.5, 1.0, 2.0] and len(seen) == 4


def test_jitter_takes_up_to_a_quarter_off_and_the_backoff_is_capped() -> None:
    policy = RetryPolicy(base_delay_s=0.5, max_delay_s=8.0)
    assert policy.backoff(0, 0.0) == 0.5
    assert policy.backoff(0, 0.999) == pytest.approx(0.375, abs=0.001)
    assert policy.backoff(10, 0.0) == 8.0


def test_retries_stop_after_max_retries_and_report_them() -> None:
    transport, seen = answers(*(httpx.Response(529, json=OVERLOADED) for _ in range(3)))
    with pytest.raises(ProviderError) as raised:
        asyncio.run(provider(transport, retry=RetryPolicy(max_retries=2)).chat(REQUEST))
    assert raised.value.error_type == "overloaded_error"
    assert raised.value.retries == ("overloaded_error", "overloaded_error")
    assert len(seen) == 3


@pytest.mark.parametrize(
    ("response", "attempts"),
    [
        (httpx.Response(400, json={"error": {"type": "invalid_request_error", "message": "bad"}}), 1),
        (httpx.Response(401, json={"error": {"type": "authentication_error", "message": "key"}}), 1),
        (httpx.Response(500, json=SERVER_ERROR, headers={"x-should-retry": "false"}), 1),
        (httpx.Response(400, json={"error": {"type": "x", "message": "y"}}, headers={"x-should-retry": "true"}), 2),
    ],
)
def test_what_is_not_retried(response: httpx.Response, attempts: int) -> None:
    transport, seen = answers(response, response)
    with pytest.raises(ProviderError):
        asyncio.run(provider(transport, retry=RetryPolicy(max_retries=1)).chat(REQUEST))
    assert len(seen) == attempts


def test_connection_errors_are_retried() -> None:
    transport, _ = answers(httpx.ConnectError("refused"), httpx.Response(200, json=ANTHROPIC_OK))
    assert asyncio.run(provider(transport).chat(REQUEST)).retries == ("ConnectError",)


def test_a_retry_after_beyond_the_deadline_fails_at_once() -> None:
    transport, seen = answers(httpx.Response(429, json=RATE_LIMITED, headers={"retry-after": "20"}))
    waits: list[float] = []
    with pytest.raises(ProviderError) as raised:
        asyncio.run(provider(transport, waits=waits, timeout_s=5).chat(REQUEST))
    assert raised.value.error_type == "rate_limit_error" and raised.value.retries == ()
    assert waits == [] and len(seen) == 1


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"retry-after-ms": "1500", "retry-after": "9"}, 1.5),
        ({"retry-after": "3"}, 3.0),
        ({"retry-after": "Wed, 21 Oct 2015 07:28:10 GMT"}, 10.0),
        ({"retry-after": "soon"}, None),
        ({"retry-after": "-1"}, None),
        ({}, None),
    ],
)
def test_retry_after_forms(headers: dict[str, str], expected: float | None) -> None:
    now = 1445412480.0  # 07:28:00 that day
    assert retry_after_seconds(httpx.Headers(headers), now=now) == expected


def test_the_deadline_bounds_the_whole_call_not_each_read() -> None:
    """A response trickling in (each read fast, the whole slow) and a hanging retry: 0.4 s in total."""

    async def trickle() -> AsyncIterator[bytes]:
        for _ in range(50):
            await asyncio.sleep(0.05)
            yield b" "

    async def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=trickle())

    slow = provider(
        httpx.MockTransport(handler),
        timeout_s=0.4,
        retry=RetryPolicy(max_retries=5, base_delay_s=0.01, attempt_timeout_s=0.25),
    )
    slow._sleep = asyncio.sleep  # type: ignore[attr-defined]  # noqa: SLF001 (real waits here)
    start = time.perf_counter()
    with pytest.raises(ProviderError) as raised:
        asyncio.run(slow.chat(REQUEST))
    elapsed = time.perf_counter() - start
    assert raised.value.error_type == "timeout"
    assert raised.value.retries == ("timeout",), "the second attempt got what was left of the deadline"
    assert 0.35 < elapsed < 0.7


def settings_for(transport_answers: list[httpx.Response]) -> tuple[Settings, Callable[..., Any]]:
    settings = Settings.from_env(
        {"AGENT_ROLE": "prompt-reviewer", "LLM_PROVIDER": "anthropic", "ANTHROPIC_API_KEY": "sk-ant-test-0000"}
    )
    transport, _ = answers(*transport_answers)
    made = make_provider(settings, transport=transport)
    made._sleep = lambda seconds: asyncio.sleep(0)  # type: ignore[attr-defined]  # noqa: SLF001
    return settings, lambda: made


def test_retries_are_counted_and_recorded_on_the_chat_span(captured: Captured) -> None:
    settings, made = settings_for(
        [
            httpx.Response(529, json=OVERLOADED),
            httpx.Response(429, json=RATE_LIMITED),
            httpx.Response(200, json=ANTHROPIC_OK),
        ]
    )
    with client_for(settings, captured, provider=made()) as client:
        assert client.post("/review", json={"text": "Summarize this."}).status_code == 200

    metric = captured.metric("agent.llm.retries")
    assert metric.unit == "{retry}"
    counted = {dict(p.attributes or {})["error.type"]: p.value for p in metric.data.data_points}  # type: ignore[union-attr]
    assert counted == {"overloaded_error": 1, "rate_limit_error": 1}
    point = next(iter(metric.data.data_points))  # type: ignore[union-attr]
    assert dict(point.attributes or {}).keys() == {
        "gen_ai.system",
        "gen_ai.provider.name",
        "gen_ai.request.model",
        "agent.name",
        "error.type",
    }
    (duration,) = captured.metric("gen_ai.client.operation.duration").data.data_points  # type: ignore[union-attr]
    assert duration.count == 1, "one call, retries included"
    assert dict(duration.attributes or {}) == {
        "gen_ai.system": "anthropic",
        "gen_ai.provider.name": "anthropic",
        "gen_ai.operation.name": "chat",
        "gen_ai.request.model": "claude-haiku-5-5",
        "gen_ai.response.model": "claude-haiku-5-5",
        "agent.name": "prompt-reviewer",
        "agent.route": "cheap",
        "server.address": "api.anthropic.com",
        "server.port": 443,
    }
    chat = next(s for s in captured.finished_spans() if s.name.startswith("chat "))
    assert chat.status.status_code == StatusCode.UNSET
    events = [(e.name, dict(e.attributes or {})) for e in chat.events]
    assert [name for name, _ in events] == ["agent.llm.retry", "agent.llm.retry"]
    assert [a["error.type"] for _, a in events] == ["overloaded_error", "rate_limit_error"]
    assert [a["agent.retry.attempt"] for _, a in events] == [1, 2]


def test_exhausted_retries_answer_502_and_still_count(captured: Captured) -> None:
    settings, made = settings_for([httpx.Response(529, json=OVERLOADED) for _ in range(3)])
    with client_for(settings, captured, provider=made()) as client:
        response = client.post("/review", json={"text": "Summarize this."})
    assert response.status_code == 502 and response.json()["error_type"] == "overloaded_error"
    (point,) = captured.metric("agent.llm.retries").data.data_points  # type: ignore[union-attr]
    assert point.value == 2
