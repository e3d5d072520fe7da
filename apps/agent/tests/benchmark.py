"""Benchmark of the semantic cache and model routing (not a test: `python apps/agent/tests/benchmark.py`).

1. Labelled pairs (`paraphrase_pairs.py`): precision and recall of the cache's similarity at
   thresholds, against the same comparison on the hashing embedding of `agent/embedding.py` and
   against plain cosine similarity of either embedding.
2. The traffic generator's workload (`agent/workload.py`, fixed seed) through the real app with
   the simulated provider and an in-process Qdrant, both agents, four ways: cache and routing each
   on or off. Cost, hit rate, wrong hits (a hit from another topic), and the cache lookup's
   latency. The simulated provider fails no request here (SIMULATED_ERROR_RATE 0), so the four
   runs answer the same requests.

The in-process Qdrant is a numpy scan; a Qdrant server adds an HTTP round trip to each lookup
(about a millisecond on one host). Options: --requests N (default 2000), --seed S, --json.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import sys
import time
import warnings
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

_HERE = Path(__file__).resolve().parent
for _path in (_HERE.parent, _HERE):
    if str(_path) not in sys.path:
        sys.path.insert(0, str(_path))

from opentelemetry.sdk.resources import Resource  # noqa: E402
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter  # noqa: E402
from qdrant_client import QdrantClient  # noqa: E402

from agent import embedding  # noqa: E402
from agent.app import create_app  # noqa: E402
from agent.cache import Lookup, SemanticCache  # noqa: E402
from agent.config import Settings  # noqa: E402
from agent.semantic import CODE, PROSE, Matcher, shared_model  # noqa: E402
from agent.telemetry import Telemetry  # noqa: E402
from agent.workload import Workload  # noqa: E402
from paraphrase_pairs import CODE_PAIRS, PROMPT_PAIRS  # noqa: E402

with warnings.catch_warnings():
    warnings.filterwarnings("ignore", message="Using `httpx` with `starlette.testclient`")
    from fastapi.testclient import TestClient

THRESHOLDS = (0.6, 0.7, 0.75, 0.8, 0.85, 0.9, 0.95)
Pairs = tuple[tuple[str, str, bool], ...]


class HashingModel:
    """agent/embedding.py's feature hashing behind the EmbeddingModel interface, for comparison."""

    dimensions = embedding.DIMENSIONS

    def embed(self, text: str) -> np.ndarray:
        return np.asarray(embedding.embed(text), dtype=np.float32)

    def embed_words(self, words: list[str]) -> np.ndarray:
        return np.stack([self.embed(w) for w in words]) if words else np.zeros((0, self.dimensions))


def scores(matcher: Matcher, pairs: Pairs, *, cosine_only: bool) -> list[tuple[float, bool]]:
    out = []
    for a, b, label in pairs:
        if cosine_only:
            out.append((float(np.dot(matcher.model.embed(a), matcher.model.embed(b))), label))
        else:
            out.append((matcher.similarity(matcher.features(a), matcher.features(b)), label))
    return out


def precision_recall(scored: list[tuple[float, bool]], threshold: float) -> tuple[float | None, float]:
    hits = [label for score, label in scored if score >= threshold]
    positives = sum(1 for _, label in scored if label)
    return (sum(hits) / len(hits) if hits else None), sum(hits) / positives


def best_recall_at_precision(scored: list[tuple[float, bool]], target: float = 0.95) -> tuple[float, float] | None:
    """(threshold, recall) of the lowest threshold whose precision is at least `target`."""
    for threshold in sorted({round(s, 4) for s, _ in scored}):
        precision, recall = precision_recall(scored, threshold)
        if precision is not None and precision >= target:
            return threshold, recall
    return None


