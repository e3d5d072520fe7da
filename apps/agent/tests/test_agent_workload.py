"""The traffic generator's workload: Zipf-popular topics, their variants, and new texts."""

from __future__ import annotations

import random
from collections import Counter

from agent.guardrails import injection_rules
from agent.routing import classify
from agent.workload import CODE_TOPICS, PROMPT_TOPICS, Workload


def draw(role: str, n: int, **options: float) -> list[tuple[str, str]]:
    workload = Workload(random.Random(7), **options)
    return [(s.topic, s.text) for s in (workload.sample(role) for _ in range(n))]


def test_popularity_is_skewed_and_new_texts_are_a_quarter() -> None:
    samples = draw("prompt-reviewer", 4000)
    topics = Counter(topic for topic, _ in samples)
    new = sum(count for topic, count in topics.items() if topic.startswith("new-"))
    assert 0.22 < new / len(samples) < 0.28
    known = [topic.id for topic in PROMPT_TOPICS]
    assert topics[known[0]] > 2 * topics[known[4]] > 2 * topics[known[-1]] > 0, "rank 1 >> rank 5 >> the last"


def test_new_texts_are_new_and_known_ones_repeat() -> None:
    samples = draw("code-critic", 1000)
    new = [text for topic, text in samples if topic.startswith("new-")]
    assert len(set(new)) > 0.95 * len(new)
    known = [text for topic, text in samples if not topic.startswith("new-")]
    assert len(set(known)) <= sum(len(t.variants) for t in CODE_TOPICS)
    assert all(text.startswith("def ") for text in new)


def test_the_same_seed_gives_the_same_traffic() -> None:
    assert draw("prompt-reviewer", 50) == draw("prompt-reviewer", 50)


def test_topics_have_distinct_variants_and_some_are_hard() -> None:
    for topic in (*PROMPT_TOPICS, *CODE_TOPICS):
        assert len(set(topic.variants)) == len(topic.variants) >= 2, topic.id
    routes = {
        topic.id: classify(
            role, topic.variants[0], injection=bool(injection_rules(topic.variants[0])), max_cheap_tokens=150
        )[0]
        for role, topics in (("prompt-reviewer", PROMPT_TOPICS), ("code-critic", CODE_TOPICS))
        for topic in topics
    }
    strong = {topic for topic, route in routes.items() if route == "strong"}
    assert {"p-long-brief", "p-code-prompt", "p-injection", "c-complex", "c-nested"} <= strong
    assert len(strong) < len(routes) / 3
