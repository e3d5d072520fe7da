"""Review guidelines in Qdrant: seeded on startup, searched for every review.

Each guideline has two vectors: the hashing embedding as the collection's unnamed dense vector and
a BM25 sparse vector (`bm25`, IDF by Qdrant). RETRIEVAL_MODE picks dense, sparse or hybrid: both
searched in one query, fused by Qdrant. A reranker, if given, reorders the fused candidates.

Qdrant may start after the agent, go away or lose the collection; the store never fails the
agent's startup and, while not ready, retries seeding (at most every `retry_interval_s`) from
the request path, so the collection appears as soon as Qdrant does. A collection made before the
sparse vector existed gets it added in place on seeding: its points and dense vectors stay.
"""

from __future__ import annotations

import logging
import statistics
import threading
import time
import uuid
import warnings
from collections.abc import Callable, Sequence
from typing import Protocol

from qdrant_client import QdrantClient, models

from agent import semconv as sc
from agent import sparse
from agent.embedding import DIMENSIONS, embed
from agent.roles import GUIDELINES, Guideline, guidelines_for

logger = logging.getLogger(__name__)

SPARSE_VECTOR = "bm25"
FUSION = models.Fusion.RRF
"""Reciprocal rank fusion: ranks only, so the scales of cosine and BM25 scores do not matter; with the
reranker it measured best (README, "Retrieval")."""
CANDIDATES = 10
"""At least this many per prefetch, and for the reranker to reorder: more than a role has."""

# Point ids must be unsigned ints or UUIDs; deriving them from guideline ids makes upserts idempotent.
_ID_NAMESPACE = uuid.UUID("6f1c2d3e-8a4b-5c6d-9e0f-112233445566")


def point_id(guideline_id: str) -> str:
    return str(uuid.uuid5(_ID_NAMESPACE, guideline_id))


def document(guideline: Guideline) -> str:
    """The text a guideline's vectors, and the reranker's, are made of."""
    return f"{guideline.title}. {guideline.text}"


# Over every role's guidelines, as both roles share the collection; the same in every agent.
AVERAGE_LENGTH = statistics.fmean(len(sparse.terms(document(g))) for g in GUIDELINES)


class Reranker(Protocol):
    def rerank(self, text: str, guidelines: Sequence[Guideline]) -> list[Guideline]: ...


class RetrievalError(RuntimeError):
    """Qdrant could not be reached or answered with an error."""


