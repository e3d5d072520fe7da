"""Helpers the agent's tests share: settings, in-memory telemetry capture, app clients."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, replace
from typing import Any

import uvicorn
from fastapi import FastAPI
from opentelemetry.sdk._logs import ReadableLogRecord
from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter
from opentelemetry.sdk.metrics.export import InMemoryMetricReader, Metric
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from qdrant_client import QdrantClient

from agent.app import create_app
from agent.config import Settings
from agent.providers import ChatRequest, ChatResult, LLMProvider, SimulatedProvider
from agent.roles import user_message
from agent.serving import server_config
from agent.telemetry import Telemetry

with warnings.catch_warnings():
    # Starlette 1.10 asks for httpx2 behind its TestClient; httpx, which the agent ships, still works.
    warnings.filterwarnings("ignore", message="Using `httpx` with `starlette.testclient`")
    from fastapi.testclient import TestClient


CODE = "def load(data):\n    return eval(data)\n"
PROMPT = "Write something nice about our product in JSON format."


def make_settings(role: str = "prompt-reviewer", **overrides: Any) -> Settings:
    """Settings as the container would have them, minus the simulated latency (tests stay fast)."""
    return replace(Settings(role=role, simulated_latency_s=0.0), **overrides)


@dataclass
class Captured:
    """A Telemetry whose spans, metrics and logs stay in memory for assertions."""

    telemetry: Telemetry
    spans: InMemorySpanExporter
    metrics: InMemoryMetricReader
    logs: InMemoryLogRecordExporter

    def finished_spans(self) -> list[ReadableSpan]:
        return list(self.spans.get_finished_spans())

    def span(self, name: str) -> ReadableSpan:
        matching = [s for s in self.finished_spans() if s.name == name]
        assert len(matching) == 1, f"expected one span {name!r}, got {[s.name for s in self.finished_spans()]}"
        return matching[0]

    def metric(self, name: str) -> Metric:
        data = self.metrics.get_metrics_data()
        found = [
            metric
            for resource_metrics in (data.resource_metrics if data else [])
            for scope_metrics in resource_metrics.scope_metrics
            for metric in scope_metrics.metrics
            if metric.name == name
        ]
        assert len(found) == 1, f"expected one metric {name!r}, found {len(found)}"
        return found[0]

    def log_records(self) -> list[ReadableLogRecord]:
        return list(self.logs.get_finished_logs())


class RecordingProvider:
    """Answers with a fixed review and keeps every request it got."""

    system = "recording"
    server_address: str | None = None
    server_port: int | None = None

    def __init__(self, review: str = "Verdict: looks good.") -> None:
        self.review = review
        self.requests: list[ChatRequest] = []

    async def chat(self, request: ChatRequest) -> ChatResult:
        self.requests.append(request)
        return ChatResult(text=self.review, model=request.model, input_tokens=10, output_tokens=5)

    async def aclose(self) -> None:
        return None


def counters(captured: Captured, name: str) -> dict[tuple[tuple[str, object], ...], float]:
    """A counter's values by their sorted attribute pairs."""
    return {
        tuple(sorted((point.attributes or {}).items())): point.value  # type: ignore[union-attr]
        for point in captured.metric(name).data.data_points
    }


def closed_port() -> int:
    """A loopback port nothing listens on: connecting to it is refused at once."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def unreachable_qdrant() -> QdrantClient:
    return QdrantClient(url=f"http://127.0.0.1:{closed_port()}", timeout=1, check_compatibility=False)


def client_for(
    settings: Settings,
    captured: Captured,
    *,
    qdrant: QdrantClient | None = None,
    provider: LLMProvider | None = None,
    local_provider: LLMProvider | None = None,
) -> TestClient:
    """A TestClient over the app; use it as a context manager so startup (seeding) runs."""
    return TestClient(
        create_app(
            settings, telemetry=captured.telemetry, provider=provider, qdrant=qdrant, local_provider=local_provider
        )
    )


def passing_text(role: str, base: str) -> str:
    """A text the simulated provider answers (about 5% of texts fail by design)."""
    provider = SimulatedProvider(role)
    for n in range(100):
        text = f"{base}\n# variant {n}"
        if not provider.fails("simulated-small", user_message(role, text)):
            return text
    raise AssertionError("no passing text found")


def failing_text(role: str) -> str:
    provider = SimulatedProvider(role)
    for n in range(10_000):
        text = f"please review sample {n}"
        if provider.fails("simulated-small", user_message(role, text)):
            return text
    raise AssertionError("no failing text found")


@contextlib.contextmanager
def serving(app: FastAPI, listener: socket.socket) -> Iterator[None]:
    """Serve `app` on an already listening socket in a thread, and stop it afterwards."""
    server = uvicorn.Server(server_config(app, port=listener.getsockname()[1], host="127.0.0.1"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [listener]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started and thread.is_alive() and time.monotonic() < deadline:
        time.sleep(0.01)
    assert server.started, "uvicorn did not start"
    try:
        yield
    finally:
        server.should_exit = True
        thread.join(10)


def listening_socket() -> socket.socket:
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    return listener
