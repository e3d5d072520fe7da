"""Grounding: a review cites only what retrieval returned and quotes only the code it was given."""

from __future__ import annotations

import asyncio
import random
from collections import Counter

import pytest
from qdrant_client import QdrantClient

from agent import semconv as sc
from agent.grounding import check_grounding
from agent.providers import ChatRequest, SimulatedProvider
from agent.roles import CODE_CRITIC, PROMPT_REVIEWER, guidelines_for, system_prompt, user_message
from agent.workload import Workload
from agent_test_support import CODE, Captured, RecordingProvider, client_for, counters, make_settings

RETRIEVED = ("cc-001", "cc-002", "cc-005")


@pytest.mark.parametrize(
    ("role", "review", "retrieved", "problems"),
    [
        (CODE_CRITIC, "1. eval on data [cc-001]\n   > return eval(data)", RETRIEVED, ()),
        (CODE_CRITIC, "1. eval on data [cc-001]\n   >   return   eval(data)", RETRIEVED, ()),
        (CODE_CRITIC, "1. secrets [cc-003]", RETRIEVED, (sc.GROUNDING_CITED_UNRETRIEVED,)),
        (CODE_CRITIC, "1. eval on data.", RETRIEVED, (sc.GROUNDING_NO_CITATION,)),
        (CODE_CRITIC, "1. eval on data.", (), ()),
        (CODE_CRITIC, "1. eval [cc-001]\n   > os.system(data)", RETRIEVED, (sc.GROUNDING_QUOTE_NOT_IN_INPUT,)),
        (
            CODE_CRITIC,
            "1. shell\n   > os.system(data)",
            RETRIEVED,
            (sc.GROUNDING_NO_CITATION, sc.GROUNDING_QUOTE_NOT_IN_INPUT),
        ),
        (PROMPT_REVIEWER, "1. vague [pr-005]\n   > os.system(data)", ("pr-005",), ()),
    ],
)
def test_each_kind_of_ungrounded_review_is_named(
    role: str, review: str, retrieved: tuple[str, ...], problems: tuple[str, ...]
) -> None:
    assert check_grounding(role, review, retrieved, CODE).problems == problems


@pytest.mark.parametrize("role", [PROMPT_REVIEWER, CODE_CRITIC])
def test_the_simulated_provider_is_ungrounded_now_and_then_and_always_for_the_same_text(role: str) -> None:
    """A few percent of distinct texts, every kind the role can make, fixed by the text."""
    provider = SimulatedProvider(role, latency_s=0.0, error_rate=0.0)
    workload = Workload(random.Random(7), zipf_s=1.1, new_fraction=1.0)
    guidelines = guidelines_for(role)[:3]
    retrieved = [g.id for g in guidelines]

    async def problems_of(texts: list[str]) -> list[tuple[str, ...]]:
        answers = [
            await provider.chat(
                ChatRequest("simulated-small", system_prompt(role, guidelines), user_message(role, text), 1024)
            )
            for text in texts
        ]
        return [check_grounding(role, a.text, retrieved, t).problems for a, t in zip(answers, texts, strict=True)]

    texts = [workload.sample(role).text for _ in range(1000)]
    problems = asyncio.run(problems_of(texts))
    found = Counter(problem for found_in_one in problems for problem in found_in_one)
    expected = {sc.GROUNDING_CITED_UNRETRIEVED, sc.GROUNDING_NO_CITATION}
    expected |= {sc.GROUNDING_QUOTE_NOT_IN_INPUT} if role == CODE_CRITIC else set()
    assert set(found) == expected
    assert 0.01 <= sum(1 for p in problems if p) / len(texts) <= 0.06
    flagged = [text for text, p in zip(texts, problems, strict=True) if p]
    assert asyncio.run(problems_of(flagged)) == [p for p in problems if p], "the same text, the same slip"


def test_an_ungrounded_review_is_answered_flagged_counted_logged_with_its_trace_and_never_cached(
    captured: Captured, memory_qdrant: QdrantClient
) -> None:
    # Cites a guideline id nobody retrieved, as a model that makes one up would.
    provider = RecordingProvider("Verdict: needs work.\n1. Pin versions [cc-042]")
    with client_for(make_settings(CODE_CRITIC), captured, qdrant=memory_qdrant, provider=provider) as client:
        first = client.post("/review", json={"text": CODE}).json()
        client.post("/review", json={"text": CODE})
    assert len(provider.requests) == 2, "an ungrounded review must not be served from the cache"
    assert first["grounding"] == {
        "grounded": False,
        "problems": [sc.GROUNDING_CITED_UNRETRIEVED],
        "cited_ids": ["cc-042"],
    }
    checks = counters(captured, sc.AGENT_GROUNDING_CHECKS)
    assert checks == {((sc.AGENT_GROUNDING_OUTCOME, sc.GROUNDING_UNGROUNDED), (sc.AGENT_NAME, CODE_CRITIC)): 2}
    problems = {
        dict(k)[sc.AGENT_GROUNDING_PROBLEM]: v for k, v in counters(captured, sc.AGENT_GROUNDING_PROBLEMS).items()
    }
    assert problems == {sc.GROUNDING_CITED_UNRETRIEVED: 2}
    events = [r.log_record for r in captured.log_records() if r.log_record.event_name == sc.EVENT_UNGROUNDED]
    assert len(events) == 2
    event = events[0]
    assert event.severity_text == "WARN"
    assert f"{event.trace_id:032x}" == first["trace_id"]
    attributes = dict(event.attributes or {})
    assert attributes[sc.AGENT_NAME] == CODE_CRITIC
    assert list(attributes[sc.AGENT_GROUNDING_CITED_IDS]) == ["cc-042"]  # type: ignore[arg-type]
    assert list(attributes[sc.AGENT_RETRIEVAL_GUIDELINE_IDS]) == first["guideline_ids"]  # type: ignore[arg-type]


def test_a_grounded_review_is_counted_and_logs_no_event(captured: Captured, memory_qdrant: QdrantClient) -> None:
    with client_for(make_settings(CODE_CRITIC), captured, qdrant=memory_qdrant) as client:
        answer = client.post("/review", json={"text": CODE}).json()
    assert answer["grounding"]["grounded"], answer["review"]
    assert "cc-001" in answer["grounding"]["cited_ids"]
    assert "> return eval(data)" in answer["review"]
    assert not [r for r in captured.log_records() if r.log_record.event_name == sc.EVENT_UNGROUNDED]