def labelled_pairs(threshold: float) -> dict[str, Any]:
    wordllama, hashing = shared_model(), HashingModel()
    results: dict[str, Any] = {}
    for kind, pairs in ((PROSE, PROMPT_PAIRS), (CODE, CODE_PAIRS)):
        for name, model, cosine_only in (
            ("wordllama + paraphrase check (the cache)", wordllama, False),
            ("hashing + paraphrase check", hashing, False),
            ("wordllama cosine only", wordllama, True),
            ("hashing cosine only", hashing, True),
        ):
            scored = scores(Matcher(model, kind), pairs, cosine_only=cosine_only)  # type: ignore[arg-type]
            precision, recall = precision_recall(scored, threshold)
            results[f"{kind}: {name}"] = {
                "pairs": len(pairs),
                "paraphrases": sum(1 for *_, label in pairs if label),
                f"precision@{threshold}": precision,
                f"recall@{threshold}": recall,
                "sweep": {t: precision_recall(scored, t) for t in THRESHOLDS},
                "best recall at precision >= 0.95": best_recall_at_precision(scored),
            }
    return results


@dataclass
class Run:
    name: str
    requests: int = 0
    failed: int = 0
    cost_usd: float = 0.0
    avoided_usd: float = 0.0
    hits: int = 0
    lookups: int = 0
    wrong_hits: int = 0
    answers: list[tuple[bool, str]] = field(default_factory=list)
    """Per request: (answered from the cache, the review)."""
    routes: dict[str, int] = field(default_factory=dict)
    lookup_s: list[float] = field(default_factory=list)
    qdrant_s: list[float] = field(default_factory=list)
    """Of each lookup, the Qdrant query (in-process here)."""
    lookup_span_s: list[float] = field(default_factory=list)
    seconds: float = 0.0


def run_workload(name: str, samples: list[tuple[str, str, str]], *, cache: bool, routing: bool) -> Run:
    """Send every (role, text, topic) through a fresh app per agent; one in-process Qdrant for both."""
    result = Run(name)
    qdrant = QdrantClient(":memory:")
    spans = InMemorySpanExporter()
    telemetry = Telemetry(Resource.create({"service.name": "benchmark"}), span_exporter=spans, synchronous=True)
    clients: dict[str, TestClient] = {}
    topic_of: dict[str, str] = {}  # redacted text stored in the cache -> the topic it came from
    current: dict[str, str] = {}
    for role in ("prompt-reviewer", "code-critic"):
        settings = replace(
            Settings(role=role, simulated_latency_s=0.0, simulated_error_rate=0.0),
            semantic_cache=cache,
            routing=routing,
        )
        app = create_app(settings, telemetry=telemetry, qdrant=qdrant)
        clients[role] = TestClient(app).__enter__()
        service_cache = _service(app).cache
        if service_cache is not None:
            _instrument(service_cache, result, topic_of, current)
    start = time.perf_counter()
    for role, text, topic in samples:
        current["topic"] = topic
        current["hit_topic"] = ""
        response = clients[role].post("/review", json={"text": text})
        result.requests += 1
        if response.status_code != 200:
            result.failed += 1
            result.answers.append((False, ""))
            continue
        body = response.json()
        result.cost_usd += body["cost_usd"] or 0.0
        result.routes[body["route"]] = result.routes.get(body["route"], 0) + 1
        if body["cache"] in ("hit", "miss", "error"):
            result.lookups += 1
        if body["cache"] == "hit":
            result.hits += 1
            result.avoided_usd += body["cost_avoided_usd"] or 0.0
            if current["hit_topic"] != topic:
                result.wrong_hits += 1
        result.answers.append((body["cache"] == "hit", body["review"]))
    result.seconds = time.perf_counter() - start
    result.lookup_span_s = [
        (s.end_time - s.start_time) / 1e9  # type: ignore[operator]
        for s in spans.get_finished_spans()
        if s.name.startswith("cache lookup")
    ]
    for client in clients.values():
        client.__exit__(None, None, None)
    telemetry.shutdown()
    qdrant.close()
    return result


