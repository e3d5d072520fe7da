"""OpenTelemetry setup: traces, metrics and logs, exported over OTLP gRPC or to what tests pass in.

Providers are built here and handed to the code that needs them instead of being read from the
global API, so a test can build the app with in-memory exporters and read back exactly what it
emitted. `install_globals` is for the real process only.
"""

from __future__ import annotations

import logging
import os
import socket
import sys
from collections.abc import Mapping, Sequence

from opentelemetry import _logs, metrics, trace
from opentelemetry.exporter.otlp.proto.grpc._log_exporter import OTLPLogExporter
from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import OTLPMetricExporter
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
from opentelemetry.instrumentation.logging.handler import LoggingHandler
from opentelemetry.metrics import Counter, Histogram, Meter
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import BatchLogRecordProcessor, LogRecordExporter, SimpleLogRecordProcessor
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import MetricReader, PeriodicExportingMetricReader
from opentelemetry.sdk.resources import OTELResourceDetector, Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor, SpanExporter
from opentelemetry.trace import Tracer

from agent import __version__
from agent import semconv as sc

logger = logging.getLogger(__name__)

# Every 15 s rather than the SDK's 60 s, so a fresh lab shows metrics within a minute.
DEFAULT_METRIC_EXPORT_INTERVAL_MS = 15_000


def build_resource(default_service_name: str, attributes: Mapping[str, str] | None = None) -> Resource:
    """The process's resource: defaults of ours, overridden by OTEL_SERVICE_NAME/OTEL_RESOURCE_ATTRIBUTES.

    service.name defaults to the agent's role, so the two agents are two services (two Prometheus
    `job`s) even if the deployment sets no OTEL_SERVICE_NAME; service.instance.id (Prometheus
    `instance`) defaults to the host name, which in a container is the container id.
    """
    ours = Resource(
        {
            "service.name": default_service_name,
            "service.version": __version__,
            "service.instance.id": socket.gethostname(),
            **(attributes or {}),
        }
    )
    return Resource.create().merge(ours).merge(OTELResourceDetector().detect())


