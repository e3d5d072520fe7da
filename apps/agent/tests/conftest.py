"""Fixtures for the agent's tests, and the import path they need.

The agent is its own project inside the repo: this puts `apps/agent` (for `import agent`) and this
folder (for `import agent_test_support`) on sys.path, so the tests run however pytest is started
(`python -m pytest apps/agent/tests` from the repo root, or `pytest` here) and in any import mode,
without relying on the root pyproject.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

_HERE = Path(__file__).resolve().parent
for _path in (_HERE.parent, _HERE):
    if str(_path) not in sys.path:
        sys.path.insert(0, str(_path))

from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter  # noqa: E402
from opentelemetry.sdk.metrics.export import InMemoryMetricReader  # noqa: E402
from opentelemetry.sdk.resources import Resource  # noqa: E402
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter  # noqa: E402
from qdrant_client import QdrantClient  # noqa: E402

from agent.telemetry import Telemetry  # noqa: E402
from agent_test_support import Captured  # noqa: E402


@pytest.fixture
def captured() -> Iterator[Captured]:
    spans, reader, logs = InMemorySpanExporter(), InMemoryMetricReader(), InMemoryLogRecordExporter()
    telemetry = Telemetry(
        Resource.create({"service.name": "agent-under-test"}),
        span_exporter=spans,
        metric_readers=[reader],
        log_exporter=logs,
        synchronous=True,
    )
    telemetry.attach_logging(logging.getLogger())
    agent_logger = logging.getLogger("agent")
    previous_level = agent_logger.level
    agent_logger.setLevel(logging.DEBUG)
    yield Captured(telemetry, spans, reader, logs)
    agent_logger.setLevel(previous_level)
    telemetry.shutdown()


@pytest.fixture
def memory_qdrant() -> Iterator[QdrantClient]:
    client = QdrantClient(":memory:")
    yield client
    client.close()
