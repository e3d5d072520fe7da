"""What a change does to the bill: each stack's cost estimate at two commits, compared.

    .venv/bin/python scripts/cost_diff.py --base origin/main [--head HEAD] [--stack dev] [--threshold 0.02]
        [--markdown cost.md] [--json cost.json] [--github-output "$GITHUB_OUTPUT"]

Each commit is exported (`git archive`) into a temporary directory, and the harness of that commit
(`tests/harness.py`) evaluates its `__main__.py` for every stack under the Pulumi mocks the tests use: the
stack's committed config (`Pulumi.<stack>.yaml`, phase included), the project's defaults and the operator
settings the harness supplies. No cloud, no credentials. Each commit is evaluated in a process of its own with
only its own checkout on `sys.path`, so base and head each use their own code (and the packages of the
interpreter running this script: the repository's .venv).

The estimate is what the program exports: `estimatedHourlyCostUsd`, `estimatedMonthlyCostUsd`,
`costBreakdown` and the quickstop residual. A stack that exports none (`local`: Docker, minikube) costs $0.

The threshold is in dollars an hour (`0.02`) or percent of the base's hourly estimate (`10%`); a stack whose
hourly estimate rises by more is flagged, in the report and as `flagged=true` in the GitHub output. The exit
status stays 0: the report informs a review, it does not fail it.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import re
import secrets
import subprocess
import sys
import tarfile
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

MARKER = "<!-- llm-infra-lab:cost -->"
"""Identifies the pull request comment this report is posted as, so it is updated rather than repeated."""
DEFAULT_THRESHOLD = "0.02"
STACK_FILE = re.compile(r"^Pulumi\.(?P<stack>[^./]+)\.yaml$")

EVALUATOR = r"""
import json, os, sys

checkout, out, stacks = sys.argv[1], sys.argv[2], sys.argv[3:]
sys.path.insert(0, checkout)
try:
    from tests.harness import PROJECT, run_stack  # this commit's own harness, mocks and operator settings
except Exception as error:
    message = f"no harness to evaluate it with: {type(error).__name__}: {error}"
    results = {stack: {"error": message} for stack in stacks}
else:
    try:
        from components.aws.cost import PRICES_AS_OF
    except Exception:
        PRICES_AS_OF = None
    results = {}
    for stack in stacks:
        try:
            run = run_stack(stack)
        except Exception as error:
            results[stack] = {"error": f"{type(error).__name__}: {error}"}
            continue
        config = {key.removeprefix(PROJECT + ":"): value for key, value in run.config.items()}
        outputs = run.outputs
        results[stack] = {
            "phase": config.pop("phase", None),
            "config": config,
            "priced": "estimatedHourlyCostUsd" in outputs,
            "hourly": outputs.get("estimatedHourlyCostUsd", 0),
            "monthly": outputs.get("estimatedMonthlyCostUsd", 0),
            "breakdown": outputs.get("costBreakdown", {}),
            "quickstopHourly": outputs.get("quickstopHourlyCostUsd", 0),
            "quickstopBreakdown": outputs.get("quickstopCostBreakdown", {}),
            "pricesAsOf": PRICES_AS_OF,
        }
with open(out, "w") as file:
    json.dump(results, file)
sys.stdout.flush()
sys.stderr.flush()
os._exit(0)  # the results are written: skip tearing down a few thousand modules (a second of CPU)
"""
"""`python -c EVALUATOR <checkout> <results.json> <stack>...`, in the checkout: each stack's estimate as JSON."""


@dataclass(frozen=True)
class StackCost:
    """A stack's estimate at one commit, as its program exports it."""

    present: bool = True
    """False when the commit has no Pulumi.<stack>.yaml."""
    error: str | None = None
    phase: str | None = None
    config: Mapping[str, str] = field(default_factory=dict)
    priced: bool = False
    """The program exports an AWS estimate; a stack without one runs on your machine, at $0."""
    hourly: float = 0
    monthly: float = 0
    breakdown: Mapping[str, float] = field(default_factory=dict)
    quickstop_hourly: float = 0
    quickstop_breakdown: Mapping[str, float] = field(default_factory=dict)
    prices_as_of: str | None = None

    @property
    def usable(self) -> bool:
        return self.error is None

    def as_json(self) -> dict[str, Any]:
        if not self.present:
            return {"present": False}
        if self.error is not None:
            return {"present": True, "error": self.error}
        return {
            "present": True,
            "phase": self.phase,
            "priced": self.priced,
            "hourlyUsd": self.hourly,
            "monthlyUsd": self.monthly,
            "breakdown": dict(self.breakdown),
            "quickstopHourlyUsd": self.quickstop_hourly,
            "quickstopBreakdown": dict(self.quickstop_breakdown),
        }


