"""Whole-program properties: speed under mocks, and lint over the repository."""

from __future__ import annotations

import importlib
import subprocess
import sys
import time

import pytest

from stacks.catalog import PHASES
from tests.harness import REPO, run_stack

BUILT = list(PHASES)


@pytest.mark.parametrize("phase", BUILT, ids=lambda p: p.name)
def test_each_built_phase_evaluates_in_about_a_second(phase):
    """The program's own work: its provider SDKs imported first (pulumi_aws takes seconds once per process),
    and CPU time, which the other test worker and checkov on a two-core machine do not inflate."""
    importlib.import_module(phase.module)
    started = time.process_time()
    run = run_stack(phase.stacks[0], {"phase": phase.name})
    elapsed = time.process_time() - started
    assert run.resources
    assert elapsed < 2.5, f"{phase.name} took {elapsed:.2f}s under mocks"


def test_code_is_linted_and_formatted():
    ruff = [sys.executable, "-m", "ruff"]
    for args in (["check", "."], ["format", "--check", "."]):
        result = subprocess.run([*ruff, *args], cwd=REPO, capture_output=True, text=True, check=False)
        assert result.returncode == 0, result.stdout + result.stderr
