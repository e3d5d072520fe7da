"""Providers: the request each real API gets, usage read back, errors mapped, keys kept secret.

Real providers are exercised through httpx.MockTransport: nothing leaves the process.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable

import httpx
import pytest

from agent.config import Secret, Settings
from agent.pricing import cost_usd, usage_cost_usd
from agent.providers import (
    AnthropicProvider,
    ChatRequest,
    OpenAIProvider,
    ProviderError,
    RetryPolicy,
    SimulatedProvider,
    estimate_tokens,
    make_provider,
)
from agent_test_support import Captured, client_for, make_settings

KEY = "sk-ant-api03-very-secret-key-0123456789"
REQUEST = ChatRequest(
    model="claude-haiku-5-5", system="You review prompts.", user="<prompt>\nhi\n</prompt>", max_tokens=256
)

ANTHROPIC_OK = {
    "id": "msg_01",
    "type": "message",
    "role": "assistant",
    "model": "claude-haiku-5-5-20261007",
    "content": [{"type": "text", "text": "Verdict: "}, {"type": "text", "text": "fine."}],
    "stop_reason": "end_turn",
    "usage": {"input_tokens": 120, "output_tokens": 45, "cache_read_input_tokens": 5},
}
OPENAI_OK = {
    "id": "chatcmpl-1",
    "object": "chat.completion",
    "model": "gpt-5.6-luna-2026-07-09",
    "choices": [{"index": 0, "message": {"role": "assistant", "content": "Verdict: fine."}, "finish_reason": "stop"}],
    "usage": {"prompt_tokens": 130, "completion_tokens": 60, "total_tokens": 190},
}


def recording(status: int, body: object, seen: list[httpx.Request]) -> httpx.MockTransport:
    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(status, json=body)

    return httpx.MockTransport(handler)


# These tests are about one attempt: what is sent and how answers map; retries have their own tests.
NO_RETRY = RetryPolicy(max_retries=0)


def anthropic(transport: httpx.MockTransport, base_url: str = "https://api.anthropic.com") -> AnthropicProvider:
    return AnthropicProvider(Secret(KEY), base_url=base_url, transport=transport, retry=NO_RETRY)


def openai(transport: httpx.MockTransport) -> OpenAIProvider:
    return OpenAIProvider(Secret(KEY), base_url="https://api.openai.com/v1", transport=transport, retry=NO_RETRY)


def test_anthropic_request_shape_and_usage() -> None:
    seen: list[httpx.Request] = []
    provider = anthropic(recording(200, ANTHROPIC_OK, seen))
    result = asyncio.run(provider.chat(REQUEST))
    request = seen[0]
    assert (request.method, str(request.url)) == ("POST", "https://api.anthropic.com/v1/messages")
    assert request.headers["x-api-key"] == KEY
    assert request.headers["anthropic-version"] == "2023-06-01"
    assert request.headers["content-type"] == "application/json"
    assert "authorization" not in request.headers
    assert json.loads(request.content) == {
        "model": "claude-haiku-5-5",
        "max_tokens": 256,
        "system": "You review prompts.",
        "messages": [{"role": "user", "content": "<prompt>\nhi\n</prompt>"}],
    }
    assert result.text == "Verdict: fine."
    assert result.model == "claude-haiku-5-5-20261007"
    assert (result.input_tokens, result.output_tokens) == (125, 45), "cache reads count as input"
    assert (result.response_id, result.finish_reason) == ("msg_01", "end_turn")
    assert (provider.server_address, provider.server_port) == ("api.anthropic.com", 443)


def test_openai_request_shape_and_usage() -> None:
    seen: list[httpx.Request] = []
    provider = openai(recording(200, OPENAI_OK, seen))
    result = asyncio.run(provider.chat(REQUEST))
    request = seen[0]
    assert (request.method, str(request.url)) == ("POST", "https://api.openai.com/v1/chat/completions")
    assert request.headers["authorization"] == f"Bearer {KEY}"
    assert json.loads(request.content) == {
        "model": "claude-haiku-5-5",
        "messages": [
            {"role": "system", "content": "You review prompts."},
            {"role": "user", "content": "<prompt>\nhi\n</prompt>"},
        ],
        "max_completion_tokens": 256,
    }
    assert result.text == "Verdict: fine."
    assert result.model == "gpt-5.6-luna-2026-07-09"
    assert (result.input_tokens, result.output_tokens) == (130, 60)
    assert result.finish_reason == "stop"


def test_a_custom_base_url_is_used() -> None:
    seen: list[httpx.Request] = []
    provider = anthropic(recording(200, ANTHROPIC_OK, seen), base_url="http://llm-proxy:8000")
    asyncio.run(provider.chat(REQUEST))
    assert str(seen[0].url) == "http://llm-proxy:8000/v1/messages"
    assert (provider.server_address, provider.server_port) == ("llm-proxy", 8000)


@pytest.mark.parametrize(
    ("make", "status", "body", "error_type"),
    [
        (
            anthropic,
            429,
            {"type": "error", "error": {"type": "rate_limit_error", "message": "slow down"}},
            "rate_limit_error",
        ),
        (
            anthropic,
            529,
            {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}},
            "overloaded_error",
        ),
        (
            openai,
            400,
            {"error": {"type": None, "code": "context_length_exceeded", "message": "too long"}},
            "context_length_exceeded",
        ),
        (openai, 503, "<html>bad gateway</html>", "503"),
        (anthropic, 200, {"type": "message", "content": [{"type": "text", "text": "x"}]}, "invalid_response"),
        (openai, 200, {"choices": []}, "invalid_response"),
    ],
)
def test_api_failures_become_provider_errors(
    make: Callable[[httpx.MockTransport], AnthropicProvider | OpenAIProvider],
    status: int,
    body: object,
    error_type: str,
) -> None:
    provider = make(recording(status, body, []))
    with pytest.raises(ProviderError) as raised:
        asyncio.run(provider.chat(REQUEST))
    assert raised.value.error_type == error_type
    if status >= 400:
        assert raised.value.status_code == status


@pytest.mark.parametrize(
    ("exception", "error_type"),
    [(httpx.ReadTimeout("read timed out"), "timeout"), (httpx.ConnectError("refused"), "ConnectError")],
)
def test_transport_failures_become_provider_errors(exception: Exception, error_type: str) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise exception

    with pytest.raises(ProviderError) as raised:
        asyncio.run(openai(httpx.MockTransport(handler)).chat(REQUEST))
    assert raised.value.error_type == error_type


def test_an_error_message_echoing_the_key_is_redacted() -> None:
    body = {
        "error": {"type": "invalid_request_error", "code": "invalid_api_key", "message": f"Incorrect API key: {KEY}"}
    }
    with pytest.raises(ProviderError) as raised:
        asyncio.run(openai(recording(401, body, [])).chat(REQUEST))
    assert KEY not in str(raised.value)
    assert "[redacted]" in str(raised.value)
    assert raised.value.error_type == "invalid_request_error"


def test_make_provider_builds_what_the_settings_name() -> None:
    assert isinstance(make_provider(make_settings()), SimulatedProvider)
    env = {"AGENT_ROLE": "code-critic", "ANTHROPIC_API_KEY": KEY, "OPENAI_API_KEY": KEY}
    assert isinstance(make_provider(Settings.from_env(env | {"LLM_PROVIDER": "anthropic"})), AnthropicProvider)
    openai_provider = make_provider(Settings.from_env(env | {"LLM_PROVIDER": "openai"}))
    assert isinstance(openai_provider, OpenAIProvider)
    assert KEY not in repr(openai_provider)


def test_the_api_key_never_reaches_logs_spans_or_responses(
    captured: Captured, caplog: pytest.LogCaptureFixture
) -> None:
    """A whole review through the app, once answered and once refused, with every logger at DEBUG."""
    answers = iter(
        [
            httpx.Response(200, json=ANTHROPIC_OK),
            httpx.Response(
                401,
                json={
                    "type": "error",
                    "error": {"type": "authentication_error", "message": f"invalid x-api-key {KEY}"},
                },
            ),
        ]
    )
    settings = Settings.from_env(
        {"AGENT_ROLE": "prompt-reviewer", "LLM_PROVIDER": "anthropic", "ANTHROPIC_API_KEY": KEY}
    )
    provider = make_provider(settings, transport=httpx.MockTransport(lambda request: next(answers)))
    caplog.set_level(logging.DEBUG)
    with client_for(settings, captured, provider=provider) as client:
        ok = client.post("/review", json={"text": "Summarize this."})
        refused = client.post("/review", json={"text": "Summarize that."})
    assert (ok.status_code, refused.status_code) == (200, 502)
    assert refused.json()["error_type"] == "authentication_error"
    # 120 uncached input tokens, 5 read from the prompt cache at a tenth of the input price.
    assert ok.json()["cost_usd"] == pytest.approx((120 * 0.10 + 5 * 0.01 + 45 * 0.50) / 1_000_000)

    exported = " ".join(
        f"{record.log_record.body!r} {dict(record.log_record.attributes or {})}" for record in captured.log_records()
    )
    span_text = " ".join(
        f"{span.attributes} {[(e.name, e.attributes) for e in span.events]} {span.status}"
        for span in captured.finished_spans()
    )
    assert "authentication_error" in exported, "the failure was logged"
    for text in (caplog.text, exported, span_text, ok.text, refused.text, repr(settings), repr(provider)):
        assert KEY not in text


def test_simulated_outcomes_are_deterministic_and_free_of_io() -> None:
    delays: list[float] = []

    async def fake_sleep(seconds: float) -> None:
        delays.append(seconds)

    provider = SimulatedProvider("code-critic", latency_s=0.1, error_rate=0.0, sleep=fake_sleep)
    request = ChatRequest("simulated-small", "system", "<code>\nprint(1)\n</code>", 512)
    first, second = asyncio.run(provider.chat(request)), asyncio.run(provider.chat(request))
    assert first == second
    assert delays[0] == delays[1] and 0.1 <= delays[0] <= 0.2
    assert first.input_tokens == estimate_tokens("system") + estimate_tokens(request.user)
    assert first.output_tokens == estimate_tokens(first.text)
    assert "print() in code" in first.text


@pytest.mark.parametrize(("rate", "expected"), [(0.0, 0), (1.0, 200)])
def test_the_simulated_error_rate_is_configurable(rate: float, expected: int) -> None:
    provider = SimulatedProvider("prompt-reviewer", error_rate=rate)
    assert sum(provider.fails("simulated-small", f"text {n}") for n in range(200)) == expected


ANTHROPIC_CACHED = ANTHROPIC_OK | {
    "model": "claude-haiku-5-5",
    "usage": {
        "input_tokens": 100,
        "cache_creation_input_tokens": 1000,
        "cache_read_input_tokens": 4000,
        "cache_creation": {"ephemeral_5m_input_tokens": 600, "ephemeral_1h_input_tokens": 400},
        "output_tokens": 50,
    },
}
OPENAI_CACHED = OPENAI_OK | {
    "model": "gpt-5.6-luna",
    "usage": {
        "prompt_tokens": 5000,
        "completion_tokens": 100,
        "total_tokens": 5100,
        "prompt_tokens_details": {"cached_tokens": 4000},
    },
}


def test_anthropic_cache_reads_and_writes_are_priced_at_their_rates() -> None:
    result = asyncio.run(anthropic(recording(200, ANTHROPIC_CACHED, [])).chat(REQUEST))
    assert result.input_tokens == 5100, "every input token counts once as input"
    assert (result.cache_read_tokens, result.cache_write_tokens, result.cache_write_1h_tokens) == (4000, 600, 400)
    # haiku-5-5: input 0.10, read 0.01, 5-minute write 0.125, 1-hour write 0.20, output 0.50 per Mtok.
    expected = (100 * 0.10 + 4000 * 0.01 + 600 * 0.125 + 400 * 0.20 + 50 * 0.50) / 1e6
    assert usage_cost_usd("claude-haiku-5-5", result.usage) == pytest.approx(expected)
    assert expected < cost_usd("claude-haiku-5-5", 5100, 50) / 2  # type: ignore[operator]


def test_openai_cached_tokens_are_priced_at_the_cached_rate() -> None:
    result = asyncio.run(openai(recording(200, OPENAI_CACHED, [])).chat(REQUEST))
    assert (result.input_tokens, result.cache_read_tokens, result.cache_write_tokens) == (5000, 4000, 0)
    expected = (1000 * 0.20 + 4000 * 0.02 + 100 * 1.20) / 1e6
    assert usage_cost_usd("gpt-5.6-luna", result.usage) == pytest.approx(expected)


def test_without_cache_details_all_input_is_priced_as_input() -> None:
    result = asyncio.run(openai(recording(200, OPENAI_OK, [])).chat(REQUEST))
    assert result.cache_read_tokens == 0
    assert usage_cost_usd("gpt-5.6-luna", result.usage) == pytest.approx(cost_usd("gpt-5.6-luna", 130, 60))


def test_cached_tokens_reach_the_cost_counter_and_the_chat_span(captured: Captured) -> None:
    settings = Settings.from_env(
        {"AGENT_ROLE": "prompt-reviewer", "LLM_PROVIDER": "anthropic", "ANTHROPIC_API_KEY": KEY}
    )
    provider = make_provider(settings, transport=recording(200, ANTHROPIC_CACHED, []))
    with client_for(settings, captured, provider=provider) as client:
        body = client.post("/review", json={"text": "Summarize this."}).json()
    expected = (100 * 0.10 + 4000 * 0.01 + 600 * 0.125 + 400 * 0.20 + 50 * 0.50) / 1e6
    assert body["cost_usd"] == pytest.approx(expected)
    (point,) = captured.metric("agent.llm.cost").data.data_points  # type: ignore[union-attr]
    assert point.value == pytest.approx(expected)
    chat = next(s for s in captured.finished_spans() if s.name.startswith("chat "))
    attributes = dict(chat.attributes or {})
    assert attributes["gen_ai.usage.input_tokens"] == 5100
    assert attributes["gen_ai.usage.cache_read.input_tokens"] == 4000
    assert attributes["gen_ai.usage.cache_creation.input_tokens"] == 1000


def test_a_popular_text_fails_at_the_error_rate_not_always_or_never() -> None:
    """Its first call is fixed by its hash; each repeat draws again."""
    provider = SimulatedProvider("prompt-reviewer", latency_s=0.0, error_rate=0.1)
    failing = next(f"text {n}" for n in range(1000) if provider.fails("simulated-small", f"text {n}"))
    request = ChatRequest("simulated-small", "system", failing, 64)

    async def calls(count: int) -> int:
        failures = 0
        for _ in range(count):
            try:
                await provider.chat(request)
            except ProviderError:
                failures += 1
        return failures

    assert asyncio.run(calls(1)) == 1, "the first call is the deterministic failure"
    assert 0.05 < asyncio.run(calls(400)) / 400 < 0.16