ABSENT = StackCost(present=False)


def from_evaluation(result: Mapping[str, Any]) -> StackCost:
    if "error" in result:
        return StackCost(error=result["error"])
    return StackCost(
        phase=result["phase"],
        config=result["config"],
        priced=result["priced"],
        hourly=result["hourly"],
        monthly=result["monthly"],
        breakdown=result["breakdown"],
        quickstop_hourly=result["quickstopHourly"],
        quickstop_breakdown=result["quickstopBreakdown"],
        prices_as_of=result["pricesAsOf"],
    )


@dataclass(frozen=True)
class Threshold:
    """How much an hourly estimate may rise before the change is flagged: dollars an hour, or percent."""

    text: str
    usd_per_hour: float | None = None
    percent: float | None = None

    @classmethod
    def parse(cls, text: str) -> Threshold:
        value = text.strip()
        try:
            if value.endswith("%"):
                return cls(text=value, percent=float(value[:-1]))
            return cls(text=value, usd_per_hour=float(value.removeprefix("$")))
        except ValueError:
            raise ValueError(f"threshold {text!r}: dollars an hour (0.02) or a percentage (10%)") from None

    def exceeded(self, before: float, after: float) -> bool:
        rise = round(after - before, 6)
        if rise <= 0:
            return False
        if self.percent is not None:
            return before == 0 or rise / before * 100 > self.percent
        return rise > (self.usd_per_hour or 0)

    def describe(self) -> str:
        if self.percent is not None:
            return f"+{self.percent:g}% of the hourly estimate"
        return f"+${self.usd_per_hour:g} an hour"


@dataclass(frozen=True)
class Line:
    item: str
    before: float | None
    after: float | None

    @property
    def change(self) -> float:
        return (self.after or 0) - (self.before or 0)


@dataclass(frozen=True)
class StackDiff:
    stack: str
    base: StackCost
    head: StackCost
    threshold: Threshold

    @property
    def comparable(self) -> bool:
        return self.base.usable and self.head.usable

    @property
    def hourly_change(self) -> float:
        return self.head.hourly - self.base.hourly

    @property
    def monthly_change(self) -> float:
        return self.head.monthly - self.base.monthly

    @property
    def quickstop_change(self) -> float:
        return self.head.quickstop_hourly - self.base.quickstop_hourly

    @property
    def percent_change(self) -> float | None:
        return self.hourly_change / self.base.hourly * 100 if self.base.hourly else None

    @property
    def lines(self) -> list[Line]:
        return changed_lines(self.base.breakdown, self.head.breakdown)

    @property
    def quickstop_lines(self) -> list[Line]:
        return changed_lines(self.base.quickstop_breakdown, self.head.quickstop_breakdown)

    @property
    def settings(self) -> list[tuple[str, str | None, str | None]]:
        """Config keys whose value differs (phase aside), with their values before and after."""
        keys = sorted(set(self.base.config) | set(self.head.config))
        return [
            (key, self.base.config.get(key), self.head.config.get(key))
            for key in keys
            if self.base.config.get(key) != self.head.config.get(key)
        ]

    @property
    def changed(self) -> bool:
        if not self.comparable:
            return True
        return bool(
            self.base.phase != self.head.phase
            or self.base.present != self.head.present
            or self.lines
            or self.quickstop_lines
            or _cents(self.hourly_change)
            or _cents(self.quickstop_change)
        )

    @property
    def flagged(self) -> bool:
        return self.comparable and self.threshold.exceeded(self.base.hourly, self.head.hourly)

    def as_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "stack": self.stack,
            "base": self.base.as_json(),
            "head": self.head.as_json(),
            "changed": self.changed,
            "flagged": self.flagged,
        }
        if self.comparable:
            data |= {
                "hourlyChangeUsd": round(self.hourly_change, 4),
                "hourlyChangePercent": None if self.percent_change is None else round(self.percent_change, 1),
                "monthlyChangeUsd": round(self.monthly_change, 2),
                "quickstopHourlyChangeUsd": round(self.quickstop_change, 4),
                "items": [_line_json(line) for line in self.lines],
                "quickstopItems": [_line_json(line) for line in self.quickstop_lines],
                "settings": [{"key": key, "before": b, "after": a} for key, b, a in self.settings],
            }
        return data


