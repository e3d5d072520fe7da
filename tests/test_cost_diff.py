"""scripts/cost_diff.py on a throwaway repository: this checkout committed, then changed the ways pull requests do.

Commits, each on the first:

    base    this checkout as it is (dev: phase platform, one node)
    ├─ phase      Pulumi.dev.yaml: phase production
    ├─ nodes      Pulumi.dev.yaml: nodeDesiredSize 2
    ├─ nothing    no change (an empty commit: base's tree)
    └─ no-harness tests/harness.py deleted (a base older than the harness)

Every commit is evaluated once, all together, each by its own harness in a process of its own (three programs
to evaluate: a commit with base's tree reuses base's evaluation); the comparisons then reuse those evaluations.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path

import pytest

from scripts import cost_diff
from tests.harness import REPO

GIT_ENV = {
    "GIT_AUTHOR_NAME": "Lab",
    "GIT_AUTHOR_EMAIL": "lab@example.com",
    "GIT_COMMITTER_NAME": "Lab",
    "GIT_COMMITTER_EMAIL": "lab@example.com",
    "GIT_CONFIG_GLOBAL": os.devnull,
    "GIT_CONFIG_NOSYSTEM": "1",
}


def git(repo: Path, *args: str) -> str:
    done = subprocess.run(
        ["git", "-C", str(repo), *args],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
        env={**os.environ, **GIT_ENV},
    )
    return done.stdout.strip()


def commit_on(repo: Path, parent: str, message: str, change=None) -> str:
    git(repo, "checkout", "-q", "--detach", parent)
    if change is not None:
        change(repo)
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "--allow-empty", "-m", message)
    return git(repo, "rev-parse", "HEAD")


def set_dev(key: str, value: str):
    def change(repo: Path) -> None:
        stack_file = repo / "Pulumi.dev.yaml"
        text = stack_file.read_text()
        line = re.compile(rf"^  llm-infra-lab:{key}: .*$", re.MULTILINE)
        entry = f"  llm-infra-lab:{key}: {value}"
        stack_file.write_text(line.sub(entry, text) if line.search(text) else text.rstrip("\n") + f"\n{entry}\n")

    return change


@pytest.fixture(scope="module")
def history(tmp_path_factory) -> dict[str, str]:
    repo = tmp_path_factory.mktemp("history")
    listed = git(REPO, "ls-files", "-z", "--cached", "--others", "--exclude-standard")
    for name in filter(None, listed.split("\0")):
        source = REPO / name
        if source.is_file():
            (repo / name).parent.mkdir(parents=True, exist_ok=True)
            (repo / name).write_bytes(source.read_bytes())
    git(repo, "init", "-q", "-b", "main")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "base")
    base = git(repo, "rev-parse", "HEAD")
    assert "llm-infra-lab:phase: platform" in (repo / "Pulumi.dev.yaml").read_text()
    commits = {
        "repo": str(repo),
        "base": base,
        "phase": commit_on(repo, base, "production", set_dev("phase", "production")),
        "nodes": commit_on(repo, base, "two nodes", set_dev("nodeDesiredSize", "2")),
        "nothing": commit_on(repo, base, "nothing"),
        "no-harness": commit_on(repo, base, "no harness", lambda r: (r / "tests" / "harness.py").unlink()),
    }
    return commits


@pytest.fixture(scope="module")
def evaluations(history) -> cost_diff.Evaluations:
    commits = [history[name] for name in ("base", "phase", "nodes", "nothing", "no-harness")]
    return cost_diff.evaluate(Path(history["repo"]), commits, ["dev", "local"])


def run(history, evaluations, tmp_path, head: str, *extra: str) -> tuple[str, dict, str]:
    out = {name: tmp_path / name for name in ("cost.md", "cost.json", "output")}
    status = cost_diff.main(
        [
            *("--repo", history["repo"], "--base", history["base"], "--head", history[head]),
            *("--markdown", str(out["cost.md"]), "--json", str(out["cost.json"])),
            *("--github-output", str(out["output"]), *extra),
        ],
        known=evaluations,
    )
    assert status == 0, "the report informs a review, it never fails it"
    return out["cost.md"].read_text(), json.loads(out["cost.json"].read_text()), out["output"].read_text()


def intro(history, head: str) -> str:
    return (
        f"{cost_diff.MARKER}\n"
        "### Cost of this change\n"
        "\n"
        f"`{history['base'][:7]}` → `{history[head][:7]}`: every stack evaluated at both commits under the test"
        " mocks (no cloud), priced by its cost model: AWS list prices as of 2026-01, 730 hours a month; data"
        " transfer, requests and load balancer capacity units not included.\n"
        "\n"
        "| stack | phase | $ / hour | $ / month | after a quickstop, $ / hour |\n"
        "|---|---|--:|--:|--:|\n"
    )


def test_a_phase_change_reports_both_totals_every_new_line_item_and_is_flagged(history, evaluations, tmp_path):
    text, report, output = run(history, evaluations, tmp_path, "phase")
    assert text.startswith(intro(history, "phase"))
    rows = text.splitlines()
    assert (
        "| `dev` | platform → **production** | 0.1563 → **0.2220** (+0.0657, +42.0%) | 114.12 → **162.09** (+47.97)"
        " | 0.0003 → **0.0216** (+0.0213) |"
    ) in rows
    assert "| `local` | observability | 0 | 0 | 0 |" in rows
    assert (
        "> `dev` rises by $0.0657 an hour (+42.0%), $47.97 a month: more than the threshold of +$0.02 an hour."
    ) in rows
    assert rows[rows.index("#### `dev`") + 2 :][:2] == [
        "| line item ($ / hour) | before | after | change |",
        "|---|--:|--:|--:|",
    ]
    assert "| EC2 t3.medium spot (workloads) | — | 0.0300 | +0.0300 |" in rows
    assert "| RDS PostgreSQL db.t4g.micro single-AZ | — | 0.0160 | +0.0160 |" in rows
    assert "| Public IPv4 address | 0.0150 | 0.0250 | +0.0100 |" in rows
    assert "| EKS control plane |" not in text, "only the lines that changed"
    quickstop = rows[rows.index("After a quickstop:") :]
    assert "| RDS PostgreSQL db.t4g.micro single-AZ | — | 0.0160 | +0.0160 |" in quickstop
    assert text.endswith("\n`local` runs on your machine (Docker, minikube): no AWS cost.\n")

    (dev, local) = report["stacks"]
    assert report["changed"] is report["flagged"] is True and report["failed"] is False
    assert (dev["base"]["phase"], dev["head"]["phase"]) == ("platform", "production")
    assert (dev["hourlyChangeUsd"], dev["monthlyChangeUsd"], dev["hourlyChangePercent"]) == (0.0657, 47.97, 42.0)
    items = {item["item"]: item for item in dev["items"]}
    assert items["EC2 t3.medium spot (workloads)"] == {
        "item": "EC2 t3.medium spot (workloads)",
        "before": None,
        "after": 0.03,
        "change": 0.03,
    }
    assert sum(item["change"] for item in dev["items"]) == pytest.approx(0.0657, abs=0.0002)
    assert dev["settings"] == [], "the phase is the phase column, not a setting"
    assert local["changed"] is local["flagged"] is False and local["head"]["priced"] is False

    assert output.startswith("changed=true\nflagged=true\nfailed=false\nreport<<COST_REPORT_")
    delimiter = output.splitlines()[3].removeprefix("report<<")
    assert output.endswith(f"\n{text}{delimiter}\n")


def test_a_node_count_change(history, evaluations, tmp_path):
    text, report, output = run(history, evaluations, tmp_path, "nodes")
    assert text == intro(history, "nodes") + (
        "| `dev` | platform | 0.1563 → **0.1785** (+0.0222, +14.2%) | 114.12 → **130.32** (+16.20) | 0.0003 |\n"
        "| `local` | observability | 0 | 0 | 0 |\n"
        "\n"
        "> [!WARNING]\n"
        "> `dev` rises by $0.0222 an hour (+14.2%), $16.20 a month: more than the threshold of +$0.02 an hour.\n"
        "\n"
        "#### `dev`\n"
        "\n"
        "Settings: `nodeDesiredSize` `1` → `2`.\n"
        "\n"
        "| line item ($ / hour) | before | after | change |\n"
        "|---|--:|--:|--:|\n"
        "| EC2 t3.medium spot | 0.0150 | 0.0300 | +0.0150 |\n"
        "| EBS gp3 GiB (t3.medium node disks) | 0.0022 | 0.0044 | +0.0022 |\n"
        "| Public IPv4 address | 0.0150 | 0.0200 | +0.0050 |\n"
        "\n"
        "After a quickstop: no change ($0.0003 an hour).\n"
        "\n"
        "`local` runs on your machine (Docker, minikube): no AWS cost.\n"
    )
    (dev, _) = report["stacks"]
    assert dev["settings"] == [{"key": "nodeDesiredSize", "before": "1", "after": "2"}]
    assert dev["quickstopItems"] == [] and dev["flagged"] is True
    assert "flagged=true\n" in output


def test_a_threshold_in_percent_lets_a_smaller_rise_through(history, evaluations, tmp_path):
    text, report, output = run(history, evaluations, tmp_path, "nodes", "--threshold", "15%")
    assert "[!WARNING]" not in text and report["flagged"] is False and "flagged=false\n" in output
    text, report, _ = run(history, evaluations, tmp_path, "phase", "--threshold", "15%")
    assert "more than the threshold of +15% of the hourly estimate." in text and report["flagged"] is True


def test_no_change(history, evaluations, tmp_path):
    text, report, output = run(history, evaluations, tmp_path, "nothing")
    assert text == intro(history, "nothing") + (
        "| `dev` | platform | 0.1563 | 114.12 | 0.0003 |\n"
        "| `local` | observability | 0 | 0 | 0 |\n"
        "\n"
        "No change to any stack's estimate.\n"
        "\n"
        "`local` runs on your machine (Docker, minikube): no AWS cost.\n"
    )
    assert report["changed"] is report["flagged"] is False
    assert [stack["items"] for stack in report["stacks"]] == [[], []]
    assert output.startswith("changed=false\nflagged=false\nfailed=false\n")


def test_a_commit_that_cannot_be_evaluated_is_reported_not_hidden(history, evaluations, tmp_path):
    text, report, output = run(history, evaluations, tmp_path, "no-harness")
    rows = text.splitlines()
    assert "| `dev` | platform → **(fails)** | — | — | — |" in rows
    short = history["no-harness"][:7]
    assert (
        f"No estimate at head (`{short}`): no harness to evaluate it with: "
        "ModuleNotFoundError: No module named 'tests.harness'"
    ) in rows
    assert report["failed"] is True and report["flagged"] is False
    assert "failed=true\n" in output


def test_a_tree_is_evaluated_once(history, evaluations, monkeypatch):
    repo = Path(history["repo"])
    trees = [cost_diff.tree(repo, history[name]) for name in ("base", "phase", "nodes", "nothing", "no-harness")]
    assert trees[0] == trees[3] and len(set(trees)) == 4
    assert {tree for tree, _ in evaluations} == set(trees)

    def no_export(*_):
        raise AssertionError("a tree already evaluated was exported again")

    monkeypatch.setattr(cost_diff, "export", no_export)
    again = cost_diff.evaluate(repo, [history[name] for name in ("phase", "nothing")], ["dev", "local"], evaluations)
    assert again == evaluations


@pytest.mark.parametrize(
    ("threshold", "before", "after", "flagged"),
    [
        ("0.02", 0.1785, 0.2007, True),
        ("0.02", 0.1785, 0.1985, False),
        ("$0.05", 0.1785, 0.2442, True),
        ("10%", 0.1785, 0.2007, True),
        ("15%", 0.1785, 0.2007, False),
        ("10%", 0, 0.0001, True),
        ("0.02", 0.2442, 0.1785, False),
    ],
)
def test_threshold(threshold, before, after, flagged):
    assert cost_diff.Threshold.parse(threshold).exceeded(before, after) is flagged


def test_a_threshold_is_dollars_or_percent():
    with pytest.raises(ValueError, match=r"dollars an hour \(0.02\) or a percentage \(10%\)"):
        cost_diff.Threshold.parse("ten cents")


def test_a_line_item_name_cannot_break_the_table():
    assert cost_diff.cell("a | b <script>") == "a \\| b &lt;script&gt;"
