"""The scripts the workflows run against GitHub and the deployed stack, with stand-ins for `gh` and `pulumi`.

Each stand-in is first on PATH, records its arguments (and any --body-file's text) as a line of JSON, and answers
from the environment: the comments or open issues gh would list, the state and the preview pulumi would print.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.harness import REPO

SCRIPTS = REPO / ".github" / "scripts"
STAND_IN = """#!{python}
import json, os, sys
args = sys.argv[1:]
record = {{"tool": os.path.basename(sys.argv[0]), "args": args}}
if "--body-file" in args:
    record["body"] = open(args[args.index("--body-file") + 1]).read()
with open(os.environ["CALLS"], "a") as calls:
    calls.write(json.dumps(record) + "\\n")
answer = {{
    ("gh", "api"): "FAKE_COMMENTS",
    ("gh", "issue", "list"): "FAKE_OPEN_ISSUES",
    ("gh", "issue", "create"): "FAKE_NEW_ISSUE",
    ("pulumi", "stack", "export"): "FAKE_STATE",
    ("pulumi", "preview"): "FAKE_PREVIEW",
}}
for words, variable in answer.items():
    if (record["tool"], *args[: len(words) - 1]) == words and "--method" not in args:
        sys.stdout.write(os.environ.get(variable, ""))
if record["tool"] == "pulumi" and args[:1] == ["preview"]:
    sys.stderr.write(os.environ.get("FAKE_PREVIEW_STDERR", ""))
    sys.exit(int(os.environ.get("FAKE_PREVIEW_STATUS", "0")))