def _service(app: Any) -> Any:
    """The ReviewService inside an app built by create_app (a closure of its /review route)."""
    for route in app.routes:
        if getattr(route, "path", "") == "/review":
            for cell in route.endpoint.__closure__ or ():
                if type(cell.cell_contents).__name__ == "ReviewService":
                    return cell.cell_contents
    raise LookupError("no ReviewService in the app")


def _instrument(cache: SemanticCache, result: Run, topic_of: dict[str, str], current: dict[str, str]) -> None:
    """Time each lookup and note which topic a hit came from, and which text a miss stores."""
    lookup, store, query = cache.lookup, cache.store, cache.client.query_points

    def timed_query(*args: Any, **kwargs: Any) -> Any:
        if kwargs.get("collection_name") != cache.collection:  # the guidelines' retrieval shares the client
            return query(*args, **kwargs)
        start = time.perf_counter()
        try:
            return query(*args, **kwargs)
        finally:
            result.qdrant_s.append(time.perf_counter() - start)

    if not getattr(cache.client, "benchmark_timed", False):  # both agents' caches share one client
        cache.client.query_points = timed_query  # type: ignore[method-assign]
        cache.client.benchmark_timed = True  # type: ignore[attr-defined]

    def timed_lookup(text: str, model: str) -> Lookup:
        start = time.perf_counter()
        found = lookup(text, model)
        result.lookup_s.append(time.perf_counter() - start)
        if found.hit is not None:
            current["hit_topic"] = topic_of.get(found.hit.text, "?")
        return found

    def tracked_store(entry: Any, model: str) -> None:
        topic_of.setdefault(entry.text, current["topic"])
        store(entry, model)

    cache.lookup = timed_lookup  # type: ignore[method-assign]
    cache.store = tracked_store  # type: ignore[method-assign]