def _cents(value: float) -> bool:
    """A change the report shows (an estimate is rounded to 4 decimals)."""
    return round(value, 4) != 0


def _line_json(line: Line) -> dict[str, Any]:
    return {"item": line.item, "before": line.before, "after": line.after, "change": round(line.change, 4)}


def changed_lines(before: Mapping[str, float], after: Mapping[str, float]) -> list[Line]:
    """Line items that appear, disappear or change, in the head's order and then the ones that went."""
    items = [*after, *(item for item in before if item not in after)]
    return [Line(item, before.get(item), after.get(item)) for item in items if before.get(item) != after.get(item)]


@dataclass(frozen=True)
class Report:
    base: str
    head: str
    threshold: Threshold
    stacks: list[StackDiff]

    @property
    def flagged(self) -> bool:
        return any(diff.flagged for diff in self.stacks)

    @property
    def changed(self) -> bool:
        return any(diff.changed for diff in self.stacks)

    @property
    def failed(self) -> bool:
        return not all(diff.comparable for diff in self.stacks)

    def as_json(self) -> dict[str, Any]:
        return {
            "base": self.base,
            "head": self.head,
            "threshold": self.threshold.text,
            "changed": self.changed,
            "flagged": self.flagged,
            "failed": self.failed,
            "stacks": [diff.as_json() for diff in self.stacks],
        }


# --- git -------------------------------------------------------------------------------------------------------


def git(repo: Path, *args: str) -> bytes:
    done = subprocess.run(["git", "-C", str(repo), *args], capture_output=True, check=False, timeout=120)
    if done.returncode != 0:
        raise SystemExit(f"git {' '.join(args)}: {done.stderr.decode(errors='replace').strip()}")
    return done.stdout


def resolve(repo: Path, ref: str) -> str:
    return git(repo, "rev-parse", "--verify", "--end-of-options", f"{ref}^{{commit}}").decode().strip()


def stacks_at(repo: Path, commit: str) -> list[str]:
    names = git(repo, "ls-tree", "--name-only", commit).decode().splitlines()
    return sorted(match["stack"] for name in names if (match := STACK_FILE.match(name)))


def export(repo: Path, commit: str, destination: Path) -> None:
    """The commit's files, as `git archive` gives them, in `destination`."""
    archive = git(repo, "archive", "--format=tar", commit)
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(destination, filter="data")


# --- evaluation ------------------------------------------------------------------------------------------------


Evaluations = dict[tuple[str, str], StackCost]
"""(tree, stack) → its estimate. A tree's evaluation never changes: one already made is reused."""


def tree(repo: Path, commit: str) -> str:
    return git(repo, "rev-parse", "--verify", f"{commit}^{{tree}}").decode().strip()


def evaluate(
    repo: Path, commits: Sequence[str], stacks: Iterable[str], known: Evaluations | None = None
) -> Evaluations:
    """Each commit's stacks evaluated under mocks by that commit's own harness, a process per commit, all at once."""
    evaluations: Evaluations = dict(known or {})
    wanted = list(dict.fromkeys(stacks))
    with tempfile.TemporaryDirectory(prefix="cost-diff-") as temporary:
        running = []
        for commit in dict.fromkeys(commits):
            key = tree(repo, commit)
            present = set(stacks_at(repo, commit))
            evaluations |= {(key, stack): ABSENT for stack in wanted if stack not in present}
            missing = [stack for stack in wanted if (key, stack) not in evaluations]
            if not missing or any(key == other for other, *_ in running):
                continue
            checkout, out, err = (Path(temporary, key + suffix) for suffix in ("", ".json", ".stderr"))
            export(repo, commit, checkout)
            with err.open("w") as stderr:
                process = subprocess.Popen(
                    [sys.executable, "-c", EVALUATOR, str(checkout), str(out), *missing],
                    cwd=checkout,
                    stdout=subprocess.DEVNULL,
                    stderr=stderr,
                    env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"},
                )
            running.append((key, missing, out, err, process))
        for key, missing, out, err, process in running:
            process.wait(timeout=600)
            if out.exists():
                results = json.loads(out.read_text())
                costs = {stack: from_evaluation(results[stack]) for stack in missing}
            else:  # the process died: its last words say why
                last = err.read_text().strip().splitlines()[-1:] or [f"exit status {process.returncode}"]
                costs = {stack: StackCost(error=f"the evaluation failed: {last[0]}") for stack in missing}
            evaluations |= {(key, stack): cost for stack, cost in costs.items()}
    return evaluations


