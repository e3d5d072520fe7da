"""The traffic generator: configuration, pacing and bounds, texts per role, trace propagation."""

from __future__ import annotations

import asyncio
import contextvars
import json
import time
from dataclasses import replace

import httpx
import pytest
from opentelemetry.sdk.resources import Resource
from opentelemetry.trace import SpanKind
from qdrant_client import QdrantClient

from agent.app import create_app
from agent.config import ConfigError
from agent.telemetry import Telemetry
from agent.traffic import TrafficConfig, TrafficGenerator, create_traffic_app
from agent.workload import CODE_TOPICS, LEARNING_TASKS, PROMPT_TOPICS
from agent_test_support import Captured, TestClient, closed_port, make_settings


def test_config_from_env() -> None:
    config = TrafficConfig.from_env({"AGENT_URLS": "http://prompt-reviewer:8080/, http://code-critic:8080"})
    assert config.urls == ("http://prompt-reviewer:8080", "http://code-critic:8080")
    assert (config.rate, config.max_in_flight, config.max_requests, config.port) == (1.0, 4, 0, 8080)
    assert (config.new_fraction, config.zipf_s) == (0.25, 1.1)
    mix = TrafficConfig.from_env({"AGENT_URLS": "http://a:1", "TRAFFIC_NEW_FRACTION": "0.5", "TRAFFIC_ZIPF_S": "0.8"})
    assert (mix.new_fraction, mix.zipf_s) == (0.5, 0.8)
    assert TrafficConfig.from_env({"AGENT_URLS": "http://a:1", "TRAFFIC_RATE": "2.5"}).rate == 2.5


@pytest.mark.parametrize(
    ("environ", "expected"),
    [
        ({}, "AGENT_URLS is required"),
        ({"AGENT_URLS": "prompt-reviewer:8080"}, "must start with http://"),
        ({"AGENT_URLS": "http://a:1", "TRAFFIC_RATE": "fast"}, "TRAFFIC_RATE must be a number"),
        ({"AGENT_URLS": "http://a:1", "TRAFFIC_RATE": "0"}, "TRAFFIC_RATE must be between"),
        ({"AGENT_URLS": "http://a:1", "TRAFFIC_NEW_FRACTION": "1.5"}, "TRAFFIC_NEW_FRACTION must be between"),
    ],
)
def test_bad_config_is_reported(environ: dict[str, str], expected: str) -> None:
    with pytest.raises(ConfigError, match=expected):
        TrafficConfig.from_env(environ)


def fake_agents(seen: list[httpx.Request], delay_s: float = 0.0) -> httpx.MockTransport:
    """Two agents whose /healthz names their role, answering every review with 200."""

    async def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/healthz":
            return httpx.Response(200, json={"agent": request.url.host})
        seen.append(request)
        await asyncio.sleep(delay_s)
        return httpx.Response(200, json={"review": "ok"})

    return httpx.MockTransport(handler)


def run(config: TrafficConfig, transport: httpx.AsyncBaseTransport, telemetry: Telemetry) -> TrafficGenerator:
    async def main() -> TrafficGenerator:
        async with httpx.AsyncClient(transport=transport) as client:
            generator = TrafficGenerator(config, client, telemetry.tracer(), seed=1)
            await generator.run()
            return generator

    return asyncio.run(main())


def test_requests_alternate_between_agents_with_texts_of_their_kind(captured: Captured) -> None:
    seen: list[httpx.Request] = []
    config = TrafficConfig(urls=("http://prompt-reviewer", "http://code-critic"), rate=500, max_requests=8)
    generator = run(config, fake_agents(seen), captured.telemetry)
    assert (generator.stats.sent, generator.stats.ok, generator.stats.skipped) == (8, 8, 0)
    by_host: dict[str, list[str]] = {}
    for request in seen:
        by_host.setdefault(request.url.host, []).append(json.loads(request.content)["text"])
        assert request.url.path == "/review"
        assert request.headers["traceparent"].startswith("00-"), "trace context is propagated"
    assert {host: len(texts) for host, texts in by_host.items()} == {"prompt-reviewer": 4, "code-critic": 4}
    prompts = {v for topic in PROMPT_TOPICS for v in topic.variants}
    code = {v for topic in CODE_TOPICS for v in topic.variants}
    assert all(text in prompts or text.startswith(("Write a ", "You are an")) for text in by_host["prompt-reviewer"])
    assert all(text in code or text.startswith("def ") for text in by_host["code-critic"])
    spans = captured.finished_spans()
    assert len(spans) == 8 and all(s.kind == SpanKind.CLIENT and s.name == "POST /review" for s in spans)


def test_the_workflow_gets_exercises_on_its_own_path(captured: Captured) -> None:
    seen: list[httpx.Request] = []
    config = TrafficConfig(urls=("http://code-critic", "http://learning-cycle"), rate=500, max_requests=6)
    generator = run(config, fake_agents(seen), captured.telemetry)
    assert generator.stats.ok == 6
    exercises = [json.loads(r.content) for r in seen if r.url.host == "learning-cycle"]
    assert len(exercises) == 3 and {r.url.path for r in seen if r.url.host == "learning-cycle"} == {"/cycle"}
    assert all(set(body) == {"task", "code"} and body["task"] in LEARNING_TASKS for body in exercises)
    assert {s.name for s in captured.finished_spans()} == {"POST /review", "POST /cycle"}