class Telemetry:
    """The three SDK providers of one process, and how their data leaves it."""

    def __init__(
        self,
        resource: Resource,
        *,
        span_exporter: SpanExporter | None = None,
        metric_readers: Sequence[MetricReader] = (),
        log_exporter: LogRecordExporter | None = None,
        synchronous: bool = False,
    ) -> None:
        """`synchronous` exports each span and log record as it ends: for tests, not for production."""
        self.resource = resource
        self.exporting = span_exporter is not None or bool(metric_readers) or log_exporter is not None
        self.tracer_provider = TracerProvider(resource=resource)
        if span_exporter is not None:
            processor = SimpleSpanProcessor(span_exporter) if synchronous else BatchSpanProcessor(span_exporter)
            self.tracer_provider.add_span_processor(processor)
        self.meter_provider = MeterProvider(resource=resource, metric_readers=list(metric_readers))
        self.logger_provider = LoggerProvider(resource=resource)
        if log_exporter is not None:
            log_processor = (
                SimpleLogRecordProcessor(log_exporter) if synchronous else BatchLogRecordProcessor(log_exporter)
            )
            self.logger_provider.add_log_record_processor(log_processor)
        self._handlers: list[tuple[logging.Logger, logging.Handler]] = []

    @classmethod
    def from_env(
        cls,
        default_service_name: str,
        environ: Mapping[str, str] | None = None,
        attributes: Mapping[str, str] | None = None,
    ) -> Telemetry:
        """OTLP gRPC exporters when an OTEL_EXPORTER_OTLP_*ENDPOINT is set; otherwise nothing leaves.

        Endpoints come from `environ` (the per-signal variable first); the exporters read the other
        standard OTEL_EXPORTER_OTLP_* variables (headers, timeout, insecure) themselves. An http://
        endpoint means plaintext gRPC, which is how Alloy listens in the lab.
        """
        environ = os.environ if environ is None else environ
        resource = build_resource(default_service_name, attributes)

        def endpoint(signal: str) -> str | None:
            return environ.get(f"OTEL_EXPORTER_OTLP_{signal}_ENDPOINT") or environ.get("OTEL_EXPORTER_OTLP_ENDPOINT")

        if not any(endpoint(signal) for signal in ("TRACES", "METRICS", "LOGS")):
            logger.info("no OTEL_EXPORTER_OTLP_ENDPOINT set: telemetry stays in the process")
            return cls(resource)

        interval = float(environ.get("OTEL_METRIC_EXPORT_INTERVAL") or DEFAULT_METRIC_EXPORT_INTERVAL_MS)
        return cls(
            resource,
            span_exporter=OTLPSpanExporter(endpoint=endpoint("TRACES")),
            metric_readers=[
                PeriodicExportingMetricReader(
                    OTLPMetricExporter(endpoint=endpoint("METRICS")), export_interval_millis=interval
                )
            ],
            log_exporter=OTLPLogExporter(endpoint=endpoint("LOGS")),
        )

    @property
    def service_name(self) -> str:
        return str(self.resource.attributes.get("service.name", ""))

    def tracer(self, name: str = sc.INSTRUMENTATION_SCOPE) -> Tracer:
        return self.tracer_provider.get_tracer(name, __version__)

    def meter(self, name: str = sc.INSTRUMENTATION_SCOPE) -> Meter:
        return self.meter_provider.get_meter(name, __version__)

    def attach_logging(self, target: logging.Logger | None = None, level: int = logging.NOTSET) -> logging.Handler:
        """Send records of `target` (default: root) to OTLP too, with the current trace and span ids."""
        target = target or logging.getLogger()
        handler = LoggingHandler(level=level, logger_provider=self.logger_provider)
        # The SDK's own warnings (e.g. "exporting failed" while Alloy is down) would be exported
        # by the exporter that is failing; they stay on the console.
        handler.addFilter(lambda record: not record.name.startswith("opentelemetry"))
        target.addHandler(handler)
        self._handlers.append((target, handler))
        return handler

    def install_globals(self) -> None:
        """Make these providers the global ones (once per process), for libraries that use the API."""
        trace.set_tracer_provider(self.tracer_provider)
        metrics.set_meter_provider(self.meter_provider)
        _logs.set_logger_provider(self.logger_provider)

    def shutdown(self) -> None:
        """Flush and stop exporting; detach the logging handlers this object attached."""
        for target, handler in self._handlers:
            target.removeHandler(handler)
        self._handlers.clear()
        self.tracer_provider.shutdown()
        self.meter_provider.shutdown()
        self.logger_provider.shutdown()


def _counter(meter: Meter, name: str, description: str) -> Counter:
    """A counter with the unit semconv.METRICS declares for it."""
    kind, unit, _ = sc.METRICS[name]
    if kind != sc.COUNTER:
        raise TypeError(f"{name} is declared a {kind} in semconv.METRICS")
    return meter.create_counter(name, unit=unit, description=description)


def _histogram(meter: Meter, name: str, description: str, buckets: Sequence[float]) -> Histogram:
    """A histogram with the unit semconv.METRICS declares for it and the given bucket boundaries."""
    kind, unit, _ = sc.METRICS[name]
    if kind != sc.HISTOGRAM:
        raise TypeError(f"{name} is declared a {kind} in semconv.METRICS")
    return meter.create_histogram(name, unit=unit, description=description, explicit_bucket_boundaries_advisory=buckets)