def compare(
    repo: Path,
    base: str,
    head: str,
    *,
    stacks: Sequence[str] = (),
    threshold: Threshold,
    known: Evaluations | None = None,
) -> Report:
    base_commit, head_commit = resolve(repo, base), resolve(repo, head)
    names = list(stacks) or sorted(set(stacks_at(repo, base_commit)) | set(stacks_at(repo, head_commit)))
    evaluations = evaluate(repo, [base_commit, head_commit], names, known)
    base_tree, head_tree = tree(repo, base_commit), tree(repo, head_commit)
    diffs = [
        StackDiff(stack, evaluations[(base_tree, stack)], evaluations[(head_tree, stack)], threshold) for stack in names
    ]
    return Report(base=base_commit, head=head_commit, threshold=threshold, stacks=diffs)


# --- the report --------------------------------------------------------------------------------------------------


def usd(value: float, places: int = 4) -> str:
    return f"{value:.{places}f}" if value else "0"


def signed(value: float, places: int = 4) -> str:
    return f"{value:+.{places}f}"


def cell(text: str) -> str:
    """Text from a program (an item's name, an error) made safe inside a table cell."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace("|", "\\|").replace("\n", " ")


def before_after(before: float, after: float, places: int, *, percent: float | None = None) -> str:
    if round(before - after, places) == 0:
        return usd(after, places)
    change = signed(after - before, places)
    if percent is not None:
        change += f", {percent:+.1f}%"
    return f"{usd(before, places)} → **{usd(after, places)}** ({change})"


def phase_cell(diff: StackDiff) -> str:
    def name(cost: StackCost) -> str:
        if not cost.present:
            return "(no stack)"
        if cost.error is not None:
            return "(fails)"
        return cost.phase or "?"

    before, after = name(diff.base), name(diff.head)
    return before if before == after else f"{before} → **{after}**"


def summary_row(diff: StackDiff) -> str:
    cells = [f"`{diff.stack}`", phase_cell(diff)]
    if not diff.comparable:
        cells += ["—", "—", "—"]
    elif not diff.base.priced and not diff.head.priced:
        cells += ["0", "0", "0"]
    else:
        cells += [
            before_after(diff.base.hourly, diff.head.hourly, 4, percent=diff.percent_change),
            before_after(diff.base.monthly, diff.head.monthly, 2),
            before_after(diff.base.quickstop_hourly, diff.head.quickstop_hourly, 4),
        ]
    return "| " + " | ".join(cells) + " |"


def lines_table(lines: Sequence[Line]) -> list[str]:
    rows = ["| line item ($ / hour) | before | after | change |", "|---|--:|--:|--:|"]
    for line in lines:
        before = "—" if line.before is None else f"{line.before:.4f}"
        after = "—" if line.after is None else f"{line.after:.4f}"
        rows.append(f"| {cell(line.item)} | {before} | {after} | {signed(line.change)} |")
    return rows


def stack_section(diff: StackDiff, short: Mapping[str, str]) -> list[str]:
    out = [f"#### `{diff.stack}`", ""]
    if not diff.comparable:
        for side, cost in (("base", diff.base), ("head", diff.head)):
            if cost.error is not None:
                out += [f"No estimate at {side} (`{short[side]}`): {cell(cost.error)}", ""]
        return out
    if diff.settings:
        changes = ", ".join(f"`{key}` {_setting(before)} → {_setting(after)}" for key, before, after in diff.settings)
        out += [f"Settings: {changes}.", ""]
    if not diff.base.priced and not diff.head.priced:
        return [*out, "No AWS cost at either commit: it runs on your machine (Docker, minikube).", ""]
    if diff.lines:
        out += [*lines_table(diff.lines), ""]
    else:
        out += ["No line item changed.", ""]
    if diff.quickstop_lines:
        out += ["After a quickstop:", "", *lines_table(diff.quickstop_lines), ""]
    else:
        out += [f"After a quickstop: no change (${usd(diff.head.quickstop_hourly)} an hour).", ""]
    return out


def _setting(value: str | None) -> str:
    if value is None:
        return "(unset)"
    if value.startswith("{'secure':"):
        return "(secret)"
    return f"`{cell(value)}`"


def markdown(report: Report) -> str:
    short = {"base": report.base[:7], "head": report.head[:7]}
    as_of = sorted({c.prices_as_of for d in report.stacks for c in (d.base, d.head) if c.prices_as_of})
    prices = f"AWS list prices as of {' and '.join(as_of)}" if as_of else "AWS list prices"
    out = [
        MARKER,
        "### Cost of this change",
        "",
        f"`{short['base']}` → `{short['head']}`: every stack evaluated at both commits under the test mocks (no"
        f" cloud), priced by its cost model: {prices}, 730 hours a month; data transfer, requests and load"
        " balancer capacity units not included.",
        "",
        "| stack | phase | $ / hour | $ / month | after a quickstop, $ / hour |",
        "|---|---|--:|--:|--:|",
        *(summary_row(diff) for diff in report.stacks),
        "",
    ]
    for diff in report.stacks:
        if diff.flagged:
            percent = "" if diff.percent_change is None else f" ({diff.percent_change:+.1f}%)"
            out += [
                "> [!WARNING]",
                f"> `{diff.stack}` rises by ${diff.hourly_change:.4f} an hour{percent}, "
                f"${diff.monthly_change:.2f} a month: more than the threshold of {report.threshold.describe()}.",
                "",
            ]
    changed = [diff for diff in report.stacks if diff.changed]
    for diff in changed:
        out += stack_section(diff, short)
    if not changed:
        out += ["No change to any stack's estimate.", ""]
    free = [d.stack for d in report.stacks if d.comparable and not (d.base.priced or d.head.priced or d.changed)]
    if free:
        names = ", ".join(f"`{stack}`" for stack in free)
        out += [f"{names} {'runs' if len(free) == 1 else 'run'} on your machine (Docker, minikube): no AWS cost.", ""]
    return "\n".join(out).rstrip() + "\n"


def github_output(report: Report, text: str) -> str:
    """Step outputs: flags for `if:` and the report for a later job; the delimiter cannot occur in the text."""
    delimiter = f"COST_REPORT_{secrets.token_hex(16)}"
    return (
        f"changed={str(report.changed).lower()}\n"
        f"flagged={str(report.flagged).lower()}\n"
        f"failed={str(report.failed).lower()}\n"
        f"report<<{delimiter}\n{text}{delimiter}\n"
    )


def main(argv: Sequence[str] | None = None, *, known: Evaluations | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--base", required=True, help="commit before the change (a ref or SHA)")
    parser.add_argument("--head", default="HEAD", help="commit after the change (default HEAD)")
    parser.add_argument("--repo", type=Path, default=Path(__file__).resolve().parent.parent, help="default: this one")
    parser.add_argument("--stack", action="append", default=[], help="only this stack (repeatable)")
    parser.add_argument(
        "--threshold",
        default=os.environ.get("COST_THRESHOLD") or DEFAULT_THRESHOLD,
        help="flag a rise of the hourly estimate above this: dollars (0.02) or percent (10%%); env COST_THRESHOLD",
    )
    parser.add_argument("--markdown", type=Path, help="write the report here (default: print it)")
    parser.add_argument("--json", type=Path, help="write the machine-readable report here")
    parser.add_argument("--github-output", type=Path, help="append changed=, flagged=, failed= and report= here")
    args = parser.parse_args(argv)
    try:
        threshold = Threshold.parse(args.threshold)
    except ValueError as error:
        parser.error(str(error))

    report = compare(args.repo, args.base, args.head, stacks=args.stack, threshold=threshold, known=known)
    text = markdown(report)
    if args.markdown:
        args.markdown.write_text(text)
    else:
        sys.stdout.write(text)
    if args.json:
        args.json.write_text(json.dumps(report.as_json(), indent=2) + "\n")
    if args.github_output:
        with args.github_output.open("a") as out:
            out.write(github_output(report, text))
    return 0


if __name__ == "__main__":
    sys.exit(main())
