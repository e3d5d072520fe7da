"""Is a review grounded in what the agent gave the model? A check of citations and quotes.

A review must cite the ids of the guidelines it applied ([pr-002]) and only those retrieval
returned; code-critic quotes the lines it talks about on lines of their own starting with `> `,
and every quote must be code from the input. A review that cites ids it was not given, cites
nothing although guidelines were retrieved, or quotes code that is not there is "ungrounded": a
cheap, deterministic signal of a model making things up, counted and logged for Loki to alert on.
"""

from __future__ import annotations

import re
from collections.abc import Collection
from dataclasses import dataclass

from agent import semconv as sc
from agent.roles import CODE_CRITIC

GUIDELINE_ID = re.compile(r"\b[a-z]{2}-\d{3}\b")
QUOTE_PREFIX = "> "


@dataclass(frozen=True)
class Grounding:
    cited_ids: tuple[str, ...]
    problems: tuple[str, ...]
    """GROUNDING_* problems found, in a fixed order; empty when the review is grounded."""

    @property
    def grounded(self) -> bool:
        return not self.problems


def cited_ids(review: str) -> tuple[str, ...]:
    """Guideline ids the review mentions, each once, in order of first mention."""
    return tuple(dict.fromkeys(GUIDELINE_ID.findall(review)))


def quoted_lines(review: str) -> list[str]:
    """The code a review quotes: its lines that start with `>`, without it."""
    return [line.strip()[1:].strip() for line in review.splitlines() if line.strip().startswith(">")]


def _normalized(text: str) -> str:
    return " ".join(text.split())


def check_grounding(role: str, review: str, retrieved_ids: Collection[str], reviewed_text: str) -> Grounding:
    """The review's problems against what retrieval returned and the text it was asked to review."""
    cited = cited_ids(review)
    problems = []
    if any(guideline_id not in retrieved_ids for guideline_id in cited):
        problems.append(sc.GROUNDING_CITED_UNRETRIEVED)
    if retrieved_ids and not cited:
        problems.append(sc.GROUNDING_NO_CITATION)
    if role == CODE_CRITIC:
        source = _normalized(reviewed_text)
        if any(quote and _normalized(quote) not in source for quote in quoted_lines(review)):
            problems.append(sc.GROUNDING_QUOTE_NOT_IN_INPUT)
    return Grounding(cited, tuple(problems))
