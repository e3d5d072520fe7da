"""`python -m agent.traffic`: a steady, bounded stream of reviews to the agents, until stopped.

Requests go round-robin to AGENT_URLS at TRAFFIC_RATE per second in total, with at most
TRAFFIC_MAX_IN_FLIGHT outstanding (a tick is skipped rather than queued when the agents are slow),
so dashboards fill within a minute and a slow agent is never buried. Each agent gets texts of its
kind (its role comes from its /healthz) from `agent.workload`: known topics with a Zipf
popularity, repeated or paraphrased, and TRAFFIC_NEW_FRACTION of new texts, so a semantic cache's
hit rate means something; learning-cycle gets exercises (a task and code) on /cycle. The
generator is traced, so Tempo's service graph shows traffic-generator -> agent edges. It serves
its own GET /healthz on PORT, so the image's HEALTHCHECK works for this command too.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import random
import sys
import time
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import asdict, dataclass, field

import httpx
from fastapi import FastAPI
from opentelemetry.trace import SpanKind, Status, StatusCode, Tracer

from agent.config import ACCESS_KEY_VARIABLE, ConfigError, Secret, agent_request_headers
from agent.roles import LEARNING_CYCLE
from agent.serving import serve
from agent.telemetry import Telemetry
from agent.workload import Workload

logger = logging.getLogger(__name__)

SERVICE_NAME = "traffic-generator"


@dataclass(frozen=True)
class TrafficConfig:
    urls: tuple[str, ...]
    rate: float = 1.0
    max_in_flight: int = 4
    timeout_s: float = 30.0
    max_requests: int = 0
    """0 runs until stopped."""
    port: int = 8080
    new_fraction: float = 0.25
    """Share of requests with a text no agent has seen; the rest repeat or paraphrase known topics."""
    zipf_s: float = 1.1
    """Skew of the topics' popularity: the topic of rank r is asked in proportion to 1/r^s."""
    access_key: Secret | None = None
    """The agents' key (AGENT_API_KEY), sent as a bearer token, where they have one."""

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> TrafficConfig:
        problems: list[str] = []
        urls = tuple(u.strip().rstrip("/") for u in environ.get("AGENT_URLS", "").split(",") if u.strip())
        if not urls:
            problems.append("AGENT_URLS is required: comma-separated agent base URLs, e.g. http://prompt-reviewer:8080")
        elif bad := [u for u in urls if not u.startswith(("http://", "https://"))]:
            problems.append(f"AGENT_URLS entries must start with http:// or https://, got {', '.join(bad)}")

        def number(name: str, default: float, low: float, high: float) -> float:
            raw = environ.get(name, "").strip()
            if not raw:
                return default
            try:
                value = float(raw)
            except ValueError:
                problems.append(f"{name} must be a number, got {raw!r}")
                return default
            if not low <= value <= high:
                problems.append(f"{name} must be between {low:g} and {high:g}, got {raw!r}")
                return default
            return value

        config = cls(
            urls=urls,
            rate=number("TRAFFIC_RATE", 1.0, 0.01, 50.0),
            max_in_flight=int(number("TRAFFIC_MAX_IN_FLIGHT", 4, 1, 100)),
            timeout_s=number("TRAFFIC_TIMEOUT_SECONDS", 30.0, 1.0, 600.0),
            max_requests=int(number("TRAFFIC_MAX_REQUESTS", 0, 0, 10_000_000)),
            port=int(number("PORT", 8080, 1, 65535)),
            new_fraction=number("TRAFFIC_NEW_FRACTION", 0.25, 0.0, 1.0),
            zipf_s=number("TRAFFIC_ZIPF_S", 1.1, 0.0, 3.0),
            access_key=Secret(key) if (key := environ.get(ACCESS_KEY_VARIABLE, "").strip()) else None,
        )
        if problems:
            raise ConfigError("invalid traffic generator configuration:\n  - " + "\n  - ".join(problems))
        return config


@dataclass
class TrafficStats:
    sent: int = 0
    ok: int = 0
    client_errors: int = 0
    server_errors: int = 0
    failed: int = 0
    """No HTTP answer at all: connection refused, timeout."""
    skipped: int = 0
    """Ticks dropped because max_in_flight requests were still outstanding."""
    by_status: dict[str, int] = field(default_factory=dict)


