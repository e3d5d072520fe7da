"""The semantic cache: the threshold's precision on labelled pairs, the Qdrant store (scope, TTL,
size bound, outages) and, through the app, hits that skip the LLM, with their telemetry.
"""

from __future__ import annotations

import json
import re
import struct
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from opentelemetry.trace import StatusCode
from qdrant_client import QdrantClient

from agent.cache import CachedReview, CacheError, SemanticCache
from agent.config import Settings
from agent.providers import ChatRequest, ChatResult
from agent.semantic import (
    CODE,
    PROSE,
    EmbeddingUnavailableError,
    Matcher,
    code_tokens,
    map_safetensor,
    prose_features,
    shared_model,
)
from agent_test_support import Captured, client_for, make_settings, unreachable_qdrant
from paraphrase_pairs import CODE_PAIRS, PROMPT_PAIRS

THRESHOLD = Settings(role="prompt-reviewer").cache_threshold


def precision_recall(kind: str, pairs: tuple[tuple[str, str, bool], ...], threshold: float) -> tuple[float, float]:
    matcher = Matcher(shared_model(), kind)
    predicted = [
        (matcher.similarity(matcher.features(a), matcher.features(b)) >= threshold, label) for a, b, label in pairs
    ]
    true_positives = sum(1 for hit, label in predicted if hit and label)
    hits = sum(1 for hit, _ in predicted if hit)
    return true_positives / max(1, hits), true_positives / sum(1 for *_, label in pairs if label)


@pytest.mark.parametrize(("kind", "pairs"), [(PROSE, PROMPT_PAIRS), (CODE, CODE_PAIRS)])
def test_the_threshold_is_precise_on_the_labelled_pairs(kind: str, pairs: tuple[tuple[str, str, bool], ...]) -> None:
    """A wrong hit is worse than a miss: precision at least 0.95; recall is what it costs."""
    assert len(pairs) >= 30 and sum(1 for *_, label in pairs if not label) >= 20
    precision, recall = precision_recall(kind, pairs, THRESHOLD)
    assert precision >= 0.95, (precision, recall)
    assert recall >= 0.5, "the cache still finds most paraphrases"


def test_what_the_prose_comparison_keeps_exact() -> None:
    matcher = Matcher(shared_model(), PROSE)

    def similarity(a: str, b: str) -> float:
        return matcher.similarity(matcher.features(a), matcher.features(b))

    assert similarity("Explain Kubernetes to me.", "explain kubernetes to me") > 0.99
    assert similarity("Give three tips.", "Give 3 tips.") == 1.0
    assert similarity("Don't use jargon.", "Do not use jargon.") == 1.0
    for a, b in [
        ("Give three tips.", "Give four tips."),
        ("Use jargon.", "Never use jargon."),
        ("Sort in ascending order.", "Sort in descending order."),
        ("Schedule it for Monday.", "Schedule it for Tuesday."),
        ("Compute a + b.", "Compute a - b."),
    ]:
        assert similarity(a, b) == 0.0, (a, b)
    assert prose_features("Write to his wife.").exact != prose_features("Write to her husband.").exact


def test_code_is_compared_without_layout_and_comments_but_keeps_todo_markers() -> None:
    assert code_tokens("x = 'a'  # note\n") == code_tokens('x  =  "a"\n') == ["x", "=", '"a"']
    assert code_tokens("run()  # TODO: retry\n") == ["run", "(", ")", "#TODO"]
    assert code_tokens("#include <stdio.h>\n// c\n/* d */ i--;") == [
        "#include",
        "<",
        "stdio",
        ".",
        "h",
        ">",
        "i",
        "--",
        ";",
    ]


def safetensors_file(path: Path, dtype: str, array: np.ndarray) -> Path:
    header = json.dumps({"w": {"dtype": dtype, "shape": list(array.shape), "data_offsets": [0, array.nbytes]}})
    path.write_bytes(struct.pack("<Q", len(header)) + header.encode() + array.tobytes())
    return path