def _minus(totals: list[float], parts: list[float]) -> list[float]:
    """Each lookup's time without its Qdrant query (one query per lookup, in order)."""
    return [total - part for total, part in zip(totals, parts, strict=False)]


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) if values else float("nan")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=20261201)
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    args = parser.parse_args()
    logging.disable(logging.WARNING)  # the app logs every review, and warns of each injection
    threshold = Settings(role="prompt-reviewer").cache_threshold

    pairs = labelled_pairs(threshold)
    workload = Workload(__import__("random").Random(args.seed))
    samples = []
    for n in range(args.requests):
        role = ("prompt-reviewer", "code-critic")[n % 2]
        sample = workload.sample(role)
        samples.append((role, sample.text, sample.topic))

    runs = {
        (cache, routing): run_workload(
            f"cache {'on' if cache else 'off'}, routing {'on' if routing else 'off'}",
            samples,
            cache=cache,
            routing=routing,
        )
        for cache, routing in ((False, False), (True, False), (False, True), (True, True))
    }
    baseline = runs[(False, False)].cost_usd
    matchers = {"prompt-reviewer": Matcher(shared_model(), PROSE), "code-critic": Matcher(shared_model(), CODE)}
    embed_s = []
    for role, text, _ in samples:
        start = time.perf_counter()
        matchers[role].vector(matchers[role].features(text))
        embed_s.append(time.perf_counter() - start)

    def differing(cached: Run, uncached: Run) -> int:
        """Hits whose review differs from what the same request got without the cache (same route)."""
        return sum(
            1
            for (hit, review), (_, fresh) in zip(cached.answers, uncached.answers, strict=True)
            if hit and review != fresh
        )

    differs = {
        runs[(True, False)].name: differing(runs[(True, False)], runs[(False, False)]),
        runs[(True, True)].name: differing(runs[(True, True)], runs[(False, True)]),
    }
    report = {
        "threshold": threshold,
        "labelled_pairs": pairs,
        "workload": {
            "requests": args.requests,
            "seed": args.seed,
            "digest": hashlib.sha256("\n".join(t for _, t, _ in samples).encode()).hexdigest()[:12],
            "distinct_texts": len({t for _, t, _ in samples}),
            "new_texts": sum(1 for *_, topic in samples if topic.startswith("new-")),
            "embed_ms_p50": percentile(embed_s, 50) * 1000,
            "embed_ms_p95": percentile(embed_s, 95) * 1000,
        },
        "runs": {
            run.name: {
                "requests": run.requests,
                "failed": run.failed,
                "cost_usd": run.cost_usd,
                "cost_reduction_vs_both_off": 1 - run.cost_usd / baseline if baseline else None,
                "cache_avoided_usd": run.avoided_usd,
                "hit_rate": run.hits / run.lookups if run.lookups else None,
                "hits": run.hits,
                "wrong_hits": run.wrong_hits,
                "hits_whose_simulated_review_differs": differs.get(run.name),
                "routes": run.routes,
                "lookup_ms_p50": percentile(run.lookup_s, 50) * 1000,
                "lookup_ms_p95": percentile(run.lookup_s, 95) * 1000,
                "lookup_without_qdrant_ms_p50": percentile(_minus(run.lookup_s, run.qdrant_s), 50) * 1000,
                "lookup_without_qdrant_ms_p95": percentile(_minus(run.lookup_s, run.qdrant_s), 95) * 1000,
                "qdrant_query_ms_p50": percentile(run.qdrant_s, 50) * 1000,
                "qdrant_query_ms_p95": percentile(run.qdrant_s, 95) * 1000,
                "lookup_span_ms_p50": percentile(run.lookup_span_s, 50) * 1000,
                "lookup_span_ms_p95": percentile(run.lookup_span_s, 95) * 1000,
                "seconds": run.seconds,
            }
            for run in runs.values()
        },
    }
    if args.json:
        print(json.dumps(report, indent=2, default=str))
        return 0
    print(f"Labelled pairs at threshold {threshold} (precision, recall):")
    for name, figures in pairs.items():
        precision = figures[f"precision@{threshold}"]
        print(
            f"  {name:58s} precision {'n/a' if precision is None else f'{precision:.3f}'}  "
            f"recall {figures[f'recall@{threshold}']:.3f}  best recall at precision>=0.95: "
            f"{figures['best recall at precision >= 0.95']}"
        )
    w = report["workload"]
    print(
        f"\nWorkload: {w['requests']} requests (seed {w['seed']}), {w['distinct_texts']} distinct texts, "
        f"{w['new_texts']} new; embedding a text: p50 {w['embed_ms_p50']:.3f} ms, p95 {w['embed_ms_p95']:.3f} ms"
    )
    print("| run | cost USD | reduction vs both off | hit rate | wrong hits | routes | lookup p50 / p95 ms |")
    print("|---|---|---|---|---|---|---|")
    for name, r in report["runs"].items():
        hit_rate = "-" if r["hit_rate"] is None else f"{r['hit_rate']:.1%}"
        print(
            f"| {name} | {r['cost_usd']:.6f} | {r['cost_reduction_vs_both_off']:.1%} | {hit_rate} | {r['wrong_hits']} "
            f"| {r['routes']} | {r['lookup_ms_p50']:.2f} / {r['lookup_ms_p95']:.2f} |"
        )
    both = report["runs"]["cache on, routing on"]
    print(
        f"\nCache lookup (cache and routing on): embedding and comparing p50 "
        f"{both['lookup_without_qdrant_ms_p50']:.2f} ms, p95 {both['lookup_without_qdrant_ms_p95']:.2f} ms; "
        f"the in-process Qdrant's query p50 {both['qdrant_query_ms_p50']:.2f} ms, "
        f"p95 {both['qdrant_query_ms_p95']:.2f} ms"
    )
    print(
        f"Cache lookup latency with the span's thread hop: p50 {both['lookup_span_ms_p50']:.2f} ms, "
        f"p95 {both['lookup_span_ms_p95']:.2f} ms; hits whose simulated review would differ: "
        f"{both['hits_whose_simulated_review_differs']} of {both['hits']}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
