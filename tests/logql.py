"""LogQL metric queries read with Grafana's own grammar, and the log entries their matchers select.

`@grafana/lezer-logql` (installed by scripts/install under .ci/node, run by `logql_parse.cjs`) is the grammar
Grafana's query editor parses LogQL with. Its syntax tree gives each query's stream selector, label filters,
grouping and threshold; `Query.selects` applies the selector and filters to one log entry's stream labels
and structured metadata, as Loki does for the label matchers and number filters the lab's rules use.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from tests.harness import REPO

NODE_MODULES = REPO / ".ci" / "node" / "node_modules"
PARSER = Path(__file__).with_name("logql_parse.cjs")


@dataclass(frozen=True)
class Node:
    name: str
    text: str
    error: bool
    children: tuple[Node, ...]

    @staticmethod
    def of(data: dict) -> Node:
        return Node(data["name"], data["text"], data["error"], tuple(Node.of(c) for c in data["children"]))

    def walk(self) -> Iterator[Node]:
        yield self
        for child in self.children:
            yield from child.walk()

    def all(self, name: str) -> list[Node]:
        return [node for node in self.walk() if node.name == name]

    def child(self, *names: str) -> Node:
        (found,) = [c for c in self.children if c.name in names]
        return found


@dataclass(frozen=True)
class Filter:
    """`label op value`: a stream matcher or a label filter stage."""

    label: str
    op: str
    value: str | float

    def holds(self, labels: Mapping[str, str]) -> bool:
        """Loki's semantics: a missing label is the empty string to a matcher, and fails a number filter."""
        if isinstance(self.value, float):
            return self.label in labels and NUMBER_OPS[self.op](float(labels[self.label]), self.value)
        actual = labels.get(self.label, "")
        return {
            "Eq": actual == self.value,
            "Neq": actual != self.value,
            "Re": re.fullmatch(self.value, actual) is not None,
            "Nre": re.fullmatch(self.value, actual) is None,
        }[self.op]


NUMBER_OPS = {
    "Gtr": float.__gt__,
    "Gte": float.__ge__,
    "Lss": float.__lt__,
    "Lte": float.__le__,
    "Eql": float.__eq__,
    "Neq": float.__ne__,
}


@dataclass(frozen=True)
class Query:
    tree: Node

    @property
    def errors(self) -> list[str]:
        return [node.text for node in self.tree.walk() if node.error]

    @property
    def selector(self) -> list[Filter]:
        (selector,) = self.tree.all("Selector")
        return [_filter(matcher) for matcher in selector.all("Matcher")]

    @property
    def filters(self) -> list[Filter]:
        return [
            _filter(label_filter.child("Matcher", "NumberFilter"))
            for stage in self.tree.all("PipelineStage")
            for label_filter in stage.all("LabelFilter")
        ]

    @property
    def grouping(self) -> list[str]:
        return [identifier.text for grouping in self.tree.all("Grouping") for identifier in grouping.all("Identifier")]

    def selects(self, stream: Mapping[str, str], metadata: Mapping[str, str]) -> bool:
        """Whether an entry of `stream` with `metadata` is counted: the selector on the stream's labels,
        then every filter on the labels and metadata together."""
        return all(f.holds(stream) for f in self.selector) and all(
            f.holds({**stream, **metadata}) for f in self.filters
        )


def _filter(node: Node) -> Filter:
    label, op, value = node.children
    if value.name == "String":
        return Filter(label.text, op.name, json.loads(value.text))
    return Filter(label.text, op.name, float(value.text))


def parse(*expressions: str) -> list[Query]:
    node = shutil.which("node")
    assert node, "node is missing: install Node.js 20+ (scripts/install needs npm)"
    assert (NODE_MODULES / "@grafana" / "lezer-logql").is_dir(), "the LogQL grammar is missing: run scripts/install"
    result = subprocess.run(
        [node, str(PARSER)],
        input=json.dumps(expressions),
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
        env={**os.environ, "NODE_PATH": str(NODE_MODULES)},
    )
    return [Query(Node.of(tree)) for tree in json.loads(result.stdout)]