def test_the_weights_are_mapped_not_read(tmp_path: Path) -> None:
    array = np.arange(12, dtype=np.float16).reshape(3, 4)
    mapped = map_safetensor(safetensors_file(tmp_path / "w.safetensors", "F16", array), "w")
    assert isinstance(mapped, np.memmap) and np.array_equal(mapped, array)
    assert shared_model().weights.shape == (32000, 256)
    with pytest.raises(EmbeddingUnavailableError, match="float16"):
        map_safetensor(safetensors_file(tmp_path / "x.safetensors", "F32", array.astype(np.float32)), "w")


# --- the store --------------------------------------------------------------------------------


def entry(text: str, created_at: float = 1000.0, review: str = "Verdict: fine.") -> CachedReview:
    return CachedReview(
        text=text,
        review=review,
        provider="simulated",
        response_model="simulated-small",
        input_tokens=200,
        output_tokens=50,
        cost_usd=0.0000035,
        guideline_ids=("pr-001",),
        created_at=created_at,
    )


def cache(client: QdrantClient, agent: str = "prompt-reviewer", **overrides: Any) -> SemanticCache:
    kind = CODE if agent == "code-critic" else PROSE
    options: dict[str, Any] = {"prompt_version": "v1", "threshold": THRESHOLD, "clock": lambda: 1000.0} | overrides
    return SemanticCache(client, "review-cache", agent, Matcher(shared_model(), kind), **options)


def test_a_paraphrase_hits_and_other_texts_miss(memory_qdrant: QdrantClient) -> None:
    store = cache(memory_qdrant)
    store.store(entry("Summarize this article in three bullet points."), "simulated-small")
    hit = store.lookup("Please summarise this article in 3 bullet points", "simulated-small")
    assert hit.hit is not None and hit.hit.review == "Verdict: fine." and hit.similarity is not None
    assert hit.similarity >= THRESHOLD
    miss = store.lookup("Summarize this article in five bullet points.", "simulated-small")
    assert miss.hit is None and miss.similarity == 0.0, "a close candidate, rejected"
    assert store.lookup("Write a haiku about the ocean.", "simulated-small").hit is None


def test_entries_are_per_agent_model_and_prompt_version(memory_qdrant: QdrantClient) -> None:
    text = "Summarize this article in three bullet points."
    cache(memory_qdrant).store(entry(text), "simulated-small")
    assert cache(memory_qdrant).lookup(text, "simulated-large").hit is None
    assert cache(memory_qdrant, "code-critic").lookup(text, "simulated-small").hit is None
    assert cache(memory_qdrant, prompt_version="v2").lookup(text, "simulated-small").hit is None
    assert cache(memory_qdrant).lookup(text, "simulated-small").hit is not None


def test_entries_expire_after_the_ttl(memory_qdrant: QdrantClient) -> None:
    now = [1000.0]
    store = cache(memory_qdrant, ttl_s=60, clock=lambda: now[0])
    store.store(entry("Explain Kubernetes to me.", created_at=1000.0), "simulated-small")
    now[0] = 1059.0
    assert store.lookup("Explain Kubernetes to me.", "simulated-small").hit is not None
    now[0] = 1061.0
    assert store.lookup("Explain Kubernetes to me.", "simulated-small").hit is None
    assert store.evict() == 1
    assert memory_qdrant.count("review-cache").count == 0


def test_the_size_bound_evicts_the_oldest(memory_qdrant: QdrantClient) -> None:
    store = cache(memory_qdrant, max_entries=10, maintenance_interval_s=3600)
    other = cache(memory_qdrant, "code-critic", max_entries=10)
    other.store(entry("x = 1\n"), "simulated-small")
    for n in range(15):
        store.store(entry(f"Write a poem number {n} about topic {n}.", created_at=1000.0 + n), "simulated-small")
    assert store.evict() == 6, "down to the bound less a tenth"
    left = sorted(
        p.payload["created_at"]  # type: ignore[index]
        for p in memory_qdrant.scroll("review-cache", limit=100)[0]
        if p.payload and p.payload["agent"] == "prompt-reviewer"
    )
    assert left == [1000.0 + n for n in range(6, 15)]
    assert other.lookup("x = 1\n", "simulated-small").hit is not None, "another agent's entries stay"