def test_slow_agents_make_the_generator_skip_instead_of_piling_up(captured: Captured) -> None:
    seen: list[httpx.Request] = []
    config = TrafficConfig(urls=("http://code-critic",), rate=1000, max_in_flight=2, max_requests=10)
    generator = run(config, fake_agents(seen, delay_s=0.3), captured.telemetry)
    assert generator.stats.sent == 2
    assert generator.stats.skipped == 8
    assert len(seen) == 2


def test_the_rate_is_kept(captured: Captured) -> None:
    sent_at: list[float] = []

    async def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/review":
            sent_at.append(asyncio.get_running_loop().time())
        return httpx.Response(200, json={"agent": "code-critic"})

    run(
        TrafficConfig(urls=("http://code-critic",), rate=20, max_requests=5),
        httpx.MockTransport(handler),
        captured.telemetry,
    )
    assert len(sent_at) == 5
    assert 0.18 <= sent_at[-1] - sent_at[0] < 1.0, "five ticks at 20/s are 0.2 s apart end to end"


def test_unreachable_agents_are_counted_not_fatal(captured: Captured) -> None:
    config = TrafficConfig(urls=(f"http://127.0.0.1:{closed_port()}",), rate=100, max_requests=3, timeout_s=2)
    generator = run(config, httpx.AsyncHTTPTransport(), captured.telemetry)
    assert (generator.stats.sent, generator.stats.failed, generator.stats.ok) == (3, 3, 0)


class OtherProcessTransport(httpx.AsyncBaseTransport):
    """Serves an ASGI app in an empty context, as another process would: only headers carry the trace."""

    def __init__(self, app: object) -> None:
        self._inner = httpx.ASGITransport(app=app)  # type: ignore[arg-type]

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        return await asyncio.create_task(self._inner.handle_async_request(request), context=contextvars.Context())


def test_end_to_end_the_agent_joins_the_generators_trace(captured: Captured) -> None:
    """Generator -> real agent app: the agent's server span continues the generator's client span."""
    agent = create_app(make_settings("code-critic"), telemetry=captured.telemetry, qdrant=QdrantClient(":memory:"))
    config = TrafficConfig(urls=("http://code-critic",), rate=100, max_requests=4)
    generator = run(config, OtherProcessTransport(agent), captured.telemetry)
    assert generator.stats.sent == 4 and generator.stats.ok + generator.stats.server_errors == 4
    clients = {
        s.context.span_id: s
        for s in captured.finished_spans()
        if s.kind == SpanKind.CLIENT and s.name == "POST /review"
    }
    servers = [s for s in captured.finished_spans() if s.kind == SpanKind.SERVER]
    assert len(clients) == len(servers) == 4
    for server in servers:
        assert server.parent is not None and server.parent.is_remote and server.parent.span_id in clients
        assert server.context.trace_id == clients[server.parent.span_id].context.trace_id


def test_the_generator_serves_its_own_health_endpoint() -> None:
    telemetry = Telemetry(Resource.create({"service.name": "traffic-generator"}))
    config = TrafficConfig(urls=(f"http://127.0.0.1:{closed_port()}",), rate=0.5)
    with TestClient(create_traffic_app(config, telemetry)) as client:
        body = client.get("/healthz").json()
    assert body["status"] == "ok"
    assert body["urls"] == list(config.urls)
    assert {"sent", "ok", "failed", "skipped"} <= set(body)
    telemetry.shutdown()


def test_the_generator_stops_its_process_after_max_requests() -> None:
    """python -m agent.traffic passes the server's stop as on_finished: called once, when done."""
    telemetry = Telemetry(Resource.create({"service.name": "traffic-generator"}))
    config = TrafficConfig(urls=(f"http://127.0.0.1:{closed_port()}",), rate=100, max_requests=3, timeout_s=2)
    finished: list[float] = []
    with TestClient(create_traffic_app(config, telemetry, on_finished=lambda: finished.append(1.0))) as client:
        deadline = time.monotonic() + 5
        while not finished and time.monotonic() < deadline:
            time.sleep(0.01)
        assert client.get("/healthz").json()["sent"] == 3
    assert finished == [1.0]
    telemetry.shutdown()


def test_a_generator_stopped_early_does_not_call_on_finished() -> None:
    telemetry = Telemetry(Resource.create({"service.name": "traffic-generator"}))
    config = TrafficConfig(urls=(f"http://127.0.0.1:{closed_port()}",), rate=0.5, max_requests=100)
    finished: list[float] = []
    with TestClient(create_traffic_app(config, telemetry, on_finished=lambda: finished.append(1.0))):
        pass
    assert finished == []
    telemetry.shutdown()


def test_the_agents_key_is_sent_when_configured(captured: Captured) -> None:
    config = TrafficConfig.from_env(
        {"AGENT_URLS": "http://prompt-reviewer", "AGENT_API_KEY": "secret-agent-key-012345", "TRAFFIC_RATE": "50"}
    )
    assert "secret-agent-key" not in repr(config)
    seen: list[httpx.Request] = []
    run(replace(config, max_requests=2), fake_agents(seen), captured.telemetry)
    assert [r.headers["authorization"] for r in seen] == ["Bearer secret-agent-key-012345"] * 2
    unkeyed: list[httpx.Request] = []
    run(replace(config, access_key=None, max_requests=1), fake_agents(unkeyed), captured.telemetry)
    assert "authorization" not in unkeyed[0].headers