class TrafficGenerator:
    def __init__(
        self,
        config: TrafficConfig,
        client: httpx.AsyncClient,
        tracer: Tracer,
        *,
        seed: int | None = None,
    ) -> None:
        self.config = config
        self.client = client
        self.tracer = tracer
        self.stats = TrafficStats()
        self._random = random.Random(seed)
        self.workload = Workload(self._random, zipf_s=config.zipf_s, new_fraction=config.new_fraction)
        self._roles: dict[str, str] = {}
        self._in_flight: set[asyncio.Task[None]] = set()

    async def run(self, stop: asyncio.Event | None = None) -> TrafficStats:
        """Send until `stop` is set or max_requests ticks have passed; then wait for what is in flight."""
        stop = stop or asyncio.Event()
        interval = 1.0 / self.config.rate
        next_at = time.monotonic()
        tick = 0
        while not stop.is_set() and (not self.config.max_requests or tick < self.config.max_requests):
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=max(0.0, next_at - time.monotonic()))
            if stop.is_set():
                break
            next_at += interval
            url = self.config.urls[tick % len(self.config.urls)]
            tick += 1
            if len(self._in_flight) >= self.config.max_in_flight:
                self.stats.skipped += 1
                continue
            task = asyncio.create_task(self._send(url))
            self._in_flight.add(task)
            task.add_done_callback(self._in_flight.discard)
        if self._in_flight:
            await asyncio.gather(*self._in_flight, return_exceptions=True)
        return self.stats

    async def _role(self, url: str) -> str | None:
        """The agent's role from its /healthz; remembered once known, asked again until then."""
        if url not in self._roles:
            try:
                response = await self.client.get(f"{url}/healthz", timeout=min(5.0, self.config.timeout_s))
                self._roles[url] = str(response.json()["agent"])
            except (httpx.HTTPError, ValueError, KeyError, TypeError):
                return None
        return self._roles[url]

    def text_for(self, role: str | None) -> str:
        """A sample of the agent's kind from the workload: a known topic in some phrasing, or a new text."""
        return self.workload.sample(role).text

    def request_for(self, role: str | None) -> tuple[str, dict[str, str]]:
        """The path and JSON body for the agent: an exercise for learning-cycle, else a text to review."""
        if role == LEARNING_CYCLE:
            exercise = self.workload.exercise()
            return "/cycle", {"task": exercise.task, "code": exercise.code.text}
        return "/review", {"text": self.text_for(role)}

    async def _send(self, url: str) -> None:
        role = await self._role(url)
        path, body = self.request_for(role)
        self.stats.sent += 1
        with self.tracer.start_as_current_span(
            f"POST {path}",
            kind=SpanKind.CLIENT,
            attributes={"http.request.method": "POST", "url.full": f"{url}{path}", "agent.name": role or "unknown"},
        ) as span:
            try:
                response = await self.client.post(
                    f"{url}{path}",
                    json=body,
                    headers=agent_request_headers(self.config.access_key),
                    timeout=self.config.timeout_s,
                )
            except httpx.HTTPError as exc:
                self.stats.failed += 1
                span.set_attribute("error.type", type(exc).__name__)
                span.set_status(Status(StatusCode.ERROR, type(exc).__name__))
                logger.warning("request to %s failed: %s", url, type(exc).__name__)
                return
            status = response.status_code
            span.set_attribute("http.response.status_code", status)
            self.stats.by_status[str(status)] = self.stats.by_status.get(str(status), 0) + 1
            if status < 400:
                self.stats.ok += 1
            elif status < 500:
                self.stats.client_errors += 1
            else:
                self.stats.server_errors += 1
                span.set_attribute("error.type", str(status))
                span.set_status(Status(StatusCode.ERROR))


def create_traffic_app(
    config: TrafficConfig,
    telemetry: Telemetry,
    summary_interval_s: float = 30.0,
    on_finished: Callable[[], None] | None = None,
) -> FastAPI:
    """The generator as an ASGI app: it runs while the app does, and /healthz reports its counts.

    `on_finished` is called once TRAFFIC_MAX_REQUESTS have been sent (not when the app is stopped
    first): `python -m agent.traffic` passes the server's stop, so the process exits then.
    """
    generator: TrafficGenerator | None = None

    async def run_until_done(gen: TrafficGenerator, stop: asyncio.Event) -> TrafficStats:
        stats = await gen.run(stop)
        if not stop.is_set():
            logger.info("sent the %d requests of TRAFFIC_MAX_REQUESTS: stopping", config.max_requests)
            if on_finished is not None:
                on_finished()
        return stats

    async def summarize(gen: TrafficGenerator) -> None:
        while True:
            await asyncio.sleep(summary_interval_s)
            logger.info("traffic so far: %s", asdict(gen.stats))

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        nonlocal generator
        stop = asyncio.Event()
        async with httpx.AsyncClient() as client:
            generator = TrafficGenerator(config, client, telemetry.tracer("llm-infra-lab.traffic"))
            logger.info("sending %.2f requests/s to %s", config.rate, ", ".join(config.urls))
            runner = asyncio.create_task(run_until_done(generator, stop))
            reporter = asyncio.create_task(summarize(generator))
            yield
            stop.set()
            reporter.cancel()
            stats = await runner
            logger.info("traffic generator stopped: %s", asdict(stats))

    app = FastAPI(title="LLM agent traffic generator", lifespan=lifespan)

    @app.get("/healthz")
    async def healthz() -> dict[str, object]:
        return {
            "status": "ok",
            "urls": list(config.urls),
            "rate": config.rate,
            **asdict(generator.stats if generator else TrafficStats()),
        }

    return app


def main() -> int:
    try:
        config = TrafficConfig.from_env(os.environ)
    except ConfigError as exc:
        print(f"traffic: {exc}", file=sys.stderr)
        return 2
    log_level = os.environ.get("LOG_LEVEL", "INFO").upper()
    return serve(
        SERVICE_NAME,
        log_level,
        config.port,
        lambda telemetry, stop: create_traffic_app(config, telemetry, on_finished=stop),
    )


if __name__ == "__main__":
    sys.exit(main())
