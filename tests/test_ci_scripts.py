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