"""


def run_with_stand_ins(tmp_path: Path, command: list[str], **env: str) -> tuple[subprocess.CompletedProcess, list]:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    for tool in ("gh", "pulumi"):
        (bin_dir / tool).write_text(STAND_IN.format(python=sys.executable))
        (bin_dir / tool).chmod(0o755)
    calls = tmp_path / "calls.jsonl"
    calls.write_text("")
    done = subprocess.run(
        command,
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
        env={
            **{k: v for k, v in os.environ.items() if not k.startswith(("GITHUB_", "GH_"))},
            "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
            "CALLS": str(calls),
            "GH_REPO": "lab/llm-infra-lab",
            **env,
        },
    )
    return done, [json.loads(line) for line in calls.read_text().splitlines()]


# --- upsert-pr-comment -------------------------------------------------------------------------------------------

MARKER = "<!-- llm-infra-lab:cost -->"
BODY = f"{MARKER}\n### Cost of this change\n\n| a | b |\n"


def comment(id_: int, login: str, body: str) -> dict[str, Any]:
    return {"id": id_, "user": {"login": login}, "body": body}


def upsert(tmp_path, comments: list[list[dict]], body: str = BODY):
    pages = "".join(json.dumps(page) for page in comments)  # gh api --paginate prints one array a page
    return run_with_stand_ins(
        tmp_path,
        ["bash", str(SCRIPTS / "upsert-pr-comment")],
        PR_NUMBER="42",
        BODY=body,
        FAKE_COMMENTS=pages,
    )


def test_the_cost_comment_is_edited_in_place_once_posted(tmp_path):
    pages = [
        [comment(1, "alice", "Looks good"), comment(2, "github-actions[bot]", "#### :tropical_drink: preview")],
        [comment(3, "github-actions[bot]", f"{MARKER}\nan older report"), comment(4, "bob", "thanks")],
    ]
    done, calls = upsert(tmp_path, pages)
    assert done.returncode == 0, done.stderr
    assert [call["args"] for call in calls] == [
        ["api", "--paginate", "repos/lab/llm-infra-lab/issues/42/comments"],
        ["api", "--method", "PATCH", "repos/lab/llm-infra-lab/issues/comments/3", "-f", f"body={BODY}"],
    ]
    assert "updated comment 3 on #42" in done.stdout


def test_a_first_report_is_posted_and_nobody_elses_comment_is_taken_for_it(tmp_path):
    pages = [[comment(5, "mallory", f"{MARKER}\nquoted"), comment(6, "github-actions[bot]", "#### preview")]]
    done, calls = upsert(tmp_path, pages)
    assert done.returncode == 0, done.stderr
    assert calls[-1]["args"] == [
        "api",
        "--method",
        "POST",
        "repos/lab/llm-infra-lab/issues/42/comments",
        "-f",
        f"body={BODY}",
    ]


def test_a_body_without_its_marker_is_refused(tmp_path):
    done, calls = upsert(tmp_path, [[]], body="### Cost of this change\n")
    assert done.returncode == 1 and calls == []
    assert "first line must be its marker" in done.stdout


# --- drift_check.py ---------------------------------------------------------------------------------------------

URN = "urn:pulumi:dev::llm-infra-lab::{type}::{name}"
CLUSTER = {"type": "aws:eks/cluster:Cluster", "urn": URN.format(type="aws:eks/cluster:Cluster", name="eks-cluster")}
BUCKET = {"type": "aws:s3/bucket:Bucket", "urn": URN.format(type="aws:s3/bucket:Bucket", name="artifacts")}
NODES = "llm-infra-lab:aws:EksCluster$aws:eks/nodeGroup:NodeGroup"
RULE = "llm-infra-lab:aws:EksCluster$aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule"
TEMPLATE = "llm-infra-lab:aws:EksCluster$aws:ec2/launchTemplate:LaunchTemplate"


def step(op: str, type_: str, name: str, **extra) -> dict[str, Any]:
    return {"op": op, "urn": URN.format(type=type_, name=name), **extra}


UNCHANGED = [
    step("refresh", NODES, "eks-nodes"),
    step("same", NODES, "eks-nodes"),
    step("read", "aws:index/getCallerIdentity", "caller"),
]
DRIFTED = [
    *UNCHANGED,
    step("update", NODES, "eks-nodes", diffReasons=["scalingConfig"], detailedDiff={"scalingConfig.desiredSize": {}}),
    step("create", RULE, "eks-api-from-office"),
    step("create-replacement", TEMPLATE, "eks-nodes"),
    step("replace", TEMPLATE, "eks-nodes", replaceReasons=["imageId"], diffReasons=["imageId", "tags"]),
    step("delete-replaced", TEMPLATE, "eks-nodes"),
]
NO_CHANGES_EXPECTED = "error: no changes were expected but changes were proposed\n"


def drift_check(tmp_path, *, resources=(CLUSTER, BUCKET), steps=(), status=0, stderr="", issues=(), preview=None):
    summary = tmp_path / "summary.md"
    done, calls = run_with_stand_ins(
        tmp_path,
        [sys.executable, str(SCRIPTS / "drift_check.py")],
        STACK="dev",
        FAKE_STATE=json.dumps({"version": 3, "deployment": {"resources": list(resources)}}),
        FAKE_PREVIEW=json.dumps({"steps": list(steps), "changeSummary": {}}) if preview is None else preview,
        FAKE_PREVIEW_STATUS=str(status),
        FAKE_PREVIEW_STDERR=stderr,
        FAKE_OPEN_ISSUES=json.dumps([{"number": n} for n in issues]),
        FAKE_NEW_ISSUE="https://github.com/lab/llm-infra-lab/issues/12\n",
        GITHUB_STEP_SUMMARY=str(summary),
        GITHUB_SERVER_URL="https://github.com",
        GITHUB_REPOSITORY="lab/llm-infra-lab",
        GITHUB_RUN_ID="987",
        GITHUB_SHA="0123456789abcdef",
    )
    return done, calls, summary.read_text() if summary.exists() else ""


PREVIEW_CALL = ["preview", "--stack", "dev", "--refresh", "--expect-no-changes", "--json", "--non-interactive"]
EXPORT_CALL = ["stack", "export", "--stack", "dev"]
ISSUE_LIST = ["issue", "list", "--label", "drift", "--state", "open", "--json", "number"]


def test_a_quickstopped_stack_is_reported_and_not_previewed(tmp_path):
    done, calls, summary = drift_check(tmp_path, resources=[BUCKET])
    assert done.returncode == 0, done.stdout + done.stderr
    assert [call["args"] for call in calls] == [EXPORT_CALL]
    assert "::notice title=No drift check::the dev stack has no deployed cluster" in done.stdout
    assert "`dev` has no deployed cluster (after a quickstop, or never deployed): nothing to check." in summary


def test_drift_opens_one_labelled_issue_that_lists_what_drifted(tmp_path):
    done, calls, summary = drift_check(tmp_path, steps=DRIFTED, status=255, stderr=NO_CHANGES_EXPECTED)
    assert done.returncode == 0, done.stdout + done.stderr
    assert [call["args"][:2] for call in calls] == [
        ["stack", "export"],
        ["preview", "--stack"],
        ["issue", "list"],
        ["label", "create"],
        ["issue", "create"],
    ]
    assert calls[1]["args"] == PREVIEW_CALL and calls[2]["args"] == ISSUE_LIST
    assert calls[3]["args"][:3] == ["label", "create", "drift"] and "--force" in calls[3]["args"]
    create = calls[4]
    assert create["args"][:6] == [
        "issue",
        "create",
        "--title",
        "Drift: the dev stack differs from the code",
        "--label",
        "drift",
    ]
    body = create["body"].splitlines()
    assert body[0] == "<!-- llm-infra-lab:drift -->"
    assert body[1].startswith(
        "The deployed `dev` stack no longer matches the code at `0123456`: a refresh-only preview"
        " (`pulumi preview --refresh`) proposes changes to 3 resources. Checked "
    )
    assert body[1].endswith(" by [this run](https://github.com/lab/llm-infra-lab/actions/runs/987).")
    rows = [
        "| `pulumi up` would | resource | type | properties that differ |",
        "|---|---|---|---|",
        "| update | `eks-nodes` | `aws:eks/nodeGroup:NodeGroup` | `scalingConfig.desiredSize` |",
        "| create | `eks-api-from-office` | `aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule` |  |",
        "| replace | `eks-nodes` | `aws:ec2/launchTemplate:LaunchTemplate` | `imageId`, `tags` |",
    ]
    assert body[3:8] == rows
    assert "::warning title=Drift::the dev stack differs from the code: opened " in done.stdout
    assert "\n".join(rows) in summary


def test_drift_that_lasts_updates_the_open_issue(tmp_path):
    done, calls, _ = drift_check(tmp_path, steps=DRIFTED, status=255, stderr=NO_CHANGES_EXPECTED, issues=[7])
    assert done.returncode == 0, done.stdout + done.stderr
    (edit,) = [call for call in calls if call["args"][:2] == ["issue", "edit"]]
    assert edit["args"][:3] == ["issue", "edit", "7"] and "| update | `eks-nodes` |" in edit["body"]
    assert not [call for call in calls if call["args"][:2] in (["issue", "create"], ["label", "create"])]


def test_a_stack_that_matches_again_closes_the_issue(tmp_path):
    done, calls, summary = drift_check(tmp_path, steps=UNCHANGED, issues=[7])
    assert done.returncode == 0, done.stdout + done.stderr
    assert calls[-1]["args"] == [
        "issue",
        "close",
        "7",
        "--comment",
        "`dev` matches the code again (https://github.com/lab/llm-infra-lab/actions/runs/987).",
    ]
    assert "`dev` matches the code. Closed #7." in summary


def test_no_drift_and_no_issue_touches_nothing(tmp_path):
    done, calls, summary = drift_check(tmp_path, steps=UNCHANGED)
    assert done.returncode == 0, done.stdout + done.stderr
    assert [call["args"] for call in calls] == [EXPORT_CALL, PREVIEW_CALL, ISSUE_LIST]
    assert "`dev` matches the code." in summary


@pytest.mark.parametrize(
    ("preview", "stderr", "says"),
    [
        (
            json.dumps({"steps": [], "diagnostics": [{"severity": "error", "message": "ConfigError: nodeMaxSize"}]}),
            "error: an unhandled error occurred\n",
            "ConfigError: nodeMaxSize",
        ),
        ("", "error: failed to decrypt: incorrect passphrase\n", "incorrect passphrase"),
    ],
)
def test_a_preview_that_fails_fails_the_check_and_leaves_the_issue_alone(tmp_path, preview, stderr, says):
    done, calls, summary = drift_check(tmp_path, preview=preview, status=255, stderr=stderr, issues=[7])
    assert done.returncode == 1
    assert [call["tool"] for call in calls] == ["pulumi", "pulumi"], "no issue opened, edited or closed"
    assert "::error title=Drift check failed::the preview failed (255)" in done.stdout
    assert says in summary
