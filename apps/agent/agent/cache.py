"""The semantic cache: earlier reviews in Qdrant, found again for texts that mean the same.

One collection (QDRANT_CACHE_COLLECTION) holds the entries of both agents; a lookup only sees the
entries of its agent, its model (the route's), the current prompt version (instructions and
guidelines, `roles.prompt_version`) and the last CACHE_TTL_SECONDS. Qdrant returns the nearest
entries by cosine of their vectors, at least the threshold; each is then compared with the request
by `semantic.Matcher.similarity`, and the best at or above CACHE_SIMILARITY_THRESHOLD is a hit.

Entries hold the redacted text (never the raw input) and its redacted review. Each agent keeps at
most CACHE_MAX_ENTRIES: at most once a minute, from the write path, expired entries are deleted
and, over the bound, the oldest tenth.

Qdrant failing is a miss, never a failed review: the error is raised as CacheError (the service
counts it as outcome `error`), and for `retry_interval_s` after it no call is made to Qdrant.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from qdrant_client import QdrantClient, models

from agent.semantic import Features, Matcher

logger = logging.getLogger(__name__)

_ID_NAMESPACE = uuid.UUID("0b6f2f0e-3c55-4a8e-9d7c-5e2a1c9b7d41")
CANDIDATES = 5


class CacheError(RuntimeError):
    """Qdrant could not be reached or answered with an error (or did recently)."""


@dataclass(frozen=True)
class CachedReview:
    """What a hit answers with, and what the call it saves would have cost."""

    text: str
    review: str
    provider: str
    response_model: str
    input_tokens: int
    output_tokens: int
    cost_usd: float | None
    guideline_ids: tuple[str, ...]
    created_at: float

    def payload(self, agent: str, model: str, prompt_version: str) -> dict[str, Any]:
        return {
            "agent": agent,
            "model": model,
            "prompt_version": prompt_version,
            "created_at": self.created_at,
            "text": self.text,
            "review": self.review,
            "provider": self.provider,
            "response_model": self.response_model,
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
            "cost_usd": self.cost_usd,
            "guideline_ids": list(self.guideline_ids),
        }

    @classmethod
    def from_payload(cls, payload: dict[str, Any]) -> CachedReview:
        cost = payload.get("cost_usd")
        return cls(
            text=str(payload["text"]),
            review=str(payload["review"]),
            provider=str(payload.get("provider", "")),
            response_model=str(payload.get("response_model") or payload.get("model", "")),
            input_tokens=int(payload.get("input_tokens") or 0),
            output_tokens=int(payload.get("output_tokens") or 0),
            cost_usd=None if cost is None else float(cost),
            guideline_ids=tuple(str(g) for g in payload.get("guideline_ids") or ()),
            created_at=float(payload.get("created_at") or 0.0),
        )


@dataclass(frozen=True)
class Lookup:
    hit: CachedReview | None
    similarity: float | None
    """The best candidate's similarity (a hit's, or the closest miss's); None without candidates."""