class AgentMetrics:
    """The agent's instruments, with the attribute sets the dashboards group by."""

    def __init__(self, meter: Meter) -> None:
        self.token_usage = _histogram(
            meter, sc.GEN_AI_CLIENT_TOKEN_USAGE, "Number of input and output tokens used.", sc.TOKEN_USAGE_BUCKETS
        )
        self.operation_duration = _histogram(
            meter, sc.GEN_AI_CLIENT_OPERATION_DURATION, "GenAI operation duration.", sc.OPERATION_DURATION_BUCKETS
        )
        self.cost = _counter(
            meter, sc.AGENT_LLM_COST, "Cost of LLM calls in US dollars, from token counts and the price table."
        )
        self.baseline_cost = _counter(
            meter,
            sc.AGENT_LLM_COST_BASELINE,
            "What the same reviews would have cost on the strong model with no semantic cache.",
        )
        self.route_requests = _counter(
            meter, sc.AGENT_ROUTE_REQUESTS, "Reviews by the route the router chose (cheap, strong) and why."
        )
        self.retries = _counter(
            meter,
            sc.AGENT_LLM_RETRIES,
            "LLM call attempts that failed and were retried, by the error type of the failed attempt.",
        )
        self.cache_lookups = _counter(
            meter, sc.AGENT_CACHE_LOOKUPS, "Semantic cache lookups by outcome (hit, miss, error)."
        )
        self.cache_lookup_duration = _histogram(
            meter,
            sc.AGENT_CACHE_LOOKUP_DURATION,
            "Duration of a semantic cache lookup (embedding, Qdrant query, comparison), by outcome.",
            sc.CACHE_LOOKUP_BUCKETS,
        )
        self.cache_tokens_avoided = _counter(
            meter, sc.AGENT_CACHE_TOKENS_AVOIDED, "Tokens of the LLM calls that cache hits made unnecessary."
        )
        self.cache_cost_avoided = _counter(
            meter,
            sc.AGENT_CACHE_COST_AVOIDED,
            "Dollars of the LLM calls that cache hits made unnecessary; cost without the cache = "
            "agent.llm.cost + this.",
        )
        self.guardrail_checks = _counter(
            meter,
            sc.AGENT_GUARDRAIL_CHECKS,
            "Guardrail checks by stage (input, output), check (pii, injection) and outcome.",
        )
        self.guardrail_redactions = _counter(
            meter, sc.AGENT_GUARDRAIL_REDACTIONS, "PII items redacted, by stage and PII type."
        )
        self.grounding_checks = _counter(
            meter, sc.AGENT_GROUNDING_CHECKS, "Reviews checked for grounding, by outcome (grounded, ungrounded)."
        )
        self.grounding_problems = _counter(
            meter, sc.AGENT_GROUNDING_PROBLEMS, "Grounding problems found in reviews, by problem."
        )
        self.workflow_duration = _histogram(
            meter,
            sc.AGENT_WORKFLOW_DURATION,
            "Duration of a whole workflow run; error.type when a step failed.",
            sc.WORKFLOW_DURATION_BUCKETS,
        )
        self.workflow_step_duration = _histogram(
            meter,
            sc.AGENT_WORKFLOW_STEP_DURATION,
            "Duration of one workflow step, by step; error.type when it failed.",
            sc.WORKFLOW_DURATION_BUCKETS,
        )
        self.retrieval_duration = _histogram(
            meter,
            sc.AGENT_RETRIEVAL_DURATION,
            "Duration of guideline retrieval from Qdrant, by outcome.",
            sc.RETRIEVAL_DURATION_BUCKETS,
        )

    @staticmethod
    def _base(
        agent: str, system: str, request_model: str, server_address: str | None, server_port: int | None
    ) -> dict[str, str | int]:
        base: dict[str, str | int] = {
            sc.GEN_AI_SYSTEM: system,
            sc.GEN_AI_PROVIDER_NAME: system,
            sc.GEN_AI_OPERATION_NAME: sc.OPERATION_CHAT,
            sc.GEN_AI_REQUEST_MODEL: request_model,
            sc.AGENT_NAME: agent,
        }
        if server_address:
            base[sc.SERVER_ADDRESS] = server_address
            if server_port:
                base[sc.SERVER_PORT] = server_port
        return base

    def record_chat(
        self,
        *,
        agent: str,
        system: str,
        request_model: str,
        duration_s: float,
        route: str | None = None,
        error_type: str | None = None,
        response_model: str | None = None,
        input_tokens: int | None = None,
        output_tokens: int | None = None,
        cost_usd: float | None = None,
        server_address: str | None = None,
        server_port: int | None = None,
        retries: tuple[str, ...] = (),
    ) -> None:
        """One LLM call: always its duration; tokens and cost only when the call returned usage.

        gen_ai.response.model, server.address and server.port are on both gen_ai histograms when
        known (the conventions recommend them); `retries` counts each retried attempt.
        """
        base = self._base(agent, system, request_model, server_address, server_port)
        if route:
            base[sc.AGENT_ROUTE] = route
        answered = {**base, sc.GEN_AI_RESPONSE_MODEL: response_model} if response_model else dict(base)
        self.operation_duration.record(duration_s, {**base, sc.ERROR_TYPE: error_type} if error_type else answered)
        if input_tokens is not None:
            self.token_usage.record(input_tokens, {**answered, sc.GEN_AI_TOKEN_TYPE: sc.TOKEN_TYPE_INPUT})
        if output_tokens is not None:
            self.token_usage.record(output_tokens, {**answered, sc.GEN_AI_TOKEN_TYPE: sc.TOKEN_TYPE_OUTPUT})
        if cost_usd:
            self.cost.add(cost_usd, self._cost_attributes(agent, system, request_model, route))
        for retried in retries:
            self.retries.add(
                1,
                {
                    sc.GEN_AI_SYSTEM: system,
                    sc.GEN_AI_PROVIDER_NAME: system,
                    sc.GEN_AI_REQUEST_MODEL: request_model,
                    sc.AGENT_NAME: agent,
                    sc.ERROR_TYPE: retried,
                },
            )

    @staticmethod
    def _cost_attributes(agent: str, system: str, model: str, route: str | None) -> dict[str, str]:
        attributes = {
            sc.GEN_AI_SYSTEM: system,
            sc.GEN_AI_PROVIDER_NAME: system,
            sc.GEN_AI_REQUEST_MODEL: model,
            sc.AGENT_NAME: agent,
        }
        if route:
            attributes[sc.AGENT_ROUTE] = route
        return attributes

    def record_baseline_cost(self, *, agent: str, system: str, model: str, route: str, cache: str, cost: float) -> None:
        """`cost`: the strong model's (`model`) price for a review that took `route`, cache outcome `cache`."""
        if cost:
            self.baseline_cost.add(
                cost, {**self._cost_attributes(agent, system, model, route), sc.AGENT_CACHE_OUTCOME: cache}
            )

    def record_cache_lookup(self, *, agent: str, model: str, outcome: str, duration_s: float) -> None:
        self.cache_lookups.add(
            1, {sc.AGENT_NAME: agent, sc.GEN_AI_REQUEST_MODEL: model, sc.AGENT_CACHE_OUTCOME: outcome}
        )
        self.cache_lookup_duration.record(duration_s, {sc.AGENT_NAME: agent, sc.AGENT_CACHE_OUTCOME: outcome})

    def record_cache_hit(
        self,
        *,
        agent: str,
        system: str,
        model: str,
        route: str,
        input_tokens: int,
        output_tokens: int,
        cost_usd: float | None,
    ) -> None:
        """What a hit saved: the tokens and dollars of the call it answered for."""
        tokens = {sc.AGENT_NAME: agent, sc.GEN_AI_REQUEST_MODEL: model}
        self.cache_tokens_avoided.add(input_tokens, {**tokens, sc.GEN_AI_TOKEN_TYPE: sc.TOKEN_TYPE_INPUT})
        self.cache_tokens_avoided.add(output_tokens, {**tokens, sc.GEN_AI_TOKEN_TYPE: sc.TOKEN_TYPE_OUTPUT})
        if cost_usd:
            self.cache_cost_avoided.add(cost_usd, self._cost_attributes(agent, system, model, route))

    def record_route(self, *, agent: str, route: str, reason: str, model: str) -> None:
        self.route_requests.add(
            1,
            {
                sc.AGENT_NAME: agent,
                sc.AGENT_ROUTE: route,
                sc.AGENT_ROUTE_REASON: reason,
                sc.GEN_AI_REQUEST_MODEL: model,
            },
        )

    def record_guardrail(self, *, agent: str, stage: str, check: str, outcome: str) -> None:
        self.guardrail_checks.add(
            1,
            {
                sc.AGENT_NAME: agent,
                sc.AGENT_GUARDRAIL_STAGE: stage,
                sc.AGENT_GUARDRAIL_CHECK: check,
                sc.AGENT_GUARDRAIL_OUTCOME: outcome,
            },
        )

    def record_redactions(self, *, agent: str, stage: str, counts: Mapping[str, int]) -> None:
        for pii_type, count in counts.items():
            self.guardrail_redactions.add(
                count, {sc.AGENT_NAME: agent, sc.AGENT_GUARDRAIL_STAGE: stage, sc.AGENT_GUARDRAIL_PII_TYPE: pii_type}
            )

    def record_grounding(self, *, agent: str, problems: Sequence[str]) -> None:
        outcome = sc.GROUNDING_UNGROUNDED if problems else sc.GROUNDING_GROUNDED
        self.grounding_checks.add(1, {sc.AGENT_NAME: agent, sc.AGENT_GROUNDING_OUTCOME: outcome})
        for problem in problems:
            self.grounding_problems.add(1, {sc.AGENT_NAME: agent, sc.AGENT_GROUNDING_PROBLEM: problem})

    def record_workflow(self, *, workflow: str, duration_s: float, error_type: str | None = None) -> None:
        attributes = {sc.AGENT_WORKFLOW_NAME: workflow}
        if error_type:
            attributes[sc.ERROR_TYPE] = error_type
        self.workflow_duration.record(duration_s, attributes)

    def record_workflow_step(
        self, *, workflow: str, step: str, duration_s: float, error_type: str | None = None
    ) -> None:
        attributes = {sc.AGENT_WORKFLOW_NAME: workflow, sc.AGENT_WORKFLOW_STEP: step}
        if error_type:
            attributes[sc.ERROR_TYPE] = error_type
        self.workflow_step_duration.record(duration_s, attributes)

    def record_retrieval(self, *, agent: str, duration_s: float, outcome: str) -> None:
        self.retrieval_duration.record(duration_s, {sc.AGENT_NAME: agent, sc.AGENT_RETRIEVAL_OUTCOME: outcome})


class TraceContextFormatter(logging.Formatter):
    """Console lines with the current trace and span ids, so `docker logs` lines lead to Tempo.

    Reads the ids at format time instead of storing them on the record: the OTLP handler turns
    record attributes into log attributes, and Loki already gets trace_id from the log record.
    """

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        context = trace.get_current_span().get_span_context()
        if context.is_valid:
            line += f" trace_id={context.trace_id:032x} span_id={context.span_id:016x}"
        return line


def configure_logging(telemetry: Telemetry, level: str = "INFO") -> None:
    """Root logging for a service process: readable lines on stderr, every record also over OTLP."""
    root = logging.getLogger()
    root.setLevel(level)
    console = logging.StreamHandler(sys.stderr)
    console.setFormatter(TraceContextFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root.addHandler(console)
    telemetry.attach_logging(root)
    # One INFO line per HTTP call (Qdrant's client uses httpx) drowns the useful ones.
    for noisy in ("httpx", "httpcore"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
