"""Shared fixtures: each stack evaluated once under mocks and shared by the tests reading it."""

from __future__ import annotations

import functools

import pytest

from tests.harness import ProgramRun, run_stack


@functools.cache
def _cached_run(stack: str, overrides: tuple[tuple[str, str], ...]) -> ProgramRun:
    return run_stack(stack, dict(overrides))


def evaluate(stack: str, **overrides: str) -> ProgramRun:
    """A stack's program run under mocks; runs with the same config are evaluated once."""
    return _cached_run(stack, tuple(sorted(overrides.items())))


@pytest.fixture(scope="session")
def observability() -> ProgramRun:
    return evaluate("local", phase="observability")
