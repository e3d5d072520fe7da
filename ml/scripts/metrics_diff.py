"""The pipeline's metrics and parameters against another git revision, as Markdown (a PR comment).

    python scripts/metrics_diff.py --base origin/main [--promotion reports/promotion.json] > comment.md

Reads metrics.json and params.yaml from the working tree and from `--base` (git show), so it needs
neither DVC's cache nor the base's outputs; `dvc metrics diff origin/main --md` gives the metrics part
alone. A metric or parameter missing on one side shows as "—". With `--promotion`, the gate's decision
follows the tables.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
MISSING = "—"


def flatten(data: Any, prefix: str = "") -> dict[str, Any]:
    if not isinstance(data, dict):
        return {prefix: data}
    flat: dict[str, Any] = {}
    for key, value in data.items():
        flat.update(flatten(value, f"{prefix}.{key}" if prefix else str(key)))
    return flat


def at_revision(revision: str, file: Path) -> str | None:
    """The file's text at `revision`, or None where it did not exist."""
    relative = file.resolve().relative_to(_toplevel(file.parent))
    show = ["git", "show", f"{revision}:{relative.as_posix()}"]
    result = subprocess.run(show, cwd=file.parent, capture_output=True, text=True, check=False)
    return result.stdout if result.returncode == 0 else None


def _toplevel(directory: Path) -> Path:
    out = subprocess.run(
        ["git", "rev-parse", "--show-toplevel"], cwd=directory, capture_output=True, text=True, check=True
    ).stdout
    return Path(out.strip()).resolve()


def _number(value: Any) -> str:
    if value is None:
        return MISSING
    if isinstance(value, float):
        return f"{value:.4f}"
    return str(value)


def _plain(value: Any) -> str:
    return MISSING if value is None else str(value)


def metrics_table(base: dict[str, Any], head: dict[str, Any], base_name: str) -> str:
    lines = [f"| metric | {base_name} | this change | change |", "| --- | ---: | ---: | ---: |"]
    for key in sorted(set(base) | set(head)):
        old, new = base.get(key), head.get(key)
        numeric = all(isinstance(v, int | float) and not isinstance(v, bool) for v in (old, new))
        change = (f"{new - old:+d}" if isinstance(new - old, int) else f"{new - old:+.4f}") if numeric else MISSING
        lines.append(f"| {key} | {_number(old)} | {_number(new)} | {change} |")
    return "\n".join(lines)


def params_table(base: dict[str, Any], head: dict[str, Any], base_name: str) -> str:
    changed = [key for key in sorted(set(base) | set(head)) if base.get(key) != head.get(key)]
    if not changed:
        return "No parameter changed."
    lines = [f"| parameter | {base_name} | this change |", "| --- | --- | --- |"]
    lines += [f"| {key} | {_plain(base.get(key))} | {_plain(head.get(key))} |" for key in changed]
    return "\n".join(lines)


def promotion_line(report: dict[str, Any]) -> str:
    return f"**Promotion gate: {report['decision']}.** {report['reason']}"


def render(
    *,
    base_metrics: dict[str, Any] | None,
    head_metrics: dict[str, Any],
    base_params: dict[str, Any],
    head_params: dict[str, Any],
    base_name: str,
    promotion: dict[str, Any] | None = None,
) -> str:
    parts = ["### Iris pipeline: metrics on the held-out split", ""]
    if base_metrics is None:
        parts.append(f"_{base_name} has no metrics.json yet._")
        parts.append("")
    parts += [metrics_table(flatten(base_metrics or {}), flatten(head_metrics), base_name), ""]
    parts += ["#### Parameters", "", params_table(flatten(base_params), flatten(head_params), base_name)]
    if promotion is not None:
        parts += ["", promotion_line(promotion)]
    return "\n".join(parts) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--base", default="origin/main", help="git revision to compare with")
    parser.add_argument("--metrics", type=Path, default=ROOT / "metrics.json")
    parser.add_argument("--params", type=Path, default=ROOT / "params.yaml")
    parser.add_argument("--promotion", type=Path, help="the promote stage's report, to add its decision")
    args = parser.parse_args(argv)

    base_metrics_text = at_revision(args.base, args.metrics)
    base_params_text = at_revision(args.base, args.params)
    promotion = json.loads(args.promotion.read_text()) if args.promotion and args.promotion.exists() else None
    sys.stdout.write(
        render(
            base_metrics=json.loads(base_metrics_text) if base_metrics_text else None,
            head_metrics=json.loads(args.metrics.read_text()),
            base_params=yaml.safe_load(base_params_text) if base_params_text else {},
            head_params=yaml.safe_load(args.params.read_text()),
            base_name=f"`{args.base}`",
            promotion=promotion,
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