def test_qdrant_down_raises_cache_error_then_is_left_alone_for_a_while() -> None:
    calls: list[str] = []
    client = unreachable_qdrant()
    original = client.collection_exists

    def counting(*args: Any, **kwargs: Any) -> Any:
        calls.append("collection_exists")
        return original(*args, **kwargs)

    client.collection_exists = counting  # type: ignore[method-assign]
    now = [0.0]
    store = cache(client, retry_interval_s=15, monotonic=lambda: now[0])
    with pytest.raises(CacheError, match="lookup on 'review-cache' failed"):
        store.lookup("Explain Kubernetes.", "simulated-small")
    with pytest.raises(CacheError, match="skipped"):
        store.lookup("Explain Kubernetes.", "simulated-small")
    assert len(calls) == 1 and not store.ready
    now[0] = 16.0
    with pytest.raises(CacheError, match="failed"):
        store.store(entry("Explain Kubernetes."), "simulated-small")
    assert len(calls) == 2


# --- through the app --------------------------------------------------------------------------


class CountingProvider:
    system = "counting"
    server_address: str | None = None
    server_port: int | None = None

    def __init__(self) -> None:
        self.calls = 0

    async def chat(self, request: ChatRequest) -> ChatResult:
        """A grounded review: it cites the guidelines it was given (an ungrounded one is never cached)."""
        self.calls += 1
        cited = ", ".join(re.findall(r"^- \[([a-z]{2}-\d{3})\]", request.system, flags=re.MULTILINE))
        return ChatResult(
            text=f"Verdict: fine ({self.calls}). Applied: {cited}.",
            model=request.model,
            input_tokens=300,
            output_tokens=60,
        )

    async def aclose(self) -> None:
        return None


def sums(captured: Captured, name: str, *keys: str) -> dict[tuple[Any, ...], float]:
    totals: dict[tuple[Any, ...], float] = {}
    for point in captured.metric(name).data.data_points:
        key = tuple((point.attributes or {}).get(k) for k in keys)
        totals[key] = totals.get(key, 0) + getattr(point, "value", getattr(point, "count", 0))
    return totals


def test_a_paraphrase_is_answered_from_the_cache_without_an_llm_call(
    captured: Captured, memory_qdrant: QdrantClient
) -> None:
    provider = CountingProvider()
    settings = make_settings("prompt-reviewer", model="simulated-large", cheap_model="simulated-small")
    with client_for(settings, captured, qdrant=memory_qdrant, provider=provider) as client:
        first = client.post("/review", json={"text": "Write an email to a customer apologizing for the delay."}).json()
        second = client.post("/review", json={"text": "Write an email to a customer apologising for the delay"}).json()
    assert provider.calls == 1
    assert (first["cache"], second["cache"]) == ("miss", "hit")
    assert second["review"] == first["review"] and second["retrieval"] == "skipped"
    assert second["cost_usd"] == 0.0 and second["cost_avoided_usd"] == pytest.approx(first["cost_usd"])

    assert sums(captured, "agent.cache.lookups", "agent.cache.outcome", "gen_ai.request.model") == {
        ("miss", "simulated-small"): 1,
        ("hit", "simulated-small"): 1,
    }
    assert sums(captured, "agent.cache.lookup.duration", "agent.cache.outcome") == {("miss",): 1, ("hit",): 1}
    assert sums(captured, "agent.cache.tokens.avoided", "gen_ai.token.type") == {("input",): 300, ("output",): 60}
    avoided = sums(captured, "agent.cache.cost.avoided", "agent.route")
    spent = sums(captured, "agent.llm.cost", "agent.route")
    assert avoided == {("cheap",): pytest.approx(first["cost_usd"])}
    # Cost without the cache = what was spent + what the cache avoided: two calls' worth.
    assert spent[("cheap",)] + avoided[("cheap",)] == pytest.approx(2 * first["cost_usd"])
    baseline = sums(captured, "agent.llm.cost.baseline", "agent.cache.outcome", "gen_ai.request.model")
    assert set(baseline) == {("miss", "simulated-large"), ("hit", "simulated-large")}

    lookups = [s for s in captured.finished_spans() if s.name == "cache lookup review-cache"]
    assert [dict(s.attributes or {})["agent.cache.outcome"] for s in lookups] == ["miss", "hit"]
    assert dict(lookups[1].attributes or {})["agent.cache.similarity"] >= THRESHOLD  # type: ignore[operator]
    assert dict(lookups[1].attributes or {})["db.system.name"] == "qdrant"
    assert len([s for s in captured.finished_spans() if s.name == "cache store review-cache"]) == 1
    assert len([s for s in captured.finished_spans() if s.name.startswith("chat ")]) == 1