class SemanticCache:
    def __init__(
        self,
        client: QdrantClient,
        collection: str,
        agent: str,
        matcher: Matcher,
        *,
        prompt_version: str,
        threshold: float = 0.8,
        ttl_s: float = 86_400.0,
        max_entries: int = 10_000,
        retry_interval_s: float = 15.0,
        maintenance_interval_s: float = 60.0,
        clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.client = client
        self.collection = collection
        self.agent = agent
        self.matcher = matcher
        self.prompt_version = prompt_version
        self.threshold = threshold
        self.ttl_s = ttl_s
        self.max_entries = max_entries
        self.retry_interval_s = retry_interval_s
        self.maintenance_interval_s = maintenance_interval_s
        self._clock, self._monotonic = clock, monotonic
        self._lock = threading.Lock()
        self._ready = False
        self._down_until = 0.0
        self._next_maintenance = 0.0

    @property
    def ready(self) -> bool:
        """Whether the collection is known to exist and the last call to Qdrant succeeded."""
        return self._ready

    # --- Qdrant calls, each behind the outage guard -------------------------------------------

    def _call(self, what: str, call: Callable[[], Any]) -> Any:
        if self._monotonic() < self._down_until:
            raise CacheError(f"{what} skipped: Qdrant failed less than {self.retry_interval_s:g} s ago")
        try:
            if not self._ready:
                self._ensure_collection()
            result = call()
        except Exception as exc:
            self._ready = False
            self._down_until = self._monotonic() + self.retry_interval_s
            raise CacheError(f"{what} on {self.collection!r} failed: {exc}") from exc
        return result

    def ensure_collection(self) -> None:
        """Create the collection and its payload indexes if missing; CacheError if Qdrant fails."""
        self._call("creating the collection", lambda: None)

    def _ensure_collection(self) -> None:
        with self._lock:
            if self._ready:
                return
            if not self.client.collection_exists(self.collection):
                try:
                    self.client.create_collection(
                        collection_name=self.collection,
                        vectors_config=models.VectorParams(
                            size=self.matcher.model.dimensions, distance=models.Distance.COSINE
                        ),
                    )
                except Exception:
                    # Both agents create the collection at startup; the loser of the race finds it there.
                    if not self.client.collection_exists(self.collection):
                        raise
                with warnings.catch_warnings():
                    # The in-memory client used in tests warns that payload indexes do nothing there.
                    warnings.simplefilter("ignore", UserWarning)
                    for field, schema in (
                        ("agent", models.PayloadSchemaType.KEYWORD),
                        ("model", models.PayloadSchemaType.KEYWORD),
                        ("prompt_version", models.PayloadSchemaType.KEYWORD),
                        ("created_at", models.PayloadSchemaType.FLOAT),
                    ):
                        self.client.create_payload_index(
                            collection_name=self.collection, field_name=field, field_schema=schema
                        )
                logger.info("created Qdrant collection %s", self.collection)
            self._ready = True

    def _filter(self, *, model: str | None = None, newer_than: float | None = None) -> models.Filter:
        must: list[models.Condition] = [models.FieldCondition(key="agent", match=models.MatchValue(value=self.agent))]
        if model is not None:
            must += [
                models.FieldCondition(key="model", match=models.MatchValue(value=model)),
                models.FieldCondition(key="prompt_version", match=models.MatchValue(value=self.prompt_version)),
            ]
        if newer_than is not None:
            must.append(models.FieldCondition(key="created_at", range=models.Range(gte=newer_than)))
        return models.Filter(must=must)

    # --- lookup and store ---------------------------------------------------------------------

    def lookup(self, text: str, model: str) -> Lookup:
        """The best entry for `text` on `model` if it is at least the threshold; CacheError if Qdrant fails."""
        features = self.matcher.features(text)
        vector = self.matcher.vector(features)
        response = self._call(
            "lookup",
            lambda: self.client.query_points(
                collection_name=self.collection,
                query=vector.tolist(),
                query_filter=self._filter(model=model, newer_than=self._clock() - self.ttl_s),
                limit=CANDIDATES,
                score_threshold=self.threshold,
                with_payload=True,
            ),
        )
        best: tuple[float, CachedReview] | None = None
        for point in response.points:
            if not point.payload or "text" not in point.payload:
                continue
            entry = CachedReview.from_payload(point.payload)
            score = self.matcher.similarity(features, self.matcher.features(entry.text), vector)
            if best is None or score > best[0]:
                best = (score, entry)
        if best is None:
            return Lookup(None, None)
        score, entry = best
        return Lookup(entry if score >= self.threshold else None, score)

    def store(self, entry: CachedReview, model: str) -> None:
        """Add (or refresh) an entry; CacheError if Qdrant fails."""
        features: Features = self.matcher.features(entry.text)
        key = f"{self.agent}\n{model}\n{self.prompt_version}\n{features.normalized}"
        point = models.PointStruct(
            id=str(uuid.uuid5(_ID_NAMESPACE, key)),
            vector=self.matcher.vector(features).tolist(),
            payload=entry.payload(self.agent, model, self.prompt_version),
        )
        self._call("store", lambda: self.client.upsert(collection_name=self.collection, points=[point], wait=True))
        if self._monotonic() >= self._next_maintenance:
            self._next_maintenance = self._monotonic() + self.maintenance_interval_s
            self._call("maintenance", self.evict)

    def evict(self) -> int:
        """Delete this agent's expired entries and, over max_entries, the oldest; return how many."""
        before = self.client.count(self.collection, count_filter=self._filter(), exact=True).count
        expired = models.Filter(
            must=[
                models.FieldCondition(key="agent", match=models.MatchValue(value=self.agent)),
                models.FieldCondition(key="created_at", range=models.Range(lt=self._clock() - self.ttl_s)),
            ]
        )
        self.client.delete(self.collection, points_selector=models.FilterSelector(filter=expired), wait=True)
        count = self.client.count(self.collection, count_filter=self._filter(), exact=True).count
        if count > self.max_entries:
            # A tenth more than needed, so the bound is not hit again by the next write.
            excess = count - self.max_entries + self.max_entries // 10
            oldest, _ = self.client.scroll(
                self.collection,
                scroll_filter=self._filter(),
                limit=excess,
                order_by=models.OrderBy(key="created_at", direction=models.Direction.ASC),
                with_payload=False,
                with_vectors=False,
            )
            self.client.delete(
                self.collection, points_selector=models.PointIdsList(points=[p.id for p in oldest]), wait=True
            )
            count -= len(oldest)
        evicted = before - count
        if evicted:
            logger.info("semantic cache: evicted %d entries of %s, %d left", evicted, self.agent, count)
        return evicted
