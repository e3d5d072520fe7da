"""Every Alloy component, block and argument the lab's configs use is one Alloy documents.

Alloy refuses a config with an unknown argument at start, far from the code that wrote it. The configs of
every phase (the Docker gateway, the cluster agents on minikube and EKS) are parsed into their block
structure and checked against `tests/alloy_reference.py`, transcribed from Alloy's component reference.
"""

from __future__ import annotations

import re

import pytest

from stacks.catalog import PHASES
from tests.alloy_reference import COMPONENTS, RUN_FLAGS
from tests.alloy_view import resolved
from tests.conftest import evaluate
from tests.docker_view import services
from tests.k8s_view import manifests

TOKEN = re.compile(r'"(?:[^"\\]|\\.)*"|//[^\n]*|[A-Za-z_][\w.]*|\d[\w.]*|[{}=\[\](),+]|\S')
OPENERS, CLOSERS = "[({", "])}"


def tokens(text: str) -> list[str]:
    return [t for t in TOKEN.findall(text) if not t.startswith("//")]


class Parser:
    """Alloy's syntax as far as structure goes: blocks, their labels, attributes; values are skipped."""

    def __init__(self, text: str):
        self.tokens, self.at = tokens(text), 0

    def take(self) -> str:
        self.at += 1
        return self.tokens[self.at - 1]

    def peek(self) -> str:
        return self.tokens[self.at] if self.at < len(self.tokens) else ""

    def blocks(self) -> list[tuple[str, dict]]:
        found = []
        while self.peek():
            name = self.take()
            found.append((name, self.block(name)))
        return found

    def block(self, name: str) -> dict:
        if self.peek().startswith('"'):
            self.take()
        assert self.take() == "{", f"expected a block after {name}"
        body: dict = {}
        while (token := self.take()) != "}":
            if self.peek() == "=":
                self.take()
                self.value()
                body[token] = None
            else:
                body.setdefault(token, {}).update(self.block(token))
        return body

    def value(self) -> None:
        """One expression: operands joined by operators, calls, indexes and literals in brackets."""
        depth = 0
        while True:
            token = self.take()
            depth += (token in OPENERS) - (token in CLOSERS)
            if depth == 0 and self.peek() not in ("(", "[", "+") and token != "+":
                return


def blocks(text: str) -> list[tuple[str, dict]]:
    """Top-level blocks `name "label" { ... }` as (name, body), a body mapping names to None or a sub-body."""
    return Parser(text).blocks()


def unknown(body: dict, schema: dict, path: str) -> list[str]:
    problems = []
    for name, value in body.items():
        if name not in schema:
            problems.append(f"{path}.{name}")
        elif isinstance(value, dict):
            if not isinstance(schema[name], dict):
                problems.append(f"{path}.{name} is an argument, not a block")
            else:
                problems += unknown(value, schema[name], f"{path}.{name}")
    return problems


def alloy_configs() -> dict[str, tuple[str, list[str]]]:
    """Each phase's Alloy configs and run flags: the Docker gateway and the cluster agents."""
    found = {}
    for phase in PHASES:
        for stack in phase.stacks:
            run = evaluate(stack, phase=phase.name)
            for name, service in services(run).items():
                if service.image.startswith("grafana/alloy"):
                    config = resolved(service.uploads_under("/etc/alloy/"), service.env)
                    found[f"{stack}:{phase.name}/docker-{name}"] = (config, list(service.container["command"]))
            objects = manifests(run)
            for config_map in (
                o for o in objects if o["kind"] == "ConfigMap" and o["metadata"]["name"].startswith("alloy")
            ):
                (deployment,) = [o for o in objects if o["kind"] == "Deployment" and o["metadata"]["name"] == "alloy"]
                container = deployment["spec"]["template"]["spec"]["containers"][0]
                env = {e["name"]: e["value"] for e in container["env"] if "value" in e}
                config = resolved(config_map["data"], env)
                args = container["args"]
                found[f"{stack}:{phase.name}/{config_map['metadata']['namespace']}"] = (config, args)
    return found


CONFIGS = alloy_configs()


def test_every_phase_with_alloy_is_checked():
    """Phase platform runs no Alloy: it has no LGTM stack on the cluster."""
    with_alloy = {
        f"{stack}:{phase.name}"
        for phase in PHASES
        for stack in phase.stacks
        if "grafana/alloy" in repr([r.inputs for r in evaluate(stack, phase=phase.name).resources])
    }
    assert {where.split("/")[0] for where in CONFIGS} == with_alloy
    assert len(with_alloy) == len(PHASES) - 1


@pytest.mark.parametrize("where", sorted(CONFIGS))
def test_every_component_block_and_argument_is_documented(where):
    config, _ = CONFIGS[where]
    problems = []
    for name, body in blocks(config):
        if name not in COMPONENTS:
            problems.append(f"unknown component {name}")
        else:
            problems += unknown(body, COMPONENTS[name], name)
    assert not problems, problems


@pytest.mark.parametrize("where", sorted(CONFIGS))
def test_every_run_flag_is_documented(where):
    _, args = CONFIGS[where]
    flags = {arg.split("=", 1)[0] for arg in args if arg.startswith("--")}
    assert flags and flags <= RUN_FLAGS, flags - RUN_FLAGS


def test_the_parser_finds_an_unknown_argument_and_block():
    config = 'otelcol.processor.batch "x" {\n  timeout = "1s"\n  tiemout = "2s"\n  output {\n    traces = [a.b]\n  }\n'
    config += "  retry {\n    enabled = true\n  }\n}\n"
    (name, body), *_ = blocks(config)
    assert unknown(body, COMPONENTS[name], name) == ["otelcol.processor.batch.tiemout", "otelcol.processor.batch.retry"]
