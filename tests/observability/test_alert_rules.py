"""The alert rules Mimir evaluates, unit-tested with `promtool test rules`."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import yaml

from components.observability.alerts import rule_files
from tests.conftest import evaluate
from tests.docker_view import services

PROMTOOL_TESTS = Path(__file__).parent / "promtool"
BUDGET_IN_TESTS = 20


def promtool() -> str:
    """Installed into the virtualenv by scripts/install, or found on PATH."""
    found = shutil.which("promtool", path=str(Path(sys.executable).parent)) or shutil.which("promtool")
    assert found, "promtool is missing: run scripts/install"
    return found


def test_rules_pass_promtool_check_and_unit_tests(tmp_path):
    for name, text in rule_files(BUDGET_IN_TESTS).items():
        (tmp_path / name).write_text(text)
    for test in PROMTOOL_TESTS.glob("*.test.yaml"):
        shutil.copy(test, tmp_path)
    rules = sorted(str(p) for p in tmp_path.glob("*.yaml") if not p.name.endswith(".test.yaml"))
    tests = sorted(str(p) for p in tmp_path.glob("*.test.yaml"))
    assert rules and tests
    for command in (["check", "rules", *rules], ["test", "rules", *tests]):
        result = subprocess.run([promtool(), *command], capture_output=True, text=True, check=False)
        assert result.returncode == 0, result.stdout + result.stderr


def test_every_alert_has_a_promtool_case():
    tested = {
        case["alertname"]
        for test in PROMTOOL_TESTS.glob("*.test.yaml")
        for group in yaml.safe_load(test.read_text())["tests"]
        for case in group.get("alert_rule_test", [])
        if case["exp_alerts"]
    }
    for text in rule_files(BUDGET_IN_TESTS).values():
        alerts = {rule["alert"] for group in yaml.safe_load(text)["groups"] for rule in group["rules"]}
        assert alerts <= tested, f"alerts never shown firing: {alerts - tested}"


def test_mimir_evaluates_the_rules_with_the_configured_budget():
    run = evaluate("local", llmMonthlyBudgetUsd="75")
    rules = services(run)["mimir"].upload("/etc/mimir/rules/anonymous/llm-agents.yaml")
    (budget_rule,) = [
        r for g in yaml.safe_load(rules)["groups"] for r in g["rules"] if r["alert"] == "LLMCostBudgetBurn"
    ]
    assert budget_rule["expr"].endswith("> 75")