class GuidelineStore:
    """One role's guidelines in a shared collection, filtered by the `role` payload field."""

    def __init__(
        self,
        client: QdrantClient,
        collection: str,
        role: str,
        *,
        mode: str = sc.RETRIEVAL_MODE_HYBRID,
        reranker: Reranker | None = None,
        fusion: models.Fusion = FUSION,
        retry_interval_s: float = 15.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if mode not in sc.RETRIEVAL_MODES:
            raise ValueError(f"mode must be one of {', '.join(sc.RETRIEVAL_MODES)}, got {mode!r}")
        self.client = client
        self.collection = collection
        self.role = role
        self.mode = mode
        self.reranker = reranker
        self.fusion = fusion
        self.retry_interval_s = retry_interval_s
        self._clock = clock
        self._lock = threading.Lock()
        self._ready = False
        self._next_attempt = 0.0

    @property
    def ready(self) -> bool:
        """Whether seeding succeeded; the last known state, no call to Qdrant."""
        return self._ready

    def ensure_seeded(self) -> int:
        """Create or migrate the collection and upsert this role's guidelines; return how many."""
        with self._lock:
            return self._seed()

    def _seed(self) -> int:
        self._next_attempt = self._clock() + self.retry_interval_s
        try:
            self._create_collection_if_missing()
            self._add_sparse_vector_if_missing()
            guidelines = guidelines_for(self.role)
            self.client.upsert(
                collection_name=self.collection,
                points=[
                    models.PointStruct(
                        id=point_id(g.id),
                        # "" is the unnamed dense vector: the one the collection was first made with.
                        vector={
                            "": embed(document(g)),
                            SPARSE_VECTOR: sparse.document_vector(document(g), AVERAGE_LENGTH),
                        },
                        payload={"guideline_id": g.id, "role": g.role, "title": g.title, "text": g.text},
                    )
                    for g in guidelines
                ],
                wait=True,
            )
        except Exception as exc:
            self._ready = False
            raise RetrievalError(f"seeding {self.collection!r} failed: {exc}") from exc
        self._ready = True
        return len(guidelines)

    def search(self, text: str, limit: int) -> list[Guideline]:
        """The `limit` guidelines of this role closest to `text`; RetrievalError if Qdrant fails."""
        # Retry seeding from one request at a time; the others go straight to the query.
        if not self._ready and self._clock() >= self._next_attempt and self._lock.acquire(blocking=False):
            try:
                count = self._seed()
                logger.info("seeded %d guidelines for %s into %s", count, self.role, self.collection)
            except RetrievalError as exc:
                logger.warning("guideline seeding retry failed: %s", exc)
            finally:
                self._lock.release()
        candidates = max(limit, CANDIDATES)
        try:
            response = self.client.query_points(
                collection_name=self.collection,
                **self._query(text, candidates),
                limit=candidates if self.reranker else limit,
                with_payload=True,
            )
        except Exception as exc:
            # Qdrant went away or lost the collection: report it in /healthz and seed again later.
            self._ready = False
            raise RetrievalError(f"query on {self.collection!r} failed: {exc}") from exc
        found = [
            Guideline(
                id=str(p.payload["guideline_id"]),
                role=str(p.payload["role"]),
                title=str(p.payload.get("title", "")),
                text=str(p.payload.get("text", "")),
            )
            for p in response.points
            if p.payload and "guideline_id" in p.payload
        ]
        if self.reranker is not None:
            found = self.reranker.rerank(text, found)
        return found[:limit]

    def _query(self, text: str, candidates: int) -> dict[str, object]:
        """The query_points arguments of this store's mode, all filtered to its role."""
        role_only = models.Filter(must=[models.FieldCondition(key="role", match=models.MatchValue(value=self.role))])
        if self.mode == sc.RETRIEVAL_MODE_DENSE:
            return {"query": embed(text), "query_filter": role_only}
        if self.mode == sc.RETRIEVAL_MODE_SPARSE:
            return {"query": sparse.query_vector(text), "using": SPARSE_VECTOR, "query_filter": role_only}
        # The filter goes on each prefetch: the fusion only sees what the prefetches found.
        return {
            "prefetch": [
                models.Prefetch(query=embed(text), filter=role_only, limit=candidates),
                models.Prefetch(
                    query=sparse.query_vector(text), using=SPARSE_VECTOR, filter=role_only, limit=candidates
                ),
            ],
            "query": models.FusionQuery(fusion=self.fusion),
            "query_filter": role_only,
        }

    def _create_collection_if_missing(self) -> None:
        if self.client.collection_exists(self.collection):
            return
        try:
            self.client.create_collection(
                collection_name=self.collection,
                vectors_config=models.VectorParams(size=DIMENSIONS, distance=models.Distance.COSINE),
                sparse_vectors_config={SPARSE_VECTOR: models.SparseVectorParams(modifier=models.Modifier.IDF)},
            )
        except Exception:
            # Both agents seed the same collection at startup; the loser of the race finds it there.
            if not self.client.collection_exists(self.collection):
                raise
        with warnings.catch_warnings():
            # The in-memory client used in tests warns that payload indexes do nothing there.
            warnings.simplefilter("ignore", UserWarning)
            self.client.create_payload_index(
                collection_name=self.collection, field_name="role", field_schema=models.PayloadSchemaType.KEYWORD
            )
        logger.info("created Qdrant collection %s", self.collection)

    def _has_sparse_vector(self) -> bool:
        sparse_vectors = self.client.get_collection(self.collection).config.params.sparse_vectors
        return SPARSE_VECTOR in (sparse_vectors or {})

    def _add_sparse_vector_if_missing(self) -> None:
        """A collection from before hybrid retrieval gets the sparse vector; nothing in it is dropped."""
        if self._has_sparse_vector():
            return
        try:
            self.client.create_vector_name(
                self.collection,
                SPARSE_VECTOR,
                models.SparseVectorNameConfig(sparse=models.SparseVectorConfig(modifier=models.Modifier.IDF)),
            )
        except Exception:
            # The other agent, seeding at the same time, may have added it first.
            if not self._has_sparse_vector():
                raise
        logger.info("added sparse vector %s to Qdrant collection %s", SPARSE_VECTOR, self.collection)
