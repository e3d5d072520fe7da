"""Has the deployed stack drifted from the code? One issue says what, and is closed once it no longer has.

Run by .github/workflows/drift.yml in a checkout of the default branch, with the Pulumi CLI on PATH reaching
the stack's backend (PULUMI_BACKEND_URL, PULUMI_CONFIG_PASSPHRASE), AWS credentials of the read-only preview
role, and gh with GH_TOKEN (issues: write) and GH_REPO:

1. `pulumi stack export`: a state without an EKS cluster (quickstopped, or never deployed) has nothing to
   drift from. Say so and stop.
2. `pulumi preview --refresh --expect-no-changes --json`: read every resource back from AWS and compare the
   program with what is there. The refresh is part of the preview: nothing is written to the state.
3. Drift (a resource `pulumi up` would create, update, replace or delete): open the issue labelled `drift`
   listing them, or update the open one. No drift: close the open one.

Exit status 0 when the check was made, whatever it found (the issue is the signal); 1 when it could not be.
Environment: STACK (dev), DRIFT_LABEL (drift), and GitHub's GITHUB_STEP_SUMMARY, GITHUB_SERVER_URL,
GITHUB_REPOSITORY, GITHUB_RUN_ID and GITHUB_SHA for the summary and the issue's links.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

CLUSTER_TYPE = "aws:eks/cluster:Cluster"
MARKER = "<!-- llm-infra-lab:drift -->"
PREVIEW = ("--refresh", "--expect-no-changes", "--json", "--non-interactive")
"""Read the resources back from the cloud and compare the program with them; no change is expected."""
NOT_DRIFT = frozenset(
    {
        "same",
        "read",  # a data source read again
        "refresh",  # every resource is read back; a difference that matters shows as the step after it
        # The halves of a replacement; the replacement itself is the step `replace`.
        "create-replacement",
        "delete-replaced",
        "read-replacement",
        "discard",
        "discard-replaced",
        "remove-pending-replace",
    }
)


@dataclass(frozen=True)
class Drift:
    """A step the preview proposes: what `pulumi up` would do to make AWS match the code again."""

    op: str
    type: str
    name: str
    properties: tuple[str, ...]


def run(*command: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, capture_output=True, text=True, check=False, timeout=3600)


def checked(*command: str) -> str:
    done = run(*command)
    if done.returncode != 0:
        raise CheckError(f"{' '.join(command[:3])} failed ({done.returncode}): {tail(done.stderr)}")
    return done.stdout


class CheckError(Exception):
    """The check could not be made."""


def tail(text: str, lines: int = 20) -> str:
    return "\n".join(text.strip().splitlines()[-lines:])


def deployed_cluster(state: Mapping[str, Any]) -> bool:
    resources = (state.get("deployment") or {}).get("resources") or []
    return any(r.get("type") == CLUSTER_TYPE and not r.get("delete") for r in resources)


def drifted(digest: Mapping[str, Any]) -> list[Drift]:
    drifts = []
    for step in digest.get("steps") or []:
        if step.get("op") in NOT_DRIFT:
            continue
        # urn:pulumi:<stack>::<project>::<parent type>$<type>::<name>
        _, _, qualified_type, name = step["urn"].split("::", 3)
        properties = sorted(step.get("detailedDiff") or {}) or sorted(
            {*(step.get("diffReasons") or []), *(step.get("replaceReasons") or [])}
        )
        drifts.append(Drift(step["op"], qualified_type.rsplit("$", 1)[-1], name, tuple(properties)))
    return drifts


def table(drifts: Sequence[Drift]) -> list[str]:
    rows = ["| `pulumi up` would | resource | type | properties that differ |", "|---|---|---|---|"]
    for drift in drifts:
        properties = ", ".join(f"`{p}`" for p in drift.properties[:12]) + (", …" if len(drift.properties) > 12 else "")
        name = drift.name.replace("|", "\\|")
        rows.append(f"| {drift.op} | `{name}` | `{drift.type}` | {properties} |")
    return rows


def issue_body(stack: str, drifts: Sequence[Drift], run_url: str, commit: str, when: str) -> str:
    count = f"changes to {len(drifts)} resource{'s' if len(drifts) != 1 else ''}" if drifts else "changes"
    return "\n".join(
        [
            MARKER,
            f"The deployed `{stack}` stack no longer matches the code at `{commit[:7]}`: a refresh-only preview"
            f" (`pulumi preview --refresh`) proposes {count}. Checked {when} by [this run]({run_url}).",
            "",
            *(table(drifts) if drifts else ["The preview lists no step; its log says what it would change."]),
            "",
            "Either someone changed these outside Pulumi (the console, the CLI), or `main` holds changes not"
            " deployed yet (the deploy workflow waits for approval). A change made outside Pulumi that should stay"
            f" belongs in the code (`Pulumi.{stack}.yaml` or the program); otherwise the next `pulumi up` of"
            f" `{stack}` puts the resources back as the code says.",
            "",
            "The daily drift check updates this issue and closes it once the stack matches the code again.",
        ]
    )


def find_issue(label: str) -> int | None:
    issues = json.loads(checked("gh", "issue", "list", "--label", label, "--state", "open", "--json", "number"))
    return min((issue["number"] for issue in issues), default=None)


def report_drift(stack: str, label: str, body: str) -> str:
    number = find_issue(label)
    with tempfile.NamedTemporaryFile("w", suffix=".md", delete=False) as file:
        file.write(body)
    try:
        if number is not None:
            checked("gh", "issue", "edit", str(number), "--body-file", file.name)
            return f"updated issue #{number}"
        description = "A deployed stack differs from the code (drift.yml)"
        checked("gh", "label", "create", label, "--color", "D93F0B", "--description", description, "--force")
        title = f"Drift: the {stack} stack differs from the code"
        url = checked("gh", "issue", "create", "--title", title, "--label", label, "--body-file", file.name)
        return f"opened {url.strip()}"
    finally:
        os.unlink(file.name)


def summarize(text: str) -> None:
    print(text)
    if path := os.environ.get("GITHUB_STEP_SUMMARY"):
        with open(path, "a") as summary:
            summary.write(text + "\n")


def check(stack: str, label: str) -> str:
    state = json.loads(checked("pulumi", "stack", "export", "--stack", stack))
    if not deployed_cluster(state):
        print(f"::notice title=No drift check::the {stack} stack has no deployed cluster (quickstopped?)")
        return f"`{stack}` has no deployed cluster (after a quickstop, or never deployed): nothing to check."

    preview = run("pulumi", "preview", "--stack", stack, *PREVIEW)
    try:
        digest = json.loads(preview.stdout)
    except json.JSONDecodeError:
        raise CheckError(f"the preview failed ({preview.returncode}): {tail(preview.stderr)}") from None
    drifts = drifted(digest)
    expected_none = "no changes were expected" in preview.stderr
    if preview.returncode != 0 and not drifts and not expected_none:
        errors = [d["message"] for d in digest.get("diagnostics") or [] if d.get("severity") == "error"]
        raise CheckError(f"the preview failed ({preview.returncode}): {tail(chr(10).join(errors) or preview.stderr)}")

    if not drifts and not expected_none:
        number = find_issue(label)
        if number is not None:
            checked("gh", "issue", "close", str(number), "--comment", f"`{stack}` matches the code again ({url()}).")
            return f"`{stack}` matches the code. Closed #{number}."
        return f"`{stack}` matches the code."

    when = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    body = issue_body(stack, drifts, url(), os.environ.get("GITHUB_SHA", "HEAD"), when)
    done = report_drift(stack, label, body)
    print(f"::warning title=Drift::the {stack} stack differs from the code: {done}")
    return "\n".join([f"`{stack}` differs from the code: {done}.", "", *table(drifts)])


def url() -> str:
    server = os.environ.get("GITHUB_SERVER_URL", "https://github.com")
    return f"{server}/{os.environ.get('GITHUB_REPOSITORY', '')}/actions/runs/{os.environ.get('GITHUB_RUN_ID', '')}"


def main() -> int:
    stack, label = os.environ.get("STACK", "dev"), os.environ.get("DRIFT_LABEL", "drift")
    try:
        summarize(f"### Drift of `{stack}`\n\n{check(stack, label)}")
    except CheckError as error:
        print(f"::error title=Drift check failed::{str(error).splitlines()[0]}")
        summarize(f"### Drift of `{stack}`\n\nThe check could not be made:\n\n```\n{error}\n```")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
