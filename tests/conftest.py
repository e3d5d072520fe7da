"""Shared fixtures: each stack evaluated once under mocks and shared by the tests reading it."""

from __future__ import annotations

import functools

import pytest

from stacks.catalog import PHASES
from tests.harness import ProgramRun, run_stack
from tests.k8s_view import checkov_scan, manifests


@functools.cache
def _cached_run(stack: str, overrides: tuple[tuple[str, str], ...]) -> ProgramRun:
    return run_stack(stack, dict(overrides))


def evaluate(stack: str, **overrides: str) -> ProgramRun:
    """A stack's program run under mocks; runs with the same config are evaluated once."""
    return _cached_run(stack, tuple(sorted(overrides.items())))


@pytest.fixture(scope="session")
def observability() -> ProgramRun:
    return evaluate("local", phase="observability")


@pytest.fixture(scope="session")
def checkov_reports() -> dict[str, dict]:
    """checkov's report on each built phase that renders Kubernetes objects, keyed `<stack>:<phase>`: one run."""
    runs = {f"{stack}:{p.name}": evaluate(stack, phase=p.name) for p in PHASES for stack in p.stacks}
    groups = {name: objects for name, run in runs.items() if (objects := manifests(run))}
    return checkov_scan(groups)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The ML pipeline's end-to-end run (tens of seconds in a process of its own) starts first, beside the rest."""
    items.sort(key=lambda item: item.path.name != "test_ml_pipeline.py")