def test_the_cache_can_be_switched_off(captured: Captured, memory_qdrant: QdrantClient) -> None:
    provider = CountingProvider()
    with client_for(make_settings(semantic_cache=False), captured, qdrant=memory_qdrant, provider=provider) as client:
        health = client.get("/healthz").json()
        bodies = [client.post("/review", json={"text": "Explain Kubernetes to me."}).json() for _ in range(2)]
    assert health["cache"] == "off" and provider.calls == 2
    assert [b["cache"] for b in bodies] == ["disabled", "disabled"]
    assert not [s for s in captured.finished_spans() if s.name.startswith("cache ")]
    assert Settings.from_env({"AGENT_ROLE": "code-critic", "SEMANTIC_CACHE": "off"}).semantic_cache is False


def test_without_qdrant_the_cache_is_disabled(captured: Captured) -> None:
    with client_for(make_settings(), captured, provider=CountingProvider()) as client:
        assert client.get("/healthz").json()["cache"] == "disabled"
        assert client.post("/review", json={"text": "Explain Kubernetes."}).json()["cache"] == "disabled"


def test_qdrant_down_is_a_miss_not_a_failed_review(captured: Captured) -> None:
    provider = CountingProvider()
    with client_for(make_settings(), captured, qdrant=unreachable_qdrant(), provider=provider) as client:
        health = client.get("/healthz").json()
        bodies = [client.post("/review", json={"text": "Explain Kubernetes to me."}) for _ in range(2)]
    assert health["cache"] == "unavailable"
    assert [b.status_code for b in bodies] == [200, 200] and provider.calls == 2
    assert [b.json()["cache"] for b in bodies] == ["error", "error"]
    assert sums(captured, "agent.cache.lookups", "agent.cache.outcome") == {("error",): 2}
    lookup = next(s for s in captured.finished_spans() if s.name == "cache lookup review-cache")
    assert lookup.status.status_code == StatusCode.ERROR
    server = [s for s in captured.finished_spans() if s.name == "POST /review"]
    assert all(s.status.status_code != StatusCode.ERROR for s in server)
    warnings = [r for r in captured.log_records() if str(r.log_record.body).startswith("semantic cache")]
    assert len(warnings) == 1, "logged once per outage (here at startup), not on every request"


@pytest.mark.parametrize(
    ("environ", "expected"),
    [
        ({"CACHE_SIMILARITY_THRESHOLD": "0.3"}, "CACHE_SIMILARITY_THRESHOLD must be between"),
        ({"CACHE_TTL_SECONDS": "0"}, "CACHE_TTL_SECONDS must be between"),
        ({"CACHE_MAX_ENTRIES": "many"}, "CACHE_MAX_ENTRIES must be a number"),
        ({"SEMANTIC_CACHE": "sometimes"}, "SEMANTIC_CACHE must be on or off"),
    ],
)
def test_bad_cache_settings(environ: dict[str, str], expected: str) -> None:
    from agent.config import ConfigError  # noqa: PLC0415

    with pytest.raises(ConfigError, match=expected):
        Settings.from_env({"AGENT_ROLE": "code-critic", **environ})


def test_cache_settings_from_env() -> None:
    settings = Settings.from_env(
        {
            "AGENT_ROLE": "code-critic",
            "QDRANT_CACHE_COLLECTION": "lab-cache",
            "CACHE_SIMILARITY_THRESHOLD": "0.9",
            "CACHE_TTL_SECONDS": "3600",
            "CACHE_MAX_ENTRIES": "500",
        }
    )
    assert (settings.cache_collection, settings.cache_threshold, settings.cache_ttl_s, settings.cache_max_entries) == (
        "lab-cache",
        0.9,
        3600.0,
        500,
    )
    assert (settings.semantic_cache, Settings(role="x").cache_threshold) == (True, 0.8)
